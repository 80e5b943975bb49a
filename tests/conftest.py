"""Shared fixtures: small portfolios as files, where the workshop's example lives, tiny .blend files saved by real
Blender, and .blend files as a newer Blender would save them."""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "portfolio.json"
# The workshop's calibrated parameters (as batchpipe calibrates them): given in a file, they skip calibration.
WORKSHOP_HESTON = {"v0": 0.012156, "kappa": 1.445046, "theta": 0.032599, "sigma": 0.353975, "rho": -0.598907}


def small_portfolio(**overrides: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "name": "small",
        "market": {"heston": WORKSHOP_HESTON},
        "simulation": {"paths": 2000, "seed": 7},
        "positions": [
            {"id": "a", "notional": 1e7, "strike": 3500, "barrier": 1.0},
            {"id": "b", "notional": 5e6, "strike": 3550, "barrier": 0.95},
            {"id": "c", "notional": 1e7, "strike": 3750, "autocallBarrier": 0.95, "maturityYears": 3},
            {"id": "d", "notional": 2e6, "strike": 3550, "barrier": 0.9, "memory": False, "coupon": 0.07},
            {"id": "e", "notional": 1e7, "strike": 3350, "barrier": 0.99,
             "observationDates": ["2020-05-20", "2021-05-20", "2022-05-20"]},
        ],
    }  # fmt: skip
    doc.update(overrides)
    return doc


@pytest.fixture
def write_json(tmp_path: Path) -> Any:
    def _write(doc: Any, name: str = "portfolio.json") -> Path:
        path = tmp_path / name
        path.write_text(doc if isinstance(doc, str) else json.dumps(doc))
        return path

    return _write


SCENE_SCRIPT = """
import bpy, sys
a = dict(x.split("=", 1) for x in sys.argv[sys.argv.index("--") + 1:])
s = bpy.context.scene
s.render.engine = a["engine"]
if a["engine"] == "CYCLES":
    s.cycles.samples = 1
    if a["denoise"] == "off":  # else as Blender leaves it: on (Debian's Blender 3.4 has no OpenImageDenoise)
        s.cycles.use_denoising = False
elif a["engine"].startswith("BLENDER_EEVEE"):
    s.eevee.taa_render_samples = 1
s.render.resolution_x, s.render.resolution_y = int(a["width"]), int(a["height"])
s.render.resolution_percentage = 100
s.frame_start, s.frame_end, s.frame_step = int(a["start"]), int(a["end"]), int(a["step"])
s.render.fps, s.render.fps_base = int(a["fps"]), float(a["fps_base"])
if a["marker"]:
    # a script Blender runs when the file loads, if auto-exec is on
    t = bpy.data.texts.new("autorun.py")
    t.write("open(%r, 'w').write('the file ran its own script')\\n" % a["marker"])
    t.use_module = True
got = (s.frame_start, s.frame_end, s.frame_step, s.render.resolution_x, s.render.resolution_y)
want = tuple(int(a[k]) for k in ("start", "end", "step", "width", "height"))
assert got == want, f"Blender changed the scene's settings: {got} != {want}"  # it clamps, e.g. frame_start >= 0
bpy.ops.wm.save_as_mainfile(filepath=a["out"], compress=a["compress"] == "1")
"""


def need_tool(name: str) -> str:
    found = shutil.which(name)
    assert found, f"{name} is not installed: run `make install` (these tests never skip)"
    return found


def need_bpy() -> str:
    """The interpreter with Blender's official build (the bpy module, the render extra): this one."""
    import importlib.util

    assert importlib.util.find_spec("bpy"), "the bpy module is not installed: run `make install` (tests never skip)"
    return sys.executable


DEBIAN_BLENDER = "/usr/bin/blender"  # a second, older Blender (Debian's 3.4), for --blender and version tests


@pytest.fixture(scope="session")
def blend_scene(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """scene(start=1, end=3, ...) -> a tiny .blend (Cycles unless `engine`) saved by real Blender, made once per
    distinct parameters: by the pinned official build (the bpy module), or by the Blender executable `blender`."""
    made: dict[tuple[Any, ...], Path] = {}
    root = tmp_path_factory.mktemp("render-scenes")
    script = root / "make_scene.py"
    script.write_text(SCENE_SCRIPT)

    def make(start: int = 1, end: int = 3, step: int = 1, fps: int = 24, fps_base: float = 1.0, width: int = 32,
             height: int = 24, compress: bool = True, marker: Path | None = None, engine: str = "CYCLES",
             blender: str | None = None, denoise: bool = True) -> Path:  # fmt: skip
        key = (start, end, step, fps, fps_base, width, height, compress, marker, engine, blender, denoise)
        if key not in made:
            out = root / f"scene-{len(made)}.blend"
            args = {"start": start, "end": end, "step": step, "fps": fps, "fps_base": fps_base, "width": width,
                    "height": height, "compress": int(compress), "marker": marker or "", "engine": engine,
                    "denoise": "on" if denoise else "off", "out": out}  # fmt: skip
            if blender is None:
                command = [need_bpy(), "-I", str(script)]
            else:
                command = [need_tool(blender), "-b", "--factory-startup", "--python-exit-code", "1", "--python",
                           str(script)]  # fmt: skip
            run = subprocess.run(
                [*command, "--", *(f"{k}={v}" for k, v in args.items())],
                capture_output=True, text=True, check=False, timeout=120,
            )  # fmt: skip
            assert run.returncode == 0 and out.is_file(), run.stdout[-2000:] + run.stderr[-2000:]
            made[key] = out
        return made[key]

    return make


def with_version(blend: bytes, digits: bytes) -> bytes:
    """An uncompressed .blend whose header claims another Blender saved it: b"499" for 4.99."""
    assert blend[:9] in (b"BLENDER-v", b"BLENDER_v") and len(digits) == 3
    return blend[:9] + digits + blend[12:]


def as_format_1(blend: bytes, version: int = 500) -> bytes:
    """An uncompressed little-endian 64-bit .blend rewritten as Blender 5.0 writes files: the 17-byte header
    ("BLENDER17-01v0500") and 32-byte block headers (code, SDNA index, old address, length, count); the blocks' data
    is the same."""
    assert blend[:9] == b"BLENDER-v", blend[:12]
    small, large = struct.Struct("<4siQii"), struct.Struct("<4siQqq")
    out, pos = [b"BLENDER17-01v%04d" % version], 12
    while pos < len(blend):
        code, length, old, sdna, count = small.unpack_from(blend, pos)
        out.append(large.pack(code, sdna, old, length, count) + blend[pos + small.size : pos + small.size + length])
        pos += small.size + length
        if code == b"ENDB":
            break
    return b"".join(out)
