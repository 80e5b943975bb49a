"""A large portfolio on the local engine: time and peak memory at 10,000 and 100,000 positions (256 paths).

Memory should follow the shard size, not the portfolio size: the ratio of the two peaks is the figure. Peak RSS is
the largest resident set of any process of the run (the CLI or one of its workers), read from the kernel's
accounting of the finished processes (RUSAGE_CHILDREN) in a wrapper process started for each run.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

WRAPPER = """
import resource, subprocess, sys
code = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL).returncode
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, code)
"""


def portfolio(n: int, seed: int = 1) -> dict[str, Any]:
    """n positions over 20 strikes, 5 barriers, 3 maturities and 10 notionals: 300 distinct notes."""
    rng = random.Random(seed)
    positions = [
        {
            "notional": 1e6 * rng.randint(1, 10),
            "strike": 3300 + 25 * rng.randrange(20),
            "barrier": rng.choice([0.9, 0.92, 0.95, 0.98, 1.0]),
            "maturityYears": rng.choice([3, 5, 7]),
        }
        for _ in range(n)
    ]
    return {"name": f"scale-{n}", "simulation": {"paths": 256}, "positions": positions}


def run(n: int, tmp: Path) -> dict[str, Any]:
    path = tmp / f"p{n}.json"
    path.write_text(json.dumps(portfolio(n)))
    out = tmp / f"out{n}"
    cmd = [str(Path(sys.executable).parent / "batchpipe"), "run", "montecarlo", str(path), "--local",
           "--output", str(out), "--job-name", f"scale-{n}"]  # fmt: skip
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", WRAPPER, *cmd], capture_output=True, text=True, check=True)
    seconds = time.perf_counter() - start
    peak_kb, code = (int(x) for x in proc.stdout.split())
    if code != 0:
        raise RuntimeError(f"the {n}-position run exited {code}")
    plan = json.loads((out / "plan.json").read_text())
    results = json.loads((out / "results.json").read_text())
    assert results["status"] == "SUCCEEDED" and len(results["positions"]) == n
    return {
        "positions": n,
        "seconds": seconds,
        "peakRssMb": peak_kb / 1024,
        "shards": plan["shards"],
        "positionsPerJob": plan["positionsPerJob"],
        "inputMb": path.stat().st_size / 1e6,
        "resultsMb": (out / "results.json").stat().st_size / 1e6,
    }


def bench_scale(sizes: tuple[int, int] = (10_000, 100_000)) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="batchpipe-scale-") as tmp:
        small, large = (run(n, Path(tmp)) for n in sizes)
    return {"small": small, "large": large, "rssRatio": large["peakRssMb"] / small["peakRssMb"]}


if __name__ == "__main__":
    print(json.dumps(bench_scale(), indent=2))
