"""Fake image builders: a `docker`, `podman` or `buildah` that records each call (which one, its arguments; for a
login what it read on stdin; for a build each file of its context with the file's sha256) as one JSON line, and does
nothing else.
No container engine runs in the tests; what they check is the command lines and the context handed over."""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FAKE = """#!{python}
import hashlib, json, os, sys
argv = sys.argv[1:]
entry = {{"exe": os.path.basename(sys.argv[0]), "argv": argv}}
if argv[:1] == ["login"]:
    entry["stdin"] = sys.stdin.read()
if argv[:1] in (["build"], ["bud"]):
    context = argv[-1]
    entry["context"] = {{
        os.path.relpath(os.path.join(folder, name), context).replace(os.sep, "/"):
            hashlib.sha256(open(os.path.join(folder, name), "rb").read()).hexdigest()
        for folder, _, names in os.walk(context) for name in names
    }}
with open({log!r}, "a") as out:
    out.write(json.dumps(entry) + "\\n")
"""


@dataclass
class FakeBuilders:
    """A folder of fake builders, meant to be the whole PATH (the real ones may be installed), and their log."""

    bin: Path
    log: Path

    def calls(self) -> list[dict[str, Any]]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines()]

    def argvs(self) -> list[list[str]]:
        return [call["argv"] for call in self.calls()]


def fake_builders(folder: Path, *names: str) -> FakeBuilders:
    """Fakes of these builders (docker, podman, buildah) in folder/bin, logging to folder/builds.log."""
    fakes = FakeBuilders(folder / "bin", folder / "builds.log")
    fakes.bin.mkdir(parents=True, exist_ok=True)
    for name in names:
        exe = fakes.bin / name
        exe.write_text(FAKE.format(python=sys.executable, log=str(fakes.log)))
        exe.chmod(0o755)
    return fakes


def digests(files: Mapping[str, Path]) -> dict[str, str]:
    """A context's files as the fake builders record them: path -> sha256."""
    return {path: hashlib.sha256(source.read_bytes()).hexdigest() for path, source in files.items()}
