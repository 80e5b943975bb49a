"""A .blend's dependencies without Blender: kinds, what is missing and how it is said, what exists on disk."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from batchpipe.errors import InputError
from batchpipe.rendering import dependencies as deps
from batchpipe.rendering.dependencies import Dependencies, Dependency, Reference

TOP = Path("/p/scene.blend")
LIB = Path("/p/lib/props.blend")


def ref(written: str, kind: deps.Kind = "image", blend: Path = TOP, sequence: bool = False,
        path: Path | None = None) -> Reference:  # fmt: skip
    resolved = path or Path(os.path.normpath(blend.parent / written[2:] if written.startswith("//") else written))
    return Reference(kind=kind, written=written, path=resolved, blend=blend, block="IM" + Path(written).name,
                     sequence=sequence)  # fmt: skip


def dep(written: str, kind: deps.Kind = "image", blend: Path = TOP, exists: bool = False) -> Dependency:
    r = ref(written, kind, blend)
    return Dependency.of(r, exists, (r.path,) if exists else ())


@pytest.mark.parametrize(
    ("code", "dna_type", "kind"),
    [
        (b"LI", "Library", "library"),
        (b"IM", "Image", "image"),
        (b"SO", "bSound", "sound"),
        (b"CF", "CacheFile", "cache"),
        (b"VF", "VFont", "font"),
        (b"MC", "MovieClip", "movie"),
        (b"VO", "Volume", "volume"),
        (b"DATA", "Strip", "strip"),
        (b"DATA", "PointCache", "cache"),
        (b"DATA", "FluidDomainSettings", "cache"),
        (b"DATA", "NodeShaderTexIES", "ies"),
        (b"DATA", "SomethingNew", "other"),
    ],
)
def test_kind_from_the_block_code_or_its_dna_type(code: bytes, dna_type: str, kind: str) -> None:
    assert deps.kind_of(code, dna_type) == kind


def test_a_dependency_keeps_its_reference_fields() -> None:
    r = ref("//tex/wood.png")
    d = Dependency.of(r, True, (r.path,))
    assert (d.kind, d.written, d.path, d.blend, d.block, d.sequence) == (
        "image", "//tex/wood.png", Path("/p/tex/wood.png"), TOP, "IMwood.png", False
    )  # fmt: skip
    assert d.exists and d.files == (Path("/p/tex/wood.png"),)


def test_missing_summary_lists_each_missing_path_once_the_top_files_first() -> None:
    found = Dependencies(TOP, (
        dep("//tex/wood.png"),
        dep("//lib/props.blend", "library"),
        dep("//present.png", exists=True),
        dep("//../tex/wood.png", blend=LIB),  # the same file, from the library: named once
        dep("//lib.png", blend=LIB),
    ))  # fmt: skip
    assert [d.written for d in found.missing] == ["//lib/props.blend", "//tex/wood.png", "//lib.png"]
    assert deps.missing_summary("scene.blend", found) == (
        "scene.blend: 3 missing dependencies: //lib/props.blend (library), //tex/wood.png (image), "
        "//lib.png (image, in //lib/props.blend)"
    )
    assert deps.missing_summary("scene.blend", Dependencies(TOP, (dep("//x.png", exists=True),))) is None
    one = Dependencies(TOP, (dep("//x.png", "sound"),))
    assert deps.missing_summary("a/scene.blend", one) == "a/scene.blend: 1 missing dependency: //x.png (sound)"


def test_a_long_list_is_cut_and_counted_and_odd_paths_are_shown() -> None:
    many = Dependencies(TOP, tuple(dep(f"//t/{i:02d}.png") for i in range(13)))
    summary = deps.missing_summary("s.blend", many)
    assert summary is not None and summary.endswith("//t/09.png (image) and 3 more")
    assert summary.count("(image)") == deps.LISTED
    outside = Path("/elsewhere/lib.blend")
    assert deps.shown(dep("//x.png", blend=outside), TOP) == "//x.png (image, in /elsewhere/lib.blend)"
    assert deps.shown(ref("", path=Path("/p")), TOP) == "(empty path) (image)"


def test_locate_single_files_sequences_and_udim_tiles(tmp_path: Path) -> None:
    (tmp_path / "tex").mkdir()
    (tmp_path / "tex" / "wood.png").write_bytes(b"png")
    (tmp_path / "seq").mkdir()
    for name in ("frame0001.png", "frame0002.png", "frame0003.png", "other.png"):
        (tmp_path / "seq" / name).write_bytes(b"png")
    for tile in (1001, 1002):
        (tmp_path / "tex" / f"skin.{tile}.png").write_bytes(b"png")
    top = tmp_path / "scene.blend"
    refs = [
        ref("//tex/wood.png", blend=top),
        ref("//tex/gone.png", blend=top),
        ref("//tex", blend=top),  # a directory is not an image file
        ref("//seq/frame0001.png", sequence=True, blend=top),
        ref("//tex/skin.<UDIM>.png", sequence=True, blend=top),
        ref("//tex/none.<UDIM>.png", sequence=True, blend=top),
        ref("//nothing/frame0001.png", sequence=True, blend=top),
    ]
    found = deps.locate(refs)
    assert [d.exists for d in found] == [True, False, False, True, True, False, False]
    assert found[0].files == (tmp_path / "tex" / "wood.png",)
    assert found[3].files == tuple(tmp_path / "seq" / f"frame000{i}.png" for i in (1, 2, 3))
    assert found[4].files == (tmp_path / "tex" / "skin.1001.png", tmp_path / "tex" / "skin.1002.png")
    assert found[1].files == found[5].files == found[6].files == ()
    result = Dependencies(top, found)
    assert len(result.files) == 6 and list(result.files) == sorted(result.files)


def test_require_refuses_or_warns(monkeypatch: pytest.MonkeyPatch) -> None:
    missing = Dependencies(TOP, (dep("//lib/props.blend", "library"), dep("//tex/wood.png")))
    monkeypatch.setattr(deps, "trace_dependencies", lambda _blend: missing)
    with pytest.raises(InputError) as exc:
        deps.require_dependencies(Path("scene.blend"), allow_missing=False, warn=pytest.fail)
    assert exc.value.exit_code == 2
    assert str(exc.value) == (
        "scene.blend: 2 missing dependencies: //lib/props.blend (library), //tex/wood.png (image); "
        "--allow-missing renders without them"
    )
    warnings: list[str] = []
    assert deps.require_dependencies(Path("scene.blend"), allow_missing=True, warn=warnings.append) is missing
    assert warnings == [
        "scene.blend: 2 missing dependencies: //lib/props.blend (library), //tex/wood.png (image); "
        "rendering without them (--allow-missing)"
    ]


def test_an_unreadable_blend_is_an_input_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.blend"
    bad.write_bytes(b"BLENDER-v304" + b"\0" * 10)
    with pytest.raises(InputError, match=r"bad\.blend: cannot trace its dependencies: "):
        deps.require_dependencies(bad, allow_missing=False, warn=pytest.fail)
