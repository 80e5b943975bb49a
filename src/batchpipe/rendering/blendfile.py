"""Read a .blend without Blender (plain, gzip or zstd files): which Blender saved it, from its header, and its
render settings, with blender-asset-tracer."""

from __future__ import annotations

import gzip
import logging
import zlib
from dataclasses import dataclass
from pathlib import Path

import zstandard

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
BLEND_MAGIC = b"BLENDER"
HEADER_SIZE = 17  # the longest header (format 1); format 0's is 12 bytes


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
    blender_version: str  # the version that saved the file ("3.4"), from its header
    min_version: str | None  # the oldest version that reads it fully, as the file says (None: it does not say)


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


@dataclass(frozen=True)
class BlendHeader:
    """A .blend's first bytes: which Blender saved the file and how its blocks are laid out."""

    version: str  # major.minor of the Blender that saved the file: "2.80", "3.4", "5.0"
    format_version: int  # 0: the 12-byte header (Blender 4.x and earlier); 1: the 17-byte one (Blender 5.0 on)
    pointer_size: int  # 4 or 8
    little_endian: bool


def version_text(number: int) -> str:
    """Blender's version number as a file stores it, as Blender shows it: 304 -> "3.4", 280 -> "2.80"."""
    return f"{number // 100}.{number % 100}"


def parse_header(head: bytes) -> BlendHeader:
    """Decode the first bytes of a (decompressed) .blend, as Blender does; `head` is its first `HEADER_SIZE` bytes,
    or all of them in a shorter file.

    Format 0, 12 bytes: "BLENDER", "_" (4-byte pointers) or "-" (8-byte), "v" (little endian) or "V" (big), the
    version as 3 digits ("304": 3.4). Format 1, 17 bytes (Blender 5.0 on): "BLENDER", the header's size as 2 digits
    ("17"), "-", the format version as 2 digits ("01"), "v", the version as 4 digits ("0500": 5.0).
    """
    if not head.startswith(BLEND_MAGIC):
        if BLEND_MAGIC.startswith(head):
            raise BlendError("the .blend header is cut short")
        raise BlendError("not a .blend file (no BLENDER header)")
    if head[7:8] in (b"_", b"-"):
        if len(head) < 12:
            raise BlendError("the .blend header is cut short")
        endian, digits = head[8:9], head[9:12]
        if endian not in (b"v", b"V") or not digits.isdigit():
            raise _unknown_header(head[:12])
        return BlendHeader(version_text(int(digits)), 0, 4 if head[7:8] == b"_" else 8, endian == b"v")
    if not head[7:9].isdigit() or int(head[7:9]) != HEADER_SIZE:
        raise _unknown_header(head[:HEADER_SIZE])
    if len(head) < HEADER_SIZE:
        raise BlendError("the .blend header is cut short")
    if head[9:10] != b"-" or head[10:12] != b"01" or head[12:13] != b"v" or not head[13:17].isdigit():
        raise _unknown_header(head[:HEADER_SIZE])
    return BlendHeader(version_text(int(head[13:17])), 1, 8, True)


def _unknown_header(head: bytes) -> BlendError:
    return BlendError(f"unknown .blend header {head!r} (saved by a Blender newer than batchpipe?)")


def read_header(path: Path) -> BlendHeader:
    """The header of a plain, gzip or zstd .blend (only its first bytes are read and decompressed)."""
    compression = compression_of(path)
    try:
        with path.open("rb") as raw:
            if compression == "none":
                head = raw.read(HEADER_SIZE)
            elif compression == "gzip":
                with gzip.GzipFile(fileobj=raw) as fh:
                    head = fh.read(HEADER_SIZE)
            else:
                with zstandard.ZstdDecompressor().stream_reader(raw) as fh:
                    head = b""
                    while len(head) < HEADER_SIZE and (chunk := fh.read(HEADER_SIZE - len(head))):
                        head += chunk
    except (OSError, EOFError, zlib.error, zstandard.ZstdError) as exc:  # damaged compressed data
        raise BlendError(f"cannot read the .blend ({compression} compressed): {type(exc).__name__}: {exc}") from None
    if compression != "none" and not BLEND_MAGIC.startswith(head[:7]):
        raise BlendError(f"not a .blend file (its {compression} compressed data does not start with BLENDER)")
    return parse_header(head)


def file_version(path: Path) -> str:
    """The version of Blender that saved the file, major.minor ("4.2", "5.0"), from its header alone."""
    return read_header(path).version


def _text(value: object) -> str:
    if isinstance(value, bytes):
        return value.split(b"\0", 1)[0].decode("utf-8", "replace")
    return str(value)


def inspect_blend(path: Path) -> SceneInfo:
    """The render settings of the scene Blender renders by default: the file's current scene."""
    compression = compression_of(path)
    header = read_header(path)
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

        min_version = globs[0].get(b"minversion") if globs else None
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
            blender_version=header.version,
            min_version=version_text(min_version) if isinstance(min_version, int) and min_version > 0 else None,
        )
    except BlendError:
        raise
    except Exception as exc:
        raise BlendError(f"cannot read the scene's render settings: {type(exc).__name__}: {exc}") from None
    finally:
        bf.close()
