"""The pricer container's entrypoint: one Monte Carlo stage per invocation, over local paths or s3:// URIs.

    python -m batchpipe.jobs.pricer preprocess --input URI --output URI --job-name NAME [--positions-per-job N]
    python -m batchpipe.jobs.pricer price --output URI [--shard N]   # default: $AWS_BATCH_JOB_ARRAY_INDEX, else 0
    python -m batchpipe.jobs.pricer collate --output URI

preprocess writes OUTPUT/positions.jsonl and OUTPUT/plan.json and prints {"shards": N, "planUri": ...}; price writes
OUTPUT/shards/shard-NNNNN.json; collate writes OUTPUT/results.json and OUTPUT/results.csv and prints the status.
Exit codes: 0 done (collate: also PARTIAL, which the results document reports), 1 failure, 2 bad input.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from batchpipe import artifacts, storage
from batchpipe.errors import InputError
from batchpipe.jobs.common import run_stage, shard_index
from batchpipe.pipelines import montecarlo as mc
from batchpipe.pipelines.portfolio import parse_portfolio


def preprocess(args: argparse.Namespace) -> None:
    try:
        text = storage.read_text(args.input)
    except FileNotFoundError:
        raise InputError(f"{args.input}: no such file") from None
    builder = mc.PlanBuilder(parse_portfolio(text, args.input), args.job_name, args.positions_per_job)
    plan = artifacts.write_plan(args.output, builder)
    print(json.dumps({"shards": plan["shards"], "planUri": artifacts.plan_uri(args.output)}))


def price(args: argparse.Namespace) -> None:
    plan = artifacts.read_plan(args.output)
    shard = shard_index(args.shard)
    if not 0 <= shard < int(plan["shards"]):
        raise InputError(f"shard {shard} out of range: the plan has {plan['shards']} shards")
    uri = artifacts.shard_uri(args.output, shard)
    positions = artifacts.read_shard_positions(args.output, plan, shard)
    if args.resume and mc.is_complete(plan, shard, positions, artifacts.read_shard_result(args.output, plan, shard)):
        print(json.dumps({"shard": shard, "resultUri": uri, "skipped": "already complete"}))
        return
    artifacts.write_json(uri, mc.price_shard(plan, shard, positions))
    print(json.dumps({"shard": shard, "resultUri": uri}))


def collate(args: argparse.Namespace) -> None:
    doc = artifacts.collate_montecarlo(args.output, artifacts.read_plan(args.output))
    print(json.dumps({"status": doc["status"], "totalPv": doc["totalPv"]}))
    if doc["status"] == "FAILED":
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
    p.add_argument("--resume", action="store_true", help="keep this shard's result when it is already complete")
    p = sub.add_parser("collate")
    p.add_argument("--output", required=True)
    args = parser.parse_args(argv)
    run_stage({"preprocess": preprocess, "price": price, "collate": collate}, args)


if __name__ == "__main__":
    main()
