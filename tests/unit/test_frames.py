"""Rendering's pure parts: frame ranges and shards, options, rates and sizes, command lines, PNG checks, preprocess.

Nothing here starts Blender or FFmpeg. The "real" .blend is the template Debian's blender-data package installs
(read as bytes only); it is required, not optional: `make install` puts it there.
"""

from __future__ import annotations

import gzip
import itertools
import json
import struct
import zlib
from fractions import Fraction
from pathlib import Path

import pytest

from batchpipe.errors import InputError
from batchpipe.pipelines.render import preprocess
from batchpipe.rendering.blendfile import inspect_blend
from batchpipe.rendering.commands import ffmpeg_stitch_args, ffprobe_args
from batchpipe.rendering.frames import (
    MAX_ARRAY_SIZE,
    FrameRange,
    frame_filename,
    frame_rate,
    output_size,
    parse_frames_option,
    shard_count,
    shard_frames,
    threads_per_process,
)
from batchpipe.rendering.pngcheck import png_problem
from batchpipe.rendering.renderer import SCRIPT, Renderer

REAL_BLEND = Path("/usr/share/blender/scripts/startup/bl_app_templates_system/VFX/startup.blend")  # saved by 2.80
RENDERER = "3.4.1"  # the Blender the plans are for


# --- frame ranges and shards ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "end", "step", "count"),
    [(1, 10, 1, 10), (1, 10, 3, 4), (1, 11, 3, 4), (1, 12, 3, 4), (1, 13, 3, 5), (5, 5, 1, 1), (5, 6, 7, 1),
     (0, 0, 1, 1), (-3, 3, 2, 4), (-5, -1, 1, 5), (-4, 13, 3, 6), (1, 250, 1, 250)],
)  # fmt: skip
def test_frame_range_count_matches_its_frames(start: int, end: int, step: int, count: int) -> None:
    rng = FrameRange(start, end, step)
    assert rng.count == count
    frames = rng.frames()
    assert len(frames) == count
    assert frames[0] == start and frames[-1] <= end and frames[-1] + step > end
    assert all(b - a == step for a, b in itertools.pairwise(frames))


@pytest.mark.parametrize(("start", "end", "step"), [(1, 10, 0), (1, 10, -1), (5, 4, 1), (-1, -2, 1)])
def test_frame_range_rejects_no_frames_and_bad_steps(start: int, end: int, step: int) -> None:
    with pytest.raises(ValueError):
        FrameRange(start, end, step)


def _all_shards(rng: FrameRange, per_job: int) -> list[list[int]]:
    return [shard_frames(rng, per_job, i) for i in range(shard_count(rng.count, per_job))]


@pytest.mark.parametrize(
    ("start", "end", "step", "per_job", "expected"),
    [
        (5, 11, 1, 3, [[5, 6, 7], [8, 9, 10], [11]]),  # not from 1, 7 frames not divisible by 3
        (-2, 4, 2, 3, [[-2, 0, 2], [4]]),  # negative start through 0, step 2
        (0, 4, 1, 2, [[0, 1], [2, 3], [4]]),
        (-5, -1, 1, 2, [[-5, -4], [-3, -2], [-1]]),
        (1, 10, 3, 3, [[1, 4, 7], [10]]),
        (1, 11, 3, 3, [[1, 4, 7], [10]]),  # 13 would be past the end
        (1, 12, 3, 2, [[1, 4], [7, 10]]),
        (7, 7, 1, 5, [[7]]),
        (1, 4, 1, 100, [[1, 2, 3, 4]]),
    ],
)
def test_shard_frames_examples(start: int, end: int, step: int, per_job: int, expected: list[list[int]]) -> None:
    assert _all_shards(FrameRange(start, end, step), per_job) == expected


