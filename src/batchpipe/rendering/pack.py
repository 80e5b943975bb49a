"""A render's pack: the .blend and every file it depends on, in one directory or zip that renders anywhere.

`pack_blend` builds it with blender-asset-tracer's packer: files under the project directory (default: the
.blend's own) keep their place relative to it, files elsewhere go under `_outside_project/`, and every path to them
in the packed .blend files is rewritten relative ('//...'), so the pack needs nothing outside itself. It returns a
manifest: where the .blend is in the pack, every file with its size and sha256, and the zip's own sha256.

`extract_pack` / `unpacked` are the other end (the render container): a pack zip extracted safely (no member
outside the destination, no links, no duplicates), checked against its manifest when there is one.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import stat
import tempfile
import zipfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath

from batchpipe.documents import Document
from batchpipe.errors import BatchpipeError, InputError
from batchpipe.rendering.dependencies import ALLOW_MISSING_HINT, absolute, bat_session, require_dependencies

MANIFEST_VERSION = 1
INFO_FILE = "pack-info.txt"  # BAT writes it at the top of every pack: which .blend to open
CHUNK = 1 << 20


class PackError(BatchpipeError):
    """The pack could not be built, or a pack is not usable (damaged, unsafe, not what its manifest says)."""


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


def read_manifest(archive: Path, blend: Path, root: Path) -> PackManifest:
    """The manifest of a pack zip already extracted under `root` with its .blend at `blend` (the render container
    records it in the plan): every file with its size and sha256, and the zip's own sha256."""
    inside = PurePosixPath(blend.relative_to(root)).as_posix()
    return PackManifest(version=MANIFEST_VERSION, blend=inside, files=_zip_files(archive), missing=[],
                        zip_sha256=file_sha256(archive), zip_size=archive.stat().st_size)  # fmt: skip


def safe_member(name: str) -> PurePosixPath:
    """A zip member's name as a relative path inside the destination; PackError for one that is not (absolute,
    a drive, '..', backslashes, empty parts)."""
    parts = name.split("/")
    if "\\" in name or "\0" in name or ":" in parts[0] or any(p in ("", ".", "..") for p in parts):
        raise PackError(f"unsafe name in the pack: {name!r}")  # '' first: absolute; '' elsewhere: 'a//b' or 'a/'
    return PurePosixPath(name)


def _blend_of(destination: Path, names: set[str]) -> str:
    """The .blend a pack without a manifest opens: the one its info file names, or its only top-level .blend."""
    info = destination / INFO_FILE
    if INFO_FILE in names:
        lines = [line.strip() for line in info.read_text(encoding="utf-8", errors="replace").splitlines()]
        named = [line for line in lines if line.endswith(".blend") and line in names]
        if named:
            return named[0]
    top = sorted(n for n in names if "/" not in n and n.endswith(".blend"))
    if len(top) == 1:
        return top[0]
    raise PackError("the pack does not say which .blend to open (no manifest, no pack-info.txt naming one)")


def extract_pack(
    archive: Path, destination: Path, manifest: PackManifest | None = None, max_bytes: int | None = None
) -> Path:
    """Extract a pack zip into `destination` (made if needed; a file already there is never overwritten) and
    return the packed .blend's path.

    Every member must be a plain file or directory with a relative name inside the destination (never absolute,
    '..', a link or a duplicate); `max_bytes` caps what it may unpack. With a manifest, the zip's sha256 and every
    file's size and sha256 must be the manifest's, and nothing else may be in it. PackError otherwise (whatever
    was extracted stays in `destination`, for the caller's temporary directory to remove)."""
    if manifest is not None and manifest.zip_sha256 is not None and file_sha256(archive) != manifest.zip_sha256:
        raise PackError(f"{archive.name}: not the pack its manifest describes (sha256 differs)")
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as exc:
        raise PackError(f"{archive.name}: not a readable zip: {exc}") from None
    with zf:
        infos = zf.infolist()
        names: set[str] = set()
        total = 0
        for info in infos:
            kind = stat.S_IFMT(info.external_attr >> 16)
            if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
                raise PackError(f"{archive.name}: {info.filename!r} is not a plain file (a link or a device)")
            member = safe_member(info.filename.rstrip("/") if info.is_dir() else info.filename).as_posix()
            if member in names:
                raise PackError(f"{archive.name}: {member!r} is in the pack twice")
            names.add(member)
            total += info.file_size
        if max_bytes is not None and total > max_bytes:
            raise PackError(f"{archive.name}: unpacks to {total:,} bytes, more than the {max_bytes:,} allowed")
        files = {i.filename: i for i in infos if not i.is_dir()}
        if manifest is not None:
            expected = {f.path: f for f in manifest.files}
            if set(files) != set(expected):
                raise PackError(f"{archive.name}: its files are not the manifest's")
        root = destination.resolve()
        extracted = 0
        for info in infos:
            out = root / safe_member(info.filename.rstrip("/") if info.is_dir() else info.filename)
            if not out.resolve().is_relative_to(root):  # a directory in the way that links elsewhere
                raise PackError(f"{archive.name}: {info.filename!r} would be written outside the destination")
            if info.is_dir():
                out.mkdir(parents=True, exist_ok=True)
                continue
            digest = hashlib.sha256()
            written = 0
            try:
                out.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:  # a file where the member needs a directory
                raise PackError(f"{archive.name}: {info.filename!r} cannot be written: {exc.strerror or exc}") from None
            try:
                with zf.open(info) as src, out.open("xb") as dst:
                    while chunk := src.read(CHUNK):
                        written += len(chunk)
                        if max_bytes is not None and extracted + written > max_bytes:
                            raise PackError(f"{archive.name}: unpacks to more than the {max_bytes:,} bytes allowed")
                        digest.update(chunk)
                        dst.write(chunk)
            except (zipfile.BadZipFile, EOFError, zlib.error, RuntimeError, NotImplementedError) as exc:
                raise PackError(f"{archive.name}: {info.filename!r} cannot be read: {exc}") from None
            except FileExistsError:
                raise PackError(f"{archive.name}: {info.filename!r} is already in the destination") from None
            except OSError as exc:  # a full disk, a directory where the file should be
                raise PackError(f"{archive.name}: {info.filename!r} cannot be written: {exc.strerror or exc}") from None
            extracted += written
            if manifest is not None:
                want = expected[info.filename]
                if (written, digest.hexdigest()) != (want.size, want.sha256):
                    raise PackError(f"{archive.name}: {info.filename!r} is not the file its manifest describes")
    inside = manifest.blend if manifest is not None else _blend_of(root, set(files))
    if inside not in files:
        raise PackError(f"{archive.name}: the pack has no {inside!r}")
    return root / safe_member(inside)


@contextmanager
def unpacked(archive: Path, manifest: PackManifest | None = None, max_bytes: int | None = None) -> Iterator[Path]:
    """The packed .blend of a pack zip extracted to a temporary directory, removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="batchpipe-pack-") as tmp:
        yield extract_pack(archive, Path(tmp), manifest, max_bytes)
