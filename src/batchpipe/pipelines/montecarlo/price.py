"""Pricing for the Monte Carlo pipeline: simulate one chunk of path blocks and sum every note's payoffs over it
(`price_chunk`, the unit of local work), fold a shard's chunks into PVs (control-variate estimates,
`batchpipe.pricing.control_variates`), standard errors and exact block totals (`shard_result`), and tell whether a
stored shard result is this plan's and whole (`is_complete`).

Sampling scheme: every position is priced on the same paths (one underlying), so the portfolio is simulated once
per shard rather than once per position. The paths come in `blocks` (64 unless there are fewer than 128 paths) of
antithetic pairs, each block from its own random stream; blocks are grouped into fixed `chunks`, the unit of work.
Per-position PVs and standard errors use the pairs as independent samples. Because positions share paths, their
errors are correlated: the portfolio's standard error uses the blocks as batch means (the spread of the 64 block
totals), which accounts for every covariance without moving per-path data between shards. A shard's block totals
are exact sums (`batchpipe.pricing.exactsum`), so the portfolio's do not depend on how positions were sharded.

Greeks and scenarios (`plan.greeks`, `plan.scenarios`) are priced in the same chunks, on the same random numbers
(`batchpipe.pricing.greeks`): each greek is, path pair by path pair, the finite difference of the bumped payoffs,
and each scenario the payoff in the shocked market; both are estimated exactly as the PV is (the control-variate
estimate with the same controls, today's discounted spots, whose mean is known), so they are unbiased, their
standard errors come from the same pairs and their per-block totals from the same blocks.

A chunk's sums (`ChunkSums`) stay in memory: the local engine prices a shard's chunks in worker processes and folds
them in the parent; an AWS Batch array child prices a whole shard (`price_shard`). Only shard results are stored.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from batchpipe.pipelines.montecarlo.documents import (
    Greeks,
    Parts,
    Plan,
    PositionResult,
    ResolvedPosition,
    ShardResult,
)
from batchpipe.pipelines.montecarlo.plan import SamplingLayout
from batchpipe.pricing.autocallable import NoteTerms, discounted_payoffs
from batchpipe.pricing.control_variates import estimate, measurable
from batchpipe.pricing.exactsum import ExactSums
from batchpipe.pricing.greeks import BASIS_POINT, GREEKS, VOL_POINT, vol_shifted
from batchpipe.pricing.heston import HestonParams
from batchpipe.pricing.paths import TimeGrid, build_grid, simulate_qe_blocks_many

NOTE_BATCH = 64  # notes whose payoffs are computed together

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
    greeks: dict[tuple[Cols, Terms], dict[str, NoteSums]] = field(default_factory=dict)  # the differences' sums
    scenarios: dict[tuple[Cols, Terms], list[NoteSums]] = field(default_factory=dict)  # per scenario


def strike_key(strike: float) -> str:
    """How a strike names its row of the by-strike sums."""
    return str(int(strike)) if float(strike).is_integer() else repr(float(strike))


def _sums(y: FloatArray, controls: FloatArray) -> NoteSums:
    """One note's per-block sums of y (nb, half), y^2 and y c."""
    return NoteSums(y.sum(axis=1), (y * y).sum(axis=1), np.einsum("bh,bhu->bu", y, controls))


def _market_params(plan: Plan) -> list[HestonParams]:
    """Today's model first, then each other model a greek or scenario needs (once each): the vol bumps' and the
    scenarios' vol shifts."""
    base = plan.model.heston.params()
    shifts = []
    if plan.greeks is not None:
        shifts += [plan.greeks.vol_bump, -plan.greeks.vol_bump]
    if plan.scenarios is not None:
        shifts += [VOL_POINT * v for v in plan.scenarios.vol_shifts]
    return list(dict.fromkeys([base, *(vol_shifted(base, shift) for shift in shifts)]))


def _grid(plan: Plan) -> TimeGrid:
    kappa = plan.model.heston.kappa
    return build_grid(np.array(plan.observation_times), plan.simulation.steps_per_year, kappa=kappa)


Unit = tuple[float, float | None, FloatArray]  # a unit of a note: estimate, standard error, block means


@dataclass(frozen=True)
class UnitRisk:
    """One unit of a note, folded: its PV and, when the plan asks, its greeks and scenario PVs."""

    pv: Unit
    greeks: dict[str, Unit] | None
    scenarios: list[Unit] | None


def _unit_terms(p: ResolvedPosition) -> Terms:
    """A note's terms on a unit notional, in NoteTerms field order."""
    return (1.0, p.strike, p.autocall_barrier, p.coupon, p.coupon_barrier, p.protection_barrier, float(p.memory))


