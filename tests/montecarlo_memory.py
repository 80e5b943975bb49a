"""The Monte Carlo pipeline in memory, for tests: a plan with every resolved position, and the results document,
without storage. The engines stream through `batchpipe.pipelines.montecarlo.streaming` instead; these build the
same documents a second way (the plan's hash from the positions' text joined in memory, collate over a list of
shard results)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from batchpipe.pipelines import montecarlo as mc
from batchpipe.pipelines.portfolio import Portfolio

Doc = dict[str, Any]


def preprocess(
    portfolio: Portfolio,
    job_name: str,
    positions_per_job: int | None = None,
    paths: int | None = None,
    seed: int | None = None,
) -> tuple[Doc, list[Doc]]:
    """The plan (with its "planHash", without "shardOffsets") and every resolved position."""
    builder = mc.PlanBuilder(portfolio, job_name, positions_per_job, paths, seed)
    positions = list(builder.positions())
    plan = builder.plan()
    plan["planHash"] = mc.plan_hash(plan, "".join(mc.position_line(p) for p in positions).encode())
    return plan, positions


def shard_slice(plan: Doc, positions: Sequence[Doc], shard: int) -> list[Doc]:
    """One shard's positions out of all of them."""
    r = mc.shard_range(plan, shard)
    return list(positions[r.start : r.stop])


def collate(plan: Doc, positions: Sequence[Doc], shard_results: Iterable[Doc | None]) -> Doc:
    """The whole results document, every shard's result given in shard order (None: the shard produced none)."""
    collation = mc.Collation(plan)
    results = list(shard_results)
    rows = []
    for shard in range(int(plan["shards"])):
        rows.extend(collation.add(shard, shard_slice(plan, positions, shard), results[shard]))
    return collation.summary() | {"positions": rows}
