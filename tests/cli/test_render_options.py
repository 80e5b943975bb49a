"""`run render` option combinations that make no sense are refused before anything is read, started or written."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from batchpipe.cli import main


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--local", "--resume", "r1"], "--resume RUN is for AWS runs"),
        (["--fresh"], "--fresh applies to --local runs"),
        (["--resume", "r1", "--frames-per-job", "4"], "--resume RUN keeps RUN's own --frames-per-job"),
    ],
)
def test_refused_combinations(tmp_path: Path, args: list[str], message: str) -> None:
    result = CliRunner().invoke(main, ["run", "render", str(tmp_path / "scene.blend"), *args])
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith(f"error: {message}")
    assert list(tmp_path.iterdir()) == []
