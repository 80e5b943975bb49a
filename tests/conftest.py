"""Shared fixtures: small portfolios as files, and where the workshop's example lives."""

from __future__ import annotations

import json
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
args = dict(a.split("=", 1) for a in sys.argv[sys.argv.index("--") + 1:])
s = bpy.context.scene
s.render.engine = "CYCLES"
s.cycles.samples = 1
s.cycles.use_denoising = False  # Debian's Blender is built without OpenImageDenoise
s.render.resolution_x, s.render.resolution_y = int(args["width"]), int(args["height"])
s.render.resolution_percentage = 100
s.frame_start, s.frame_end, s.frame_step = int(args["start"]), int(args["end"]), int(args["step"])
s.render.fps, s.render.fps_base = int(args["fps"]), float(args["fps_base"])
bpy.ops.wm.save_as_mainfile(filepath=args["out"], compress=args["compress"] == "1")
"""


@pytest.fixture(scope="session")
def blend_scene(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """make(start=1, end=3, ...) -> Path of a tiny Cycles scene made by real Blender, cached per parameters."""
    import shutil
    import subprocess

    made: dict[tuple[Any, ...], Path] = {}
    root = tmp_path_factory.mktemp("scenes")

    def make(start: int = 1, end: int = 3, step: int = 1, fps: int = 24, fps_base: float = 1.0,
             width: int = 32, height: int = 24, compress: bool = True) -> Path:  # fmt: skip
        key = (start, end, step, fps, fps_base, width, height, compress)
        if key not in made:
            blender = shutil.which("blender")
            assert blender, "blender is not installed: run `make install`"
            out = root / f"scene-{len(made)}.blend"
            args = [f"start={start}", f"end={end}", f"step={step}", f"fps={fps}", f"fps_base={fps_base}",
                    f"width={width}", f"height={height}", f"compress={int(compress)}", f"out={out}"]  # fmt: skip
            run = subprocess.run([blender, "-b", "--factory-startup", "--python-expr", SCENE_SCRIPT, "--", *args],
                                 capture_output=True, text=True, check=False)  # fmt: skip
            assert run.returncode == 0 and out.exists(), run.stdout[-2000:] + run.stderr[-2000:]
            made[key] = out
        return made[key]

    return make
