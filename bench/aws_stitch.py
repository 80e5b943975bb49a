"""Stitch's frame downloads from S3: 240 frames (random bytes of 50-200 KB each, a small render's PNGs) stored where
render shards put them (OUTPUT/frames/NNNN.png), fetched the way the render job's stitch stage fetches them (the
store's `local_dir(frames, fetch=names)`: one listing, concurrent gets), against a sequential loop (the same listing,
then one get after another into a directory), both through the latency proxy in front of a moto server
(bench/aws_collate.py's `latent_s3`: 20-50 ms a request). The frames are uploaded straight to moto (the setup)."""

from __future__ import annotations

import json
import random
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from aws_collate import LATENCY_MS, latent_s3

FRAMES = 240
FRAME_BYTES = (50_000, 200_000)


def bench_stitch_downloads(frames: int = FRAMES) -> dict[str, Any]:
    with latent_s3(seed=2) as s3s:
        from batchpipe.aws import clients
        from batchpipe.layout import RunLayout
        from batchpipe.rendering.frames import frame_filename

        s3s.direct()
        clients.client("s3").create_bucket(Bucket="bench-stitch")
        layout = RunLayout.at("s3://bench-stitch/run")
        rng = random.Random(2)
        numbers = range(1, frames + 1)
        blobs = {frame_filename(f): rng.randbytes(rng.randint(*FRAME_BYTES)) for f in numbers}
        with ThreadPoolExecutor(max_workers=32) as pool:
            list(pool.map(lambda f: layout.store.write_bytes(layout.frame(f), blobs[frame_filename(f)]), numbers))

        s3s.latent()
        wanted = [frame_filename(f) for f in numbers]  # what stitch asks for: the plan's frames, by name
        before = s3s.stats()
        start = time.perf_counter()
        with layout.store.local_dir(layout.frames, fetch=wanted) as frames_dir:
            ours = time.perf_counter() - start
            ours_counts = s3s.since(before)
            ours_got = {p.name: p.read_bytes() for p in frames_dir.iterdir()}

        # the reference: the same listing, then every frame one after the other into a directory
        s3 = clients.client("s3")
        prefix = "run/frames/"
        before = s3s.stats()
        with tempfile.TemporaryDirectory(prefix="bench-stitch-") as tmp:
            start = time.perf_counter()
            there = {o["Key"][len(prefix) :] for page in s3.get_paginator("list_objects_v2").paginate(
                     Bucket="bench-stitch", Prefix=prefix) for o in page.get("Contents", [])}  # fmt: skip
            for name in wanted:
                if name in there:
                    body = s3.get_object(Bucket="bench-stitch", Key=prefix + name)["Body"].read()
                    (Path(tmp) / name).write_bytes(body)
            reference = time.perf_counter() - start
            reference_counts = s3s.since(before)
            reference_got = {p.name: p.read_bytes() for p in Path(tmp).iterdir()}
        assert ours_got == blobs and reference_got == blobs
        return {"frames": frames, "megabytes": sum(map(len, blobs.values())) / 1e6, "latencyMs": list(LATENCY_MS),
                "seconds": ours, "requests": ours_counts["requests"], "connections": ours_counts["connections"],
                "referenceSeconds": reference, "referenceRequests": reference_counts["requests"],
                "referenceConnections": reference_counts["connections"], "ratio": reference / ours}  # fmt: skip


if __name__ == "__main__":
    print(json.dumps(bench_stitch_downloads(int(sys.argv[1]) if len(sys.argv) > 1 else FRAMES), indent=2))
