"""Extracting a pack zip without Blender: only plain files inside the destination, checked against the manifest."""

from __future__ import annotations

import hashlib
import os
import stat
import zipfile
from pathlib import Path

import pytest

from batchpipe.rendering.pack import PackedFile, PackError, PackManifest, extract_pack, safe_member, unpacked

FILES = {"scene.blend": b"BLENDER-v304 scene", "lib/props.blend": b"BLENDER-v304 lib", "tex/wood.png": b"png"}
INFO = b"This is a Blender Asset Tracer pack.\nStart by opening the following blend file:\n    scene.blend\n"


def make_zip(path: Path, members: dict[str, bytes], links: dict[str, str] | None = None) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
        for name, target in (links or {}).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, target)
    return path


def manifest_of(archive: Path, members: dict[str, bytes], blend: str = "scene.blend") -> PackManifest:
    files = [PackedFile(path=n, size=len(d), sha256=hashlib.sha256(d).hexdigest()) for n, d in sorted(members.items())]
    return PackManifest(version=1, blend=blend, files=files, missing=[],
                        zip_sha256=hashlib.sha256(archive.read_bytes()).hexdigest(),
                        zip_size=archive.stat().st_size)  # fmt: skip


@pytest.mark.parametrize("name", ["scene.blend", "lib/props.blend", "_outside_project/home/u/tex/a b.png"])
def test_safe_member_names(name: str) -> None:
    assert safe_member(name).as_posix() == name


@pytest.mark.parametrize(
    "name", ["", "/etc/passwd", "../x", "a/../../x", "a/./b", "a//b", "C:/x", "c:x", "a\\..\\x", "a\0b", "."]
)
def test_unsafe_member_names(name: str) -> None:
    with pytest.raises(PackError, match="unsafe name"):
        safe_member(name)


def test_extracts_and_finds_the_blend_by_pack_info_or_manifest(tmp_path: Path) -> None:
    archive = make_zip(tmp_path / "p.zip", {**FILES, "pack-info.txt": INFO})
    out = tmp_path / "out"
    out.mkdir()
    blend = extract_pack(archive, out)
    assert blend == out.resolve() / "scene.blend"
    assert {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*") if p.is_file()} == {
        **FILES, "pack-info.txt": INFO
    }  # fmt: skip
    with unpacked(archive, manifest_of(archive, {**FILES, "pack-info.txt": INFO})) as inside:
        assert inside.read_bytes() == FILES["scene.blend"]
        tmp = inside.parent
    assert not tmp.exists()


def test_without_info_file_the_only_top_level_blend(tmp_path: Path) -> None:
    archive = make_zip(tmp_path / "p.zip", FILES)
    with unpacked(archive) as blend:
        assert blend.name == "scene.blend"
    two = make_zip(tmp_path / "two.zip", {**FILES, "other.blend": b"BLENDER"})
    with pytest.raises(PackError, match=r"does not say which \.blend"), unpacked(two):
        pass


@pytest.mark.parametrize(
    ("members", "links", "message"),
    [
        ({"../evil.txt": b"x"}, None, "unsafe name"),
        ({"/abs.txt": b"x"}, None, "unsafe name"),
        ({"a/../../evil.txt": b"x"}, None, "unsafe name"),
        ({**FILES}, {"tex/link.png": "/etc/passwd"}, "not a plain file"),
    ],
)
def test_refuses_unsafe_members_before_writing_anything(
    tmp_path: Path, members: dict[str, bytes], links: dict[str, str] | None, message: str
) -> None:
    archive = make_zip(tmp_path / "p.zip", members, links)
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(PackError, match=message):
        extract_pack(archive, out)
    assert list(out.iterdir()) == []
    assert not (tmp_path / "evil.txt").exists()


def test_refuses_duplicates_oversize_and_a_directory_that_links_outside(tmp_path: Path) -> None:
    archive = tmp_path / "dup.zip"
    with zipfile.ZipFile(archive, "w") as zf, pytest.warns(UserWarning, match="Duplicate name"):
        zf.writestr("scene.blend", b"a")
        zf.writestr("scene.blend", b"b")
    with pytest.raises(PackError, match="in the pack twice"):
        extract_pack(archive, tmp_path)
    big = make_zip(tmp_path / "big.zip", {"scene.blend": b"\0" * 10_000})
    with pytest.raises(PackError, match="more than the 1,000 allowed"):
        extract_pack(big, tmp_path, max_bytes=1000)
    outside = tmp_path / "outside"
    outside.mkdir()
    out = tmp_path / "out"
    out.mkdir()
    os.symlink(outside, out / "tex")
    with pytest.raises(PackError, match="outside the destination"):
        extract_pack(make_zip(tmp_path / "p.zip", FILES), out)
    assert list(outside.iterdir()) == []


def test_a_pack_that_is_not_its_manifests_is_refused(tmp_path: Path) -> None:
    archive = make_zip(tmp_path / "p.zip", FILES)
    manifest = manifest_of(archive, FILES)
    other = make_zip(tmp_path / "other.zip", {**FILES, "tex/wood.png": b"PNG"})
    with pytest.raises(PackError, match="sha256 differs"):
        extract_pack(other, tmp_path / "x", manifest)
    no_zip_hash = manifest.model_copy(update={"zip_sha256": None})
    (tmp_path / "x").mkdir()
    with pytest.raises(PackError, match=r"'tex/wood\.png' is not the file its manifest describes"):
        extract_pack(other, tmp_path / "x", no_zip_hash)
    extra = make_zip(tmp_path / "extra.zip", {**FILES, "more.txt": b"x"})
    with pytest.raises(PackError, match="not the manifest's"):
        extract_pack(extra, tmp_path / "y", no_zip_hash)
    with pytest.raises(PackError, match="not a readable zip"):
        extract_pack(tmp_path / "missing.zip", tmp_path)
    assert extract_pack(archive, tmp_path / "y", manifest) == (tmp_path / "y").resolve() / "scene.blend"


def test_a_member_where_a_file_already_is_or_a_damaged_member_is_refused(tmp_path: Path) -> None:
    archive = make_zip(tmp_path / "p.zip", FILES)
    out = tmp_path / "out"
    (out / "tex").mkdir(parents=True)
    (out / "tex" / "wood.png").write_bytes(b"mine")
    with pytest.raises(PackError, match=r"'tex/wood\.png' is already in the destination"):
        extract_pack(archive, out)
    assert (out / "tex" / "wood.png").read_bytes() == b"mine"
    clash = make_zip(tmp_path / "clash.zip", {"scene.blend": b"BLENDER", "scene.blend/x": b"x"})
    with pytest.raises(PackError, match=r"'scene\.blend/x' cannot be written: File exists"):
        extract_pack(clash, tmp_path / "clash")
    damaged = tmp_path / "damaged.zip"
    data = bytearray(make_zip(tmp_path / "d.zip", {"scene.blend": b"BLENDER" * 100}).read_bytes())  # stored
    at = data.index(b"BLENDER" * 2)
    data[at : at + 4] = b"XXXX"
    damaged.write_bytes(bytes(data))
    with pytest.raises(PackError, match=r"'scene\.blend' cannot be read: Bad CRC-32"):
        extract_pack(damaged, tmp_path / "damaged")
