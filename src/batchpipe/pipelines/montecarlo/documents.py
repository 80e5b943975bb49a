"""The Monte Carlo pipeline's stored documents: the plan (plan.json), a resolved position (a line of
positions.jsonl), a shard's result (shards/shard-NNNNN.json) and the collated results (summary.json; results.json
is the summary and every `ResultRow`)."""

from __future__ import annotations

from typing import Literal

from batchpipe.documents import Document, ShardDocument
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


class ShardResult(ShardDocument):
    positions: list[PositionResult]
    block_totals: list[list[float]] | None  # per block, floats whose exact sum is the shard's total of its means


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
    model: ModelInfo
    simulation: SimulationInfo


class Results(ResultSummary):
    """results.json: the summary and every position's row (a run returns it with only its first rows)."""

    positions: list[ResultRow]
