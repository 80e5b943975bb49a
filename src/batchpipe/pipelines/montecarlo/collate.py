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
    Greeks,
    Plan,
    ResolvedPosition,
    ResultRow,
    ResultSummary,
    ScenarioResults,
    ShardResult,
)
from batchpipe.pipelines.montecarlo.price import failed_shard, fits, strike_key
from batchpipe.pricing.exactsum import ExactSums
from batchpipe.pricing.greeks import GREEKS

FAILED_SAMPLE = 100
Unreadable = Literal["unreadable"]  # a stored file that is not a shard result (corrupt, cut short, another format)
UNREADABLE: Unreadable = "unreadable"
RESULT_FIELDS = ("index", "id", "notional", "strike", "autocallBarrier", "pv", "stderr", "error")
GREEK_FIELDS = (*GREEKS, *(f"{g}Stderr" for g in GREEKS))  # results.csv's columns after RESULT_FIELDS with --greeks
SCENARIO_FIELDS = ("index", "id", "notional", "strike", "spotShift", "volShift", "pv")  # scenarios.csv


def result_fields(plan: Plan) -> tuple[str, ...]:
    """results.csv's header."""
    return RESULT_FIELDS + (GREEK_FIELDS if plan.greeks is not None else ())


def _batch_stderr(block_totals: list[float]) -> float | None:
    """The standard error of a total from its blocks' totals as batch means."""
    values = np.array(block_totals)
    if values.size <= 1 or not np.all(np.isfinite(values)):
        return None
    spread = values - values[0]  # exact zeros when every block agrees (a riskless portfolio)
    return float(np.std(spread, ddof=1) / math.sqrt(values.size))


def _greeks(values: list[float | None]) -> Greeks:
    return Greeks(**dict(zip(GREEKS, values, strict=True)))


