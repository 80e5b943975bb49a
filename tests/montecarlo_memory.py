"""The Monte Carlo pipeline in memory, for tests: a plan with every resolved position, and the results document,
without storage. The engines stream through `batchpipe.pipelines.montecarlo.streaming` instead; these build the
same documents a second way (the plan's hash from the positions' text joined in memory, collate over a list of
shard results)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from batchpipe.pipelines import montecarlo as mc
from batchpipe.pipelines.portfolio import Portfolio


def preprocess(
    portfolio: Portfolio,
    job_name: str,
    positions_per_job: int | None = None,
    paths: int | None = None,
    seed: int | None = None,
    risk: mc.RiskOptions | None = None,
) -> tuple[mc.Plan, list[mc.ResolvedPosition]]:
    """The plan (its hash from the positions' text joined in memory; no storage offsets) and every resolved
    position."""
    builder = mc.PlanBuilder(portfolio, job_name, positions_per_job, paths, seed, risk)
    positions = list(builder.positions())
    body = builder.plan()
    digest = mc.plan_hash(body, "".join(mc.position_line(p) for p in positions).encode())
    return mc.Plan(**dict(body), shard_offsets=[], plan_hash=digest), positions


def shard_slice(plan: mc.PlanBody, positions: Sequence[mc.ResolvedPosition], shard: int) -> list[mc.ResolvedPosition]:
    """One shard's positions out of all of them."""
    r = mc.shard_range(plan, shard)
    return list(positions[r.start : r.stop])


def collate(
    plan: mc.Plan, positions: Sequence[mc.ResolvedPosition], shard_results: Iterable[mc.ShardResult | None]
) -> mc.Results:
    """The whole results document, every shard's result given in shard order (None: the shard produced none)."""
    collation = mc.Collation(plan)
    results = list(shard_results)
    rows = []
    for shard in range(plan.shards):
        rows.extend(collation.add(shard, shard_slice(plan, positions, shard), results[shard]))
    return mc.Results(**dict(collation.summary()), positions=rows)