def test_shards_cover_every_frame_once_in_order_never_past_the_end() -> None:
    cases = 0
    for start in range(-6, 7):
        for end in range(start, start + 13):
            for step in range(1, 5):
                rng = FrameRange(start, end, step)
                for per_job in range(1, 6):
                    shards = _all_shards(rng, per_job)
                    flat = [f for shard in shards for f in shard]
                    assert flat == rng.frames(), (rng, per_job)
                    assert all(1 <= len(s) <= per_job for s in shards), (rng, per_job)
                    assert all(len(s) == per_job for s in shards[:-1]), (rng, per_job)  # only the last is short
                    assert max(flat) <= end and min(flat) == start
                    cases += 1
    assert cases == 13 * 13 * 4 * 5


def test_shard_index_out_of_range() -> None:
    rng = FrameRange(5, 11, 1)
    with pytest.raises(ValueError, match="out of range"):
        shard_frames(rng, 3, 3)
    with pytest.raises(ValueError):
        shard_frames(rng, 3, -1)


@pytest.mark.parametrize(("frames", "per_job", "shards"), [(7, 3, 3), (6, 3, 2), (1, 1, 1), (1, 100, 1), (250, 1, 250),
                                                            (250, 7, 36), (10_000, 1, 10_000)])  # fmt: skip
def test_shard_count(frames: int, per_job: int, shards: int) -> None:
    assert shard_count(frames, per_job) == shards


@pytest.mark.parametrize("per_job", [0, -1])
def test_shard_count_rejects_less_than_one_frame_per_job(per_job: int) -> None:
    with pytest.raises(ValueError):
        shard_count(10, per_job)


@pytest.mark.parametrize(
    ("frame", "name"),
    # Blender 3.4's '####' pads the digits to four and puts a minus sign in front: frame -3 -> '-0003.png'
    [(1, "0001.png"), (7, "0007.png"), (0, "0000.png"), (250, "0250.png"), (12345, "12345.png"),
     (-3, "-0003.png"), (-12, "-0012.png"), (-12345, "-12345.png")],
)  # fmt: skip
def test_frame_filename_is_blenders_naming(frame: int, name: str) -> None:
    assert frame_filename(frame) == name


# --- options, rates and sizes --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [("1-48", (1, 48)), ("5", (5, 5)), (" 3 - 7 ", (3, 7)), ("0-0", (0, 0)), ("9-9", (9, 9)),
     ("0010-0012", (10, 12)), ("0-1048574", (0, 1_048_574))],
)  # fmt: skip
def test_parse_frames_option(text: str, expected: tuple[int, int]) -> None:
    assert parse_frames_option(text) == expected


@pytest.mark.parametrize("text", ["", " ", "a-b", "1-", "-", "1:5", "1-2-3", "1.5-3", "1,2", "5-3", "-1--5", "1 2"])
def test_parse_frames_option_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="--frames"):
        parse_frames_option(text)


@pytest.mark.parametrize("text", ["-1-2", "-5--1", "-3", "-3-2", "0-1048575", "1048575"])
def test_parse_frames_option_rejects_frames_blender_cannot_render(text: str) -> None:
    # Blender's -s/-e read "-N" as N frames before the scene's end: `--frames -1-2` rendered frames 0-3
    with pytest.raises(ValueError, match=r"frames start at 0|up to 1,048,574"):
        parse_frames_option(text)


@pytest.mark.parametrize(
    ("fps", "base", "rate"),
    [(30, 1.001, Fraction(30000, 1001)), (24, 1.0, Fraction(24)), (24, 1.001, Fraction(24000, 1001)),
     (60, 1.001, Fraction(60000, 1001)), (25, 1.0, Fraction(25)), (12, 1.0, Fraction(12)), (50, 2.0, Fraction(25))],
)  # fmt: skip
def test_frame_rate_is_exact(fps: int, base: float, rate: Fraction) -> None:
    assert frame_rate(fps, base) == rate


