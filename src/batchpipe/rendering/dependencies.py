"""A .blend's external dependencies: what it needs from outside itself to render as it was made.

Linked libraries, image textures (single files, sequences, UDIM tiles), sounds, movie clips, caches (Alembic, point
and fluid caches, mesh caches), fonts, volumes and IES lights, traced with blender-asset-tracer through linked
libraries recursively (a library that is missing is reported, its own dependencies cannot be). Packed data is part
of the file and never a dependency.

Three steps, so that most of it tests without files: `trace_references` reads what the files say (BAT),
`locate` is the one function that looks at the file system (does each exist, what a sequence expands to), and
`missing_summary` / `require_dependencies` decide and say what to do about the missing ones.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, fields
from pathlib import Path, PurePath
from typing import Literal

from batchpipe.errors import InputError

Kind = Literal["library", "image", "sound", "movie", "cache", "font", "volume", "mesh", "strip", "ies", "other"]

# What each data block BAT reports holds: by the block's code (ID blocks) ...
KINDS_BY_CODE: dict[bytes, Kind] = {
    b"LI": "library",
    b"IM": "image",
    b"SO": "sound",
    b"MC": "movie",
    b"CF": "cache",  # Alembic / USD cache files
    b"VF": "font",
    b"VO": "volume",  # OpenVDB
    b"ME": "mesh",  # mesh data stored in an external file
}
# ... and by the DNA type of the non-ID blocks some paths live in
KINDS_BY_TYPE: dict[str, Kind] = {
    "Strip": "strip",  # a video sequencer strip: movie, sound or image sequence
    "NodeShaderTexIES": "ies",
    "PointCache": "cache",
    "FluidDomainSettings": "cache",
    "FluidsimSettings": "cache",
    "MeshCacheModifierData": "cache",
    "OceanModifierData": "cache",
}

ALLOW_MISSING_HINT = "--allow-missing renders without them"
LISTED = 10  # missing dependencies a message names; the others are counted

# BAT keeps the files it opened in one process-wide cache: one trace or pack at a time, and the cache is emptied
# after each, so a file changed on disk since is always read again.
BAT_LOCK = threading.RLock()


@dataclass(frozen=True)
class Reference:
    """One path a .blend (the top file or one of its libraries) holds to a file outside itself."""

    kind: Kind
    written: str  # as written in the file: '//textures/wood.png' (relative to that file), or absolute
    path: Path  # resolved, absolute; for a sequence the first file, a glob pattern or a '<UDIM>' pattern
    blend: Path  # the .blend the path is written in (absolute)
    block: str  # the data block holding it: 'IMwood.png', 'LIprops.blend', 'OBCube.modifiers[0]'
    sequence: bool  # an image sequence, UDIM tiles or a cache directory: several files


@dataclass(frozen=True)
class Dependency(Reference):
    """A reference and what is on disk for it."""

    exists: bool
    files: tuple[Path, ...]  # the files it stands for: the one file, or what a sequence expands to; () if missing

    @classmethod
    def of(cls, ref: Reference, exists: bool, files: tuple[Path, ...]) -> Dependency:
        return cls(**{f.name: getattr(ref, f.name) for f in fields(Reference)}, exists=exists, files=files)


@dataclass(frozen=True)
class Dependencies:
    """Every external dependency of a .blend, in the order BAT found them (its own first, then its libraries')."""

    blend: Path  # absolute
    items: tuple[Dependency, ...]

    @property
    def missing(self) -> tuple[Dependency, ...]:
        """The missing ones, one per resolved path (its first reference): the top file's first, by path as written."""
        seen: set[Path] = set()
        out = []
        for dep in sorted(self.items, key=lambda d: (d.blend != self.blend, str(d.blend), d.written)):
            if not dep.exists and dep.path not in seen:
                seen.add(dep.path)
                out.append(dep)
        return tuple(out)

    @property
    def files(self) -> tuple[Path, ...]:
        """Every file on disk the .blend needs besides itself, each once, sorted."""
        return tuple(sorted({f for dep in self.items for f in dep.files}))


def kind_of(code: bytes, dna_type: str) -> Kind:
    return KINDS_BY_CODE.get(code) or KINDS_BY_TYPE.get(dna_type) or "other"


def absolute(path: Path) -> Path:
    """Absolute, '..' folded, symlinks kept (as BAT resolves paths)."""
    return Path(os.path.abspath(path))


def _text(value: bytes) -> str:
    return value.split(b"\0", 1)[0].decode("utf-8", "replace")


@contextmanager
def bat_session() -> Iterator[None]:
    """BAT used by one thread at a time, its warnings (missing files, which batchpipe reports itself) quiet, and
    its cache of open files closed afterwards."""
    from blender_asset_tracer import blendfile

    logger = logging.getLogger("blender_asset_tracer")
    with BAT_LOCK:
        level = logger.level
        logger.setLevel(logging.ERROR)
        try:
            yield
        finally:
            blendfile.close_all_cached()
            logger.setLevel(level)


def trace_references(blend: Path) -> tuple[Reference, ...]:
    """What the .blend and the libraries it links (recursively) say they need. Reads only .blend files.

    A file BAT cannot read raises ValueError (one line)."""
    from blender_asset_tracer import trace

    refs = []
    with bat_session():
        try:
            for usage in trace.deps(absolute(blend)):
                block = usage.block
                refs.append(
                    Reference(
                        kind=kind_of(block.code, block.dna_type_name),
                        written=_text(bytes(usage.asset_path)),
                        path=Path(usage.abspath),
                        blend=absolute(Path(block.bfile.filepath)),
                        block=_text(usage.block_name),
                        sequence=usage.is_sequence,
                    )
                )
        except Exception as exc:  # BAT raises struct, EOF, value and its own errors on damaged files
            raise ValueError(f"cannot trace its dependencies: {type(exc).__name__}: {exc}") from None
    return tuple(refs)


def locate(refs: Iterable[Reference]) -> tuple[Dependency, ...]:
    """Look each reference up on disk: the file system's one entry point in this module.

    A single file exists when it is a file (a directory is not an image); a sequence when at least one of its
    files does (as Blender and BAT's packer treat it), and `files` lists them all."""
    from blender_asset_tracer.trace import file_sequence

    out = []
    for ref in refs:
        if ref.sequence:
            try:
                files = tuple(p for p in file_sequence.expand_sequence(ref.path) if p.is_file())
            except file_sequence.DoesNotExist:
                files = ()
        else:
            files = (ref.path,) if ref.path.is_file() else ()
        out.append(Dependency.of(ref, bool(files), files))
    return tuple(out)


def trace_dependencies(blend: Path) -> Dependencies:
    """Every external dependency of the .blend, traced and looked up on disk."""
    return Dependencies(absolute(blend), locate(trace_references(blend)))


def shown(dep: Reference, top: Path) -> str:
    """A dependency as a message names it: its path as written, its kind, and the library it is written in when
    that is not the top file ('//tex/wood.png (image, in //lib/props.blend)')."""
    written = dep.written or "(empty path)"
    if dep.blend == top:
        return f"{written} ({dep.kind})"
    return f"{written} ({dep.kind}, in {_relative_to_blend(dep.blend, top)})"


def _relative_to_blend(path: Path, top: Path) -> str:
    try:
        return "//" + PurePath(path).relative_to(top.parent).as_posix()
    except ValueError:
        return str(path)


def missing_summary(name: str, deps: Dependencies) -> str | None:
    """'scene.blend: 2 missing dependencies: //lib/props.blend (library), //tex/wood.png (image)', or None."""
    missing = deps.missing
    if not missing:
        return None
    listed = ", ".join(shown(d, deps.blend) for d in missing[:LISTED])
    more = f" and {len(missing) - LISTED} more" if len(missing) > LISTED else ""
    noun = "dependency" if len(missing) == 1 else "dependencies"
    return f"{name}: {len(missing)} missing {noun}: {listed}{more}"


def require_dependencies(
    blend: Path,
    *,
    allow_missing: bool,
    warn: Callable[[str], None],
    name: str | None = None,
    hint: str = ALLOW_MISSING_HINT,
) -> Dependencies:
    """The .blend's dependencies, when all of them are there; missing ones raise InputError (one line naming the
    file and what is missing, then `hint`), or with `allow_missing` are a warning. `name`: how messages name the
    file (default: the path as given). An unreadable library is an InputError too."""
    shown_name = name or str(blend)
    try:
        deps = trace_dependencies(blend)
    except ValueError as exc:
        raise InputError(f"{shown_name}: {exc}") from None
    summary = missing_summary(shown_name, deps)
    if summary is not None:
        if not allow_missing:
            raise InputError(f"{summary}; {hint}")
        warn(f"{summary}; rendering without them (--allow-missing)")
    return deps
