"""What a run left, shown the same way for both backends and both pipelines."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from batchpipe.backends.summary import RunSummary


def copy_to(path: str, write: Callable[[str], Any], chunk: int = 1 << 20) -> None:
    """Stream a local file's text to `write` (a results.json too large to print from memory)."""
    with open(path, encoding="utf-8") as fh:
        while data := fh.read(chunk):
            write(data)


def show_summary(summary: RunSummary, as_json: bool) -> None:
    """What a run left, the same for both backends and pipelines: the document or its tables, then the exit code."""
    from rich.console import Console

    from batchpipe import ui
    from batchpipe.catalog import pipeline

    described = pipeline(summary.pipeline)
    stderr = Console(stderr=True)
    doc, where = summary.document, summary.location
    on_disk = not where.startswith("s3://")
    if summary.status == "RUNNING" and doc is None:  # started without waiting
        click.echo(json.dumps({"jobName": summary.job_name, "executionArn": summary.execution_arn}) if as_json
                   else summary.execution_arn)  # fmt: skip
        return
    if as_json:
        if on_disk:  # the whole document, streamed from its file (a Monte Carlo result can be large)
            copy_to(str(Path(where) / described.result_file), sys.stdout.write)
        else:
            shown = doc if doc is not None else {"jobName": summary.job_name, "status": summary.status,
                                                 "executionArn": summary.execution_arn}  # fmt: skip
            click.echo(json.dumps(shown, indent=2, allow_nan=False))
    elif doc is not None:
        getattr(ui, described.renderer)(doc, Console(), where)
        if on_disk:
            files = [f"{where}/{name}" for name in described.downloads if (Path(where) / name).exists()]
            stderr.print(f"Job {summary.job_name}: {', '.join(files)}")
    if summary.exit_code == 0:
        return
    if not on_disk:
        stderr.print(
            f"[red]{summary.status}[/]: `batchpipe status {summary.job_name}` shows the stages and failed jobs"
        )
    elif doc is not None and described.counts_frames:
        stderr.print(f"[red]{summary.status}[/]: frames missing: {doc['missingFrameRanges']} (logs in {where}/logs)")
    elif doc is not None:
        stderr.print(f"[red]{summary.status}[/]: {doc['failedCount']:,} of {doc['positionCount']:,} positions not "
                     f"priced (results.csv has each one's error)")  # fmt: skip
    sys.exit(summary.exit_code)
