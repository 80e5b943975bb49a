"""`make bench`: batchpipe's figures side by side with references measured in the same run.

Monte Carlo: calibration (time, RMSE), engine path-steps per second, and the workshop portfolio end to end at
<= 0.05% of notional per position, each against the workshop's way (QuantLib differential-evolution calibration per
position, QuantLib's path generator one path at a time and a Python payoff loop: bench/workshop_reference.py).
Then: `batchpipe --help` start-up against a bare interpreter, a local render on all cores against one Blender
process rendering every frame (both the official build batchpipe renders with) and a shard's start-up, time
and peak memory for 10,000 and 100,000 positions; then S3 reads through a proxy that puts 20-50 ms of latency in
front of a moto server (bench/latency_proxy.py), each against a sequential loop through the same proxy: collate of
2,000 shard results (bench/aws_collate.py) and stitch's download of 240 frames (bench/aws_stitch.py).
Results are printed and written to bench/results.json.
"""

from __future__ import annotations

import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from aws_collate import bench_collate  # noqa: E402
from aws_stitch import bench_stitch_downloads  # noqa: E402
from batchpipe.pipelines.portfolio import WORKSHOP_EXPIRIES, WORKSHOP_STRIKES, WORKSHOP_VOLS  # noqa: E402
from batchpipe.pricing.calendar import year_fraction  # noqa: E402
from batchpipe.pricing.calibration import VolQuotes, calibrate  # noqa: E402
from batchpipe.pricing.paths import antithetic, block_normals, build_grid, simulate_qe  # noqa: E402
from greeks import bench_greeks  # noqa: E402
from local_render import bench_render, bench_startup  # noqa: E402
from scale import bench_scale  # noqa: E402
from workshop_reference import price_position_workshop_way  # noqa: E402

TARGET = 0.0005  # per-position standard error, as a fraction of notional
EXAMPLE = ROOT / "examples" / "portfolio.json"
VALUATION = date(2019, 11, 20)


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, numpy {np.__version__}"


def bench_calibration() -> dict[str, Any]:
    times = np.array([year_fraction(VALUATION, date.fromisoformat(e)) for e in WORKSHOP_EXPIRIES])
    quotes = VolQuotes.from_grid(times, np.array(WORKSHOP_STRIKES), np.array(WORKSHOP_VOLS))
    calibrate(3550.0, 0.01, 0.0, quotes)  # warm-up
    start = time.perf_counter()
    fit = calibrate(3550.0, 0.01, 0.0, quotes)
    return {"seconds": time.perf_counter() - start, "rmse": fit.rmse, "heston": fit.params.as_dict()}


def bench_engine(heston: dict[str, float], paths: int = 131_072) -> dict[str, Any]:
    from batchpipe.pricing.heston import HestonParams

    params = HestonParams(**heston)
    grid = build_grid(np.array([(365.0 * i + 2) / 360.0 for i in range(1, 8)]), 12, kappa=params.kappa)
    half, blocks = 8192, paths // 16384
    start = time.perf_counter()
    for b in range(blocks):
        simulate_qe(params, 3550.0, 0.01, 0.0, grid, antithetic([block_normals(1, b, grid.steps, half)]))
    seconds = time.perf_counter() - start
    return {"pathSteps": paths * grid.steps, "seconds": seconds, "pathStepsPerSecond": paths * grid.steps / seconds}


def run_portfolio(paths: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [str(Path(sys.executable).parent / "batchpipe"), "run", "montecarlo", str(EXAMPLE), "--local",
               "--json", "--paths", str(paths), "--output", tmp, "--job-name", "bench"]  # fmt: skip
        start = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, check=True)
        seconds = time.perf_counter() - start
    doc = json.loads(proc.stdout)
    worst = max(p["stderr"] / p["notional"] for p in doc["positions"])
    return {"paths": doc["simulation"]["paths"], "seconds": seconds, "worstStderrPct": 100 * worst, "doc": doc}


def bench_end_to_end() -> dict[str, Any]:
    paths = 131_072
    for _ in range(4):
        run = run_portfolio(paths)
        if run["worstStderrPct"] <= 100 * TARGET:
            break
        paths = int(math.ceil(paths * (run["worstStderrPct"] / (100 * TARGET)) ** 2 * 1.05 / 16384) * 16384)
    return run


