"""Frame ranges, shards and file names: pure functions.

A scene renders frames start, start + step, ..., never past end; shard i renders the frames from
start + i * framesPerJob * step. Frame files are named by frame number, at least four digits (Blender's ####).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from fractions import Fraction

MAX_ARRAY_SIZE = 10_000


@dataclass(frozen=True)
class FrameRange:
    start: int
    end: int
    step: int

    def __post_init__(self) -> None:
        if self.step < 1:
            raise ValueError(f"frame step must be at least 1, got {self.step}")
        if self.end < self.start:
            raise ValueError(f"frame range {self.start}-{self.end} has no frames")

    @property
    def count(self) -> int:
        return (self.end - self.start) // self.step + 1

    def frames(self) -> list[int]:
        return list(range(self.start, self.end + 1, self.step))


def shard_count(frames: int, frames_per_job: int) -> int:
    if frames_per_job < 1:
        raise ValueError("frames per job must be at least 1")
    return math.ceil(frames / frames_per_job)


def shard_frames(rng: FrameRange, frames_per_job: int, index: int) -> list[int]:
    """The frames array child `index` renders."""
    n = shard_count(rng.count, frames_per_job)
    if not 0 <= index < n:
        raise ValueError(f"shard {index} out of range: {n} shards")
    first = rng.start + index * frames_per_job * rng.step
    last = min(rng.end, first + (frames_per_job - 1) * rng.step)
    return list(range(first, last + 1, rng.step))


def frame_filename(frame: int) -> str:
    """Blender's '####' naming: the frame number padded to four digits, a minus sign in front (-3 -> -0003.png)."""
    return f"-{-frame:04d}.png" if frame < 0 else f"{frame:04d}.png"


MAX_FRAME = 1_048_574  # Blender's MAXFRAME


def parse_frames_option(text: str) -> tuple[int, int]:
    """'START-END' or a single frame 'N', frames 0 to Blender's 1,048,574.

    Negative frames are refused: Blender's command line reads '-N' as N frames before the scene's end (and a
    scene's own range cannot start below 0), so it would render other frames than the ones asked for."""
    m = re.fullmatch(r"\s*(-?\d+)\s*(?:-\s*(-?\d+)\s*)?", text)
    if not m:
        raise ValueError(f"--frames {text!r}: expected START-END, e.g. 1-48")
    start = int(m.group(1))
    end = int(m.group(2)) if m.group(2) is not None else start
    if start < 0 or end < 0:
        raise ValueError(
            f"--frames {text!r}: frames start at 0 (Blender reads a negative frame as counted back from the scene's "
            "end, so it cannot render frames below 0)"
        )
    if end > MAX_FRAME:
        raise ValueError(f"--frames {text!r}: Blender renders frames up to {MAX_FRAME:,}")
    if end < start:
        raise ValueError(f"--frames {text!r}: the range has no frames (END is before START)")
    return start, end


def frame_rate(fps: int, fps_base: float) -> Fraction:
    """Blender's fps / fps_base as an exact fraction (30 / 1.001 -> 30000/1001)."""
    if fps <= 0 or fps_base <= 0:
        raise ValueError(f"invalid frame rate {fps}/{fps_base}")
    return Fraction(fps) / Fraction(f"{fps_base:.6g}")  # fps_base is a 32-bit float in the .blend: 1.00100004673


def output_size(width: int, height: int, percentage: int) -> tuple[int, int]:
    """The pixel size Blender renders: resolution scaled by the percentage, truncated."""
    return max(1, width * percentage // 100), max(1, height * percentage // 100)


def threads_per_process(cores: int, workers: int) -> int:
    """Threads for each of `workers` parallel Blender processes so that together they use the cores once."""
    return max(1, cores // max(1, workers))