class _GreekTotals:
    """Exact sums of the greeks (4 columns) and of their per-block totals, for the stderr."""

    def __init__(self, blocks: int) -> None:
        self.sums = ExactSums(len(GREEKS))
        self.blocks = {g: ExactSums(blocks) for g in GREEKS}

    def values(self) -> Greeks:
        return _greeks(list(self.sums.values()))

    def stderr(self) -> Greeks:
        return _greeks([_batch_stderr(self.blocks[g].values()) for g in GREEKS])


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
        blocks = plan.simulation.blocks
        self.greeks = _GreekTotals(blocks) if plan.greeks is not None else None
        self.greeks_by_strike: dict[str, _GreekTotals] = {}
        count = plan.scenarios.count if plan.scenarios is not None else 0
        self.scenario_total = ExactSums(count)
        self.scenario_blocks = [ExactSums(blocks) for _ in range(count)]
        self.scenarios_by_strike: dict[str, ExactSums] = {}

    def add(
        self, shard: int, positions: Sequence[ResolvedPosition], result: ShardResult | Unreadable | None
    ) -> list[ResultRow]:
        """The shard's result rows, its figures added to the totals."""
        return self.fold(shard, positions, result)[0]

    def fold(
        self, shard: int, positions: Sequence[ResolvedPosition], result: ShardResult | Unreadable | None
    ) -> tuple[list[ResultRow], list[list[object]]]:
        """`add`, and the shard's rows of scenarios.csv (one per position and scenario; none without scenarios)."""
        if result is None:
            result = failed_shard(self.plan, shard, positions, f"shard {shard} produced no result")
        elif result == UNREADABLE or not fits(self.plan, shard, positions, result):
            message = f"shard {shard}: its stored result does not match the plan (stale or corrupt)"
            result = failed_shard(self.plan, shard, positions, message)
        plan = self.plan
        blocks = plan.simulation.blocks
        rows = []
        ladder: list[list[object]] = []
        for pos, res in zip(positions, result.positions, strict=True):
            priced = res.error is None and res.pv is not None
            greeks = greeks_stderr = None
            if plan.greeks is not None:  # a failed position's greeks are empty, as its PV is
                greeks = res.greeks if priced else _greeks([None] * len(GREEKS))
                greeks_stderr = res.greeks_stderr if priced else _greeks([None] * len(GREEKS))
            rows.append(ResultRow(index=pos.index, id=pos.id, notional=pos.notional, strike=pos.strike,
                                  autocall_barrier=pos.autocall_barrier, pv=res.pv, stderr=res.stderr,
                                  error=res.error, greeks=greeks, greeks_stderr=greeks_stderr))  # fmt: skip
            if res.error is not None and len(self.failed) < FAILED_SAMPLE:
                self.failed.append(pos.index)
            key = strike_key(pos.strike)
            if plan.scenarios is not None:
                pvs = res.scenario_pvs if priced and res.scenario_pvs is not None else None
                grid = [(s, v) for s in plan.scenarios.spot_shifts for v in plan.scenarios.vol_shifts]
                for k, (spot_shift, vol_shift) in enumerate(grid):
                    ladder.append([pos.index, "" if pos.id is None else pos.id, pos.notional, pos.strike,
                                   spot_shift, vol_shift, "" if pvs is None else pvs[k]])  # fmt: skip
            if priced:
                assert res.pv is not None
                self.priced += 1
                self.total.add(0, res.pv)
                self.by_strike.setdefault(key, ExactSums(1)).add(0, res.pv)
                if self.greeks is not None and res.greeks is not None:
                    values = [getattr(res.greeks, g) for g in GREEKS]
                    by_strike = self.greeks_by_strike.setdefault(key, _GreekTotals(blocks))
                    for j, value in enumerate(values):
                        self.greeks.sums.add(j, float(value))
                        by_strike.sums.add(j, float(value))
                if res.scenario_pvs is not None and plan.scenarios is not None:
                    strike_ladder = self.scenarios_by_strike.setdefault(key, ExactSums(plan.scenarios.count))
                    for k, value in enumerate(res.scenario_pvs):
                        self.scenario_total.add(k, value)
                        strike_ladder.add(k, value)
        self.count += len(rows)
        if result.block_totals:
            self.blocks.add_parts(result.block_totals)
            self.any_totals = True
        if self.greeks is not None and result.greek_block_totals:
            for g in GREEKS:
                self.greeks.blocks[g].add_parts(result.greek_block_totals[g])
            for key, per_greek in (result.greek_strike_block_totals or {}).items():
                by_strike = self.greeks_by_strike.setdefault(key, _GreekTotals(blocks))
                for g in GREEKS:
                    by_strike.blocks[g].add_parts(per_greek[g])
        if result.scenario_block_totals:
            for sums, parts in zip(self.scenario_blocks, result.scenario_block_totals, strict=True):
                sums.add_parts(parts)
        return rows, ladder

    def _scenarios(self) -> ScenarioResults | None:
        grid = self.plan.scenarios
        if grid is None:
            return None
        width = len(grid.vol_shifts)

        def shaped(values: list[float]) -> list[list[float]]:
            return [values[i : i + width] for i in range(0, len(values), width)]

        stderrs = [_batch_stderr(sums.values()) for sums in self.scenario_blocks] if self.any_totals else []
        known = [e for e in stderrs if e is not None]
        strikes = sorted(self.scenarios_by_strike.items(), key=lambda kv: float(kv[0]))
        return ScenarioResults(
            spot_shifts=grid.spot_shifts,
            vol_shifts=grid.vol_shifts,
            total_pv=shaped(self.scenario_total.values()) if self.priced else None,
            total_stderr=shaped(known) if stderrs and len(known) == len(stderrs) else None,
            by_strike={k: shaped(v.values()) for k, v in strikes},
        )

    def summary(self) -> ResultSummary:
        """The results document without its rows."""
        total_stderr: float | None = None
        block_totals = np.array(self.blocks.values())
        if self.any_totals and block_totals.size > 1:
            spread = block_totals - block_totals[0]  # exact zeros when every block agrees (a riskless portfolio)
            total_stderr = float(np.std(spread, ddof=1) / math.sqrt(block_totals.size))
        by_strike = by_strike_stderr = None
        total_greeks = total_greeks_stderr = None
        if self.greeks is not None:
            strikes_g = sorted(self.greeks_by_strike.items(), key=lambda kv: float(kv[0]))
            none = _greeks([None] * len(GREEKS))
            by_strike = {k: v.values() for k, v in strikes_g}
            by_strike_stderr = {k: v.stderr() if self.any_totals else none for k, v in strikes_g}
            total_greeks = self.greeks.values() if self.priced else none
            total_greeks_stderr = self.greeks.stderr() if self.any_totals else none
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
            greeks_by_strike=by_strike,
            greeks_by_strike_stderr=by_strike_stderr,
            total_greeks=total_greeks,
            total_greeks_stderr=total_greeks_stderr,
            scenarios=self._scenarios(),
            model=self.plan.model,
            simulation=self.plan.simulation.info(),
        )


def csv_row(row: ResultRow) -> list[object]:
    """A row of results.csv: the fields of RESULT_FIELDS, then (with --greeks) those of GREEK_FIELDS."""
    stored = row.stored()
    values = [stored[f] for f in RESULT_FIELDS]
    if row.greeks is not None and row.greeks_stderr is not None:
        values += [getattr(row.greeks, g) for g in GREEKS] + [getattr(row.greeks_stderr, g) for g in GREEKS]
    return ["" if value is None else value for value in values]
