"""Collate for the Monte Carlo pipeline: the results document, folded from the shard results one shard at a time
(`Collation`; a missing or stale result becomes failed rows). `streaming.collate` streams each
shard's rows to results.json and results.csv (`RESULT_FIELDS`, `csv_row`), then writes the rest: memory follows the
shard size, not the portfolio's.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import numpy as np

from batchpipe.pipelines.montecarlo.documents import (
    Plan,
    ResolvedPosition,
    ResultRow,
    ResultSummary,
    ShardResult,
)
from batchpipe.pipelines.montecarlo.price import failed_shard, fits
from batchpipe.pricing.exactsum import ExactSums

FAILED_SAMPLE = 100
Unreadable = Literal["unreadable"]  # a stored file that is not a shard result (corrupt, cut short, another format)
UNREADABLE: Unreadable = "unreadable"
RESULT_FIELDS = ("index", "id", "notional", "strike", "autocallBarrier", "pv", "stderr", "error")


def _strike_key(strike: float) -> str:
    return str(int(strike)) if float(strike).is_integer() else repr(float(strike))


class Collation:
    """Collate, one shard at a time: `add` returns the shard's result rows, `summary` the rest of the results
    document. Nothing grows with the number of positions but the PV-by-strike table; every sum is exact, so the
    document does not depend on how positions were sharded."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.blocks = ExactSums(plan.simulation.blocks)
        self.total = ExactSums(1)
        self.by_strike: dict[str, ExactSums] = {}
        self.count = self.priced = 0
        self.failed: list[int] = []  # the first FAILED_SAMPLE failed positions' indices
        self.any_totals = False

    def add(
        self, shard: int, positions: Sequence[ResolvedPosition], result: ShardResult | Unreadable | None
    ) -> list[ResultRow]:
        if result is None:
            result = failed_shard(self.plan, shard, positions, f"shard {shard} produced no result")
        elif result == UNREADABLE or not fits(self.plan, shard, positions, result):
            message = f"shard {shard}: its stored result does not match the plan (stale or corrupt)"
            result = failed_shard(self.plan, shard, positions, message)
        rows = []
        for pos, res in zip(positions, result.positions, strict=True):
            rows.append(ResultRow(index=pos.index, id=pos.id, notional=pos.notional, strike=pos.strike,
                                  autocall_barrier=pos.autocall_barrier, pv=res.pv, stderr=res.stderr,
                                  error=res.error))  # fmt: skip
            if res.error is not None and len(self.failed) < FAILED_SAMPLE:
                self.failed.append(pos.index)
            if res.error is None and res.pv is not None:
                self.priced += 1
                self.total.add(0, res.pv)
                self.by_strike.setdefault(_strike_key(pos.strike), ExactSums(1)).add(0, res.pv)
        self.count += len(rows)
        if result.block_totals:
            self.blocks.add_parts(result.block_totals)
            self.any_totals = True
        return rows

    def summary(self) -> ResultSummary:
        """The results document without its rows."""
        total_stderr: float | None = None
        block_totals = np.array(self.blocks.values())
        if self.any_totals and block_totals.size > 1:
            spread = block_totals - block_totals[0]  # exact zeros when every block agrees (a riskless portfolio)
            total_stderr = float(np.std(spread, ddof=1) / math.sqrt(block_totals.size))
        status: Literal["SUCCEEDED", "PARTIAL", "FAILED"]
        if not self.priced:
            status = "FAILED"
        elif self.priced < self.count:
            status = "PARTIAL"
        else:
            status = "SUCCEEDED"
        strikes = sorted(self.by_strike.items(), key=lambda kv: float(kv[0]))
        return ResultSummary(
            job_name=self.plan.job_name,
            status=status,
            position_count=self.count,
            failed_count=self.count - self.priced,
            failed_positions=self.failed,
            aggregation={k: v.values()[0] for k, v in strikes},
            total_pv=self.total.values()[0] if self.priced else None,
            total_stderr=total_stderr,
            model=self.plan.model,
            simulation=self.plan.simulation.info(),
        )


def csv_row(row: ResultRow) -> list[object]:
    return ["" if value is None else value for value in row.stored().values()]
