"""A re-run of the same local render resumes: shards whose results are complete and whose frames are all valid PNGs
are kept (files untouched, Blender not run for them); missing or corrupt frames re-render their shard; --fresh and a
different plan render everything again; Ctrl-C stops Blender and keeps what finished. Real Blender and FFmpeg.
"""

from __future__ import annotations

import json
import os
import signal
import stat
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import need_tool
from tests.functional.test_render import listing, names, probe, render

pytestmark = pytest.mark.slow


def identities(out: Path) -> dict[str, tuple[int, int]]:
    """(inode, mtime) of every frame, shard result and log: a file rewritten or replaced changes one of them."""
    return {
        f"{p.parent.name}/{p.name}": (p.stat().st_ino, p.stat().st_mtime_ns)
        for folder in ("frames", "shards", "logs")
        for p in sorted((out / folder).iterdir())
    }


def unchanged(before: dict[str, tuple[int, int]], after: dict[str, tuple[int, int]]) -> set[str]:
    return {name for name in before if after.get(name) == before[name]}


def test_rerun_renders_only_shards_with_missing_or_corrupt_frames_then_fresh_then_new_plan(
    blend_scene: Any, tmp_path: Path
) -> None:
    blend = blend_scene(start=1, end=3)
    out = tmp_path / "out"
    first = render(blend, out, "--frames", "1-2")  # 2 shards of 1 frame
    assert first.exit_code == 0, first.output + first.stderr
    before = identities(out)
    assert len(before) == 6
    shard0 = {"frames/0001.png", "shards/shard-00000.json", "logs/shard-00000.log"}
    shard1 = {"frames/0002.png", "shards/shard-00001.json", "logs/shard-00001.log"}

    (out / "frames" / "0002.png").unlink()  # shard 1: a frame gone
    missing = render(blend, out, "--frames", "1-2")
    assert missing.exit_code == 0, missing.output + missing.stderr
    assert "resuming t: 1 of 2 shards already rendered (--fresh starts over)" in missing.stderr
    after = identities(out)
    assert unchanged(before, after) == shard0 and set(after) == set(before)

    frame1 = out / "frames" / "0001.png"
    frame1.write_bytes(frame1.read_bytes()[:-20])  # shard 0: a frame cut short, though its result says complete
    corrupt = render(blend, out, "--frames", "1-2")
    assert corrupt.exit_code == 0 and "resuming t: 1 of 2 shards" in corrupt.stderr
    again = identities(out)
    assert unchanged(after, again) == shard1
    doc = json.loads((out / "render.json").read_text())
    assert doc["status"] == "SUCCEEDED" and doc["framesRendered"] == names(1, 2)
    assert int(probe(out / "output.mp4")["nb_read_frames"]) == 2

    (out / "output.mp4").write_bytes(b"stale")  # nothing missing: nothing renders, the video is made again
    complete = render(blend, out, "--frames", "1-2")
    assert complete.exit_code == 0 and "resuming t: 2 of 2 shards" in complete.stderr
    assert unchanged(again, identities(out)) == set(again)
    assert int(probe(out / "output.mp4")["nb_read_frames"]) == 2

    fresh = render(blend, out, "--frames", "1-2", "--fresh")
    assert fresh.exit_code == 0 and "resuming" not in fresh.stderr
    refreshed = identities(out)
    assert unchanged(again, refreshed) == set()

    other = render(blend, out, "--frames", "1-2", "--samples", "2")  # another plan: nothing of the old run kept
    assert other.exit_code == 0 and "resuming" not in other.stderr
    assert unchanged(refreshed, identities(out)) == set()
    assert json.loads((out / "render.json").read_text())["samples"] == 2
    plan = json.loads((out / "plan.json").read_text())
    assert all(json.loads(p.read_text())["planHash"] == plan["planHash"] for p in (out / "shards").iterdir())


HANGING = """#!{python}
# The real Blender, except that the shard starting at frame {hang} records its pid and hangs (a long render).
import os, sys
args = sys.argv[1:]
if args != ["--version"] and args[args.index("--frame-start") + 1] == "{hang}":
    open({pidfile!r}, "w").write(str(os.getpid()))
    os.execv("/bin/sleep", ["sleep", "120"])
os.execv({blender!r}, [{blender!r}, *args])
"""


def test_ctrl_c_stops_blender_keeps_finished_shards_and_says_how_to_resume(
    blend_scene: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blend = blend_scene(start=1, end=3)
    wrapper, pidfile = tmp_path / "blender-wrapper", tmp_path / "hanging.pid"
    wrapper.write_text(
        HANGING.format(python=sys.executable, blender=need_tool("blender"), hang=2, pidfile=str(pidfile))
    )
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("BATCHPIPE_BLENDER", str(wrapper))
    out = tmp_path / "out"
    finished = out / "shards" / "shard-00000.json"

    def press_ctrl_c() -> None:  # once shard 0 is done and shard 1's "Blender" hangs
        deadline = time.monotonic() + 60
        while not (finished.exists() and pidfile.exists()) and time.monotonic() < deadline:
            time.sleep(0.05)
        os.kill(os.getpid(), signal.SIGINT)

    presser = threading.Thread(target=press_ctrl_c, daemon=True)
    presser.start()
    started = time.monotonic()
    result = render(blend, out, "--frames", "1-2")  # 2 shards on 2 workers
    presser.join()
    assert time.monotonic() - started < 60
    assert result.exit_code == 1, result.output + result.stderr
    assert "interrupted: 1 of 2 shards rendered and kept" in result.stderr
    assert "run the same command with --job-name t to resume" in result.stderr
    hung = int(pidfile.read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(hung, 0)  # stopped and reaped, not left running
    assert listing(out / "shards") == ["shard-00000.json"] and listing(out / "frames") == ["0001.png"]
    kept = (out / "frames" / "0001.png").stat()

    monkeypatch.delenv("BATCHPIPE_BLENDER")
    resumed = render(blend, out, "--frames", "1-2")
    assert resumed.exit_code == 0, resumed.output + resumed.stderr
    assert "resuming t: 1 of 2 shards already rendered" in resumed.stderr
    now = (out / "frames" / "0001.png").stat()
    assert (now.st_ino, now.st_mtime_ns) == (kept.st_ino, kept.st_mtime_ns)
    assert int(probe(out / "output.mp4")["nb_read_frames"]) == 2
