"""When real Blender fails, a shard's one-line error leads with what Blender said: its own Error: line (a Cycles scene
with denoising, which Debian's Blender, given with --blender, is built without), or the crash report it wrote when
it crashed; then the frames missing and the shard's log, which keeps the whole output."""

from __future__ import annotations

import json
import stat
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import DEBIAN_BLENDER, need_tool
from tests.functional.test_render import render

pytestmark = pytest.mark.slow


def test_blenders_error_line_leads_the_shards_error(blend_scene: Any, tmp_path: Path) -> None:
    blend = blend_scene(start=1, end=2, denoise=True, blender=DEBIAN_BLENDER)
    out = tmp_path / "out"
    result = render(blend, out, "--frames-per-job", "2", "--blender", DEBIAN_BLENDER)
    assert result.exit_code == 1, result.output + result.stderr
    [shard] = [json.loads(p.read_text()) for p in sorted((out / "shards").iterdir())]
    assert shard["error"] == (
        "shard 0: Error: Build without OpenImageDenoiser; Blender exited with code 1; frames missing or invalid: "
        "1 (missing), 2 (missing); log: logs/shard-00000.log"
    )
    doc = json.loads((out / "render.json").read_text())
    assert doc["status"] == "FAILED" and doc["errors"] == [shard["error"]]
    assert "Error: Build without OpenImageDenoiser" in result.stderr  # the warning as the shard fails
    log = (out / "logs" / "shard-00000.log").read_text()
    assert "Error: Build without OpenImageDenoiser" in log and log.count("\n") > 20  # the whole output is there


CRASHING = """#!{python}
# The real Blender, made to crash (a segmentation fault in its Python) once the file is loaded, before it renders.
import os, sys
args = sys.argv[1:]
real = {blender!r}
if "--python" in args:
    args[args.index("--python"):0] = ["--python-expr", "import ctypes; ctypes.string_at(0)"]
os.execv(real, [real, *args])
"""


def test_a_crash_quotes_blenders_crash_report(
    blend_scene: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blend = blend_scene(start=1, end=1, blender=DEBIAN_BLENDER, denoise=False)
    wrapper = tmp_path / "blender-wrapper"
    wrapper.write_text(CRASHING.format(python=sys.executable, blender=need_tool(DEBIAN_BLENDER)))
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("BATCHPIPE_BLENDER", str(wrapper))
    out = tmp_path / "out"
    result = render(blend, out)
    assert result.exit_code == 1, result.output + result.stderr
    error = json.loads((out / "shards" / "shard-00000.json").read_text())["error"]
    log = (out / "logs" / "shard-00000.log").read_text()
    [written] = [line.split(": ", 1)[1] for line in log.splitlines() if line.startswith("Writing: ")]
    assert written.endswith(".crash.txt")
    assert error.startswith(
        f"shard 0: Blender exited with code -11 (SIGSEGV, a crash); crash report {written}: # backtrace"
    ), error
    assert "string_at" in error  # the Python backtrace Blender's crash report ends with
    assert error.endswith("; frames missing or invalid: 1 (missing); log: logs/shard-00000.log")
    assert "\n" not in error
