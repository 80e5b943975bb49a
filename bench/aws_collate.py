"""Collate of 10,000 shard results from S3 (a moto server process on 127.0.0.1), against a sequential
listing-and-get loop like the workshop's collate Lambda (which, with one ListObjectsV2 page, would also stop at
1,000 keys)."""

from __future__ import annotations

import json
import os
import random
import socket
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

SHARDS = 10_000
BLOCKS = 64


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start_server(port: int) -> subprocess.Popen[bytes]:
    """moto's server in its own process, so that it does not share this process's interpreter lock."""
    exe = Path(sys.executable).parent / "moto_server"
    proc = subprocess.Popen([str(exe), "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env={**os.environ, "MOTO_PORT": str(port)})  # fmt: skip
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/moto-api/", timeout=1)
            return proc
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("moto_server did not start")


def bench_collate(shards: int = SHARDS) -> dict[str, Any]:
    port = _free_port()
    os.environ.update(AWS_ENDPOINT_URL=f"http://127.0.0.1:{port}", AWS_DEFAULT_REGION="us-east-1",
                      AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench")  # fmt: skip
    server = _start_server(port)
    try:
        from batchpipe.aws import clients
        from batchpipe.jobs import pricer
        from batchpipe.layout import RunLayout
        from batchpipe.pipelines import montecarlo as mc
        from batchpipe.pipelines.montecarlo import streaming
        from batchpipe.pipelines.portfolio import parse_portfolio
        from batchpipe.pricing.exactsum import ExactSums

        clients.configure()
        s3 = clients.client("s3")
        s3.create_bucket(Bucket="bench-collate")
        out = "s3://bench-collate/run"
        layout = RunLayout.at(out)
        heston = {"v0": 0.012, "kappa": 1.4, "theta": 0.033, "sigma": 0.35, "rho": -0.6}
        position = {"notional": 1e6, "strike": 3550, "barrier": 1.0}
        doc = {"market": {"heston": heston}, "simulation": {"paths": 2 * BLOCKS}, "positions": [position] * shards}
        portfolio = parse_portfolio(json.dumps(doc), "bench.json")
        plan = streaming.write_plan(layout, mc.PlanBuilder(portfolio, "run", positions_per_job=1))
        positions = list(mc.PlanBuilder(portfolio, "run", positions_per_job=1).positions())
        rng = random.Random(1)

        def put(shard: int) -> None:
            """A shard result as the pricer writes it, with made-up figures."""
            totals = ExactSums(BLOCKS)
            totals.add_rows([[1e6 + rng.gauss(0, 5e3) for _ in range(BLOCKS)]])
            entry = {"index": shard, "pv": 1e6 + rng.gauss(0, 600), "stderr": 600.0, "error": None}
            result = {"jobName": "run", "shard": shard, "planHash": plan.plan_hash, "positions": [entry],
                      "blockTotals": totals.parts()}  # fmt: skip
            layout.write_json(layout.shard(shard), result)

        with ThreadPoolExecutor(max_workers=32) as pool:
            list(pool.map(put, range(shards)))

        start = time.perf_counter()
        pricer.main(["collate", "--output", out])
        ours = time.perf_counter() - start

        # the reference: list the prefix page by page, then get every object one after the other
        start = time.perf_counter()
        keys = [o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket="bench-collate",
                                                                                 Prefix="run/shards/")
                for o in page.get("Contents", [])]  # fmt: skip
        loaded = [json.loads(s3.get_object(Bucket="bench-collate", Key=k)["Body"].read()) for k in keys]
        collation = mc.Collation(plan)  # the same fold, over every result in memory
        rows = []
        for result in sorted(loaded, key=lambda d: d["shard"]):
            r = mc.shard_range(plan, result["shard"])
            rows.extend(collation.add(result["shard"], positions[r.start : r.stop], mc.ShardResult.read(result)))
        reference_doc = collation.summary().stored() | {"positions": [row.stored() for row in rows]}
        reference = time.perf_counter() - start
        ours_doc = layout.read_json(layout.results)
        assert ours_doc["totalPv"] == reference_doc["totalPv"] and len(ours_doc["positions"]) == shards
        return {"shards": shards, "seconds": ours, "referenceSeconds": reference, "ratio": reference / ours}
    finally:
        server.terminate()
        server.wait(timeout=10)
