"""Collate of 2,000 shard results from S3 as batchpipe does it (concurrent reads by fixed keys), against a sequential
listing-and-get loop like the workshop's collate Lambda (which, with one ListObjectsV2 page, would also stop at 1,000
keys), both through the same latency proxy (bench/latency_proxy.py: 20-50 ms a request, uniform, seeded) in front of
a moto server process on 127.0.0.1: S3's per-request latency, not moto's CPU on the bench's own cores, is what
concurrency hides.

2,000 shards, not 10,000: one after another at 20-50 ms a request and moto's own time, the reference alone would
take 6 to 8 minutes on 10,000; 2,000 keep it near a minute and a half. The shard results are written straight to
moto (no latency: they are the setup, not the figure); both timed sides read the same 2,000 results through the
proxy, which counts the requests each made.
"""

from __future__ import annotations

import json
import os
import random
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

SHARDS = 2_000
BLOCKS = 64
LATENCY_MS = (20, 50)
BENCH = Path(__file__).resolve().parent


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


def _start_proxy(upstream: str, seed: int) -> tuple[subprocess.Popen[str], int]:
    """The latency proxy in a process of its own too; it prints its port once it listens."""
    cmd = [sys.executable, str(BENCH / "latency_proxy.py"), "--upstream", upstream, "--seed", str(seed),
           "--min-ms", str(LATENCY_MS[0]), "--max-ms", str(LATENCY_MS[1])]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.strip().isdigit():
        proc.kill()
        raise RuntimeError("the latency proxy did not start")
    return proc, int(line)


class LatentS3:
    """A moto server and the latency proxy in front of it; batchpipe's clients made for one or the other."""

    def __init__(self, moto: str, proxy: str) -> None:
        self.moto, self.proxy = moto, proxy

    def _endpoint(self, url: str) -> None:
        from batchpipe.aws import clients

        os.environ["AWS_ENDPOINT_URL"] = url
        clients.configure()  # the clients cached so far were made for the other endpoint

    def direct(self) -> None:
        """Clients made from now on talk to moto itself (the setup: writing what the benchmark reads)."""
        self._endpoint(self.moto)

    def latent(self) -> None:
        """Clients made from now on go through the proxy (what is timed)."""
        self._endpoint(self.proxy)

    def stats(self) -> dict[str, Any]:
        """The proxy's counts so far: requests forwarded, client connections accepted, delays summed."""
        with urllib.request.urlopen(f"{self.proxy}/__latency_proxy__/stats", timeout=10) as answer:
            stats: dict[str, Any] = json.loads(answer.read())
            return stats

    def since(self, before: dict[str, Any]) -> dict[str, Any]:
        """The counts since `before` (the stats request itself is not one of them)."""
        now = self.stats()
        return {"requests": now["requests"] - before["requests"],
                "connections": now["connections"] - before["connections"]}  # fmt: skip


@contextmanager
def latent_s3(seed: int = 1) -> Iterator[LatentS3]:
    """A moto server, the latency proxy in front of it, and the bench's credentials and region in the environment
    (restored afterwards)."""
    saved = {k: os.environ.get(k) for k in ("AWS_ENDPOINT_URL", "AWS_DEFAULT_REGION", "AWS_ACCESS_KEY_ID",
                                            "AWS_SECRET_ACCESS_KEY")}  # fmt: skip
    os.environ.update(AWS_DEFAULT_REGION="us-east-1", AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench")
    port = _free_port()
    server = _start_server(port)
    try:
        proxy, proxy_port = _start_proxy(f"http://127.0.0.1:{port}", seed)
        try:
            yield LatentS3(f"http://127.0.0.1:{port}", f"http://127.0.0.1:{proxy_port}")
        finally:
            proxy.terminate()
            proxy.wait(timeout=10)
    finally:
        server.terminate()
        server.wait(timeout=10)
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        from batchpipe.aws import clients

        clients.configure()


def bench_collate(shards: int = SHARDS) -> dict[str, Any]:
    with latent_s3() as s3s:
        from batchpipe.aws import clients
        from batchpipe.jobs import pricer
        from batchpipe.layout import RunLayout
        from batchpipe.pipelines import montecarlo as mc
        from batchpipe.pipelines.montecarlo import streaming
        from batchpipe.pipelines.portfolio import parse_portfolio
        from batchpipe.pricing.exactsum import ExactSums

        s3s.direct()
        clients.client("s3").create_bucket(Bucket="bench-collate")
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

        s3s.latent()
        before = s3s.stats()
        start = time.perf_counter()
        pricer.main(["collate", "--output", out])
        ours = time.perf_counter() - start
        ours_counts = s3s.since(before)

        # the reference: list the prefix page by page, then get every object one after the other
        s3 = clients.client("s3")
        before = s3s.stats()
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
        reference_counts = s3s.since(before)
        s3s.direct()  # the check below is no part of either figure
        ours_doc = layout.read_json(layout.results)
        assert ours_doc["totalPv"] == reference_doc["totalPv"] and len(ours_doc["positions"]) == shards
        return {"shards": shards, "latencyMs": list(LATENCY_MS), "seconds": ours, "requests": ours_counts["requests"],
                "connections": ours_counts["connections"], "referenceSeconds": reference,
                "referenceRequests": reference_counts["requests"],
                "referenceConnections": reference_counts["connections"], "ratio": reference / ours}  # fmt: skip


if __name__ == "__main__":
    print(json.dumps(bench_collate(int(sys.argv[1]) if len(sys.argv) > 1 else SHARDS), indent=2))