def test_frame_rate_of_blenders_float32_base() -> None:
    # Blender stores fps_base as a 32-bit float: 1.001 reads back as 1.00100004673...
    (base,) = struct.unpack("<f", struct.pack("<f", 1.001))
    assert base != 1.001
    assert frame_rate(30, base) == Fraction(30000, 1001)
    assert str(frame_rate(24, 1.0)) == "24"


@pytest.mark.parametrize(("fps", "base"), [(0, 1.0), (-24, 1.0), (24, 0.0), (24, -1.0)])
def test_frame_rate_rejects(fps: int, base: float) -> None:
    with pytest.raises(ValueError):
        frame_rate(fps, base)


@pytest.mark.parametrize(
    ("w", "h", "pct", "size"),
    [(33, 25, 100, (33, 25)), (33, 25, 50, (16, 12)), (1920, 1080, 25, (480, 270)), (1920, 1080, 100, (1920, 1080)),
     (33, 25, 200, (66, 50)), (1, 1, 1, (1, 1)), (10, 10, 1, (1, 1)), (33, 25, 33, (10, 8))],
)  # fmt: skip
def test_output_size_truncates_like_blender(w: int, h: int, pct: int, size: tuple[int, int]) -> None:
    assert output_size(w, h, pct) == size


@pytest.mark.parametrize(("cores", "workers", "threads"), [(16, 4, 4), (16, 1, 16), (2, 2, 1), (2, 4, 1), (7, 2, 3),
                                                            (16, 0, 16), (1, 1, 1)])  # fmt: skip
def test_threads_per_process(cores: int, workers: int, threads: int) -> None:
    assert threads_per_process(cores, workers) == threads


# --- command lines -------------------------------------------------------------------------------------------------


def _after(args: list[str], flag: str) -> str:
    return args[args.index(flag) + 1]


def test_ffmpeg_stitch_args() -> None:
    args = ffmpeg_stitch_args("/usr/bin/ffmpeg", "/tmp/x/%06d.png", Fraction(30000, 1001), 7, "/tmp/out.mp4")
    assert args[0] == "/usr/bin/ffmpeg" and args[-1] == "/tmp/out.mp4"
    assert _after(args, "-c:v") == "libx264"
    assert _after(args, "-pix_fmt") == "yuv420p"
    assert _after(args, "-movflags") == "+faststart"
    assert _after(args, "-vf") == "pad=ceil(iw/2)*2:ceil(ih/2)*2"
    assert _after(args, "-framerate") == "30000/1001"
    assert _after(args, "-r") == "30000/1001"
    assert _after(args, "-frames:v") == "7"
    assert _after(args, "-i") == "/tmp/x/%06d.png"
    assert _after(args, "-start_number") == "0"
    assert args.index("-framerate") < args.index("-i")  # an input option: before the input
    assert "-y" in args and "-nostdin" in args
    whole = ffmpeg_stitch_args("ffmpeg", "p", Fraction(24), 3, "o.mp4")
    assert _after(whole, "-framerate") == "24/1" and _after(whole, "-r") == "24/1"


def test_ffprobe_args_count_frames() -> None:
    args = ffprobe_args("ffprobe", "/tmp/out.mp4")
    assert "-count_frames" in args and args[-1] == "/tmp/out.mp4"
    assert "nb_read_frames" in _after(args, "-show_entries") and _after(args, "-of") == "json"


