"""Blender versions: the renderer's (what `blender --version` says) and how it compares with the version that
saved a .blend (`batchpipe.rendering.blendfile.file_version`)."""

from __future__ import annotations

import re
import subprocess

from batchpipe.errors import InputError

_VERSION = re.compile(r"(\d+)\.(\d+)(?:\.(\d+))?")
_BLENDER_LINE = re.compile(r"^Blender (\d+\.\d+(?:\.\d+)?)\b", re.MULTILINE)
VERSION_TIMEOUT_S = 60.0


def parse_version(version: str) -> tuple[int, ...]:
    """ "4.5.3" -> (4, 5, 3), "4.2" -> (4, 2), "2.80" -> (2, 80); anything after the numbers is ignored
    ("4.2.1 LTS"). ValueError when it does not start with major.minor."""
    found = _VERSION.match(version.strip())
    if not found:
        raise ValueError(f"not a Blender version: {version!r}")
    return tuple(int(part) for part in found.groups() if part is not None)


def major_minor(version: str) -> tuple[int, int]:
    """ "4.5.3" -> (4, 5): what a .blend's header records of the Blender that saved it."""
    major, minor = parse_version(version)[:2]
    return major, minor


def is_newer(file_version: str, renderer_version: str) -> bool:
    """Whether a file saved by `file_version` ("4.2") comes from a newer Blender than the renderer ("3.4.1"):
    compared by major.minor only, as the file records no more (a 4.2.5 file is not newer than 4.2.0)."""
    return major_minor(file_version) > major_minor(renderer_version)


def check_renderer(name: str, file_version: str, renderer_version: str) -> None:
    """InputError when the renderer is older than the Blender that saved the file `name`."""
    if is_newer(file_version, renderer_version):
        raise InputError(
            f"{name}: saved by Blender {file_version}, newer than the renderer (Blender {renderer_version}): "
            f"render it with Blender {file_version} or later",
            "--blender PATH renders with another Blender",
        )


def version_from_output(output: str) -> str | None:
    """The version in the output of `blender --version` ("Blender 3.4.1", "Blender 4.2.3 LTS", after any warnings
    printed before it): "3.4.1"; None when it has none."""
    found = _BLENDER_LINE.search(output)
    return found.group(1) if found else None


def blender_version(executable: str) -> str:
    """The version of the Blender at `executable`, as `<blender> --version` prints it ("3.4.1"). InputError when it
    cannot run or does not say."""
    try:
        run = subprocess.run(
            [executable, "--version"], capture_output=True, text=True, errors="replace", timeout=VERSION_TIMEOUT_S,
            check=False,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise InputError(f"{executable} --version: {type(exc).__name__}: {exc}") from None
    version = version_from_output(run.stdout) if run.returncode == 0 else None
    if version is None:
        said = next((line.strip() for line in reversed((run.stdout + run.stderr).splitlines()) if line.strip()), "")
        raise InputError(
            f"{executable} --version exited with code {run.returncode} and said {said[:200]!r}, not Blender's version",
            "is it Blender? --blender PATH (or BATCHPIPE_BLENDER) names Blender's executable",
        )
    return version
