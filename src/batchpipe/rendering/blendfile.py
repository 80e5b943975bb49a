"""Read a .blend's render settings without Blender, with blender-asset-tracer (plain, gzip or zstd files)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
BLEND_MAGIC = b"BLENDER"


class BlendError(ValueError):
    """The file is not a readable .blend."""


@dataclass(frozen=True)
class SceneInfo:
    scene: str
    frame_start: int
    frame_end: int
    frame_step: int
    fps: int
    fps_base: float
    width: int
    height: int
    resolution_percentage: int
    engine: str
    compression: str  # none, gzip, zstd
    blender_version: str


def compression_of(path: Path) -> str:
    with path.open("rb") as fh:
        magic = fh.read(7)
    if magic.startswith(BLEND_MAGIC):
        return "none"
    if magic.startswith(GZIP_MAGIC):
        return "gzip"
    if magic.startswith(ZSTD_MAGIC):
        return "zstd"
    raise BlendError("not a .blend file (no BLENDER, gzip or zstd signature)")


def _text(value: object) -> str:
    if isinstance(value, bytes):
        return value.split(b"\0", 1)[0].decode("utf-8", "replace")
    return str(value)


def inspect_blend(path: Path) -> SceneInfo:
    """The render settings of the scene Blender renders by default: the file's current scene."""
    compression = compression_of(path)
    from blender_asset_tracer import blendfile

    logging.getLogger("blender_asset_tracer").setLevel(logging.ERROR)
    try:
        bf = blendfile.BlendFile(path)
    except Exception as exc:  # BAT raises struct, EOF, value and its own errors on damaged files
        detail = str(exc).replace(f": {path}", "").replace(str(path), "the file")  # the caller names the file
        raise BlendError(f"cannot read the .blend ({compression} compressed): {type(exc).__name__}: {detail}") from None
    try:
        globs = bf.find_blocks_from_code(b"GLOB")
        scene = globs[0].get_pointer(b"curscene") if globs else None
        if scene is None:
            scenes = bf.find_blocks_from_code(b"SC")
            if not scenes:
                raise BlendError("the file has no scene")
            scene = scenes[0]
        name = _text(scene.id_name)[2:]

        def r(field: bytes) -> object:
            return scene.get((b"r", field))

        version = bf.header.version
        return SceneInfo(
            scene=name,
            frame_start=int(r(b"sfra")),  # type: ignore[call-overload]
            frame_end=int(r(b"efra")),  # type: ignore[call-overload]
            frame_step=int(r(b"frame_step")),  # type: ignore[call-overload]
            fps=int(r(b"frs_sec")),  # type: ignore[call-overload]
            fps_base=float(r(b"frs_sec_base")),  # type: ignore[arg-type]
            width=int(r(b"xsch")),  # type: ignore[call-overload]
            height=int(r(b"ysch")),  # type: ignore[call-overload]
            resolution_percentage=int(r(b"size")),  # type: ignore[call-overload]
            engine=_text(r(b"engine")),
            compression=compression,
            blender_version=f"{version // 100}.{version % 100}",
        )
    except BlendError:
        raise
    except Exception as exc:
        raise BlendError(f"cannot read the scene's render settings: {type(exc).__name__}: {exc}") from None
    finally:
        bf.close()
