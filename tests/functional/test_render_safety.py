"""A render never deletes what it did not write: real Blender and FFmpeg on a tiny scene."""

from __future__ import annotations

import json
import os
import shutil
import stat
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from batchpipe.cli import main

USER_FILES = {"frames/reference.png": "a reference image", "logs/build.log": "my build log",
              "shards/notes.txt": "my notes", "output.txt": "mine"}  # fmt: skip


def render(blend: Path, out: Path | str, *args: str) -> Result:
    return CliRunner().invoke(main, ["run", "render", str(blend), "--local", "--output", str(out), *args],
                              catch_exceptions=False)  # fmt: skip


def put_user_files(out: Path) -> None:
    for name, text in USER_FILES.items():
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_text(text)


def assert_user_files(out: Path) -> None:
    assert {name: (out / name).read_text() for name in USER_FILES} == USER_FILES


def test_render_keeps_the_users_files_through_runs_and_a_changed_plan(blend_scene: Any, tmp_path: Path) -> None:
    blend = blend_scene(start=1, end=3)
    out = tmp_path / "out"
    out.mkdir()
    put_user_files(out)
    refused = render(blend, out, "--job-name", "r")
    assert refused.exit_code == 2 and f"{out} is not empty" in refused.stderr
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == sorted(USER_FILES)

    old = os.umask(0o002)
    try:
        first = render(blend, out, "--job-name", "r", "--force", "--frames-per-job", "2")
    finally:
        os.umask(old)
    assert first.exit_code == 0, first.output + first.stderr
    assert_user_files(out)
    assert sorted(p.name for p in (out / "frames").iterdir()) == ["0001.png", "0002.png", "0003.png", "reference.png"]
    assert {stat.S_IMODE(p.stat().st_mode) for p in out.rglob("*.json")} == {0o664}  # the umask, not 0600

    # another plan of the same job (frames 2-3): the earlier plan's frames, logs and results go, the user's stay
    second = render(blend, out, "--job-name", "r", "--frames", "2-3", "--frames-per-job", "1")
    assert second.exit_code == 0, second.output + second.stderr
    assert_user_files(out)
    assert sorted(p.name for p in (out / "frames").iterdir()) == ["0002.png", "0003.png", "reference.png"]
    assert sorted(p.name for p in (out / "shards").iterdir()) == ["notes.txt", "shard-00000.json", "shard-00001.json"]
    assert sorted(p.name for p in (out / "logs").iterdir()) == ["build.log", "shard-00000.log", "shard-00001.log"]
    doc = json.loads((out / "render.json").read_text())
    assert doc["status"] == "SUCCEEDED" and doc["framesRendered"] == ["0002.png", "0003.png"]


def test_render_refuses_another_jobs_directory_and_frames_blender_would_not_render(
    blend_scene: Any, tmp_path: Path
) -> None:
    blend = blend_scene(start=1, end=2)
    out = tmp_path / "out"
    assert render(blend, out, "--job-name", "a", "--frames-per-job", "2").exit_code == 0
    video = (out / "output.mp4").read_bytes()
    other = render(blend, out, "--job-name", "b")
    assert other.exit_code == 2 and "holds another run ('a', render)" in other.stderr
    assert (out / "output.mp4").read_bytes() == video
    # Blender reads "-1" as counted from the scene's end: it rendered 0-3 for --frames -1-2 and the run ended PARTIAL
    fresh = tmp_path / "fresh"
    negative = render(blend, fresh, "--frames", "-1-2")
    assert negative.exit_code == 2 and "frames start at 0" in negative.stderr
    assert not fresh.exists()


@pytest.mark.parametrize("missing", ["blender", "ffmpeg"])
def test_a_missing_blender_or_ffmpeg_is_exit_2_with_the_install_hint(
    blend_scene: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, missing: str
) -> None:
    blend = blend_scene(start=1, end=1)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in {"ffmpeg", "ffprobe"} - {missing} - ({"ffprobe"} if missing == "ffmpeg" else set()):
        found = shutil.which(tool)
        assert found
        (bin_dir / tool).symlink_to(found)
    monkeypatch.setenv("PATH", str(bin_dir))
    if missing == "blender":  # this interpreter without the render extra: `import bpy` finds nothing
        monkeypatch.setitem(sys.modules, "bpy", None)
    out = tmp_path / "out"
    result = render(blend, out)
    assert result.exit_code == 2
    [line] = result.stderr.strip().splitlines()
    if missing == "blender":
        assert "the bpy module is not installed" in line and "pip install 'batchpipe[render]'" in line
        assert "--blender PATH" in line
    else:
        assert "ffmpeg not found on PATH" in line and "apt-get install ffmpeg" in line
    assert not out.exists()
    monkeypatch.setenv(f"BATCHPIPE_{missing.upper()}", str(tmp_path / "nowhere" / missing))
    result = render(blend, out)
    assert result.exit_code == 2 and f"BATCHPIPE_{missing.upper()}=" in result.stderr
