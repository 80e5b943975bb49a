"""The Monte Carlo pipeline's stored documents: the plan (plan.json), a resolved position (a line of
positions.jsonl), a shard's result (shards/shard-NNNNN.json) and the collated results (summary.json; results.json
is the summary and every `ResultRow`)."""

from __future__ import annotations

from typing import Literal

from batchpipe.documents import Document, ShardDocument, added
from batchpipe.pricing.heston import HestonParams


class MarketTerms(Document):
    spot: float
    rate: float
    dividend_yield: float
    day_count: str


class HestonTerms(Document):
    v0: float
    kappa: float
    theta: float
    sigma: float
    rho: float

    @classmethod
    def of(cls, params: HestonParams) -> HestonTerms:
        return cls(**params.as_dict())

    def params(self) -> HestonParams:
        return HestonParams(self.v0, self.kappa, self.theta, self.sigma, self.rho)


class ModelInfo(Document):
    heston: HestonTerms
    calibrated: bool  # False: the file's own parameters
    calibration_rmse: float | None  # None when given, or when the model's prices have no implied vol
    calibration_warnings: list[str]


class SimulationInfo(Document):
    paths: int  # what runs: whole antithetic pairs in equal blocks, at least what was asked
    paths_requested: int
    seed: int
    steps_per_year: int
    steps_per_year_used: float  # the grid's rate: finer than stepsPerYear when mean reversion is fast


class Sampling(SimulationInfo):
    """The plan's simulation: what ran (`SimulationInfo`) and how its paths are laid out (`plan.SamplingLayout`)."""

    blocks: int
    pairs_per_block: int
    blocks_per_chunk: int
    chunks: int

    def info(self) -> SimulationInfo:
        return SimulationInfo.model_validate(self.model_dump(include=set(SimulationInfo.model_fields)))


class GreekBumps(Document):
    """What `--greeks` prices (`batchpipe.pricing.greeks`): the relative spot bump, the vol bump (added to sqrt(v0)
    and sqrt(theta)) and the rate bump."""

    spot_bump: float
    vol_bump: float
    rate_bump: float


class ScenarioGrid(Document):
    """A ladder of market shocks: every spot shift (a fraction of the spot) with every vol shift (vol points)."""

    spot_shifts: list[float]
    vol_shifts: list[float]

    @property
    def count(self) -> int:
        return len(self.spot_shifts) * len(self.vol_shifts)


class Greeks(Document):
    """Delta per unit of spot, gamma per unit of spot squared, vega per vol point, rho per basis point (or their
    standard errors; None where a single sample cannot give one)."""

    delta: float | None
    gamma: float | None
    vega: float | None
    rho: float | None


class ScenarioResults(Document):
    """The ladder's portfolio PVs: `totalPv[i][j]` at spot shift i and vol shift j, with its standard error, and
    the same sums by strike (each position's PVs are in scenarios.csv)."""

    spot_shifts: list[float]
    vol_shifts: list[float]
    total_pv: list[list[float]] | None
    total_stderr: list[list[float]] | None
    by_strike: dict[str, list[list[float]]]


class PlanBody(Document):
    """A plan before its positions are stored: everything but where each shard's lines start and the hash."""

    version: int
    pipeline: Literal["montecarlo"]
    job_name: str
    portfolio_name: str
    valuation_date: str
    market: MarketTerms
    model: ModelInfo
    simulation: Sampling
    position_count: int
    positions_per_job_requested: int
    positions_per_job: int
    shards: int
    observation_dates: list[str]  # every priced position's dates, sorted: the simulated grid's observations
    observation_times: list[float]
    greeks: GreekBumps | None = added()  # --greeks: every shard prices them
    scenarios: ScenarioGrid | None = added()  # --scenarios


class Plan(PlanBody):
    """plan.json: `PlanBody` with "shardOffsets" (where each shard's lines start in positions.jsonl, and its end)
    and "planHash" (`plan.plan_hash`)."""

    shard_offsets: list[int]
    plan_hash: str


class ResolvedPosition(Document):
    """A position with its product's terms filled in and its observation dates resolved."""

    index: int
    id: str | None
    notional: float
    strike: float
    autocall_barrier: float
    coupon: float
    coupon_barrier: float
    protection_barrier: float
    memory: bool
    observation_dates: list[str]
    error: str | None


class PositionResult(Document):
    index: int
    pv: float | None
    stderr: float | None
    error: str | None
    greeks: Greeks | None = added()
    greeks_stderr: Greeks | None = added()
    scenario_pvs: list[float] | None = added()  # spot shift by spot shift, each with every vol shift


Parts = list[list[float]]  # per block, floats whose exact sum is a total of the block means


class ShardResult(ShardDocument):
    positions: list[PositionResult]
    block_totals: Parts | None  # per block, floats whose exact sum is the shard's total of its means
    greek_block_totals: dict[str, Parts] | None = added()  # per greek
    greek_strike_block_totals: dict[str, dict[str, Parts]] | None = added()  # per strike, per greek
    scenario_block_totals: list[Parts] | None = added()  # per scenario, in the order of scenarioPvs


class ResultRow(Document):
    """A position's row of results.json and results.csv (`collate.RESULT_FIELDS`)."""

    index: int
    id: str | None
    notional: float
    strike: float
    autocall_barrier: float
    pv: float | None
    stderr: float | None
    error: str | None
    greeks: Greeks | None = added()
    greeks_stderr: Greeks | None = added()


class ResultSummary(Document):
    """summary.json: the collated results without their rows."""

    job_name: str
    status: Literal["SUCCEEDED", "PARTIAL", "FAILED"]
    position_count: int
    failed_count: int
    failed_positions: list[int]  # the first 100 indices
    aggregation: dict[str, float]  # PV by strike
    total_pv: float | None
    total_stderr: float | None
    greeks_by_strike: dict[str, Greeks] | None = added()
    greeks_by_strike_stderr: dict[str, Greeks] | None = added()
    total_greeks: Greeks | None = added()
    total_greeks_stderr: Greeks | None = added()
    scenarios: ScenarioResults | None = added()
    model: ModelInfo
    simulation: SimulationInfo


class Results(ResultSummary):
    """results.json: the summary and every position's row (a run returns it with only its first rows)."""

    positions: list[ResultRow]
