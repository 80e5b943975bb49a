"""`run` option combinations that make no sense are refused before anything is read, started or written."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from batchpipe.cli import main


@pytest.mark.parametrize(
    ("pipeline", "input_name", "shards_option"),
    [("render", "scene.blend", "--frames-per-job"), ("montecarlo", "portfolio.json", "--positions-per-job")],
)
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--local", "--resume", "r1"], "--resume RUN is for AWS runs"),
        (["--fresh"], "--fresh applies to --local runs"),
        (["--resume", "r1", "SHARDS", "4"], "--resume RUN keeps RUN's own SHARDS"),
    ],
)
def test_refused_combinations(
    tmp_path: Path, pipeline: str, input_name: str, shards_option: str, args: list[str], message: str
) -> None:
    args = [shards_option if a == "SHARDS" else a for a in args]
    result = CliRunner().invoke(main, ["run", pipeline, str(tmp_path / input_name), *args])
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith(f"error: {message.replace('SHARDS', shards_option)}")
    assert list(tmp_path.iterdir()) == []
