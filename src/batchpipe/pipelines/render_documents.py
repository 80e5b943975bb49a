"""The rendering pipeline's stored documents: the plan (plan.json), a shard's result (shards/shard-NNNNN.json),
the video's probe and the collated result (render.json)."""

from __future__ import annotations

from typing import Literal

from batchpipe.documents import Document, ShardDocument
from batchpipe.rendering.pack import PackManifest


class RenderPlanBody(Document):
    """A render plan without its hash (`render.plan_hash` covers `render.FINGERPRINT`)."""

    version: int
    pipeline: Literal["render"]
    job_name: str
    input: str
    scene: str
    engine: str
    compression: str  # none, gzip, zstd
    blender_version: str  # the version that saved the file
    blend_sha256: str
    frame_start: int
    frame_end: int
    frame_step: int
    frames: int
    fps: float
    frame_rate: str  # exact, as a fraction: "30000/1001"
    resolution: list[int]  # the scene's, before its percentage
    resolution_percentage: int
    output_size: list[int]  # the frames' width and height
    samples: int | None  # None: the file's own
    frames_per_job_requested: int
    frames_per_job: int
    shards: int
    # Appended after the fields above, defaulted so that a plan stored before they were recorded still reads (the
    # local engine then removes that plan's files: its hash never matches a new plan's).
    file_version: str | None = None  # the version that saved the file, from its header ("3.4")
    blender: str | None = None  # the renderer's version ("3.4.1"), part of the hash
    pack: PackManifest | None = None  # an AWS run renders from a pack: the .blend and every file it uses


class RenderPlan(RenderPlanBody):
    plan_hash: str


class RenderShardResult(ShardDocument):
    frames: list[int]
    rendered: list[int]
    missing: list[int]
    error: str | None
    seconds: float


class VideoInfo(Document):
    """What ffprobe reads of the stitched video."""

    frames: int
    width: int
    height: int
    frame_rate: str | None
    codec: str | None
    pixel_format: str | None


class RenderResult(Document):
    """render.json."""

    job_name: str
    status: Literal["SUCCEEDED", "PARTIAL", "FAILED"]
    input: str
    scene: str
    engine: str
    frame_start: int
    frame_end: int
    frame_step: int
    fps: float
    frame_rate: str
    resolution: list[int]  # the frames' size (the plan's outputSize)
    resolution_percentage: int
    samples: int | None
    frames_per_job: int
    shards: int
    frames: int
    frames_rendered: list[str]  # file names, in frame order
    missing_frames: list[int]
    missing_frame_ranges: str | None  # "1-3, 7"
    errors: list[str]
    video: str | None
    video_info: VideoInfo | None
    blender: str | None  # the plan's: the renderer's version (None only for a plan that did not record it)
    file_version: str | None
