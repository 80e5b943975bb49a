"""Local render of a small scene on all cores with --workers, against one plain `blender -b file -a`."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

SCENE = """
import bpy
s = bpy.context.scene
s.render.engine = "CYCLES"
s.cycles.samples = 64
s.cycles.use_denoising = False
s.render.resolution_x, s.render.resolution_y, s.render.resolution_percentage = 320, 240, 100
s.frame_start, s.frame_end = 1, 24
s.render.image_settings.file_format = "PNG"
bpy.ops.mesh.primitive_monkey_add()
bpy.ops.wm.save_as_mainfile(filepath=__import__("sys").argv[-1])
"""


def bench_render() -> dict[str, Any]:
    workers = os.cpu_count() or 1
    with tempfile.TemporaryDirectory(prefix="batchpipe-bench-") as tmp:
        blend = Path(tmp) / "scene.blend"
        subprocess.run(["blender", "-b", "--factory-startup", "--python-expr", SCENE, "--", str(blend)],
                       check=True, capture_output=True)  # fmt: skip
        start = time.perf_counter()
        subprocess.run(["blender", "-b", str(blend), "-o", f"{tmp}/ref/####", "-a"], check=True, capture_output=True)
        reference = time.perf_counter() - start
        exe = Path(sys.executable).parent / "batchpipe"
        start = time.perf_counter()
        subprocess.run([str(exe), "run", "render", str(blend), "--local", "--workers", str(workers),
                        "--frames-per-job", str(-(-24 // workers)), "--output", f"{tmp}/ours", "--json"], check=True,
                       capture_output=True)  # fmt: skip
        ours = time.perf_counter() - start
        frames = len(list(Path(f"{tmp}/ours/frames").glob("*.png")))
    return {"frames": frames, "workers": workers, "seconds": ours, "referenceSeconds": reference,
            "ratio": reference / ours, "note": "ours also stitches output.mp4"}  # fmt: skip


def bench_startup(repeat: int = 10) -> dict[str, Any]:
    exe = Path(sys.executable).parent / "batchpipe"

    def best(cmd: list[str]) -> float:
        times = []
        for _ in range(repeat):
            start = time.perf_counter()
            subprocess.run(cmd, check=True, capture_output=True)
            times.append(time.perf_counter() - start)
        return min(times)

    ours, reference = best([str(exe), "--help"]), best([sys.executable, "-c", "pass"])
    return {"seconds": ours, "referenceSeconds": reference, "ratio": ours / reference}
