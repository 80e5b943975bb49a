"""Which Blender saved a .blend, from its header alone: both header formats (12 bytes up to Blender 4.x, 17 bytes
from 5.0), plain, gzip and zstd files, and one-line errors for headers that are not Blender's. Real files saved by
Blender are read in tests/functional/test_render_versions.py."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
import zstandard

from batchpipe.rendering.blendfile import (
    BlendError,
    BlendHeader,
    file_version,
    inspect_blend,
    parse_header,
    read_header,
    version_text,
)
from tests.conftest import as_format_1, with_version
from tests.unit.test_frames import REAL_BLEND


@pytest.fixture(scope="module")
def real_blend() -> bytes:
    assert REAL_BLEND.is_file(), f"{REAL_BLEND} is missing: install Debian's blender (make install)"
    return REAL_BLEND.read_bytes()


def compressed(data: bytes, compression: str) -> bytes:
    return {"none": data, "gzip": gzip.compress(data), "zstd": zstandard.ZstdCompressor().compress(data)}[compression]


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (b"BLENDER-v304REND", BlendHeader("3.4", 0, 8, True)),
        (b"BLENDER-v402", BlendHeader("4.2", 0, 8, True)),
        (b"BLENDER_v279", BlendHeader("2.79", 0, 4, True)),
        (b"BLENDER-V280", BlendHeader("2.80", 0, 8, False)),
        (b"BLENDER-v300", BlendHeader("3.0", 0, 8, True)),
        (b"BLENDER17-01v0405REND", BlendHeader("4.5", 1, 8, True)),
        (b"BLENDER17-01v0500", BlendHeader("5.0", 1, 8, True)),
        (b"BLENDER17-01v1203", BlendHeader("12.3", 1, 8, True)),
    ],
)
def test_both_header_formats_decode(head: bytes, expected: BlendHeader) -> None:
    assert parse_header(head) == expected


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (b"", "the .blend header is cut short"),
        (b"BLEN", "the .blend header is cut short"),
        (b"blender-v304", "not a .blend file (no BLENDER header)"),
        (b"BLENDER-v3", "the .blend header is cut short"),
        (b"BLENDER17-01v05", "the .blend header is cut short"),
        (b"BLENDER-x304", "unknown .blend header b'BLENDER-x304' (saved by a Blender newer than batchpipe?)"),
        (b"BLENDER-v3a4", "unknown .blend header b'BLENDER-v3a4' (saved by a Blender newer than batchpipe?)"),
        (
            b"BLENDER18-01v0500x",
            "unknown .blend header b'BLENDER18-01v0500' (saved by a Blender newer than batchpipe?)",
        ),
        (b"BLENDER17-02v0600", "unknown .blend header b'BLENDER17-02v0600' (saved by a Blender newer than batchpipe?)"),
        (b"BLENDER17_01v0500", "unknown .blend header b'BLENDER17_01v0500' (saved by a Blender newer than batchpipe?)"),
        (b"BLENDER17-01V0500", "unknown .blend header b'BLENDER17-01V0500' (saved by a Blender newer than batchpipe?)"),
        (b"BLENDER17-01v05x0", "unknown .blend header b'BLENDER17-01v05x0' (saved by a Blender newer than batchpipe?)"),
        (b"BLENDER\n\x00\x01abcdefghij", "unknown .blend header b'BLENDER\\n\\x00\\x01abcdefg' (saved by a"),
    ],
)
def test_a_header_that_is_not_blenders_is_one_line(head: bytes, expected: str) -> None:
    with pytest.raises(BlendError) as info:
        parse_header(head)
    assert str(info.value).startswith(expected) and "\n" not in str(info.value)


def test_version_numbers_read_as_blender_shows_them() -> None:
    assert [version_text(n) for n in (279, 280, 300, 304, 402, 500, 1203)] == [
        "2.79", "2.80", "3.0", "3.4", "4.2", "5.0", "12.3"
    ]  # fmt: skip


@pytest.mark.parametrize("compression", ["none", "gzip", "zstd"])
def test_plain_gzip_and_zstd_files(tmp_path: Path, real_blend: bytes, compression: str) -> None:
    for name, data, version in [
        ("vfx.blend", real_blend, "2.80"),  # saved by Blender 2.80
        ("claims-499.blend", with_version(real_blend, b"499"), "4.99"),
        ("format-1.blend", as_format_1(real_blend), "5.0"),
        ("format-1-510.blend", as_format_1(real_blend, 510), "5.10"),
    ]:
        path = tmp_path / f"{compression}-{name}"
        path.write_bytes(compressed(data, compression))
        assert file_version(path) == version, name
        assert read_header(path).format_version == (1 if name.startswith("format-1") else 0)


def test_a_format_1_file_reads_whole(tmp_path: Path, real_blend: bytes) -> None:
    """blender-asset-tracer reads the 32-byte block headers that go with the 17-byte header."""
    path = tmp_path / "five.blend"
    path.write_bytes(compressed(as_format_1(real_blend), "zstd"))
    info = inspect_blend(path)
    assert (info.blender_version, info.min_version, info.compression) == ("5.0", "2.80", "zstd")
    assert (info.scene, info.frame_end, info.width) == ("Scene", 250, 1920)


def test_the_oldest_version_that_reads_the_file_is_read_from_it(tmp_path: Path, real_blend: bytes) -> None:
    info = inspect_blend(REAL_BLEND)
    assert (info.blender_version, info.min_version) == ("2.80", "2.80")


@pytest.mark.parametrize("compression", ["gzip", "zstd"])
def test_compressed_data_that_is_not_a_blend_or_is_damaged(tmp_path: Path, compression: str) -> None:
    path = tmp_path / "x.blend"
    path.write_bytes(compressed(b"hello, not a blend file at all", compression))
    with pytest.raises(BlendError, match=rf"^not a \.blend file \(its {compression} compressed data does not start"):
        file_version(path)
    path.write_bytes(compressed(b"BLENDER-v304" * 1000, compression)[:12])  # cut inside the compressed header
    with pytest.raises(BlendError) as info:
        file_version(path)
    assert str(info.value).startswith((f"cannot read the .blend ({compression} compressed): ", "the .blend header"))
    path.write_bytes(compressed(b"BLENDER-v304", compression)[:4] + b"\xff" * 40)  # garbage after the magic
    with pytest.raises(BlendError, match=rf"^cannot read the \.blend \({compression} compressed\): "):
        file_version(path)


def test_an_uncompressed_file_with_another_signature_is_not_a_blend(tmp_path: Path) -> None:
    path = tmp_path / "notes.blend"
    path.write_bytes(b"hello\n")
    with pytest.raises(BlendError, match=r"^not a \.blend file \(no BLENDER, gzip or zstd signature\)$"):
        file_version(path)