def test_render_args_of_a_blender_executable() -> None:
    exe = Renderer("executable", "/usr/bin/blender", "3.4.1")
    args = exe.render_args("/s/scene.blend", "Scene", "/o/frames/####", -2, 4, 2, 3, 50, 8)
    assert args[0] == "/usr/bin/blender"
    for flag in ("--background", "--factory-startup", "--disable-autoexec"):
        assert flag in args
    assert "--enable-autoexec" not in args and "-y" not in args
    assert _after(args, "--python-exit-code") == "1"
    blend = args.index("/s/scene.blend")
    # arguments run in order: auto-exec is off before the file loads; our script runs on the loaded file
    assert args.index("--disable-autoexec") < blend < args.index("--python") < args.index("--")
    assert _after(args, "--python") == SCRIPT and Path(SCRIPT).is_file()
    own = args[args.index("--") + 1 :]
    assert _after(own, "--blend") == "/s/scene.blend" and _after(own, "--scene") == "Scene"
    assert _after(own, "--output") == "/o/frames/####"
    assert [_after(own, flag) for flag in ("--first", "--last", "--step", "--threads")] == ["-2", "4", "2", "3"]
    assert json.loads(_after(own, "--overrides")) == {"resolutionPercentage": 50, "samples": 8}
    plain = exe.render_args("f.blend", "S", "o/####", 1, 1, 1, 1)
    assert json.loads(_after(plain, "--overrides")) == {"resolutionPercentage": None, "samples": None}


def test_render_args_of_the_bpy_module_run_the_same_script_isolated() -> None:
    module = Renderer("module", "/venv/bin/python", "4.5.15")
    args = module.render_args("/s/scene.blend", "Scene", "/o/frames/####", 1, 9, 1, 2)
    assert args[:3] == ["/venv/bin/python", "-I", SCRIPT]  # -I: no PYTHONPATH, no user site, no script dir
    executable = Renderer("executable", "b", "4.5.15").render_args("/s/scene.blend", "Scene", "/o/frames/####",
                                                                    1, 9, 1, 2)  # fmt: skip
    assert args[3:] == executable[executable.index("--") + 1 :]  # the same script arguments
    assert module.describe() == "Blender 4.5.15 (the bpy module)"


# --- PNG checks ----------------------------------------------------------------------------------------------------


