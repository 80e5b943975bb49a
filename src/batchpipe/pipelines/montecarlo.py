"""The Monte Carlo pipeline: preprocess -> price shards -> collate, as pure functions over JSON-able documents.

The same functions run in the local engine's worker processes and in the AWS containers and Lambdas.

Sampling scheme: every position is priced on the same paths (one underlying), so the portfolio is simulated once
per shard rather than once per position. The paths come in `blocks` (64 unless there are fewer than 128 paths) of
antithetic pairs, each block from its own random stream; blocks are grouped into fixed `chunks`, the unit of work.
Per-position PVs and standard errors use the pairs as independent samples. Because positions share paths, their
errors are correlated: the portfolio's standard error uses the blocks as batch means (the spread of the 64 block
totals), which accounts for every covariance without moving per-path data between shards. A shard's block totals
are exact sums (`batchpipe.pricing.exactsum`), so the portfolio's do not depend on how positions were sharded.

Preprocess streams (`PlanBuilder`) and collate folds one shard at a time (`Collation`): storage
(`batchpipe.artifacts`) keeps memory to a shard's worth.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import numpy as np
from numpy.typing import NDArray

from batchpipe.errors import InputError
from batchpipe.pipelines.portfolio import Portfolio, Position
from batchpipe.pricing.autocallable import NoteTerms, discounted_payoffs
from batchpipe.pricing.calendar import annual_schedule, year_fraction
from batchpipe.pricing.calibration import UnfittableSurface, VolQuotes, calibrate
from batchpipe.pricing.control_variates import estimate, measurable
from batchpipe.pricing.exactsum import ExactSums
from batchpipe.pricing.heston import HestonParams
from batchpipe.pricing.paths import TimeGrid, build_grid, simulate_qe_blocks, steps_per_year_needed

PLAN_VERSION = 2  # 2: kappa-aware grid, guarded control variates (results of version 1 are never resumed)
MAX_BLOCKS = 64
CHUNK_PATHS = 16_384  # paths simulated together: arrays stay cache-sized
NOTE_BATCH = 64  # notes whose payoffs are computed together
DEFAULT_POSITIONS_PER_JOB = 256
MAX_ARRAY_SIZE = 10_000  # AWS Batch's limit on array children

Doc = dict[str, Any]


@dataclass(frozen=True)
class SamplingLayout:
    blocks: int
    pairs_per_block: int
    blocks_per_chunk: int

    @property
    def paths(self) -> int:
        return 2 * self.blocks * self.pairs_per_block

    @property
    def chunks(self) -> int:
        return -(-self.blocks // self.blocks_per_chunk)

    def chunk_blocks(self, chunk: int) -> range:
        start = chunk * self.blocks_per_chunk
        return range(start, min(self.blocks, start + self.blocks_per_chunk))

    @classmethod
    def for_paths(cls, paths: int) -> SamplingLayout:
        blocks = min(MAX_BLOCKS, max(1, paths // 2))
        pairs = -(-paths // (2 * blocks))
        per_chunk = max(1, min(blocks, CHUNK_PATHS // (2 * pairs)))
        return cls(blocks, pairs, per_chunk)

    @classmethod
    def from_doc(cls, sim: Doc) -> SamplingLayout:
        return cls(int(sim["blocks"]), int(sim["pairsPerBlock"]), int(sim["blocksPerChunk"]))


def _strike_key(strike: float) -> str:
    return str(int(strike)) if float(strike).is_integer() else repr(float(strike))


def _resolve_position(portfolio: Portfolio, index: int, pos: Position, schedules: dict[int, list[str]]) -> Doc:
    prod = portfolio.product
    doc: Doc = {
        "index": index,
        "id": pos.id,
        "notional": pos.notional,
        "strike": pos.strike,
        "autocallBarrier": pos.autocall_barrier,
        "coupon": pos.coupon if pos.coupon is not None else prod.coupon,
        "couponBarrier": pos.coupon_barrier if pos.coupon_barrier is not None else prod.coupon_barrier,
        "protectionBarrier": (
            pos.protection_barrier if pos.protection_barrier is not None else prod.protection_barrier
        ),
        "memory": pos.memory if pos.memory is not None else prod.memory,
        "observationDates": None,
        "error": None,
    }
    if pos.observation_dates is not None:  # checked when the file was read: increasing, after the valuation date
        doc["observationDates"] = [d.isoformat() for d in pos.observation_dates]
        return doc
    years = pos.maturity_years if pos.maturity_years is not None else prod.maturity_years
    if years not in schedules:
        schedules[years] = [d.isoformat() for d in annual_schedule(portfolio.valuation_date, years)]
    doc["observationDates"] = schedules[years]
    return doc


def _calibrate(portfolio: Portfolio) -> tuple[HestonParams, float | None, list[str]]:
    """Heston's parameters: the file's own, or fitted to its vol surface: (params, implied-vol RMSE or None,
    the fit's quality warnings). The file's dates were checked when it was read (expiries after the valuation date)."""
    market = portfolio.market
    if market.heston is not None:
        h = market.heston
        return HestonParams(h.v0, h.kappa, h.theta, h.sigma, h.rho), None, []
    surface = market.vol_surface
    times = np.array([year_fraction(portfolio.valuation_date, e, market.day_count) for e in surface.expiries])
    quotes = VolQuotes.from_grid(times, np.array(surface.strikes), np.array(surface.vols))
    try:
        fit = calibrate(market.spot, market.rate, market.dividend_yield, quotes)
    except UnfittableSurface as exc:
        raise InputError(f"{portfolio.source}: market.volSurface: {exc}") from None
    return fit.params, fit.rmse, list(fit.warnings)


class PlanBuilder:
    """Preprocess: calibrate once and lay out shards and paths (the plan), and resolve every position's terms and
    dates, one at a time (`positions()`), so a large portfolio is never held as documents.

    The plan's "observationDates" (the union of every position's dates) is complete once `positions()` has been
    consumed; `batchpipe.artifacts.write_plan` streams the positions to storage and then writes the plan.
    """

    def __init__(
        self,
        portfolio: Portfolio,
        job_name: str,
        positions_per_job: int | None = None,
        paths: int | None = None,
        seed: int | None = None,
    ) -> None:
        n = len(portfolio)
        requested = positions_per_job or min(n, DEFAULT_POSITIONS_PER_JOB)
        if requested < 1:
            raise InputError("--positions-per-job must be at least 1")
        # AWS Batch arrays have at most 10,000 children: larger portfolios get more positions per child
        per_job = max(requested, -(-n // MAX_ARRAY_SIZE))
        if paths is not None and paths < 2:
            raise InputError("--paths must be at least 2")
        if seed is not None and not 0 <= seed < 2**63:
            raise InputError("--seed must be between 0 and 2**63 - 1")
        sim = portfolio.simulation
        layout = SamplingLayout.for_paths(paths if paths is not None else sim.paths)
        params, rmse, warnings = _calibrate(portfolio)
        market = portfolio.market
        self.portfolio = portfolio
        self._dates: set[str] = set()
        self._plan: Doc = {
            "version": PLAN_VERSION,
            "pipeline": "montecarlo",
            "jobName": job_name,
            "portfolioName": portfolio.name,
            "valuationDate": portfolio.valuation_date.isoformat(),
            "market": {
                "spot": market.spot,
                "rate": market.rate,
                "dividendYield": market.dividend_yield,
                "dayCount": market.day_count,
            },
            "model": {
                "heston": params.as_dict(),
                "calibrated": market.heston is None,  # False: the file's own parameters
                "calibrationRmse": rmse,  # None when given, or when the model's prices have no implied vol
                "calibrationWarnings": warnings,
            },
            "simulation": {
                "paths": layout.paths,  # what runs: whole antithetic pairs in equal blocks, at least what was asked
                "pathsRequested": paths if paths is not None else sim.paths,
                "seed": seed if seed is not None else sim.seed,
                "stepsPerYear": sim.steps_per_year,
                # the grid's rate: finer than stepsPerYear when mean reversion is fast (kappa * dt <= 1/8)
                "stepsPerYearUsed": steps_per_year_needed(sim.steps_per_year, params.kappa),
                "blocks": layout.blocks,
                "pairsPerBlock": layout.pairs_per_block,
                "blocksPerChunk": layout.blocks_per_chunk,
                "chunks": layout.chunks,
            },
            "positionCount": n,
            "positionsPerJobRequested": requested,
            "positionsPerJob": per_job,
            "shards": -(-n // per_job),
        }

    @property
    def positions_per_job(self) -> int:
        return int(self._plan["positionsPerJob"])

    @property
    def model(self) -> Doc:
        """The model block of the plan: Heston's parameters and the calibration's quality."""
        model: Doc = self._plan["model"]
        return model

    def positions(self) -> Iterator[Doc]:
        """Every position resolved, in order; each priced position's dates join the plan's."""
        schedules: dict[int, list[str]] = {}
        for i, pos in enumerate(self.portfolio.positions()):
            doc = _resolve_position(self.portfolio, i, pos, schedules)
            if doc["error"] is None:
                self._dates.update(doc["observationDates"])
            yield doc

    def plan(self) -> Doc:
        """The plan, without the storage-made "planHash" and "shardOffsets"."""
        vd = self.portfolio.valuation_date
        all_dates = sorted(self._dates)
        day_count = self.portfolio.market.day_count
        times = [year_fraction(vd, date.fromisoformat(d), day_count) for d in all_dates]
        return {**self._plan, "observationDates": all_dates, "observationTimes": times}


def position_line(position: Doc) -> str:
    """A resolved position as stored: one JSON line (the plan's hash covers these exact bytes)."""
    return json.dumps(position, separators=(",", ":"), allow_nan=False) + "\n"


def plan_hash(plan: Doc, positions: bytes | str) -> str:
    """A fingerprint of everything a shard's result depends on: the plan (less its storage offsets) and the
    positions' stored text (or its sha256 hex digest). Computed once, when the plan is written."""
    digest = positions if isinstance(positions, str) else hashlib.sha256(positions).hexdigest()
    content = {k: v for k, v in plan.items() if k not in ("planHash", "shardOffsets")} | {"positions": digest}
    return hashlib.sha256(json.dumps(content, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:24]


def is_complete(plan: Doc, shard: int, positions: Sequence[Doc], result: Doc | None) -> bool:
    """Whether a stored shard result is this plan's and finished (a corrupt or failed one must be redone)."""
    return (
        result is not None
        and _fits(plan, shard, positions, result)
        and all(g.get("error") == p["error"] for g, p in zip(result["positions"], positions, strict=True))
    )


def _fits(plan: Doc, shard: int, positions: Sequence[Doc], result: Doc) -> bool:
    """Whether a stored result (finished or failed) is this plan's result for this shard, whole."""
    got = result.get("positions")
    if result.get("planHash") != plan["planHash"] or result.get("shard") != shard or not isinstance(got, list):
        return False
    if len(got) != len(positions) or any(g.get("index") != p["index"] for g, p in zip(got, positions, strict=True)):
        return False
    priced = [g for g in got if g.get("error") is None]
    totals = result.get("blockTotals")
    blocks = int(plan["simulation"]["blocks"])
    return all(isinstance(g.get("pv"), float) for g in priced) and (
        not priced or (isinstance(totals, list) and len(totals) == blocks)
    )


def shard_range(plan: Doc, shard: int) -> range:
    """The indices of the positions one shard prices."""
    per_job = int(plan["positionsPerJob"])
    if not 0 <= shard < int(plan["shards"]):
        raise ValueError(f"shard {shard} out of range: the plan has {plan['shards']} shards")
    return range(shard * per_job, min(int(plan["positionCount"]), (shard + 1) * per_job))


def _grid(plan: Doc) -> TimeGrid:
    kappa = float(plan["model"]["heston"]["kappa"])
    return build_grid(np.array(plan["observationTimes"]), int(plan["simulation"]["stepsPerYear"]), kappa=kappa)


def _unit_terms(p: Doc) -> Terms:
    """A note's terms on a unit notional, in NoteTerms field order."""
    return (
        1.0,
        float(p["strike"]),
        float(p["autocallBarrier"]),
        float(p["coupon"]),
        float(p["couponBarrier"]),
        float(p["protectionBarrier"]),
        1.0 if p["memory"] else 0.0,
    )


Cols = tuple[int, ...]  # a note's observation dates, as columns of the plan's "observationDates"
Terms = tuple[float, ...]  # a note's terms on a unit notional (`_unit_terms`): the notes priced once
FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class NoteSums:
    """One note's sums over each block's pairs, on a unit notional: of y (nb,), y^2 (nb,) and y c (nb, d)."""

    sum_y: FloatArray
    sum_yy: FloatArray
    sum_yc: FloatArray


@dataclass(frozen=True)
class ControlSums:
    """The sums over each block's pairs of the controls of the notes on the same dates: of c (nb, d), c c^T
    (nb, d, d)."""

    sum_c: FloatArray
    sum_cc: FloatArray


@dataclass
class ChunkSums:
    """What `price_chunk` hands `shard_result` for one chunk of a shard: an in-process value (pickled from a worker
    process to the parent), never stored."""

    shard: int
    chunk: int
    blocks: range
    notes: dict[tuple[Cols, Terms], NoteSums] = field(default_factory=dict)
    controls: dict[Cols, ControlSums] = field(default_factory=dict)


def price_chunk(plan: Doc, shard: int, positions: Sequence[Doc], chunk: int) -> ChunkSums:
    """Per-block sums over one chunk of blocks for the priced positions of one shard (the unit of local work).

    For each distinct note (terms and dates) on a unit notional: sums of y (pair-mean PV minus a shift), y^2 and
    y*c, where c are the controls: the pair-mean discounted spot at each of the note's dates minus its known
    expectation, at the dates where a sample of the plan's paths can measure it (`control_variates.measurable`).
    For each group of positions sharing dates: sums of c and c c^T. All per block, so folding them is independent
    of how blocks are chunked.
    """
    sim = plan["simulation"]
    layout = SamplingLayout.from_doc(sim)
    blocks = layout.chunk_blocks(chunk)
    positions = [p for p in positions if p["error"] is None]
    part = ChunkSums(shard, chunk, blocks)
    if not positions:
        return part
    market = plan["market"]
    rate, dividend, spot = float(market["rate"]), float(market["dividendYield"]), float(market["spot"])
    grid = _grid(plan)
    half = layout.pairs_per_block
    nb = len(blocks)
    params = HestonParams(**plan["model"]["heston"])
    spots = simulate_qe_blocks(params, spot, rate, dividend, grid, int(sim["seed"]), blocks, half)
    times = np.array(plan["observationTimes"])
    controllable = measurable(params, times, layout.paths)
    column = {d: j for j, d in enumerate(plan["observationDates"])}
    groups: dict[Cols, list[Doc]] = {}
    for p in positions:
        groups.setdefault(tuple(column[d] for d in p["observationDates"]), []).append(p)
    for cols, members in groups.items():
        t = times[list(cols)]
        discount = np.exp(-rate * t)
        group_spots = np.ascontiguousarray(spots[:, cols])
        controlled = controllable[list(cols)]
        disc_spots = (group_spots[:, controlled] * discount[controlled]).reshape(2, nb, half, -1)
        expected = spot * np.exp(-dividend * t[controlled])
        controls = np.ascontiguousarray(0.5 * (disc_spots[0] + disc_spots[1]) - expected)
        part.controls[cols] = ControlSums(controls.sum(axis=1), np.einsum("bhu,bhv->buv", controls, controls))
        # Notes with the same terms have the same payoff per unit of notional: each term set is priced once, on a
        # unit notional; shard_result scales its estimates by each position's notional.
        keys = list(dict.fromkeys(_unit_terms(p) for p in members))
        for start in range(0, len(keys), NOTE_BATCH):
            batch = keys[start : start + NOTE_BATCH]
            terms = NoteTerms(*(np.array(col, dtype=float) for col in zip(*batch, strict=True)))
            pv = discounted_payoffs(group_spots, terms, discount).reshape(2, nb, half, len(batch))
            pairs = 0.5 * (pv[0] + pv[1]) - discount[-1]  # (nb, half, notes): PV less the riskless floor
            y = np.ascontiguousarray(np.moveaxis(pairs, 2, 0))  # (notes, nb, half)
            for i, key in enumerate(batch):
                part.notes[cols, key] = NoteSums(
                    y[i].sum(axis=1), (y[i] * y[i]).sum(axis=1), np.einsum("bh,bhu->bu", y[i], controls)
                )
    return part


def shard_result(plan: Doc, shard: int, positions: Sequence[Doc], parts: Sequence[ChunkSums]) -> Doc:
    """Fold a shard's chunk parts into control-variate PVs and standard errors, and the shard's exact per-block
    totals (the portfolio's standard error comes from the blocks, see the module docstring).

    With N pairs, y the shifted pair PVs and c the controls (mean zero by construction), the estimate is
    `batchpipe.pricing.control_variates.estimate` of the sums: mean(y) - beta . mean(c), or the plain mean(y).
    Each note is estimated once per unit of notional (every figure is linear in the notional) and scaled.
    """
    layout = SamplingLayout.from_doc(plan["simulation"])
    ordered = sorted(parts, key=lambda part: part.chunk)
    if [part.chunk for part in ordered] != list(range(layout.chunks)):
        raise ValueError(f"shard {shard}: expected chunks 0..{layout.chunks - 1}")
    rate = float(plan["market"]["rate"])
    times = dict(zip(plan["observationDates"], plan["observationTimes"], strict=True))
    column = {d: j for j, d in enumerate(plan["observationDates"])}
    half = layout.pairs_per_block
    n = layout.blocks * half

    def blocks_of(get: Callable[[ChunkSums], FloatArray]) -> FloatArray:
        """Per-block sums of every chunk, in block order: the same array however the blocks were chunked, so
        reducing it gives the same rounding too."""
        return np.concatenate([get(part) for part in ordered], axis=0)

    controls: dict[Cols, tuple[FloatArray, FloatArray, FloatArray]] = {}
    units: dict[tuple[Cols, Terms], tuple[float, float | None, FloatArray]] = {}

    def unit_estimate(cols: Cols, p: Doc) -> tuple[float, float | None, FloatArray]:
        """PV, standard error and block means of one unit of a note."""
        key = (cols, _unit_terms(p))
        if key in units:
            return units[key]
        y_sum = blocks_of(lambda part: part.notes[key].sum_y)  # (G,)
        y_sumsq = blocks_of(lambda part: part.notes[key].sum_yy)
        yc = blocks_of(lambda part: part.notes[key].sum_yc)  # (G, d)
        if cols not in controls:  # shared by every note observed on the same dates
            c_blocks = blocks_of(lambda part: part.controls[cols].sum_c)  # (G, d)
            cc = blocks_of(lambda part: part.controls[cols].sum_cc)  # (G, d, d)
            controls[cols] = (c_blocks, c_blocks.sum(axis=0), cc.sum(axis=0))
        c_sum, sc, scc = controls[cols]
        sy, syy = float(y_sum.sum()), float(y_sumsq.sum())
        syc = yc.sum(axis=0)
        shift = math.exp(-rate * times[p["observationDates"][-1]])
        cv = estimate(n, sy, syy, syc, sc, scc)
        units[key] = (shift + cv.mean - cv.correction, cv.stderr, shift + y_sum / half - (c_sum / half) @ cv.beta)
        return units[key]

    block_means: list[NDArray[np.float64]] = []
    out = []
    for p in positions:
        entry: Doc = {"index": p["index"], "pv": None, "stderr": None, "error": p["error"]}
        out.append(entry)
        if p["error"] is not None:
            continue
        pv, stderr, means = unit_estimate(tuple(column[d] for d in p["observationDates"]), p)
        if not (math.isfinite(pv) and np.all(np.isfinite(means))):  # never a NaN in a result: an error instead
            entry["error"] = "the Monte Carlo estimate is not finite (the simulated paths overflowed)"
            continue
        notional = float(p["notional"])
        entry["pv"] = notional * pv
        entry["stderr"] = None if stderr is None or not math.isfinite(stderr) else notional * stderr
        block_means.append(notional * means)
    totals = None
    if block_means:
        sums = ExactSums(layout.blocks)
        sums.add_rows(np.array(block_means))
        totals = sums.parts()
    return {
        "jobName": plan["jobName"],
        "shard": shard,
        "planHash": plan["planHash"],
        "positions": out,
        "blockTotals": totals,  # per block, floats whose exact sum is the shard's total of the block means
    }


def price_shard(plan: Doc, shard: int, positions: Sequence[Doc]) -> Doc:
    """A whole shard in one process: what an AWS Batch array child runs."""
    chunks = SamplingLayout.from_doc(plan["simulation"]).chunks
    return shard_result(plan, shard, positions, [price_chunk(plan, shard, positions, c) for c in range(chunks)])


def failed_shard(plan: Doc, shard: int, positions: Sequence[Doc], message: str) -> Doc:
    """The result of a shard that could not run: every position in it carries the error."""
    return {
        "jobName": plan["jobName"],
        "shard": shard,
        "planHash": plan["planHash"],
        "positions": [
            {"index": p["index"], "pv": None, "stderr": None, "error": p["error"] or message} for p in positions
        ],
        "blockTotals": None,
    }


FAILED_SAMPLE = 100
RESULT_FIELDS = ("index", "id", "notional", "strike", "autocallBarrier", "pv", "stderr", "error")


class Collation:
    """Collate, one shard at a time: `add` returns the shard's result rows, `summary` the rest of the results
    document. Nothing grows with the number of positions but the PV-by-strike table; every sum is exact, so the
    document does not depend on how positions were sharded."""

    def __init__(self, plan: Doc) -> None:
        self.plan = plan
        self.blocks = ExactSums(int(plan["simulation"]["blocks"]))
        self.total = ExactSums(1)
        self.by_strike: dict[str, ExactSums] = {}
        self.count = self.priced = 0
        self.failed: list[int] = []  # the first FAILED_SAMPLE failed positions' indices
        self.any_totals = False

    def add(self, shard: int, positions: Sequence[Doc], result: Doc | None) -> list[Doc]:
        if result is None:
            result = failed_shard(self.plan, shard, positions, f"shard {shard} produced no result")
        elif not _fits(self.plan, shard, positions, result):
            message = f"shard {shard}: its stored result does not match the plan (stale or corrupt)"
            result = failed_shard(self.plan, shard, positions, message)
        rows = []
        for pos, res in zip(positions, result["positions"], strict=True):
            row = {k: pos[k] for k in RESULT_FIELDS[:5]} | {k: res[k] for k in RESULT_FIELDS[5:]}
            rows.append(row)
            if res["error"] is not None and len(self.failed) < FAILED_SAMPLE:
                self.failed.append(pos["index"])
            if res["error"] is None:
                self.priced += 1
                self.total.add(0, res["pv"])
                self.by_strike.setdefault(_strike_key(pos["strike"]), ExactSums(1)).add(0, res["pv"])
        self.count += len(rows)
        if result.get("blockTotals"):
            self.blocks.add_parts(result["blockTotals"])
            self.any_totals = True
        return rows

    def summary(self) -> Doc:
        """The results document without its "positions" rows."""
        total_stderr: float | None = None
        block_totals = np.array(self.blocks.values())
        if self.any_totals and block_totals.size > 1:
            spread = block_totals - block_totals[0]  # exact zeros when every block agrees (a riskless portfolio)
            total_stderr = float(np.std(spread, ddof=1) / math.sqrt(block_totals.size))
        if not self.priced:
            status = "FAILED"
        elif self.priced < self.count:
            status = "PARTIAL"
        else:
            status = "SUCCEEDED"
        sim = self.plan["simulation"]
        strikes = sorted(self.by_strike.items(), key=lambda kv: float(kv[0]))
        return {
            "jobName": self.plan["jobName"],
            "status": status,
            "positionCount": self.count,
            "failedCount": self.count - self.priced,
            "failedPositions": self.failed,  # the first 100 indices
            "aggregation": {k: v.values()[0] for k, v in strikes},
            "totalPv": self.total.values()[0] if self.priced else None,
            "totalStderr": total_stderr,
            "model": self.plan["model"],
            "simulation": {
                "paths": sim["paths"],
                "pathsRequested": sim.get("pathsRequested", sim["paths"]),
                "seed": sim["seed"],
                "stepsPerYear": sim["stepsPerYear"],
                "stepsPerYearUsed": sim.get("stepsPerYearUsed", sim["stepsPerYear"]),
            },
        }


def csv_row(row: Doc) -> list[Any]:
    return ["" if row[k] is None else row[k] for k in RESULT_FIELDS]


def calibration_gate(builder: PlanBuilder, max_rmse: float | None, warn: Any) -> None:
    """Say what the calibration's quality warnings are, and refuse (InputError) a fit worse than `max_rmse` vol
    points, before anything is written."""
    model = builder.model
    for message in model.get("calibrationWarnings") or []:
        warn(f"calibration: {message}")
    rmse = model.get("calibrationRmse")
    if max_rmse is None or not model["calibrated"]:  # given parameters: nothing was fitted
        return
    if rmse is None or 100 * float(rmse) > max_rmse:
        shown = "cannot be measured" if rmse is None else f"is {100 * float(rmse):.2f} vol points"
        raise InputError(
            f"{builder.portfolio.source}: market.volSurface: the calibration's implied-vol RMSE {shown}, above "
            f"--max-calibration-rmse {max_rmse:g}"
        )
