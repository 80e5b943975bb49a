"""The Monte Carlo pipeline: preprocess (`plan`) -> price shards (`price`) -> collate (`collate`), pure functions
over JSON-able documents, and `streaming`, their one module that reads and writes (through a run's layout).

The same functions run in the local engine's worker processes and in the AWS containers and Lambdas. Nothing here
holds a whole portfolio: `streaming` (over a run's store) streams the positions out of preprocess, reads each shard
only its own, and folds the shard results one at a time. The control-variate estimate each note's PV comes from is
`batchpipe.pricing.control_variates`.

Their documents (the plan, resolved positions, shard results, results) are typed models in `documents`.

The stages' public names are re-exported here (`from batchpipe.pipelines import montecarlo as mc`).
"""

from batchpipe.pipelines.montecarlo.collate import FAILED_SAMPLE, RESULT_FIELDS, Collation, csv_row
from batchpipe.pipelines.montecarlo.documents import (
    Plan,
    PlanBody,
    PositionResult,
    ResolvedPosition,
    ResultRow,
    Results,
    ResultSummary,
    ShardResult,
)
from batchpipe.pipelines.montecarlo.plan import (
    CHUNK_PATHS,
    DEFAULT_POSITIONS_PER_JOB,
    MAX_ARRAY_SIZE,
    MAX_BLOCKS,
    PLAN_VERSION,
    PlanBuilder,
    RiskOptions,
    RiskRequest,
    SamplingLayout,
    calibration_gate,
    plan_hash,
    position_line,
    risk_request,
    shard_range,
)
from batchpipe.pipelines.montecarlo.price import (
    NOTE_BATCH,
    ChunkSums,
    ControlSums,
    NoteSums,
    failed_shard,
    fits,
    is_complete,
    price_chunk,
    price_shard,
    shard_result,
)

__all__ = [
    "CHUNK_PATHS",
    "DEFAULT_POSITIONS_PER_JOB",
    "FAILED_SAMPLE",
    "MAX_ARRAY_SIZE",
    "MAX_BLOCKS",
    "NOTE_BATCH",
    "PLAN_VERSION",
    "RESULT_FIELDS",
    "ChunkSums",
    "Collation",
    "ControlSums",
    "NoteSums",
    "Plan",
    "PlanBody",
    "PlanBuilder",
    "PositionResult",
    "ResolvedPosition",
    "ResultRow",
    "ResultSummary",
    "Results",
    "RiskOptions",
    "RiskRequest",
    "SamplingLayout",
    "ShardResult",
    "calibration_gate",
    "csv_row",
    "failed_shard",
    "fits",
    "is_complete",
    "plan_hash",
    "position_line",
    "price_chunk",
    "price_shard",
    "risk_request",
    "shard_range",
    "shard_result",
]
