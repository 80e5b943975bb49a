"""The render container's entrypoint: one rendering stage per invocation, over local paths or s3:// URIs.

    python -m batchpipe.jobs.render preprocess --input URI --output URI --job-name NAME --frames-per-job N
    python -m batchpipe.jobs.render render --output URI [--shard N | --shard-list 0,3-5] [--resume]
        # shard: $AWS_BATCH_JOB_ARRAY_INDEX (with --shard-list: that position of the list)
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
import zipfile
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path

from batchpipe.cores import default_workers
from batchpipe.errors import InputError
from batchpipe.jobs.common import run_stage, shard_index
from batchpipe.layout import RunLayout
from batchpipe.pipelines import render as rp
from batchpipe.pipelines.render_documents import RenderPlan
from batchpipe.rendering.frames import frame_filename, parse_frames_option
from batchpipe.rendering.pack import PackError, PackManifest, extract_pack, read_manifest
from batchpipe.storage import store_for


@contextmanager
def local_copy(uri: str, suffix: str = "") -> Iterator[Path]:
    """A local path for a URI: the path itself, or a temporary download of an s3:// object."""
    with ExitStack() as stack:
        try:
            path = stack.enter_context(store_for(uri).local_copy("", suffix))
        except FileNotFoundError:
            raise InputError(f"{uri}: no such object") from None
        yield path


@contextmanager
def local_blend(uri: str, manifest: PackManifest | None = None) -> Iterator[tuple[Path, PackManifest | None]]:
    """The .blend to open for an input: the file itself, or the packed .blend of a pack zip (what `batchpipe run
    render` uploads: the .blend and every file it uses), extracted safely to a temporary directory with everything
    it uses, checked against `manifest` when given (the plan's); with the pack's manifest."""
    with local_copy(uri, ".zip" if uri.lower().endswith(".zip") else ".blend") as path:
        if not (uri.lower().endswith(".zip") and zipfile.is_zipfile(path)):
            yield path, None
            return
        with tempfile.TemporaryDirectory(prefix="batchpipe-pack-") as tmp:
            root = Path(tmp).resolve()
            try:
                blend = extract_pack(path, root, manifest)
            except PackError as exc:
                raise InputError(f"{uri}: {exc}") from None
            # checked against the plan's manifest: that is the pack's (hashing every file again is work twice)
            yield blend, manifest if manifest is not None else read_manifest(path, blend, root)


def preprocess(args: argparse.Namespace) -> None:
    layout = RunLayout.at(args.output)
    with local_blend(args.input) as (blend, pack):
        try:
            frames = parse_frames_option(args.frames) if args.frames is not None else None
        except ValueError as exc:
            raise InputError(str(exc)) from None
        plan = rp.preprocess(blend, args.job_name, args.frames_per_job, source=args.input, frames=frames,
                             resolution_percentage=args.resolution_percentage, samples=args.samples,
                             pack=pack, renderer_version=rp.renderer().version)  # fmt: skip
    layout.write_json(layout.plan, plan)
    print(json.dumps({"shards": plan.shards, "frames": plan.frames, "planUri": layout.uri(layout.plan)}))


def render(args: argparse.Namespace) -> None:
    layout = RunLayout.at(args.output)
    plan = rp.read_plan(layout)
    shard = shard_index(args.shard, args.shard_list)
    if not 0 <= shard < plan.shards:
        raise InputError(f"shard {shard} out of range: the plan has {plan.shards} shards")
    if args.resume and already_rendered(args.output, plan, shard):
        print(json.dumps({"shard": shard, "resultUri": layout.uri(layout.shard(shard)),
                          "skipped": "already complete"}))  # fmt: skip
        return
    store = layout.store
    with local_blend(plan.input, plan.pack) as (blend, _), store.local_dir(layout.frames) as frames_dir:
        threads = args.threads or default_workers()
        result = rp.render_shard(plan, shard, blend, frames_dir, threads, rp.renderer())
        for f in result.rendered:
            store.publish(layout.frame(f), frames_dir / frame_filename(f), keep=True)
    layout.write_json(layout.shard(shard), result)
    print(json.dumps({"shard": shard, "rendered": len(result.rendered), "missing": result.missing}))
    if result.error:
        print(f"error: {result.error}", file=sys.stderr)
        sys.exit(1)


def already_rendered(output: str, plan: RenderPlan, shard: int) -> bool:
    """Whether the shard's stored result is complete for this plan and every one of its frames is in place (a
    valid PNG in a directory, the object in S3): `batchpipe.pipelines.render.rendered_shards` for this shard."""
    return shard in rp.rendered_shards(output, plan, rp.frame_check(output, plan), [shard])


def stitch(args: argparse.Namespace) -> None:
    """The plan's frames are fetched from S3 with one paginated listing of frames/ and concurrent gets (only this
    plan's frame names; a frame not there is left to stitch to report)."""
    layout = RunLayout.at(args.output)
    store = layout.store
    plan = rp.read_plan(layout)
    results = rp.shard_results(layout, plan)
    video = None
    complete = all(r is not None and not r.missing for r in results)
    wanted = [frame_filename(f) for f in rp.all_frames(plan)] if complete else []
    with store.local_dir(layout.frames, fetch=wanted) as frames_dir:
        if complete:
            with store.local_dir("") as out_dir:
                video_path = out_dir / layout.video
                video = rp.stitch(plan, frames_dir, video_path)
                store.publish(layout.video, video_path)
    doc = rp.collate(plan, results, video, layout.video if video else None)
    layout.write_json(layout.render_result, doc, indent=2)
    print(json.dumps({"status": doc.status, "video": doc.video, "missingFrames": doc.missing_frame_ranges}))
    if doc.status != "SUCCEEDED":
        sys.exit(1)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="batchpipe.jobs.render", description=(__doc__ or "").splitlines()[0])
    sub = parser.add_subparsers(dest="stage", required=True)
    p = sub.add_parser("preprocess")
    p.add_argument("--input", required=True)
    p.add_argument("--output", required=True)
    p.add_argument("--job-name", required=True)
    p.add_argument("--frames-per-job", required=True, help='frames per array child; the workshop passes "1"')
    p.add_argument("--frames", metavar="START-END", help="these frames instead of the scene's range")
    p.add_argument("--resolution-percentage", type=int, help="scale the resolution")
    p.add_argument("--samples", type=int, help="render samples (Cycles or EEVEE)")
    p = sub.add_parser("render")
    p.add_argument("--output", required=True)
    p.add_argument("--shard", type=int)
    p.add_argument("--shard-list", help="an array's shards (0,3-5): child i renders the i-th")
    p.add_argument("--threads", type=int, default=int(os.environ.get("BATCHPIPE_THREADS", "0")) or None)
    p.add_argument("--resume", action="store_true", help="skip the shard when its result and frames are complete")
    p = sub.add_parser("stitch")
    p.add_argument("--output", required=True)
    args = parser.parse_args(argv)
    run_stage({"preprocess": preprocess, "render": render, "stitch": stitch}, args)


if __name__ == "__main__":
    main()
