"""Pure modules stay pure: no boto3, click, rich or subprocess, so they test in milliseconds; the container
entrypoints never import the local engine or the CLI."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "batchpipe"
PURE = sorted(
    [
        *(SRC / "pricing").glob("*.py"),
        # streaming.py reads and writes a run's files through the layout it is given: the stages' I/O edge
        *(p for p in (SRC / "pipelines" / "montecarlo").glob("*.py") if p.name != "streaming.py"),
        SRC / "pipelines" / "portfolio.py",
        *(SRC / "deploy").glob("*.py"),
    ]
)
FORBIDDEN = {
    "batchpipe.layout",
    "boto3",
    "botocore",
    "click",
    "rich",
    "subprocess",
    "batchpipe.aws",
    "batchpipe.storage",
}


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


def module_file(name: str) -> Path | None:
    """The source file of a batchpipe module or package, None for a name that is not one (an imported function)."""
    base = SRC.joinpath(*name.split(".")[1:])
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def batchpipe_modules(path: Path) -> set[str]:
    """The batchpipe modules a file imports, at its top or inside a function, with the packages that hold them."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
    found = {n for n in names if n.split(".")[0] == "batchpipe" and module_file(n) is not None}
    return found | {".".join(n.split(".")[:i]) for n in found for i in range(1, n.count(".") + 1)}


@pytest.mark.parametrize("entrypoint", ["pricer", "render"])
def test_a_container_entrypoint_never_imports_the_local_engine_or_the_cli(entrypoint: str) -> None:
    seen: set[str] = set()
    todo = [f"batchpipe.jobs.{entrypoint}"]
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            path = module_file(name)
            assert path is not None
            todo.extend(batchpipe_modules(path))
    assert "batchpipe.storage" in seen  # the walk follows imports
    assert not {n for n in seen if n.split(".")[:2] in (["batchpipe", "backends"], ["batchpipe", "cli"])}


RUN_MODULES = {"batchpipe.aws.runs", "batchpipe.aws.sfn", "batchpipe.aws.batch", "batchpipe.aws.objects"}


def test_only_the_aws_backend_reaches_the_run_modules_from_outside_the_aws_package() -> None:
    users = sorted(
        str(p.relative_to(SRC))
        for p in SRC.rglob("*.py")
        if "aws" not in p.relative_to(SRC).parts and batchpipe_modules(p) & RUN_MODULES
    )
    assert users == ["backends/aws.py"]


@pytest.mark.parametrize("service", ["sfn", "batch", "objects"])
def test_a_service_module_uses_no_other_service_module(service: str) -> None:
    """Each answers for its own AWS service; runs.py is where they are composed."""
    reached = batchpipe_modules(SRC / "aws" / f"{service}.py") & RUN_MODULES
    assert reached == set(), f"aws/{service}.py imports {reached}"


def test_the_cli_is_a_shell_over_the_backends() -> None:
    """The CLI reaches AWS through backends/aws.py (deploy through its plan, batchpipe.deploy and aws.deploy, and
    aws.template; destroy through aws.stack): never the run, service and client modules, never boto3."""
    reached: set[str] = set()
    for path in sorted((SRC / "cli").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                reached.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module:
                reached.add(node.module)
                reached.update(f"{node.module}.{a.name}" for a in node.names)  # `from batchpipe.aws import runs`
    assert not reached & (RUN_MODULES | {"batchpipe.aws.clients", "boto3", "botocore"})
    assert "batchpipe.backends.aws" in reached