def price_chunk(plan: Plan, shard: int, positions: Sequence[ResolvedPosition], chunk: int) -> ChunkSums:
    """Per-block sums over one chunk of blocks for the priced positions of one shard (the unit of local work).

    For each distinct note (terms and dates) on a unit notional: sums of y (pair-mean PV minus a shift), y^2 and
    y*c, where c are the controls: the pair-mean discounted spot at each of the note's dates minus its known
    expectation, at the dates where a sample of the plan's paths can measure it (`control_variates.measurable`).
    For each group of positions sharing dates: sums of c and c c^T. All per block, so folding them is independent
    of how blocks are chunked.
    """
    layout = SamplingLayout.of(plan.simulation)
    blocks = layout.chunk_blocks(chunk)
    positions = [p for p in positions if p.error is None]
    part = ChunkSums(shard, chunk, blocks)
    if not positions:
        return part
    market = plan.market
    rate, dividend, spot = market.rate, market.dividend_yield, market.spot
    grid = _grid(plan)
    half = layout.pairs_per_block
    nb = len(blocks)
    models = _market_params(plan)
    params = models[0]
    # today's paths and every vol-bumped model's, from the same normals (drawn once)
    simulated = simulate_qe_blocks_many(models, spot, rate, dividend, grid, plan.simulation.seed, blocks, half)
    paths_of = dict(zip(models, simulated, strict=True))
    spots = simulated[0]
    times = np.array(plan.observation_times)
    controllable = measurable(params, times, layout.paths)
    column = {d: j for j, d in enumerate(plan.observation_dates)}
    groups: dict[Cols, list[ResolvedPosition]] = {}
    for p in positions:
        groups.setdefault(tuple(column[d] for d in p.observation_dates), []).append(p)
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

            def pair_pvs(s: FloatArray, d: FloatArray, terms: NoteTerms = terms, k: int = len(batch)) -> FloatArray:
                """Every note's pair-mean PV on the paths s with discount factors d: (notes, nb, half)."""
                v = discounted_payoffs(np.ascontiguousarray(s), terms, d).reshape(2, nb, half, k)
                return np.ascontiguousarray(np.moveaxis(0.5 * (v[0] + v[1]), 2, 0))

            if plan.greeks is not None:
                bumps = plan.greeks
                h, db = bumps.spot_bump, bumps.rate_bump
                base = np.ascontiguousarray(np.moveaxis(0.5 * (pv[0] + pv[1]), 2, 0))
                up = pair_pvs(group_spots * (1.0 + h), discount)
                down = pair_pvs(group_spots * (1.0 - h), discount)
                growth = np.exp(db * t)  # S_t moves with exp(dr t), the discount factors with exp(-dr t)
                rate_up = pair_pvs(group_spots * growth, np.exp(-(rate + db) * t))
                rate_down = pair_pvs(group_spots / growth, np.exp(-(rate - db) * t))
                vol_up = pair_pvs(paths_of[vol_shifted(params, bumps.vol_bump)][:, cols], discount)
                vol_down = pair_pvs(paths_of[vol_shifted(params, -bumps.vol_bump)][:, cols], discount)
                differences = {
                    "delta": (up - down) / (2.0 * h * spot),
                    "gamma": (up - 2.0 * base + down) / (h * spot) ** 2,
                    "vega": (vol_up - vol_down) * (VOL_POINT / (2.0 * bumps.vol_bump)),
                    "rho": (rate_up - rate_down) * (BASIS_POINT / (2.0 * db)),
                }
                for i, key in enumerate(batch):
                    part.greeks[cols, key] = {g: _sums(differences[g][i], controls) for g in GREEKS}
            if plan.scenarios is not None:
                ladder = plan.scenarios
                for key in batch:
                    part.scenarios[cols, key] = []
                # each vol shift's paths on this group's dates, taken once for every spot shift
                shocked = [paths_of[vol_shifted(params, VOL_POINT * v)][:, cols] for v in ladder.vol_shifts]
                for spot_shift in ladder.spot_shifts:  # scenario index: spot-major, vol shifts within
                    for vol_paths in shocked:
                        ys = pair_pvs(vol_paths * (1.0 + spot_shift), discount) - discount[-1]
                        for i, key in enumerate(batch):  # summed at once: one scenario's payoffs at a time
                            part.scenarios[cols, key].append(_sums(ys[i], controls))
    return part


