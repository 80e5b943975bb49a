"""A render's pack: the .blend and every file it depends on, in one directory or zip that renders anywhere.

`pack_blend` builds it with blender-asset-tracer's packer: files under the project directory (default: the
.blend's own) keep their place relative to it, files elsewhere go under `_outside_project/`, and every path to them
in the packed .blend files is rewritten relative ('//...'), so the pack needs nothing outside itself. It returns a
manifest: where the .blend is in the pack, every file with its size and sha256, and the zip's own sha256.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import zipfile
from collections.abc import Callable
from pathlib import Path, PurePosixPath

from batchpipe.documents import Document
from batchpipe.errors import BatchpipeError, InputError
from batchpipe.rendering.dependencies import ALLOW_MISSING_HINT, absolute, bat_session, require_dependencies

MANIFEST_VERSION = 1
CHUNK = 1 << 20


class PackError(BatchpipeError):
    """The pack could not be built."""


class PackedFile(Document):
    path: str  # inside the pack, '/'-separated
    size: int
    sha256: str


class PackManifest(Document):
    version: int
    blend: str  # the packed .blend, inside the pack
    files: list[PackedFile]  # every file in the pack, by path
    missing: list[str]  # dependencies packed without (allowed missing), as written in their .blend
    zip_sha256: str | None  # the zip's own, None for a directory pack
    zip_size: int | None


def file_sha256(path: Path) -> str:
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def pack_blend(
    blend: Path,
    target: Path,
    *,
    allow_missing: bool = False,
    warn: Callable[[str], None] | None = None,
    project: Path | None = None,
    name: str | None = None,
) -> PackManifest:
    """Pack the .blend with its dependencies into `target`: a zip when its name ends in '.zip' (written whole, then
    moved into place: a failed pack leaves no zip), else a directory that must be new or empty.

    Missing dependencies refuse the pack (InputError, as `require_dependencies`) unless `allow_missing`: then they
    are left out, listed in the manifest, and `warn` says so. `project` (default: the .blend's directory) must hold
    the .blend."""
    blend = absolute(blend)
    root = absolute(project) if project is not None else blend.parent
    shown = name or str(blend)
    if not blend.is_file():
        raise InputError(f"{shown}: no such file")
    if not blend.is_relative_to(root):
        raise InputError(f"{shown}: not inside the project directory {root}")
    deps = require_dependencies(blend, allow_missing=allow_missing, warn=warn or (lambda _m: None), name=shown,
                                hint=ALLOW_MISSING_HINT.replace("renders", "packs"))  # fmt: skip
    missing = sorted({d.written for d in deps.missing})
    target = absolute(target)
    if target.suffix.lower() == ".zip":
        if target.is_dir():
            raise InputError(f"{target}: is a directory, not a zip to write")
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.stem}.{secrets.token_hex(4)}.partial.zip")
        try:
            inside = _run_packer(blend, root, partial, zipped=True)
            files = _zip_files(partial)
            os.replace(partial, target)
        finally:
            partial.unlink(missing_ok=True)
        zip_sha256, zip_size = file_sha256(target), target.stat().st_size
    else:
        if target.exists() and (not target.is_dir() or any(target.iterdir())):
            raise InputError(f"{target}: exists and is not an empty directory")
        inside = _run_packer(blend, root, target, zipped=False)
        files = _directory_files(target)
        zip_sha256, zip_size = None, None
    return PackManifest(version=MANIFEST_VERSION, blend=inside, files=files, missing=missing,
                        zip_sha256=zip_sha256, zip_size=zip_size)  # fmt: skip


def _run_packer(blend: Path, root: Path, target: Path, *, zipped: bool) -> str:
    """Run BAT's packer; the packed .blend's path inside the pack."""
    from blender_asset_tracer import pack
    from blender_asset_tracer.pack import transfer
    from blender_asset_tracer.pack.zipped import ZipPacker

    kind = ZipPacker if zipped else pack.Packer
    with bat_session(), kind(blend, root, str(target)) as packer:
        try:
            packer.strategise()
            packer.execute()
        except (transfer.FileTransferError, pack.Aborted, OSError) as exc:
            raise PackError(f"{blend.name}: packing failed: {type(exc).__name__}: {exc}") from None
        return PurePosixPath(Path(packer.output_path).relative_to(target)).as_posix()


def _directory_files(root: Path) -> list[PackedFile]:
    out = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        out.append(PackedFile(path=path.relative_to(root).as_posix(), size=path.stat().st_size,
                              sha256=file_sha256(path)))  # fmt: skip
    return out


def _zip_files(archive: Path) -> list[PackedFile]:
    out = []
    with zipfile.ZipFile(archive) as zf:
        for info in zf.infolist():
            if info.is_dir():
                continue
            digest = hashlib.sha256()
            with zf.open(info) as fh:
                while chunk := fh.read(CHUNK):
                    digest.update(chunk)
            out.append(PackedFile(path=info.filename, size=info.file_size, sha256=digest.hexdigest()))
    return sorted(out, key=lambda f: f.path)
