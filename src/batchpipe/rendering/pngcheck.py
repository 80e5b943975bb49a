"""Is a file a complete PNG of the expected size? (Blender can exit 0 without writing a frame.)"""

from __future__ import annotations

import struct
from pathlib import Path

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
IEND = b"\x00\x00\x00\x00IEND\xaeB`\x82"


def png_problem(path: Path, size: tuple[int, int] | None = None) -> str | None:
    """None if `path` is a complete PNG (and `size` matches); otherwise what is wrong with it."""
    try:
        with path.open("rb") as fh:
            head = fh.read(33)
            fh.seek(0, 2)
            length = fh.tell()
            fh.seek(max(0, length - len(IEND)))
            tail = fh.read()
    except FileNotFoundError:
        return "missing"
    except OSError as exc:
        return f"unreadable: {exc}"
    if not head.startswith(PNG_SIGNATURE) or head[12:16] != b"IHDR":
        return "not a PNG"
    if tail != IEND:
        return "truncated PNG"
    width, height = struct.unpack(">II", head[16:24])
    if size is not None and (width, height) != tuple(size):
        return f"{width}x{height}, expected {size[0]}x{size[1]}"
    return None
