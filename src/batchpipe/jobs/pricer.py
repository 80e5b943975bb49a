"""The pricer container's entrypoint: one Monte Carlo stage per invocation, over local paths or s3:// URIs.

    python -m batchpipe.jobs.pricer preprocess --input URI --output URI --job-name NAME [--positions-per-job N]
    python -m batchpipe.jobs.pricer price --output URI [--shard N | --shard-list 0,3-5] [--resume]
        # shard: $AWS_BATCH_JOB_ARRAY_INDEX (with --shard-list: that position of the list), else 0
    python -m batchpipe.jobs.pricer collate --output URI

preprocess writes OUTPUT/positions.jsonl and OUTPUT/plan.json and prints {"shards": N, "planUri": ...}; price writes
OUTPUT/shards/shard-NNNNN.json, pricing the shard's chunks on as many processes as the job has vCPUs
($BATCHPIPE_VCPUS, the cgroup's CPU quota, the CPUs it may run on); collate writes OUTPUT/results.json and
OUTPUT/results.csv (and OUTPUT/scenarios.csv for a ladder) and prints the status. The greeks and scenarios a run
prices are the portfolio file's "greeks" and "scenarios" blocks (where the CLI writes its options), recorded in the
plan.
Exit codes: 0 done (collate: also PARTIAL, which the results document reports), 1 failure, 2 bad input.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor

from batchpipe import storage
from batchpipe.cores import default_workers, process_context
from batchpipe.errors import InputError
from batchpipe.jobs.common import run_stage, shard_index
from batchpipe.layout import RunLayout
from batchpipe.pipelines import montecarlo as mc
from batchpipe.pipelines.montecarlo import streaming
from batchpipe.pipelines.portfolio import parse_portfolio


def preprocess(args: argparse.Namespace) -> None:
    try:
        text = storage.read_text(args.input)
    except FileNotFoundError:
        raise InputError(f"{args.input}: no such file") from None
    builder = mc.PlanBuilder(parse_portfolio(text, args.input), args.job_name, args.positions_per_job)
    layout = RunLayout.at(args.output)
    plan = streaming.write_plan(layout, builder)
    print(json.dumps({"shards": plan.shards, "planUri": layout.uri(layout.plan)}))


def price(args: argparse.Namespace) -> None:
    layout = RunLayout.at(args.output)
    plan = streaming.read_plan(layout)
    shard = shard_index(args.shard, args.shard_list)
    if not 0 <= shard < plan.shards:
        raise InputError(f"shard {shard} out of range: the plan has {plan.shards} shards")
    uri = layout.uri(layout.shard(shard))
    positions = streaming.read_shard_positions(layout, plan, shard)
    if args.resume and mc.is_complete(plan, shard, positions, streaming.shard_result(layout, plan, shard)):
        print(json.dumps({"shard": shard, "resultUri": uri, "skipped": "already complete"}))
        return
    workers = min(default_workers(), plan.simulation.chunks)
    layout.write_json(layout.shard(shard), price_on(workers, plan, shard, positions))
    print(json.dumps({"shard": shard, "resultUri": uri, "processes": workers}))


def price_on(workers: int, plan: mc.Plan, shard: int, positions: Sequence[mc.ResolvedPosition]) -> mc.ShardResult:
    """A shard's result, its chunks priced on `workers` processes (in this one if 1). The chunks' sums are folded
    in chunk order, so the result is the same bit for bit however many processes price them."""
    chunks = range(plan.simulation.chunks)
    if workers <= 1:
        return mc.price_shard(plan, shard, positions)
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # a process per vCPU: no thread pools on top of them
    with ProcessPoolExecutor(max_workers=workers, mp_context=process_context()) as pool:
        sums = list(pool.map(functools.partial(mc.price_chunk, plan, shard, positions), chunks))
    return mc.shard_result(plan, shard, positions, sums)


def collate(args: argparse.Namespace) -> None:
    layout = RunLayout.at(args.output)
    doc = streaming.collate(layout, streaming.read_plan(layout))
    print(json.dumps({"status": doc.status, "totalPv": doc.total_pv}))
    if doc.status == "FAILED":
        sys.exit(1)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="batchpipe.jobs.pricer", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="stage", required=True)
    p = sub.add_parser("preprocess")
    p.add_argument("--input", required=True)
    p.add_argument("--output", required=True)
    p.add_argument("--job-name", required=True)
    p.add_argument("--positions-per-job", type=int)
    p = sub.add_parser("price")
    p.add_argument("--output", required=True)
    p.add_argument("--shard", type=int)
    p.add_argument("--shard-list", help="an array's shards (0,3-5): child i prices the i-th")
    p.add_argument("--resume", action="store_true", help="keep this shard's result when it is already complete")
    p = sub.add_parser("collate")
    p.add_argument("--output", required=True)
    args = parser.parse_args(argv)
    run_stage({"preprocess": preprocess, "price": price, "collate": collate}, args)


if __name__ == "__main__":
    main()
