"""The render container's entrypoint: one rendering stage per invocation, over local paths or s3:// URIs.

    python -m batchpipe.jobs.render preprocess --input URI --output URI --job-name NAME --frames-per-job N
    python -m batchpipe.jobs.render render --output URI [--shard N] [--resume]  # shard: $AWS_BATCH_JOB_ARRAY_INDEX
    python -m batchpipe.jobs.render stitch --output URI

preprocess writes OUTPUT/plan.json and prints {"shards": N}; render writes OUTPUT/frames/NNNN.png and
OUTPUT/shards/shard-NNNNN.json (with --resume, a shard whose result is already complete for the same plan and whose
frames are all there is skipped: one HEAD per frame of this shard, nothing listed); stitch writes OUTPUT/output.mp4
(when every frame is there) and OUTPUT/render.json. Blender's threads default to the container's cores.
Exit codes: 0 done, 1 failure (render: missing frames; stitch: PARTIAL or FAILED, which render.json reports),
2 bad input.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from batchpipe import artifacts, storage
from batchpipe.cores import default_workers
from batchpipe.errors import InputError
from batchpipe.jobs.common import run_stage, shard_index
from batchpipe.pipelines import render as rp
from batchpipe.rendering.frames import frame_filename


@contextmanager
def local_copy(uri: str, suffix: str = "") -> Iterator[Path]:
    """A local path for a URI: the path itself, or a temporary download of an s3:// object."""
    if not storage.is_s3(uri):
        yield Path(uri)
        return
    with tempfile.TemporaryDirectory(prefix="batchpipe-") as tmp:
        path = Path(tmp) / f"input{suffix}"
        try:
            path.write_bytes(storage.read_bytes(uri))
        except FileNotFoundError:
            raise InputError(f"{uri}: no such object") from None
        yield path


@contextmanager
def work_dir(output: str, name: str) -> Iterator[Path]:
    """OUTPUT/name itself for a local output; a temporary directory to upload from for s3://."""
    if not storage.is_s3(output):
        path = Path(output) / name
        path.mkdir(parents=True, exist_ok=True)
        yield path
        return
    with tempfile.TemporaryDirectory(prefix="batchpipe-") as tmp:
        yield Path(tmp)


def preprocess(args: argparse.Namespace) -> None:
    with local_copy(args.input, ".blend") as blend:
        plan = rp.preprocess(blend, args.job_name, args.frames_per_job, source=args.input)
    artifacts.write_json(artifacts.plan_uri(args.output), plan)
    print(json.dumps({"shards": plan["shards"], "frames": plan["frames"], "planUri": artifacts.plan_uri(args.output)}))


def render(args: argparse.Namespace) -> None:
    plan = artifacts.read_json(artifacts.plan_uri(args.output))
    shard = shard_index(args.shard)
    if not 0 <= shard < int(plan["shards"]):
        raise InputError(f"shard {shard} out of range: the plan has {plan['shards']} shards")
    if args.resume and already_rendered(args.output, plan, shard):
        print(json.dumps({"shard": shard, "resultUri": artifacts.shard_uri(args.output, shard),
                          "skipped": "already complete"}))  # fmt: skip
        return
    with local_copy(plan["input"], ".blend") as blend, work_dir(args.output, "frames") as frames_dir:
        result = rp.render_shard(plan, shard, blend, frames_dir, threads=args.threads or default_workers())
        if storage.is_s3(args.output):
            for f in result["rendered"]:
                name = frame_filename(f)
                storage.write_bytes(storage.join(args.output, "frames", name), (frames_dir / name).read_bytes())
    artifacts.write_json(artifacts.shard_uri(args.output, shard), result)
    print(json.dumps({"shard": shard, "rendered": len(result["rendered"]), "missing": result["missing"]}))
    if result["error"]:
        print(f"error: {result['error']}", file=sys.stderr)
        sys.exit(1)


def already_rendered(output: str, plan: rp.Doc, shard: int) -> bool:
    """Whether the shard's stored result is complete for this plan and every one of its frames is in place (a
    valid PNG in a directory, the object in S3): `batchpipe.pipelines.render.rendered_shards` for this shard."""
    return shard in rp.rendered_shards(output, plan, rp.frame_check(output, plan), [shard])


DOWNLOAD_CONCURRENCY = 32


def download_frames(output: str, plan: dict[str, Any], frames_dir: Path) -> None:
    """The plan's frames from S3: one paginated listing of frames/, then concurrent gets (a few hundred frames one
    by one would take minutes). Only this plan's frame names are fetched; a frame not there is left to stitch to
    report."""
    prefix = storage.join(output, "frames")
    there = storage.list_names(prefix)
    names = [frame_filename(f) for f in rp.all_frames(plan) if frame_filename(f) in there]

    def fetch(name: str) -> None:
        (frames_dir / name).write_bytes(storage.read_bytes(storage.join(prefix, name)))

    with ThreadPoolExecutor(max_workers=DOWNLOAD_CONCURRENCY) as pool:
        list(pool.map(fetch, names))


def stitch(args: argparse.Namespace) -> None:
    plan = artifacts.read_json(artifacts.plan_uri(args.output))
    results = artifacts.read_shard_results(args.output, plan)
    video = None
    with work_dir(args.output, "frames") as frames_dir:
        if all(r is not None and not r["missing"] for r in results):
            if storage.is_s3(args.output):
                download_frames(args.output, plan, frames_dir)
            with work_dir(args.output, "") as out_dir:
                video_path = out_dir / "output.mp4"
                video = rp.stitch(plan, frames_dir, video_path)
                if storage.is_s3(args.output):
                    storage.put_file(storage.join(args.output, "output.mp4"), str(video_path))
    doc = rp.collate(plan, results, video, "output.mp4" if video else None)
    artifacts.write_json(storage.join(args.output, "render.json"), doc, indent=2)
    print(json.dumps({"status": doc["status"], "video": doc["video"], "missingFrames": doc["missingFrameRanges"]}))
    if doc["status"] != "SUCCEEDED":
        sys.exit(1)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="batchpipe.jobs.render", description=(__doc__ or "").splitlines()[0])
    sub = parser.add_subparsers(dest="stage", required=True)
    p = sub.add_parser("preprocess")
    p.add_argument("--input", required=True)
    p.add_argument("--output", required=True)
    p.add_argument("--job-name", required=True)
    p.add_argument("--frames-per-job", required=True, help='frames per array child; the workshop passes "1"')
    p = sub.add_parser("render")
    p.add_argument("--output", required=True)
    p.add_argument("--shard", type=int)
    p.add_argument("--threads", type=int, default=int(os.environ.get("BATCHPIPE_THREADS", "0")) or None)
    p.add_argument("--resume", action="store_true", help="skip the shard when its result and frames are complete")
    p = sub.add_parser("stitch")
    p.add_argument("--output", required=True)
    args = parser.parse_args(argv)
    run_stage({"preprocess": preprocess, "render": render, "stitch": stitch}, args)


if __name__ == "__main__":
    main()