def shard_result(
    plan: Plan, shard: int, positions: Sequence[ResolvedPosition], parts: Sequence[ChunkSums]
) -> ShardResult:
    """Fold a shard's chunk parts into control-variate PVs and standard errors, and the shard's exact per-block
    totals (the portfolio's standard error comes from the blocks, see the module docstring).

    With N pairs, y the shifted pair PVs and c the controls (mean zero by construction), the estimate is
    `batchpipe.pricing.control_variates.estimate` of the sums: mean(y) - beta . mean(c), or the plain mean(y).
    Each note is estimated once per unit of notional (every figure is linear in the notional) and scaled.
    """
    layout = SamplingLayout.of(plan.simulation)
    ordered = sorted(parts, key=lambda part: part.chunk)
    if [part.chunk for part in ordered] != list(range(layout.chunks)):
        raise ValueError(f"shard {shard}: expected chunks 0..{layout.chunks - 1}")
    rate = plan.market.rate
    times = dict(zip(plan.observation_dates, plan.observation_times, strict=True))
    column = {d: j for j, d in enumerate(plan.observation_dates)}
    half = layout.pairs_per_block
    n = layout.blocks * half

    def blocks_of(get: Callable[[ChunkSums], FloatArray]) -> FloatArray:
        """Per-block sums of every chunk, in block order: the same array however the blocks were chunked, so
        reducing it gives the same rounding too."""
        return np.concatenate([get(part) for part in ordered], axis=0)

    controls: dict[Cols, tuple[FloatArray, FloatArray, FloatArray]] = {}

    def fold(cols: Cols, get: Callable[[ChunkSums], NoteSums], shift: float) -> Unit:
        """The control-variate estimate of shift + E[y] from the chunks' sums of y (`get`), with the controls of
        the notes on `cols`: its value, standard error and block means."""
        y_sum = blocks_of(lambda part: get(part).sum_y)  # (G,)
        y_sumsq = blocks_of(lambda part: get(part).sum_yy)
        yc = blocks_of(lambda part: get(part).sum_yc)  # (G, d)
        if cols not in controls:  # shared by every note observed on the same dates
            c_blocks = blocks_of(lambda part: part.controls[cols].sum_c)  # (G, d)
            cc = blocks_of(lambda part: part.controls[cols].sum_cc)  # (G, d, d)
            controls[cols] = (c_blocks, c_blocks.sum(axis=0), cc.sum(axis=0))
        c_sum, sc, scc = controls[cols]
        sy, syy = float(y_sum.sum()), float(y_sumsq.sum())
        syc = yc.sum(axis=0)
        cv = estimate(n, sy, syy, syc, sc, scc)
        return shift + cv.mean - cv.correction, cv.stderr, shift + y_sum / half - (c_sum / half) @ cv.beta

    units: dict[tuple[Cols, Terms], UnitRisk] = {}

    def unit_estimate(cols: Cols, p: ResolvedPosition) -> UnitRisk:
        """PV, standard error and block means of one unit of a note, and of its greeks and scenario PVs."""
        key = (cols, _unit_terms(p))
        if key in units:
            return units[key]
        shift = math.exp(-rate * times[p.observation_dates[-1]])
        greeks = None
        if plan.greeks is not None:
            greeks = {g: fold(cols, _greek_sums(key, g), 0.0) for g in GREEKS}
        scenarios = None
        if plan.scenarios is not None:
            scenarios = [fold(cols, _scenario_sums(key, k), shift) for k in range(plan.scenarios.count)]
        units[key] = UnitRisk(fold(cols, lambda part: part.notes[key], shift), greeks, scenarios)
        return units[key]

    def finite(unit: Unit) -> bool:
        return math.isfinite(unit[0]) and bool(np.all(np.isfinite(unit[2])))

    def scaled(notional: float, stderr: float | None) -> float | None:
        return None if stderr is None or not math.isfinite(stderr) else notional * stderr

    block_means: list[NDArray[np.float64]] = []
    greek_means: list[NDArray[np.float64]] = []  # per position: (greeks, blocks)
    greek_strikes: list[str] = []
    scenario_means: list[NDArray[np.float64]] = []  # per position: (scenarios, blocks)
    out = []
    for p in positions:
        if p.error is not None:
            out.append(PositionResult(index=p.index, pv=None, stderr=None, error=p.error))
            continue
        risk = unit_estimate(tuple(column[d] for d in p.observation_dates), p)
        pv, stderr, means = risk.pv
        every = [risk.pv, *(risk.greeks or {}).values(), *(risk.scenarios or [])]
        if not all(finite(unit) for unit in every):  # never a NaN in a result: an error instead
            error = "the Monte Carlo estimate is not finite (the simulated paths overflowed)"
            out.append(PositionResult(index=p.index, pv=None, stderr=None, error=error))
            continue
        notional = p.notional
        greeks = greeks_stderr = None
        if risk.greeks is not None:
            greeks = Greeks(**{g: notional * u[0] for g, u in risk.greeks.items()})
            greeks_stderr = Greeks(**{g: scaled(notional, u[1]) for g, u in risk.greeks.items()})
            greek_means.append(notional * np.array([u[2] for u in risk.greeks.values()]))
            greek_strikes.append(strike_key(p.strike))
        scenario_pvs = None
        if risk.scenarios is not None:
            scenario_pvs = [notional * u[0] for u in risk.scenarios]
            scenario_means.append(notional * np.array([u[2] for u in risk.scenarios]))
        out.append(PositionResult(index=p.index, pv=notional * pv, stderr=scaled(notional, stderr), error=None,
                                  greeks=greeks, greeks_stderr=greeks_stderr,
                                  scenario_pvs=scenario_pvs))  # fmt: skip
        block_means.append(notional * means)
    totals = None
    if block_means:
        sums = ExactSums(layout.blocks)
        sums.add_rows(np.array(block_means))
        totals = sums.parts()
    greek_totals = greek_strike_totals = scenario_totals = None
    if plan.greeks is not None and block_means:
        stacked = np.array(greek_means)  # (positions, greeks, blocks)
        greek_totals = {g: _exact_parts(stacked[:, i]) for i, g in enumerate(GREEKS)}
        strikes = np.array(greek_strikes)
        greek_strike_totals = {
            k: {g: _exact_parts(stacked[strikes == k, i]) for i, g in enumerate(GREEKS)}
            for k in dict.fromkeys(greek_strikes)
        }
    if plan.scenarios is not None and block_means:
        ladder = np.array(scenario_means)  # (positions, scenarios, blocks)
        scenario_totals = [_exact_parts(ladder[:, k]) for k in range(plan.scenarios.count)]
    return ShardResult(job_name=plan.job_name, shard=shard, plan_hash=plan.plan_hash, positions=out,
                       block_totals=totals, greek_block_totals=greek_totals,
                       greek_strike_block_totals=greek_strike_totals,
                       scenario_block_totals=scenario_totals)  # fmt: skip


