"""Render one shard's frames: the script every renderer runs, inside Blender's own Python.

It imports nothing but the standard library and `bpy`, so it runs as it is in any Blender:
- the official build as a Python module (`bpy` from PyPI): `python blender_render.py ARGS`; the script opens the
  file itself, with its scripts disabled (`use_scripts=False`, and auto-exec off in the preferences);
- a Blender executable: `blender --background --factory-startup --disable-autoexec FILE --python
  blender_render.py -- ARGS`; Blender has opened the file, with its scripts disabled, before the script runs.

Then it forces PNG output, applies the plan's overrides (resolution percentage, samples) and Blender's thread
count, and renders the frames as an animation, so Blender prints its own "Saved: 'PATH'" line as each frame is
written (the progress the caller counts). Anything that stops it prints one "Error: ..." line and exits 1.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence


def _args(argv: Sequence[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="blender_render.py")
    p.add_argument("--blend", required=True)
    p.add_argument("--scene", required=True)
    p.add_argument("--output", required=True, help="a path ending in ####: Blender writes NNNN.png")
    p.add_argument("--first", type=int, required=True)
    p.add_argument("--last", type=int, required=True)
    p.add_argument("--step", type=int, required=True)
    p.add_argument("--threads", type=int, required=True)
    p.add_argument("--overrides", default="{}", help='JSON: {"resolutionPercentage": N, "samples": N}')
    return p.parse_args(argv)


def _own_argv(argv: Sequence[str]) -> list[str]:
    """Inside a Blender executable, the script's arguments are the ones after "--"."""
    return list(argv[argv.index("--") + 1 :]) if "--" in argv else list(argv[1:])


def render(args: argparse.Namespace) -> None:
    import bpy

    bpy.context.preferences.filepaths.use_scripts_auto_execute = False
    if not _is_open(bpy.data.filepath, args.blend):
        bpy.ops.wm.open_mainfile(filepath=args.blend, load_ui=False, use_scripts=False)
    scene = bpy.data.scenes.get(args.scene)
    if scene is None:
        raise RuntimeError(f"the file has no scene {args.scene!r}")
    overrides = json.loads(args.overrides)
    r = scene.render
    r.image_settings.file_format = "PNG"
    r.use_file_extension = True
    r.use_overwrite = True
    r.use_placeholder = False
    r.filepath = args.output
    r.threads_mode = "FIXED"
    r.threads = max(1, args.threads)
    if overrides.get("resolutionPercentage") is not None:
        r.resolution_percentage = int(overrides["resolutionPercentage"])
    if overrides.get("samples") is not None:
        if r.engine == "CYCLES":
            scene.cycles.samples = int(overrides["samples"])
        elif hasattr(scene, "eevee"):
            scene.eevee.taa_render_samples = int(overrides["samples"])
    scene.frame_start, scene.frame_end, scene.frame_step = args.first, args.last, args.step
    bpy.ops.render.render(animation=True, scene=scene.name)


def _is_open(current: str, wanted: str) -> bool:
    import os

    return bool(current) and os.path.realpath(current) == os.path.realpath(wanted)


def main(argv: Sequence[str] | None = None) -> int:
    args = _args(_own_argv(sys.argv if argv is None else argv))
    try:
        render(args)
    except Exception as exc:  # Blender's operators raise RuntimeError("Error: ...") with their report
        message = str(exc).strip().removeprefix("Error:").strip() or type(exc).__name__
        print(f"Error: {message}", flush=True)
        return 1
    return 0


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    if code:
        sys.exit(code)
