"""`batchpipe run render --local` end to end with real Blender and FFmpeg, on tiny Cycles scenes the tests make.

Blender, FFmpeg and ffprobe are required: a missing tool fails the tests (`make install` installs them).
"""

from __future__ import annotations

import json
import stat
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from batchpipe.cli import main
from batchpipe.rendering.blendfile import inspect_blend
from tests.conftest import need_tool

pytestmark = pytest.mark.slow


@pytest.fixture(scope="session", autouse=True)
def tools() -> None:
    for name in ("blender", "ffmpeg", "ffprobe"):
        need_tool(name)


def render(blend: Path, out: Path, *args: str) -> Result:
    return CliRunner().invoke(
        main,
        ["run", "render", str(blend), "--local", "--output", str(out), "--job-name", "t", "--workers", "2", *args],
        catch_exceptions=False,
    )


def png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR", path
    width, height = struct.unpack(">II", head[16:24])
    return width, height


def probe(video: Path) -> dict[str, Any]:
    """The video's first stream, read by ffprobe here (not by the code under test)."""
    run = subprocess.run(
        [need_tool("ffprobe"), "-v", "error", "-select_streams", "v:0", "-count_frames", "-show_entries",
         "stream=codec_name,pix_fmt,width,height,r_frame_rate,avg_frame_rate,nb_read_frames", "-of", "json",
         str(video)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    stream: dict[str, Any] = json.loads(run.stdout)["streams"][0]
    return stream


def top_level_boxes(video: Path) -> list[str]:
    data = video.read_bytes()
    boxes, pos = [], 0
    while pos + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[pos : pos + 8])
        if size == 1:
            size = struct.unpack(">Q", data[pos + 8 : pos + 16])[0]
        boxes.append(kind.decode("latin-1"))
        if size < 8:
            break
        pos += size
    return boxes


def names(*frames: int) -> list[str]:
    """Blender's '####' file names: four digits, a minus sign in front of negative frames."""
    return [f"-{-f:04d}.png" if f < 0 else f"{f:04d}.png" for f in frames]


def listing(path: Path) -> list[str]:
    return sorted(p.name for p in path.iterdir())


def test_range_from_5_not_divisible_odd_size_fps_12_zstd(blend_scene: Any, tmp_path: Path) -> None:
    blend = blend_scene(start=5, end=11, fps=12, width=33, height=25)
    info = inspect_blend(blend)
    assert info.compression == "zstd" and (info.frame_start, info.frame_end, info.width, info.height) == (5, 11, 33, 25)
    out = tmp_path / "out"
    result = render(blend, out, "--frames-per-job", "3", "--json")
    assert result.exit_code == 0, result.output + result.stderr
    doc = json.loads((out / "render.json").read_text())
    assert json.loads(result.stdout) == doc
    assert doc["status"] == "SUCCEEDED" and doc["missingFrames"] == [] and doc["errors"] == []
    assert (doc["frameStart"], doc["frameEnd"], doc["frameStep"], doc["frames"]) == (5, 11, 1, 7)
    assert (doc["framesPerJob"], doc["shards"], doc["frameRate"], doc["resolution"]) == (3, 3, "12/1", [33, 25])
    # frames named by frame number, 5..11 only, each the scene's odd size
    assert listing(out / "frames") == names(*range(5, 12)) == doc["framesRendered"]
    assert all(png_size(p) == (33, 25) for p in (out / "frames").iterdir())
    shards = [json.loads(p.read_text()) for p in sorted((out / "shards").iterdir())]
    assert [s["frames"] for s in shards] == [[5, 6, 7], [8, 9, 10], [11]]
    assert all(s["rendered"] == s["frames"] and s["error"] is None for s in shards)
    assert listing(out / "logs") == ["shard-00000.log", "shard-00001.log", "shard-00002.log"]
    plan = json.loads((out / "plan.json").read_text())
    assert plan["compression"] == "zstd" and plan["shards"] == 3
    # the video: every frame, padded to an even size, at the scene's rate, H.264 yuv420p, moov first
    assert doc["video"] == "output.mp4"
    video = probe(out / "output.mp4")
    assert (video["width"], video["height"]) == (34, 26)
    assert video["codec_name"] == "h264" and video["pix_fmt"] == "yuv420p"
    assert video["r_frame_rate"] == "12/1" and int(video["nb_read_frames"]) == 7
    assert doc["videoInfo"]["frames"] == 7 and (doc["videoInfo"]["width"], doc["videoInfo"]["height"]) == (34, 26)
    boxes = top_level_boxes(out / "output.mp4")
    assert boxes.index("moov") < boxes.index("mdat"), boxes  # +faststart
    # no partial video left behind, and the lock is released: only the run's marker remains of batchpipe's own
    assert [p.name for p in out.iterdir() if p.name.startswith(".")] == [".batchpipe-run.json"]


def test_frames_from_0_step_2_ntsc_rate_uncompressed(blend_scene: Any, tmp_path: Path) -> None:
    blend = blend_scene(start=0, end=5, step=2, fps=30, fps_base=1.001, compress=False)
    assert inspect_blend(blend).compression == "none"
    assert blend.read_bytes()[:7] == b"BLENDER"
    out = tmp_path / "out"
    result = render(blend, out, "--frames", "0-7", "--frames-per-job", "3")
    assert result.exit_code == 0, result.output + result.stderr
    doc = json.loads((out / "render.json").read_text())
    assert doc["status"] == "SUCCEEDED", doc
    assert (doc["frameStart"], doc["frameEnd"], doc["frameStep"], doc["frames"], doc["shards"]) == (0, 7, 2, 4, 2)
    # frame 0 is '0000.png'; 8 would be past the end
    assert listing(out / "frames") == sorted(names(0, 2, 4, 6))
    assert doc["framesRendered"] == names(0, 2, 4, 6)
    assert doc["frameRate"] == "30000/1001"
    video = probe(out / "output.mp4")
    assert video["r_frame_rate"] == "30000/1001" and int(video["nb_read_frames"]) == 4
    assert (video["width"], video["height"]) == (32, 24)


def test_frames_and_resolution_overrides_and_a_rerun_keeps_only_the_new_frames(
    blend_scene: Any, tmp_path: Path
) -> None:
    blend = blend_scene(start=5, end=11, fps=12, width=33, height=25)
    out = tmp_path / "out"
    first = render(blend, out, "--frames", "5-8", "--frames-per-job", "4")
    assert first.exit_code == 0, first.output + first.stderr
    assert listing(out / "frames") == names(5, 6, 7, 8)
    assert int(probe(out / "output.mp4")["nb_read_frames"]) == 4
    second = render(blend, out, "--frames", "9-10", "--resolution-percentage", "50", "--samples", "1",
                    "--frames-per-job", "4")  # fmt: skip
    assert second.exit_code == 0, second.output + second.stderr
    doc = json.loads((out / "render.json").read_text())
    assert (doc["frameStart"], doc["frameEnd"], doc["frames"]) == (9, 10, 2)
    assert (doc["resolution"], doc["resolutionPercentage"], doc["samples"]) == ([16, 12], 50, 1)
    assert listing(out / "frames") == names(9, 10)  # 5-8 of the first run are gone
    assert all(png_size(p) == (16, 12) for p in (out / "frames").iterdir())  # 33x25 at 50%, truncated
    assert listing(out / "shards") == ["shard-00000.json"] and listing(out / "logs") == ["shard-00000.log"]
    assert json.loads((out / "plan.json").read_text())["frameStart"] == 9
    video = probe(out / "output.mp4")
    assert int(video["nb_read_frames"]) == 2 and (video["width"], video["height"]) == (16, 12)


def test_the_files_own_script_never_runs(blend_scene: Any, tmp_path_factory: pytest.TempPathFactory) -> None:
    tmp = tmp_path_factory.mktemp("autorun")
    marker = tmp / "autorun-ran.txt"
    blend = blend_scene(start=1, end=1, marker=marker)
    # positive control: with auto-exec on, loading the file runs its script, so the check below can fail
    control = subprocess.run([need_tool("blender"), "-b", "--factory-startup", "--enable-autoexec", str(blend)],
                             capture_output=True, text=True, check=False, timeout=120)  # fmt: skip
    assert control.returncode == 0, control.stdout[-2000:]
    assert marker.read_text() == "the file ran its own script"
    marker.unlink()
    out = tmp / "out"
    result = render(blend, out)
    assert result.exit_code == 0, result.output + result.stderr
    assert listing(out / "frames") == ["0001.png"]
    assert not marker.exists(), "batchpipe let the .blend run its own script"
    log = (out / "logs" / "shard-00000.log").read_text()
    assert "skipping 'autorun.py'" in log  # Blender says so when it declines to run it


def test_bad_input_is_one_line_and_writes_nothing(blend_scene: Any, tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("not a blend file\n")
    cut = tmp_path / "cut.blend"
    real = blend_scene(start=5, end=11, fps=12, width=33, height=25).read_bytes()
    cut.write_bytes(real[: len(real) // 2])
    for path, expected in [(text, "not a .blend"), (cut, "cannot read"), (tmp_path / "gone.blend", "no such file")]:
        out = tmp_path / f"out-{path.stem}"
        result = render(path, out)
        assert result.exit_code == 2, result.output + result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, result.stderr
        assert lines[0].startswith(f"error: {path}: ") and expected in lines[0]
        assert not out.exists()
    out = tmp_path / "out-frames"
    result = render(text, out, "--frames", "9-5")
    assert result.exit_code == 2 and result.stderr.startswith("error: --frames '9-5'") and not out.exists()


WRAPPER = """#!{python}
# Fault injection around the real Blender (asked its version, it is the real one): the shard starting at {broken}
# cannot save frame {blocked} (a directory is in the way: Blender's own save error); the shard starting at
# {truncated} renders, then its frame is cut short and the wrapper exits 0 (Blender "succeeded" but the frame is bad).
import os, subprocess, sys
args = sys.argv[1:]
real = {blender!r}
if args == ["--version"]:
    os.execv(real, [real, *args])
pattern = args[args.index("--render-output") + 1]
first = args[args.index("--frame-start") + 1]
if first == "{broken}":
    os.makedirs(pattern.replace("####", "{blocked:04d}") + ".png")
    os.execv(real, [real, *args])
code = subprocess.call([real, *args])
if first == "{truncated}":
    frame = pattern.replace("####", "{truncated:04d}") + ".png"
    data = open(frame, "rb").read()
    open(frame, "wb").write(data[: len(data) // 2])
sys.exit(code)
"""


def test_failing_shards_leave_a_partial_run(blend_scene: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blend = blend_scene(start=5, end=11, fps=12, width=33, height=25)
    wrapper = tmp_path / "blender-wrapper"
    wrapper.write_text(
        WRAPPER.format(python=sys.executable, blender=need_tool("blender"), broken=8, blocked=9, truncated=11)
    )
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("BATCHPIPE_BLENDER", str(wrapper))
    out = tmp_path / "out"
    result = render(blend, out, "--frames-per-job", "3")
    assert result.exit_code == 1, result.output + result.stderr
    doc = json.loads((out / "render.json").read_text())
    assert doc["status"] == "PARTIAL"
    # shard 0 (5-7) whole; shard 1 saved 8, failed on 9, never reached 10; shard 2's 11 is truncated
    assert doc["framesRendered"] == names(5, 6, 7, 8)
    assert doc["missingFrames"] == [9, 10, 11] and doc["missingFrameRanges"] == "9-11"
    assert doc["video"] is None and doc["videoInfo"] is None
    assert not (out / "output.mp4").exists()
    assert all(png_size(out / "frames" / n) == (33, 25) for n in names(5, 6, 7, 8))
    shards = [json.loads(p.read_text()) for p in sorted((out / "shards").iterdir())]
    assert [(s["rendered"], s["missing"]) for s in shards] == [([5, 6, 7], []), ([8], [9, 10]), ([], [11])]
    assert shards[0]["error"] is None
    assert "Blender exited with code 1" in shards[1]["error"] and "cannot save" in shards[1]["error"]
    assert "10 (missing)" in shards[1]["error"]
    assert "Blender exited 0" in shards[2]["error"] and "11 (truncated PNG)" in shards[2]["error"]
    assert doc["errors"] == [shards[1]["error"], shards[2]["error"]]
    assert "PARTIAL" in result.stderr and "9-11" in result.stderr
