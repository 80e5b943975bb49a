"""The pipeline descriptors name the files the self-contained Lambda handler reads: the two must agree."""

from __future__ import annotations

import pytest

from batchpipe import catalog
from batchpipe.aws import handlers
from batchpipe.aws.stack import OUTPUTS


def test_the_lambda_reads_the_files_the_descriptors_name() -> None:
    assert {name: p.result_file for name, p in catalog.PIPELINES.items()} == handlers.RESULTS
    assert catalog.MONTECARLO.status_file == "summary.json"  # what Summarize reads instead of every row


def test_descriptors_name_stack_outputs_and_ui_renderers_that_exist() -> None:
    from batchpipe import ui

    for p in catalog.PIPELINES.values():
        assert {p.state_machine_output, p.job_definition_output} <= set(OUTPUTS)
        assert callable(getattr(ui, p.renderer))
        assert p.optional_downloads <= set(p.downloads) and p.result_file in p.downloads
    with pytest.raises(ValueError, match="no pipeline 'mc'"):
        catalog.pipeline("mc")
