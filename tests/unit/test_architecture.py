"""Pure modules stay pure: no boto3, click, rich or subprocess, so they test in milliseconds."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "batchpipe"
PURE = sorted(
    [
        *(SRC / "pricing").glob("*.py"),
        *(SRC / "pipelines" / "montecarlo").glob("*.py"),
        SRC / "pipelines" / "portfolio.py",
    ]
)
FORBIDDEN = {"boto3", "botocore", "click", "rich", "subprocess", "batchpipe.aws", "batchpipe.storage"}


def imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("path", PURE, ids=lambda p: str(p.relative_to(SRC)))
def test_pure_module_imports_no_io_layer(path: Path) -> None:
    bad = {n for n in imports(path) if any(n == f or n.startswith(f + ".") for f in FORBIDDEN)}
    assert not bad, f"{path.name} imports {bad}"


def test_only_the_aws_package_imports_boto3() -> None:
    offenders = [
        p.relative_to(SRC)
        for p in SRC.rglob("*.py")
        if "aws" not in p.relative_to(SRC).parts and {"boto3", "botocore"} & {n.split(".")[0] for n in imports(p)}
    ]
    assert offenders == []
