"""The renderer's version, as `blender --version` prints it, and how it compares with the version that saved a file:
by major.minor, the most a .blend's header records."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from batchpipe.errors import InputError
from batchpipe.rendering.versions import (
    blender_version,
    check_renderer,
    is_newer,
    major_minor,
    parse_version,
    version_from_output,
)

DEBIAN = """Blender 3.4.1
\tbuild date: 2023-03-18
\tbuild time: 10:05:35
\tbuild commit date: unknown
\tbuild commit time: unknown
\tbuild hash: unknown
\tbuild platform: Linux
\tbuild type: Release
"""


def test_versions_parse_and_compare_by_major_minor() -> None:
    assert parse_version("4.5.3") == (4, 5, 3) and parse_version("4.2") == (4, 2)
    assert parse_version("2.80") == (2, 80) and parse_version(" 4.2.1 LTS") == (4, 2, 1)
    assert major_minor("4.5.3") == (4, 5) and major_minor("5.0") == (5, 0)
    for bad in ("", "four", "4", "v4.2"):
        with pytest.raises(ValueError, match="not a Blender version"):
            parse_version(bad)
    assert is_newer("4.2", "3.4.1") and is_newer("3.5", "3.4.1") and is_newer("5.0", "4.5.3")
    assert is_newer("4.10", "4.9.2")  # numbers, not text
    assert not is_newer("3.4", "3.4.0") and not is_newer("4.2", "4.2.0")  # a 4.2.5 file is not newer than 4.2.0
    assert not is_newer("2.80", "3.4.1") and not is_newer("4.2", "4.5.3")


def test_a_file_newer_than_the_renderer_is_refused_naming_both() -> None:
    check_renderer("scene.blend", "3.4", "3.4.1")
    check_renderer("scene.blend", "2.80", "4.5.3")
    with pytest.raises(InputError) as info:
        check_renderer("scene.blend", "4.2", "3.4.1")
    assert info.value.exit_code == 2
    assert str(info.value) == (
        "scene.blend: saved by Blender 4.2, newer than the renderer (Blender 3.4.1): render it with Blender 4.2 or "
        "later (--blender PATH renders with another Blender)"
    )


@pytest.mark.parametrize(
    ("output", "version"),
    [
        (DEBIAN, "3.4.1"),
        ("Blender 4.2.3 LTS\n\tbuild date: 2024-10-15\n", "4.2.3"),
        ("Blender 4.5.3 LTS (hash 67807e1800cc built 2025-09-09)\n", "4.5.3"),
        ("Blender 5.0.0 Alpha\n", "5.0.0"),
        ("Blender 2.79 (sub 0)\n", "2.79"),
        ("Color management: using fallback mode\nALSA lib confmisc.c: cannot find card '0'\nBlender 3.6.5\n", "3.6.5"),
        ("blender: command not found\n", None),
        ("This is not Blender 3.4\n", None),
        ("", None),
    ],
)
def test_the_version_is_read_from_blenders_output(output: str, version: str | None) -> None:
    assert version_from_output(output) == version


def fake_blender(tmp_path: Path, script: str) -> str:
    path = tmp_path / "blender"
    path.write_text("#!/bin/sh\n" + script)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


def test_blender_version_runs_blender(tmp_path: Path) -> None:
    assert blender_version(fake_blender(tmp_path, 'echo "Blender 4.5.3 LTS"\necho "\tbuild date: x"\n')) == "4.5.3"
    args = tmp_path / "args"
    assert blender_version(fake_blender(tmp_path, f'echo "$@" > {args}\necho "Blender 3.4.1"\n')) == "3.4.1"
    assert args.read_text() == "--version\n"


def test_a_blender_that_does_not_say_its_version_is_exit_2(tmp_path: Path) -> None:
    for script, said in [
        ("echo 'Traceback (most recent call last):' >&2\necho 'ValueError: no' >&2\nexit 1\n", "'ValueError: no'"),
        ("echo hello\n", "'hello'"),
        ("exit 3\n", "''"),
    ]:
        executable = fake_blender(tmp_path, script)
        with pytest.raises(InputError) as info:
            blender_version(executable)
        assert info.value.exit_code == 2
        assert str(info.value).startswith(f"{executable} --version exited with code ") and said in str(info.value)
    with pytest.raises(InputError, match="nowhere/blender --version: FileNotFoundError"):
        blender_version(str(tmp_path / "nowhere" / "blender"))