def _greek_sums(key: tuple[Cols, Terms], greek: str) -> Callable[[ChunkSums], NoteSums]:
    return lambda part: part.greeks[key][greek]


def _scenario_sums(key: tuple[Cols, Terms], scenario: int) -> Callable[[ChunkSums], NoteSums]:
    return lambda part: part.scenarios[key][scenario]


def _exact_parts(rows: FloatArray) -> Parts:
    """The exact column sums of (positions, blocks) block means, stored as parts."""
    sums = ExactSums(rows.shape[1])
    sums.add_rows(rows)
    return sums.parts()


def price_shard(plan: Plan, shard: int, positions: Sequence[ResolvedPosition]) -> ShardResult:
    """A whole shard in one process: what an AWS Batch array child runs."""
    chunks = plan.simulation.chunks
    return shard_result(plan, shard, positions, [price_chunk(plan, shard, positions, c) for c in range(chunks)])


def failed_shard(plan: Plan, shard: int, positions: Sequence[ResolvedPosition], message: str) -> ShardResult:
    """The result of a shard that could not run: every position in it carries the error."""
    rows = [PositionResult(index=p.index, pv=None, stderr=None, error=p.error or message) for p in positions]
    return ShardResult(job_name=plan.job_name, shard=shard, plan_hash=plan.plan_hash, positions=rows,
                       block_totals=None)  # fmt: skip


def is_complete(plan: Plan, shard: int, positions: Sequence[ResolvedPosition], result: ShardResult | None) -> bool:
    """Whether a stored shard result is this plan's and finished (a corrupt or failed one must be redone)."""
    return (
        result is not None
        and fits(plan, shard, positions, result)
        and all(g.error == p.error for g, p in zip(result.positions, positions, strict=True))
    )


def fits(plan: Plan, shard: int, positions: Sequence[ResolvedPosition], result: ShardResult) -> bool:
    """Whether a stored result (finished or failed) is this plan's result for this shard, whole."""
    got = result.positions
    if result.plan_hash != plan.plan_hash or result.shard != shard:
        return False
    if len(got) != len(positions) or any(g.index != p.index for g, p in zip(got, positions, strict=True)):
        return False
    priced = [g for g in got if g.error is None]
    totals = result.block_totals
    blocks = plan.simulation.blocks
    whole = all(g.pv is not None for g in priced) and (not priced or (totals is not None and len(totals) == blocks))
    if whole and plan.greeks is not None and priced:
        greek_totals, by_strike = result.greek_block_totals, result.greek_strike_block_totals
        whole = (
            all(g.greeks is not None and g.greeks_stderr is not None for g in priced)
            and greek_totals is not None
            and by_strike is not None
            and set(greek_totals) == set(GREEKS)
            and all(len(parts) == blocks for parts in greek_totals.values())
        )
    if whole and plan.scenarios is not None and priced:
        count = plan.scenarios.count
        ladder = result.scenario_block_totals
        whole = (
            all(g.scenario_pvs is not None and len(g.scenario_pvs) == count for g in priced)
            and ladder is not None
            and len(ladder) == count
            and all(len(parts) == blocks for parts in ladder)
        )
    return whole
