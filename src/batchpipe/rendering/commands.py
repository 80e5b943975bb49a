"""Command lines for FFmpeg and ffprobe: pure builders, no process is started here (Blender's: `renderer`)."""

from __future__ import annotations

from fractions import Fraction


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
