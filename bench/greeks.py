"""What `--greeks` costs: the workshop portfolio priced with and without it, on the same paths.

Both runs are the real command (`batchpipe run montecarlo examples/portfolio.json --local`), start-up and
calibration included; each is timed `repeats` times, alternating, and the fastest of each kept (the machine may be
shared). The pricing alone (one shard priced in this process: the shards' work, without start-up, calibration,
processes or files) is timed the same way. Target: `--greeks` at most 3x the PV-only run.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "portfolio.json"


def _command(paths: int, *extra: str) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [str(Path(sys.executable).parent / "batchpipe"), "run", "montecarlo", str(EXAMPLE), "--local",
               "--json", "--paths", str(paths), "--output", tmp, "--job-name", "bench", *extra]  # fmt: skip
        start = time.perf_counter()
        subprocess.run(cmd, capture_output=True, text=True, check=True)
        return time.perf_counter() - start


def _pricing(paths: int, greeks: bool) -> float:
    from batchpipe.pipelines import montecarlo as mc
    from batchpipe.pipelines.portfolio import load_portfolio

    builder = mc.PlanBuilder(load_portfolio(EXAMPLE), "bench", positions_per_job=48, paths=paths,
                             risk=mc.RiskOptions(greeks=greeks))  # fmt: skip
    positions = list(builder.positions())
    body = builder.plan()
    plan = mc.Plan(**dict(body), shard_offsets=[], plan_hash="bench")
    start = time.perf_counter()
    mc.price_shard(plan, 0, positions)
    return time.perf_counter() - start


def bench_greeks(paths: int = 131_072, repeats: int = 3) -> dict[str, Any]:
    runs: dict[str, list[float]] = {"pv": [], "greeks": [], "pvPricing": [], "greeksPricing": []}
    for _ in range(repeats):
        runs["pv"].append(_command(paths))
        runs["greeks"].append(_command(paths, "--greeks"))
        runs["pvPricing"].append(_pricing(paths, greeks=False))
        runs["greeksPricing"].append(_pricing(paths, greeks=True))
    best = {k: min(v) for k, v in runs.items()}
    return {"paths": paths, "seconds": best["greeks"], "referenceSeconds": best["pv"],
            "ratio": best["greeks"] / best["pv"], "pricingSeconds": best["greeksPricing"],
            "pricingReferenceSeconds": best["pvPricing"],
            "pricingRatio": best["greeksPricing"] / best["pvPricing"]}  # fmt: skip


if __name__ == "__main__":
    print(json.dumps(bench_greeks(), indent=2))
