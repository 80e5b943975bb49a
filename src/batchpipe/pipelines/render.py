"""The rendering pipeline: preprocess (inspect the .blend) -> render shards (Blender) -> stitch (FFmpeg).

The same functions run in the local engine's worker threads and in the render container.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from fractions import Fraction
from pathlib import Path
from typing import Literal

from batchpipe import storage
from batchpipe.errors import BatchpipeError, InputError
from batchpipe.layout import RunLayout
from batchpipe.pipelines.render_documents import (
    RenderPlan,
    RenderPlanBody,
    RenderResult,
    RenderShardResult,
    VideoInfo,
)
from batchpipe.rendering.blenderlog import BlenderOutput, log_name, read_crash_report, shard_error
from batchpipe.rendering.blendfile import BlendError, file_version, inspect_blend
from batchpipe.rendering.commands import ffmpeg_stitch_args, ffprobe_args
from batchpipe.rendering.frames import (
    MAX_ARRAY_SIZE,
    FrameRange,
    frame_filename,
    frame_rate,
    output_size,
    shard_count,
    shard_frames,
)
from batchpipe.rendering.pack import PackManifest
from batchpipe.rendering.pngcheck import png_problem
from batchpipe.rendering.renderer import Renderer
from batchpipe.rendering.versions import blender_version, check_renderer

PLAN_VERSION = 1
LOG_TAIL_LINES = 15


RENDER_EXTRA = "install the renderer: pip install 'batchpipe[render]' (make install does), or pass --blender PATH"


def renderer(blender: str | None = None) -> Renderer:
    """The Blender that renders: `blender` (--blender PATH), else $BATCHPIPE_BLENDER, else Blender's official
    build as the `bpy` module of this interpreter (the `render` extra). InputError when there is none."""
    given = blender or os.environ.get("BATCHPIPE_BLENDER")
    if given:
        found = shutil.which(given)
        if not found:
            label = f"--blender {given}" if blender else f"BATCHPIPE_BLENDER={given}"
            raise InputError(f"{label}: no such executable")
        return Renderer("executable", found, blender_version(found))
    if importlib.util.find_spec("bpy") is None:
        raise InputError("no Blender to render with: the bpy module is not installed", RENDER_EXTRA)
    return Renderer("module", sys.executable, importlib.metadata.version("bpy"))


def tool(name: str) -> str:
    """Path of ffmpeg or ffprobe: $BATCHPIPE_<NAME> or the PATH."""
    variable = f"BATCHPIPE_{name.upper()}"
    given = os.environ.get(variable)
    if given:
        found = shutil.which(given)
        if not found:
            raise InputError(f"{variable}={given}: no such executable")
        return found
    found = shutil.which(name)
    if not found:
        raise InputError(
            f"{name} not found on PATH",
            f"install it (Debian: apt-get install ffmpeg) or set {variable}",
        )
    return found


def parse_frames_per_job(value: int | str, source: str = "framesPerJob") -> int:
    """framesPerJob as the workshop passes it (the string "1") or as a number."""
    try:
        n = int(str(value).strip())
    except ValueError:
        raise InputError(f"{source} {value!r}: expected a whole number of frames per job") from None
    if n < 1:
        raise InputError(f"{source} {value!r}: must be at least 1")
    return n


def preprocess(
    blend: Path,
    job_name: str,
    frames_per_job: int | str,
    source: str | None = None,
    frames: tuple[int, int] | None = None,
    resolution_percentage: int | None = None,
    samples: int | None = None,
    pack: PackManifest | None = None,
    *,
    renderer_version: str,
) -> RenderPlan:
    """Inspect the file and plan the shards for the Blender of `renderer_version` ("3.4.1"). Bad input raises
    InputError before anything renders, and so does a file saved by a newer Blender than the renderer. `pack`: the
    manifest of the pack `blend` was extracted from (an AWS run), recorded in the plan and its hash."""
    name = source or str(blend)
    per_job = parse_frames_per_job(frames_per_job)
    saved_by = _saved_by(blend, name)
    check_renderer(name, saved_by, renderer_version)
    try:
        info = inspect_blend(blend)
    except BlendError as exc:
        raise InputError(f"{name}: {exc}") from None
    start, end = frames if frames is not None else (info.frame_start, info.frame_end)
    try:
        rng = FrameRange(start, end, info.frame_step)
    except ValueError as exc:
        raise InputError(f"{name}: scene {info.scene!r}: {exc}") from None
    try:
        rate = frame_rate(info.fps, info.fps_base)
    except ValueError as exc:
        raise InputError(f"{name}: scene {info.scene!r}: {exc}") from None
    percentage = resolution_percentage if resolution_percentage is not None else info.resolution_percentage
    if not 1 <= percentage <= 10_000:
        raise InputError(f"resolution percentage {percentage}: must be between 1 and 10000")
    if samples is not None and samples < 1:
        raise InputError(f"samples {samples}: must be at least 1")
    # AWS Batch arrays have at most 10,000 children: larger renders get more frames per child
    effective = max(per_job, -(-rng.count // MAX_ARRAY_SIZE))
    with blend.open("rb") as fh:
        blend_hash = hashlib.file_digest(fh, "sha256").hexdigest()
    body = RenderPlanBody(
        version=PLAN_VERSION,
        pipeline="render",
        job_name=job_name,
        input=name,
        scene=info.scene,
        engine=info.engine,
        compression=info.compression,
        blender_version=info.blender_version,
        blend_sha256=blend_hash,
        frame_start=rng.start,
        frame_end=rng.end,
        frame_step=rng.step,
        frames=rng.count,
        fps=float(rate),
        frame_rate=f"{rate.numerator}/{rate.denominator}",
        resolution=[info.width, info.height],
        resolution_percentage=percentage,
        output_size=list(output_size(info.width, info.height, percentage)),
        samples=samples,
        frames_per_job_requested=per_job,
        frames_per_job=effective,
        shards=shard_count(rng.count, effective),
        file_version=saved_by,
        blender=renderer_version,
        pack=pack,
    )
    return RenderPlan(**dict(body), plan_hash=plan_hash(body))


def _saved_by(blend: Path, name: str) -> str:
    """The version of Blender that saved the file, from its header (InputError when there is no readable one)."""
    if not blend.is_file():
        raise InputError(f"{name}: no such file")
    try:
        return file_version(blend)
    except BlendError as exc:
        raise InputError(f"{name}: {exc}") from None


def check_input(
    blend: Path,
    job_name: str,
    frames_per_job: int | str,
    frames: tuple[int, int] | None = None,
    resolution_percentage: int | None = None,
    samples: int | None = None,
) -> None:
    """`preprocess`'s checks where the renderer is not known (before an AWS run: the render container's own
    preprocess refuses a file newer than its Blender); nothing is written."""
    preprocess(blend, job_name, frames_per_job, frames=frames, resolution_percentage=resolution_percentage,
               samples=samples, renderer_version=_saved_by(blend, str(blend)))  # fmt: skip


# What a frame's pixels and a shard's frames depend on, the renderer's version included (another Blender may render
# other pixels). Not the input's path or name (a moved file with the same bytes renders the same frames), nor the
# frame rate (only the video uses it, and the video is always remade).
FINGERPRINT = ("version", "blendSha256", "scene", "engine", "frameStart", "frameEnd", "frameStep", "resolution",
               "resolutionPercentage", "outputSize", "samples", "framesPerJob", "shards", "blender",
               "pack")  # fmt: skip


def plan_hash(plan: RenderPlanBody) -> str:
    """A fingerprint of everything the frames depend on (preprocess stores it in the plan as "planHash")."""
    stored = plan.stored()
    content = {k: stored[k] for k in FINGERPRINT}
    return hashlib.sha256(json.dumps(content, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:24]


def is_complete(plan: RenderPlan, shard: int, result: RenderShardResult | None) -> bool:
    """Whether a stored shard result is this plan's and rendered every one of its frames (its frames on disk or in
    S3 are checked separately)."""
    if result is None or result.plan_hash != plan.plan_hash or result.shard != shard:
        return False
    frames = frames_of_shard(plan, shard)
    return result.frames == frames and result.rendered == frames and not result.missing and result.error is None


FrameCheck = Callable[[str], bool]
"""Whether the frame at a URI (a path, or an s3:// URI) is in place."""


def frame_check(output: str, plan: RenderPlanBody) -> FrameCheck:
    """How the storage at `output` tells that a frame is in place: in a directory, the file is a complete PNG of
    the plan's size; in S3, the object exists (one HEAD: frames are uploaded only after they pass the PNG check,
    and an S3 object is whole or absent)."""
    size = _size(plan)

    def in_place(uri: str) -> bool:
        path = storage.local_file(uri)
        return storage.exists(uri) if path is None else png_problem(path, size) is None

    return in_place


def rendered_shards(
    output: str, plan: RenderPlan, frame_ok: FrameCheck, shards: Iterable[int] | None = None
) -> dict[int, RenderShardResult]:
    """The shards of `plan` (all of them, or those in `shards`) already rendered at `output`, with their stored
    results: a shard counts when its result is complete for this very plan (`is_complete`; a missing, unreadable
    or corrupt result, or another job's, does not) and every one of its frames passes `frame_ok` (`frame_check`).
    Results and frames are found by name: nothing is listed. Both the local engine and the render container
    decide what to resume with it."""
    layout = RunLayout.at(output)
    if shards is None:
        results = list(enumerate(shard_results(layout, plan)))
    else:
        results = [(s, layout.shard_result(RenderShardResult, plan.job_name, s)) for s in shards]
    return {
        s: r
        for s, r in results
        if r is not None
        and is_complete(plan, s, r)
        and all(frame_ok(layout.uri(layout.frame(f))) for f in frames_of_shard(plan, s))
    }


def _size(plan: RenderPlanBody) -> tuple[int, int]:
    width, height = plan.output_size
    return width, height


def read_plan(layout: RunLayout) -> RenderPlan:
    """The run's plan.json (FileNotFoundError when there is none, ValueError when it is not a render plan)."""
    return layout.read_document(layout.plan, RenderPlan)


def shard_results(layout: RunLayout, plan: RenderPlan) -> list[RenderShardResult | None]:
    """Every shard's stored result of this job, by index (None where there is none)."""
    return layout.shard_results(RenderShardResult, plan.job_name, plan.shards)


def frame_range(plan: RenderPlanBody) -> FrameRange:
    return FrameRange(plan.frame_start, plan.frame_end, plan.frame_step)


def all_frames(plan: RenderPlanBody) -> list[int]:
    return frame_range(plan).frames()


def frames_of_shard(plan: RenderPlanBody, shard: int) -> list[int]:
    return shard_frames(frame_range(plan), plan.frames_per_job, shard)


def _frame_of(saved_line: str) -> int | None:
    """The frame number in Blender's "Saved: '/dir/0007.png'" line."""
    if not saved_line.startswith("Saved:"):
        return None
    name = Path(saved_line.split(":", 1)[1].strip().strip("'\"")).name
    stem = name.removesuffix(".png")
    try:
        return int(stem)
    except ValueError:
        return None


def render_shard(
    plan: RenderPlan,
    shard: int,
    blend: Path,
    frames_dir: Path,
    threads: int,
    renderer: Renderer,
    on_frame: Callable[[int], None] | None = None,
    log_file: Path | None = None,
    on_process: Callable[[subprocess.Popen[str]], None] | None = None,
) -> RenderShardResult:
    """Render one shard's frames with Blender and check every expected frame is a complete PNG.

    on_process receives the Blender process as soon as it starts (the local engine stops it on Ctrl-C).
    """
    frames = frames_of_shard(plan, shard)
    frames_dir.mkdir(parents=True, exist_ok=True)
    args = renderer.render_args(
        str(blend),
        plan.scene,
        str(frames_dir / "####"),
        frames[0],
        frames[-1],
        plan.frame_step,
        threads,
        resolution_percentage=plan.resolution_percentage,
        samples=plan.samples,
    )
    started = time.monotonic()
    tail = BlenderOutput(LOG_TAIL_LINES)
    log = log_file.open("w", encoding="utf-8") if log_file else None
    try:
        proc = subprocess.Popen(
            args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace", bufsize=1
        )
        if on_process:
            on_process(proc)
        assert proc.stdout is not None
        for line in proc.stdout:
            if log:
                log.write(line)
            tail.append(line.rstrip())
            frame = _frame_of(line)
            if frame is not None and on_frame:
                on_frame(frame)
        code = proc.wait()
    finally:
        if log:
            log.close()
    size = _size(plan)
    problems = {f: p for f in frames if (p := png_problem(frames_dir / frame_filename(f), size)) is not None}
    crash_report = read_crash_report(tail.crash_report) if code != 0 else []
    error = shard_error(shard, code, tail, problems, log_name(log_file, frames_dir.parent), crash_report)
    return RenderShardResult(
        job_name=plan.job_name,
        shard=shard,
        plan_hash=plan.plan_hash,
        frames=frames,
        rendered=[f for f in frames if f not in problems],
        missing=sorted(problems),
        error=error,
        seconds=round(time.monotonic() - started, 3),
    )


def failed_shard(plan: RenderPlan, shard: int, message: str) -> RenderShardResult:
    frames = frames_of_shard(plan, shard)
    return RenderShardResult(job_name=plan.job_name, shard=shard, plan_hash=plan.plan_hash, frames=frames,
                             rendered=[], missing=frames, error=message, seconds=0.0)  # fmt: skip


def partial_video(video: Path) -> Path:
    """Where `stitch` writes the video until its frames are counted (then it is moved into place)."""
    return video.with_name(f".{video.name}.partial.mp4")


def stitch(plan: RenderPlanBody, frames_dir: Path, video: Path) -> VideoInfo:
    """output.mp4 from every frame in order, at the scene's frame rate; the frame count is checked."""
    frames = all_frames(plan)
    size = _size(plan)
    bad = [f for f in frames if png_problem(frames_dir / frame_filename(f), size) is not None]
    if bad:
        raise BatchpipeError(f"cannot stitch: frames missing or invalid: {ranges_text(bad)}")
    rate = frame_rate_of(plan)
    video.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="batchpipe-stitch-") as tmp:
        for i, f in enumerate(frames):  # a gap-free sequence whatever the frame numbers and step
            os.symlink((frames_dir / frame_filename(f)).resolve(), Path(tmp) / f"{i:06d}.png")
        partial = partial_video(video)
        run = subprocess.run(
            ffmpeg_stitch_args(tool("ffmpeg"), str(Path(tmp) / "%06d.png"), rate, len(frames), str(partial)),
            capture_output=True,
            text=True,
            check=False,
        )
        if run.returncode != 0:
            partial.unlink(missing_ok=True)
            raise BatchpipeError(f"ffmpeg failed (exit {run.returncode}): {run.stderr.strip()[-800:]}")
    probe = probe_video(partial)
    if probe.frames != len(frames):
        partial.unlink(missing_ok=True)
        raise BatchpipeError(f"the video has {probe.frames} frames, expected {len(frames)}")
    os.replace(partial, video)
    return probe


