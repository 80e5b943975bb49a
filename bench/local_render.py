"""Local render of a small scene on all cores with --workers, against one plain Blender process rendering the same
frames; both with the renderer batchpipe uses (the official build, the bpy module). Also the start-up a shard pays
before its first frame: the interpreter, Blender, and opening the file."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

SCENE = """
import bpy, sys
s = bpy.context.scene
s.render.engine = "CYCLES"
s.cycles.samples = 64  # denoising as Blender leaves it: on
s.render.resolution_x, s.render.resolution_y, s.render.resolution_percentage = 320, 240, 100
s.frame_start, s.frame_end = 1, 24
s.render.image_settings.file_format = "PNG"
bpy.ops.mesh.primitive_monkey_add()
bpy.ops.wm.save_as_mainfile(filepath=sys.argv[-1])
"""
REFERENCE = """
import bpy, sys
bpy.ops.wm.open_mainfile(filepath=sys.argv[1], use_scripts=False)
bpy.context.scene.render.filepath = sys.argv[2]
bpy.ops.render.render(animation=True)
"""
OPEN = "import bpy, sys; bpy.ops.wm.open_mainfile(filepath=sys.argv[1], use_scripts=False)"


def bench_render(repeat: int = 5) -> dict[str, Any]:
    workers = os.cpu_count() or 1
    with tempfile.TemporaryDirectory(prefix="batchpipe-bench-") as tmp:
        blend = Path(tmp) / "scene.blend"
        subprocess.run([sys.executable, "-c", SCENE, str(blend)], check=True, capture_output=True)
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", REFERENCE, str(blend), f"{tmp}/ref/####"], check=True,
                       capture_output=True)  # fmt: skip
        reference = time.perf_counter() - start
        exe = Path(sys.executable).parent / "batchpipe"
        start = time.perf_counter()
        subprocess.run([str(exe), "run", "render", str(blend), "--local", "--workers", str(workers),
                        "--frames-per-job", str(-(-24 // workers)), "--output", f"{tmp}/ours", "--json"], check=True,
                       capture_output=True)  # fmt: skip
        ours = time.perf_counter() - start
        frames = len(list(Path(f"{tmp}/ours/frames").glob("*.png")))
        startup = []
        for _ in range(repeat):
            start = time.perf_counter()
            subprocess.run([sys.executable, "-I", "-c", OPEN, str(blend)], check=True, capture_output=True)
            startup.append(time.perf_counter() - start)
    import importlib.metadata

    return {"frames": frames, "workers": workers, "seconds": ours, "referenceSeconds": reference,
            "ratio": reference / ours, "blender": importlib.metadata.version("bpy"),
            "shardStartupSeconds": min(startup), "note": "ours also stitches output.mp4"}  # fmt: skip


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
