"""Which Blender renders, and the command line that starts one shard's render: pure, nothing is run here.

A renderer is either Blender's official build installed as a Python module (`bpy`, the `render` extra: the
interpreter that has it runs `blender_render.py`) or a Blender executable (`--blender PATH` / $BATCHPIPE_BLENDER:
a version or GPU build of the user's own). Both run the same script (`batchpipe.rendering.blender_render`), with the
file's own scripts disabled.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

SCRIPT = str(Path(__file__).with_name("blender_render.py"))


@dataclass(frozen=True)
class Renderer:
    kind: Literal["module", "executable"]
    program: str  # the Python interpreter that has bpy, or the Blender executable
    version: str  # Blender's version, e.g. "4.5.15"

    def describe(self) -> str:
        how = "the bpy module" if self.kind == "module" else self.program
        return f"Blender {self.version} ({how})"

    def render_args(
        self,
        blend_file: str,
        scene: str,
        output_pattern: str,
        first: int,
        last: int,
        step: int,
        threads: int,
        resolution_percentage: int | None = None,
        samples: int | None = None,
    ) -> list[str]:
        """Headless render of frames first..last by step into output_pattern (a path ending in '####': Blender
        writes NNNN.png), PNG forced, the file's scripts disabled."""
        script_args = [
            "--blend", blend_file, "--scene", scene, "--output", output_pattern,
            "--first", str(first), "--last", str(last), "--step", str(step), "--threads", str(threads),
            "--overrides", json.dumps({"resolutionPercentage": resolution_percentage, "samples": samples}),
        ]  # fmt: skip
        if self.kind == "module":
            return [self.program, "-I", SCRIPT, *script_args]
        return [self.program, "--background", "--factory-startup", "--disable-autoexec", "--python-exit-code", "1",
                blend_file, "--python", SCRIPT, "--", *script_args]  # fmt: skip