def make_png(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    raw = b"".join(b"\x00" + bytes(3 * width) for _ in range(height))  # filter byte + RGB row
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def test_pngcheck(tmp_path: Path) -> None:
    good = tmp_path / "0001.png"
    good.write_bytes(make_png(33, 25))
    assert png_problem(good) is None
    assert png_problem(good, (33, 25)) is None
    assert png_problem(good, (32, 24)) == "33x25, expected 32x24"
    truncated = tmp_path / "0002.png"
    truncated.write_bytes(make_png(33, 25)[:-5])
    assert png_problem(truncated) == "truncated PNG"
    cut_early = tmp_path / "0003.png"
    cut_early.write_bytes(make_png(33, 25)[:40])
    assert png_problem(cut_early, (33, 25)) == "truncated PNG"
    jpeg = tmp_path / "0004.png"
    jpeg.write_bytes(b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(100))
    assert png_problem(jpeg) == "not a PNG"
    empty = tmp_path / "0005.png"
    empty.write_bytes(b"")
    assert png_problem(empty) == "not a PNG"
    assert png_problem(tmp_path / "0006.png") == "missing"
    directory = tmp_path / "0007.png"
    directory.mkdir()
    problem = png_problem(directory)
    assert problem is not None and problem.startswith("unreadable")


# --- preprocess ----------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def real_blend() -> bytes:
    assert REAL_BLEND.is_file(), f"{REAL_BLEND} is missing: install Debian's blender (make install)"
    return REAL_BLEND.read_bytes()


def test_preprocess_real_file_and_frames_per_job_as_the_workshop_passes_it(tmp_path: Path, real_blend: bytes) -> None:
    blend = tmp_path / "vfx.blend"
    blend.write_bytes(real_blend)
    for per_job in ("1", 1, " 1 "):
        plan = preprocess(blend, "job", per_job, renderer_version=RENDERER).stored()
        assert plan["framesPerJob"] == plan["framesPerJobRequested"] == 1
        assert plan["shards"] == plan["frames"] == 250
    plan = preprocess(
        blend, "job", "4", frames=(5, 11), resolution_percentage=50, samples=2, renderer_version=RENDERER
    ).stored()
    assert (plan["frameStart"], plan["frameEnd"], plan["frames"], plan["shards"]) == (5, 11, 7, 2)
    assert plan["outputSize"] == [960, 540] and plan["resolution"] == [1920, 1080]
    assert plan["compression"] == "none" and plan["scene"] == "Scene" and plan["frameRate"] == "24/1"
    assert plan["samples"] == 2 and plan["input"] == str(blend)


def test_preprocess_caps_the_array_size(tmp_path: Path, real_blend: bytes) -> None:
    blend = tmp_path / "vfx.blend"
    blend.write_bytes(real_blend)
    plan = preprocess(blend, "job", "1", frames=(1, 25_000), renderer_version=RENDERER).stored()
    assert plan["framesPerJobRequested"] == 1 and plan["framesPerJob"] == 3
    assert plan["shards"] == 8334 <= MAX_ARRAY_SIZE


def test_gzip_and_zstd_blends_are_read(tmp_path: Path, real_blend: bytes) -> None:
    import zstandard

    gz = tmp_path / "gz.blend"
    gz.write_bytes(gzip.compress(real_blend))
    zs = tmp_path / "zs.blend"
    zs.write_bytes(zstandard.ZstdCompressor().compress(real_blend))
    assert inspect_blend(gz).compression == "gzip" and inspect_blend(zs).compression == "zstd"
    assert inspect_blend(gz).frame_end == inspect_blend(zs).frame_end == 250


def _input_error(blend: Path, per_job: int | str = 1, **kw: object) -> str:
    with pytest.raises(InputError) as info:
        preprocess(blend, "job", per_job, renderer_version=RENDERER, **kw)  # type: ignore[arg-type]
    assert info.value.exit_code == 2
    return str(info.value)


def test_preprocess_rejects_a_file_that_is_not_a_blend(tmp_path: Path) -> None:
    for name, data in [("notes.txt", b"hello\n"), ("scene.blend", b"not really"), ("empty.blend", b""),
                       ("image.blend", make_png(4, 4))]:  # fmt: skip
        path = tmp_path / name
        path.write_bytes(data)
        message = _input_error(path)
        assert message.startswith(f"{path}: ") and "not a .blend" in message


@pytest.mark.parametrize("compression", ["none", "zstd", "gzip"])
@pytest.mark.parametrize("keep", [0.5, 0.9, 0.999])
def test_preprocess_rejects_a_truncated_blend(tmp_path: Path, real_blend: bytes, compression: str, keep: float) -> None:
    import zstandard

    data = {"none": real_blend, "zstd": zstandard.ZstdCompressor().compress(real_blend),
            "gzip": gzip.compress(real_blend)}[compression]  # fmt: skip
    path = tmp_path / "cut.blend"
    path.write_bytes(data[: int(len(data) * keep)])
    message = _input_error(path)
    assert message.startswith(f"{path}: cannot read"), message


def test_preprocess_missing_file_and_bad_options(tmp_path: Path, real_blend: bytes) -> None:
    assert _input_error(tmp_path / "nope.blend") == f"{tmp_path / 'nope.blend'}: no such file"
    assert "no such file" in _input_error(tmp_path)  # a directory is not a file
    blend = tmp_path / "vfx.blend"
    blend.write_bytes(real_blend)
    for bad in ("0", "x", "-1", "", "1.5", 0, -3):
        assert "framesPerJob" in _input_error(blend, bad)
    assert "no frames" in _input_error(blend, frames=(10, 5))
    assert "resolution percentage" in _input_error(blend, resolution_percentage=0)
    assert "samples" in _input_error(blend, samples=0)
    assert preprocess(blend, "j", 1, source="s3://b/vfx.blend", renderer_version=RENDERER).input == "s3://b/vfx.blend"
    assert _input_error(tmp_path / "gone.blend", source="s3://b/gone.blend") == "s3://b/gone.blend: no such file"
