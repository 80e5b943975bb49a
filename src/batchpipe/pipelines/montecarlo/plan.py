"""Preprocess for the Monte Carlo pipeline: calibrate once, lay out the shards and the path blocks (the plan), and
resolve every position's terms and dates.

`PlanBuilder` streams: it resolves the positions one at a time and encodes each as one line of positions.jsonl
(`stored_positions`, `position_line`), noting where each shard's lines start; then `finished_plan` is plan.json,
whose "planHash" (`plan_hash`) covers the plan and those exact bytes; `streaming` writes both to the run's store.
A shard prices a range of positions (`shard_range`) on paths laid out by `SamplingLayout`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date

import numpy as np
from pydantic import ValidationError

from batchpipe.errors import InputError
from batchpipe.pipelines.montecarlo.documents import (
    GreekBumps,
    HestonTerms,
    MarketTerms,
    ModelInfo,
    Plan,
    PlanBody,
    ResolvedPosition,
    Sampling,
    ScenarioGrid,
)
from batchpipe.pipelines.portfolio import (
    GreeksSection,
    Portfolio,
    Position,
    ScenariosSection,
    parse_scenarios_option,
)
from batchpipe.pricing.calendar import annual_schedule, year_fraction
from batchpipe.pricing.calibration import UnfittableSurface, VolQuotes, calibrate
from batchpipe.pricing.greeks import VOL_POINT, rate_shift_problem, vol_shift_problem
from batchpipe.pricing.heston import HestonParams
from batchpipe.pricing.paths import steps_per_year_needed

PLAN_VERSION = 2  # 2: kappa-aware grid, guarded control variates (results of version 1 are never resumed)
MAX_BLOCKS = 64
CHUNK_PATHS = 16_384  # paths simulated together: arrays stay cache-sized
DEFAULT_POSITIONS_PER_JOB = 256
MAX_ARRAY_SIZE = 10_000  # AWS Batch's limit on array children


@dataclass(frozen=True)
class SamplingLayout:
    """How a plan's paths are simulated: `blocks` of antithetic pairs, each from its own random stream, grouped
    `blocks_per_chunk` at a time into chunks (the unit of work)."""

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
    def of(cls, sampling: Sampling) -> SamplingLayout:
        return cls(sampling.blocks, sampling.pairs_per_block, sampling.blocks_per_chunk)


@dataclass(frozen=True)
class RiskOptions:
    """The command line's greeks and scenarios: `greeks` (--greeks), the bumps (--spot-bump, --vol-bump,
    --rate-bump; None: the file's, else the defaults) and --scenarios' text (None: the file's, if any)."""

    greeks: bool = False
    spot_bump: float | None = None
    vol_bump: float | None = None
    rate_bump: float | None = None
    scenarios: str | None = None


@dataclass(frozen=True)
class RiskRequest:
    """A run's greeks and scenarios, the file's with the command line's over them, and what to call each setting
    in an error: the option ("--vol-bump") or the file's field ("FILE: greeks.volBump")."""

    greeks: GreeksSection | None
    scenarios: ScenariosSection | None
    names: dict[str, str]


_BUMP_OPTIONS = {"spot_bump": ("--spot-bump", "spotBump"), "vol_bump": ("--vol-bump", "volBump"),
                 "rate_bump": ("--rate-bump", "rateBump")}  # fmt: skip


def risk_request(portfolio: Portfolio, options: RiskOptions | None = None) -> RiskRequest:
    """The run's greeks and scenarios (InputError, one line naming the option or field, for a bad value)."""
    options = options or RiskOptions()
    source = portfolio.source
    file_greeks, file_scenarios = portfolio.settings.greeks, portfolio.settings.scenarios
    given = {name: getattr(options, name) for name in _BUMP_OPTIONS if getattr(options, name) is not None}
    names = {name: f"{source}: greeks.{field}" for name, (_, field) in _BUMP_OPTIONS.items()}
    names |= {name: _BUMP_OPTIONS[name][0] for name in given}
    greeks = file_greeks
    if given and not (options.greeks or file_greeks is not None):
        option = _BUMP_OPTIONS[next(iter(given))][0]
        raise InputError(f'{option} applies with --greeks (or a "greeks" block in the portfolio file)')
    if options.greeks or given:
        base = file_greeks.model_dump() if file_greeks is not None else {}
        try:
            greeks = GreeksSection.model_validate(base | given)
        except ValidationError as exc:
            error = exc.errors(include_url=False)[0]
            option = _BUMP_OPTIONS[str(error["loc"][0])][0]
            raise InputError(f"{option} {error['input']!r}: {error['msg']}") from None
    scenarios = file_scenarios
    names["scenarios"] = f"{source}: scenarios.vol"
    if options.scenarios is not None:
        try:
            scenarios = parse_scenarios_option(options.scenarios)
        except ValueError as exc:
            raise InputError(f"--scenarios {options.scenarios!r}: {exc}") from None
        names["scenarios"] = "--scenarios"
    return RiskRequest(greeks, scenarios, names)


def _checked_risk(
    request: RiskRequest, params: HestonParams, rate: float
) -> tuple[GreekBumps | None, ScenarioGrid | None]:
    """The plan's greeks and scenarios, refused (InputError naming the option or field) where the model cannot take
    a bump: a square root of v0 or theta turned negative, a parameter or the rate outside the accepted domain."""
    greeks = scenarios = None
    names = request.names
    if request.greeks is not None:
        g = request.greeks
        for shift in (g.vol_bump, -g.vol_bump):
            if (problem := vol_shift_problem(params, shift)) is not None:
                raise InputError(f"{names['vol_bump']} {g.vol_bump:g}: {problem}")
        if (problem := rate_shift_problem(rate, g.rate_bump)) is not None:
            raise InputError(f"{names['rate_bump']} {g.rate_bump:g}: {problem}")
        greeks = GreekBumps(spot_bump=g.spot_bump, vol_bump=g.vol_bump, rate_bump=g.rate_bump)
    if request.scenarios is not None:
        sc = request.scenarios
        for shift in sc.vol:
            if (problem := vol_shift_problem(params, VOL_POINT * shift)) is not None:
                raise InputError(f"{names['scenarios']}: vol shift {shift:g}: {problem}")
        scenarios = ScenarioGrid(spot_shifts=list(sc.spot), vol_shifts=list(sc.vol))
    return greeks, scenarios


def _resolve_position(
    portfolio: Portfolio, index: int, pos: Position, schedules: dict[int, list[str]]
) -> ResolvedPosition:
    prod = portfolio.product
    if pos.observation_dates is not None:  # checked when the file was read: increasing, after the valuation date
        dates = [d.isoformat() for d in pos.observation_dates]
    else:
        years = pos.maturity_years if pos.maturity_years is not None else prod.maturity_years
        if years not in schedules:
            schedules[years] = [d.isoformat() for d in annual_schedule(portfolio.valuation_date, years)]
        dates = schedules[years]
    return ResolvedPosition(
        index=index,
        id=pos.id,
        notional=pos.notional,
        strike=pos.strike,
        autocall_barrier=pos.autocall_barrier,
        coupon=pos.coupon if pos.coupon is not None else prod.coupon,
        coupon_barrier=pos.coupon_barrier if pos.coupon_barrier is not None else prod.coupon_barrier,
        protection_barrier=pos.protection_barrier if pos.protection_barrier is not None else prod.protection_barrier,
        memory=pos.memory if pos.memory is not None else prod.memory,
        observation_dates=dates,
        error=None,
    )


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
    consumed; `stored_positions()` gives the positions as stored, and then `finished_plan()` is the plan to store.
    """

    def __init__(
        self,
        portfolio: Portfolio,
        job_name: str,
        positions_per_job: int | None = None,
        paths: int | None = None,
        seed: int | None = None,
        risk: RiskOptions | None = None,
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
        request = risk_request(portfolio, risk)  # the options' own checks, before calibrating
        params, rmse, warnings = _calibrate(portfolio)
        market = portfolio.market
        self.risk = request
        self.greeks, self.scenarios = _checked_risk(request, params, market.rate)
        self.portfolio = portfolio
        self._dates: set[str] = set()
        self._stored: tuple[list[int], str] | None = None  # the shards' byte offsets, the positions' sha256
        self.job_name = job_name
        self.market = MarketTerms(
            spot=market.spot, rate=market.rate, dividend_yield=market.dividend_yield, day_count=market.day_count
        )
        self.model = ModelInfo(
            heston=HestonTerms.of(params),
            calibrated=market.heston is None,
            calibration_rmse=rmse,
            calibration_warnings=warnings,
        )
        self.sampling = Sampling(
            paths=layout.paths,
            paths_requested=paths if paths is not None else sim.paths,
            seed=seed if seed is not None else sim.seed,
            steps_per_year=sim.steps_per_year,
            steps_per_year_used=steps_per_year_needed(sim.steps_per_year, params.kappa),
            blocks=layout.blocks,
            pairs_per_block=layout.pairs_per_block,
            blocks_per_chunk=layout.blocks_per_chunk,
            chunks=layout.chunks,
        )
        self.positions_per_job_requested = requested
        self.positions_per_job = per_job

    def positions(self) -> Iterator[ResolvedPosition]:
        """Every position resolved, in order; each priced position's dates join the plan's."""
        schedules: dict[int, list[str]] = {}
        for i, pos in enumerate(self.portfolio.positions()):
            resolved = _resolve_position(self.portfolio, i, pos, schedules)
            if resolved.error is None:
                self._dates.update(resolved.observation_dates)
            yield resolved

    def stored_positions(self) -> Iterator[bytes]:
        """Every position resolved and encoded as stored (`position_line`), in order; once consumed, the byte
        offset where each shard's lines start and the fingerprint of those bytes are known (`finished_plan`)."""
        digest = hashlib.sha256()
        offsets = [0]
        size = 0
        per_job = self.positions_per_job
        for i, position in enumerate(self.positions()):
            if i and i % per_job == 0:
                offsets.append(size)
            line = position_line(position).encode()
            digest.update(line)
            size += len(line)
            yield line
        offsets.append(size)
        self._stored = (offsets, digest.hexdigest())

    def finished_plan(self) -> Plan:
        """The plan as stored: with where each shard's lines start in positions.jsonl (and its end) and its hash;
        only once `stored_positions()` has been consumed."""
        if self._stored is None:
            raise RuntimeError("the positions have not been stored yet: consume stored_positions() first")
        offsets, digest = self._stored
        body = self.plan()
        return Plan(**dict(body), shard_offsets=offsets, plan_hash=plan_hash(body, digest))

    def plan(self) -> PlanBody:
        """The plan without where the shards' lines start and its hash (`finished_plan` adds them)."""
        vd = self.portfolio.valuation_date
        all_dates = sorted(self._dates)
        day_count = self.portfolio.market.day_count
        n = len(self.portfolio)
        return PlanBody(
            version=PLAN_VERSION,
            pipeline="montecarlo",
            job_name=self.job_name,
            portfolio_name=self.portfolio.name,
            valuation_date=vd.isoformat(),
            market=self.market,
            model=self.model,
            simulation=self.sampling,
            position_count=n,
            positions_per_job_requested=self.positions_per_job_requested,
            positions_per_job=self.positions_per_job,
            shards=-(-n // self.positions_per_job),
            observation_dates=all_dates,
            observation_times=[year_fraction(vd, date.fromisoformat(d), day_count) for d in all_dates],
            greeks=self.greeks,
            scenarios=self.scenarios,
        )


def calibration_gate(builder: PlanBuilder, max_rmse: float | None, warn: Callable[[str], object]) -> None:
    """Say what the calibration's quality warnings are, and refuse (InputError) a fit worse than `max_rmse` vol
    points, before anything is written."""
    model = builder.model
    for message in model.calibration_warnings:
        warn(f"calibration: {message}")
    rmse = model.calibration_rmse
    if max_rmse is None or not model.calibrated:  # given parameters: nothing was fitted
        return
    if rmse is None or 100 * rmse > max_rmse:
        shown = "cannot be measured" if rmse is None else f"is {100 * rmse:.2f} vol points"
        raise InputError(
            f"{builder.portfolio.source}: market.volSurface: the calibration's implied-vol RMSE {shown}, above "
            f"--max-calibration-rmse {max_rmse:g}"
        )


def position_line(position: ResolvedPosition) -> str:
    """A resolved position as stored: one JSON line (the plan's hash covers these exact bytes)."""
    return json.dumps(position.stored(), separators=(",", ":"), allow_nan=False) + "\n"


def plan_hash(plan: PlanBody, positions: bytes | str) -> str:
    """A fingerprint of everything a shard's result depends on: the plan (less its storage offsets) and the
    positions' stored text (or its sha256 hex digest). Computed once, when the plan is written."""
    digest = positions if isinstance(positions, str) else hashlib.sha256(positions).hexdigest()
    content = plan.model_dump(by_alias=True, exclude={"plan_hash", "shard_offsets"}) | {"positions": digest}
    return hashlib.sha256(json.dumps(content, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:24]


def shard_range(plan: PlanBody, shard: int) -> range:
    """The indices of the positions one shard prices."""
    if not 0 <= shard < plan.shards:
        raise ValueError(f"shard {shard} out of range: the plan has {plan.shards} shards")
    per_job = plan.positions_per_job
    return range(shard * per_job, min(plan.position_count, (shard + 1) * per_job))