def frame_rate_of(plan: RenderPlanBody) -> Fraction:
    return Fraction(plan.frame_rate)


def probe_video(video: Path) -> VideoInfo:
    run = subprocess.run(ffprobe_args(tool("ffprobe"), str(video)), capture_output=True, text=True, check=False)
    if run.returncode != 0:
        raise BatchpipeError(f"ffprobe cannot read {video}: {run.stderr.strip()[-400:]}")
    streams = json.loads(run.stdout).get("streams") or []
    if not streams:
        raise BatchpipeError(f"{video} has no video stream")
    s = streams[0]
    return VideoInfo(
        frames=int(s.get("nb_read_frames", 0)),
        width=int(s["width"]),
        height=int(s["height"]),
        frame_rate=s.get("r_frame_rate"),
        codec=s.get("codec_name"),
        pixel_format=s.get("pix_fmt"),
    )


def ranges_text(frames: list[int]) -> str:
    """[1, 2, 3, 7] -> '1-3, 7'."""
    groups: list[list[int]] = []
    for f in sorted(frames):
        if groups and f == groups[-1][1] + 1:
            groups[-1][1] = f
        else:
            groups.append([f, f])
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in groups)


def collate(
    plan: RenderPlan,
    shard_results: list[RenderShardResult | None],
    video: VideoInfo | None,
    video_name: str | None,
) -> RenderResult:
    """The render.json document."""
    results = [r or failed_shard(plan, i, f"shard {i} produced no result") for i, r in enumerate(shard_results)]
    rendered = sorted(f for r in results for f in r.rendered)
    missing = sorted(f for r in results for f in r.missing)
    errors = [r.error for r in results if r.error]
    status: Literal["SUCCEEDED", "PARTIAL", "FAILED"]
    if not missing and video is not None:
        status = "SUCCEEDED"
    elif rendered:
        status = "PARTIAL"
    else:
        status = "FAILED"
    return RenderResult(
        job_name=plan.job_name,
        status=status,
        input=plan.input,
        scene=plan.scene,
        engine=plan.engine,
        frame_start=plan.frame_start,
        frame_end=plan.frame_end,
        frame_step=plan.frame_step,
        fps=plan.fps,
        frame_rate=plan.frame_rate,
        resolution=plan.output_size,
        resolution_percentage=plan.resolution_percentage,
        samples=plan.samples,
        frames_per_job=plan.frames_per_job,
        shards=plan.shards,
        frames=len(all_frames(plan)),
        frames_rendered=[frame_filename(f) for f in rendered],
        missing_frames=missing,
        missing_frame_ranges=ranges_text(missing) if missing else None,
        errors=errors,
        video=video_name if video is not None else None,
        video_info=video,
        blender=plan.blender,
        file_version=plan.file_version,
    )
