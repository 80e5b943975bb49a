"""Command lines for Blender, FFmpeg and ffprobe: pure builders, no process is started here."""

from __future__ import annotations

import json
from fractions import Fraction

# Runs inside Blender after the file is loaded (our code; the file's own scripts stay disabled by
# --disable-autoexec). Forces PNG output and applies the preview overrides.
_SETUP = """
import bpy, json
o = json.loads({overrides!r})
s = bpy.context.scene
r = s.render
r.image_settings.file_format = 'PNG'
r.use_file_extension = True
r.use_overwrite = True
r.use_placeholder = False
if o.get('resolutionPercentage') is not None:
    r.resolution_percentage = o['resolutionPercentage']
if o.get('samples') is not None:
    if r.engine == 'CYCLES':
        s.cycles.samples = o['samples']
    elif hasattr(s, 'eevee'):
        s.eevee.taa_render_samples = o['samples']
"""


def blender_render_args(
    blender: str,
    blend_file: str,
    scene: str,
    output_pattern: str,
    first: int,
    last: int,
    step: int,
    threads: int,
    resolution_percentage: int | None = None,
    samples: int | None = None,
) -> list[str]:
    """Headless render of frames first..last by step, auto-run scripts disabled, PNG forced.

    output_pattern: a path ending in '####' (Blender substitutes the frame number and adds '.png').
    Arguments are processed in order: the file, then our setup script, then output and frames, then -a.
    """
    overrides = json.dumps({"resolutionPercentage": resolution_percentage, "samples": samples})
    return [
        blender,
        "--background",
        "--factory-startup",
        "--disable-autoexec",
        "--python-exit-code",
        "1",
        blend_file,
        "--scene",
        scene,
        "--python-expr",
        _SETUP.format(overrides=overrides),
        "--render-output",
        output_pattern,
        "--render-format",
        "PNG",
        "--use-extension",
        "1",
        "--threads",
        str(threads),
        "--frame-start",
        str(first),
        "--frame-end",
        str(last),
        "--frame-jump",
        str(step),
        "--render-anim",
    ]


def ffmpeg_stitch_args(ffmpeg: str, sequence_pattern: str, rate: Fraction, frames: int, output: str) -> list[str]:
    """H.264 MP4 from a numbered PNG sequence (%06d from 0): yuv420p, even size (padded), +faststart."""
    return [
        ffmpeg,
        "-hide_banner",
        "-loglevel",
        "error",
        "-nostdin",
        "-y",
        "-framerate",
        f"{rate.numerator}/{rate.denominator}",
        "-start_number",
        "0",
        "-i",
        sequence_pattern,
        "-frames:v",
        str(frames),
        "-vf",
        "pad=ceil(iw/2)*2:ceil(ih/2)*2",
        "-c:v",
        "libx264",
        "-pix_fmt",
        "yuv420p",
        "-r",
        f"{rate.numerator}/{rate.denominator}",
        "-movflags",
        "+faststart",
        output,
    ]


def ffprobe_args(ffprobe: str, video: str) -> list[str]:
    """Counted frames, size and rate of the first video stream, as JSON."""
    return [
        ffprobe,
        "-v",
        "error",
        "-select_streams",
        "v:0",
        "-count_frames",
        "-show_entries",
        "stream=nb_read_frames,width,height,r_frame_rate,codec_name,pix_fmt",
        "-of",
        "json",
        video,
    ]
