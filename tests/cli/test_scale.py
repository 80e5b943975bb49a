"""Large portfolios: positions are streamed to storage, each shard reads only its own, collate streams the results."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from batchpipe.cli import main
from batchpipe.layout import RunLayout
from batchpipe.pipelines import montecarlo as mc
from batchpipe.pipelines.montecarlo import price, streaming
from batchpipe.pipelines.portfolio import parse_portfolio
from tests.conftest import small_portfolio
from tests.montecarlo_memory import collate, preprocess, shard_slice


def many_positions(n: int) -> dict[str, Any]:
    strikes = [3350, 3450, 3550, 3650]
    positions = [
        {"notional": 1e6 * (1 + i % 5), "strike": strikes[i % 4], "barrier": 0.9 + 0.01 * (i % 3)} for i in range(n)
    ]
    return small_portfolio(positions=positions, simulation={"paths": 64, "seed": 5})


def test_stored_plan_shards_and_streamed_collate_equal_the_in_memory_pipeline(tmp_path: Path) -> None:
    portfolio = parse_portfolio(json.dumps(many_positions(53)), "p.json")
    plan, positions = preprocess(portfolio, "job", positions_per_job=5)
    out = RunLayout.at(str(tmp_path))
    stored = streaming.write_plan(out, mc.PlanBuilder(portfolio, "job", positions_per_job=5))
    assert stored.plan_hash == plan.plan_hash
    assert stored.model_dump(exclude={"shard_offsets"}) == plan.model_dump(exclude={"shard_offsets"})
    assert "positions" not in json.loads((tmp_path / "plan.json").read_text())
    assert len(stored.shard_offsets) == plan.shards + 1 == 12
    for shard in range(plan.shards):
        assert streaming.read_shard_positions(out, stored, shard) == shard_slice(plan, positions, shard)
    results = []
    for shard in range(plan.shards):
        result = mc.price_shard(plan, shard, shard_slice(plan, positions, shard))
        if shard == 3:  # a shard that failed: its five positions carry the error
            result = mc.failed_shard(plan, shard, shard_slice(plan, positions, shard), "shard 3 failed")
        out.write_json(out.shard(shard), result)
        results.append(result)
    summary = streaming.collate(out, stored).stored()
    in_memory = collate(plan, positions, results).stored()
    assert json.loads((tmp_path / "results.json").read_text()) == in_memory
    assert summary == in_memory  # fewer than PREVIEW_ROWS: the preview is every row
    assert in_memory["status"] == "PARTIAL" and in_memory["positionCount"] == 53
    assert in_memory["failedCount"] == 5 and in_memory["failedPositions"] == [15, 16, 17, 18, 19]
    assert (tmp_path / "results.csv").read_text().count("\n") == 54
    assert not list(tmp_path.glob(".*.tmp"))  # no staging files left behind


def fails_on_shard(shard: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make one shard's pricing raise, in this process and in the worker processes it forks."""
    real = price.price_chunk

    def price_chunk(plan: mc.Plan, index: int, positions: Any, chunk: int) -> mc.ChunkSums:
        if index == shard:
            raise RuntimeError(f"shard {index} broke")
        return real(plan, index, positions, chunk)

    monkeypatch.setattr(price, "price_chunk", price_chunk)


def test_a_long_table_shows_its_first_rows_and_json_prints_every_position(
    tmp_path: Path, write_json: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_json(many_positions(130))
    fails_on_shard(12, monkeypatch)  # positions 120-129
    args = ["run", "montecarlo", str(path), "--local", "--job-name", "long", "--positions-per-job", "10"]
    table = CliRunner().invoke(main, [*args, "--output", str(tmp_path / "t")], catch_exceptions=False)
    assert table.exit_code == 1  # shard 12 failed: PARTIAL
    assert "First 100 of 130 positions shown; 10 failed" in " ".join(table.stdout.split())
    # the count is the run's, not the preview's (it said "0 of 100" when every failure was past the preview)
    assert "PARTIAL: 10 of 130 positions not priced" in " ".join(table.stderr.split())
    assert "│ 99 │" in table.stdout and "│ 100 │" not in table.stdout
    printed = CliRunner().invoke(main, [*args, "--output", str(tmp_path / "j"), "--json"], catch_exceptions=False)
    doc = json.loads(printed.stdout)
    assert [p["index"] for p in doc["positions"]] == list(range(130))
    assert doc == json.loads((tmp_path / "j" / "results.json").read_text())
