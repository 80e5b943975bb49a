"""Tables on narrow terminals keep every number whole: columns are dropped, never cut to '10…'."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from batchpipe.cli import main
from tests.conftest import small_portfolio


@pytest.mark.parametrize("columns", [40, 24, 120])
def test_numbers_stay_whole_at_any_width(tmp_path: Path, write_json: Any, columns: int) -> None:
    out = tmp_path / "o"
    args = ["run", "montecarlo", str(write_json(small_portfolio())), "--local", "--output", str(out)]
    result = CliRunner().invoke(main, args, catch_exceptions=False, env={"COLUMNS": str(columns)})
    assert result.exit_code == 0
    doc = json.loads((out / "results.json").read_text())
    assert "…" not in result.stdout
    for p in doc["positions"]:
        assert f"{p['pv']:,.2f}" in result.stdout  # every PV, whole
    for pv in doc["aggregation"].values():
        assert f"{pv:,.2f}" in result.stdout
    if columns >= 120:  # a wide terminal shows every column
        assert "% notional" in result.stdout and "autocall" in result.stdout
    again = CliRunner().invoke(main, ["results", "--local", str(out)], catch_exceptions=False,
                               env={"COLUMNS": str(columns)})  # fmt: skip
    assert again.exit_code == 0 and "…" not in again.stdout
    assert all(f"{p['pv']:,.2f}" in again.stdout for p in doc["positions"])