def main() -> None:
    print(f"machine: {machine()}")
    ours_cal = bench_calibration()
    print(f"calibration: {ours_cal['seconds']:.2f} s, implied-vol RMSE {100 * ours_cal['rmse']:.3f} vol points")
    engine = bench_engine(ours_cal["heston"])
    print(f"engine: {engine['pathStepsPerSecond'] / 1e6:.1f} M path-steps/s (one core, normals included)")
    e2e = bench_end_to_end()
    positions = len(e2e["doc"]["positions"])
    print(
        f"workshop portfolio end to end: {e2e['seconds']:.2f} s for {positions} positions, {e2e['paths']:,} paths, "
        f"worst stderr {e2e['worstStderrPct']:.4f}% of notional (start-up and calibration included)"
    )

    greeks = bench_greeks()
    print(f"--greeks on the workshop portfolio, {greeks['paths']:,} paths: {greeks['seconds']:.2f} s vs "
          f"{greeks['referenceSeconds']:.2f} s for the PV alone: {greeks['ratio']:.2f}x (target: at most 3x); the "
          f"pricing alone {greeks['pricingRatio']:.2f}x (three simulations and seven payoff evaluations for one and "
          "one)")  # fmt: skip

    print("reference (the workshop's way, one position: strike 3550, barrier 0.95, 10,000 paths) ...", flush=True)
    ref = price_position_workshop_way(1e7, 3550.0, 0.95, paths=10_000)
    ref_pct = 100 * ref.stderr / 1e7
    ref_steps = 10_000 * 14  # the workshop steps the variance twice a year for 7 years
    ref_rate = ref_steps / ref.pricing_seconds
    # to reach the target the workshop needs (stderr / target)^2 times the paths, for every position
    scale = (ref_pct / (100 * TARGET)) ** 2
    ref_portfolio = positions * (ref.calibration_seconds + ref.pricing_seconds * scale)
    ours_pos1 = e2e["doc"]["positions"][1]
    print(
        f"reference: calibration {ref.calibration_seconds:.1f} s, pricing {ref.pricing_seconds:.2f} s, "
        f"stderr {ref_pct:.3f}% of notional, PV {ref.pv:,.0f} "
        f"(ours {ours_pos1['pv']:,.0f} ± {ours_pos1['stderr']:,.0f})"
    )
    rows = [
        (
            "calibration (s)",
            ours_cal["seconds"],
            ref.calibration_seconds,
            ref.calibration_seconds / ours_cal["seconds"],
        ),
        ("path-steps per second", engine["pathStepsPerSecond"], ref_rate, engine["pathStepsPerSecond"] / ref_rate),
        ("workshop portfolio at <=0.05% (s)", e2e["seconds"], ref_portfolio, ref_portfolio / e2e["seconds"]),
    ]
    print(f"\n{'figure':36} {'batchpipe':>14} {'workshop way':>14} {'ratio':>10}")
    for name, ours, theirs, ratio in rows:
        print(f"{name:36} {ours:14.4g} {theirs:14.4g} {ratio:9.0f}x")
    startup = bench_startup()
    print(f"\n`batchpipe --help`: {startup['seconds']:.3f} s, `python -c pass`: {startup['referenceSeconds']:.3f} s "
          f"({startup['ratio']:.1f}x the bare interpreter)")  # fmt: skip
    render = bench_render()
    print(f"local render (Blender {render['blender']}), {render['frames']} frames: {render['seconds']:.1f} s with "
          f"{render['workers']} workers (and the video) vs {render['referenceSeconds']:.1f} s for one Blender process "
          f"rendering them all: {render['ratio']:.2f}x; a shard's start-up (interpreter, Blender, opening the file): "
          f"{render['shardStartupSeconds']:.2f} s")  # fmt: skip
    scale = bench_scale()
    small, large = scale["small"], scale["large"]
    print(f"large portfolios, 256 paths: {small['positions']:,} positions {small['seconds']:.1f} s, peak RSS "
          f"{small['peakRssMb']:.0f} MB; {large['positions']:,} positions {large['seconds']:.1f} s, peak RSS "
          f"{large['peakRssMb']:.0f} MB ({scale['rssRatio']:.2f}x the memory for 10x the positions)")  # fmt: skip
    collate = bench_collate()
    band = "{}-{} ms".format(*collate["latencyMs"])
    print(f"collate of {collate['shards']:,} shard results from S3 (moto server behind {band} a request): "
          f"{collate['seconds']:.1f} s ({collate['requests']:,} requests, concurrent) vs "
          f"{collate['referenceSeconds']:.1f} s listing and getting one by one ({collate['referenceRequests']:,} "
          f"requests): {collate['ratio']:.2f}x")  # fmt: skip
    stitch = bench_stitch_downloads()
    print(f"stitch's download of {stitch['frames']} frames ({stitch['megabytes']:.1f} MB) from S3 (the same "
          f"{band}): {stitch['seconds']:.2f} s ({stitch['requests']} requests, concurrent) vs "
          f"{stitch['referenceSeconds']:.2f} s one by one: {stitch['ratio']:.2f}x")  # fmt: skip
    results = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "montecarlo": {
            "calibration": {k: ours_cal[k] for k in ("seconds", "rmse")},
            "engine": engine,
            "endToEnd": {k: e2e[k] for k in ("paths", "seconds", "worstStderrPct")} | {"positions": positions},
            "reference": {
                "calibrationSeconds": ref.calibration_seconds,
                "pricingSeconds10kPaths": ref.pricing_seconds,
                "stderrPct10kPaths": ref_pct,
                "pathStepsPerSecond": ref_rate,
                "portfolioSecondsAtTarget": ref_portfolio,
            },
            "ratios": {name: ratio for name, _, _, ratio in rows},
        },
        "startup": startup,
        "render": render,
        "collate": collate,
        "stitchDownloads": stitch,
        "scale": scale,
        "greeks": greeks,
    }
    (ROOT / "bench" / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    print("\nwritten to bench/results.json")


if __name__ == "__main__":
    main()
