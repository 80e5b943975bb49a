"""`batchpipe deploy` from an installed batchpipe, in an empty directory, against a moto server on 127.0.0.1.

The wheel is built from a copy of the checkout's build inputs (nothing is written into the checkout) and installed,
without its dependencies, into a fresh virtual environment; the dependencies are this environment's, reached through
a .pth line (their folder is added to sys.path as is: its own .pth files, this checkout's editable install among
them, are not read). So `batchpipe` runs from the wheel's files only: its template, state machines and the images'
build context must come with it. One environment serves every test of the session.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
import urllib.request
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import boto3
import pytest

from batchpipe.aws import images
from tests.aws.builders import FakeBuilders, digests, fake_builders
from tests.conftest import ROOT

REGION = "us-east-1"
# moto 5.2.5's gaps (tests/functional/test_template.py: for_moto), applied in the installed environment to the
# template the installed batchpipe reads, when BATCHPIPE_TEST_CHECKOUT names the checkout that holds the workaround
MOTO_HOOK = '''"""Test scaffolding only: see tests/aws/test_installed_package.py."""
import os
import sys

if os.environ.get("BATCHPIPE_TEST_CHECKOUT"):
    sys.path.append(os.environ["BATCHPIPE_TEST_CHECKOUT"])
    from batchpipe.aws import template
    from tests.functional.test_template import for_moto

    _real = template.build_template
    template.build_template = lambda folder=None: for_moto(_real(folder))
'''


@dataclass(frozen=True)
class Installed:
    venv: Path

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"

    @property
    def batchpipe(self) -> Path:
        return self.venv / "bin" / "batchpipe"


def build_backend_is_here() -> bool:
    """Whether this environment has the build backend pyproject.toml asks for (setuptools>=77): then the wheel
    builds offline, else pip fetches it for an isolated build."""
    try:
        return int(metadata.version("setuptools").split(".")[0]) >= 77
    except metadata.PackageNotFoundError:
        return False


@pytest.fixture(scope="session")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    base = tmp_path_factory.mktemp("installed")
    source = base / "source"  # the build's inputs, as a clean clone has them
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    for folder in ("src", "containers"):
        shutil.copytree(ROOT / folder, source / folder, ignore=ignore)
    wheels = base / "wheels"
    isolation = ["--no-build-isolation"] if build_backend_is_here() else []
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", *isolation, "-w", str(wheels),
                            str(source)], capture_output=True, text=True, check=False)  # fmt: skip
    assert built.returncode == 0, "building the wheel (pip fetches setuptools>=77 unless installed):\n" + built.stderr
    (wheel,) = wheels.glob("batchpipe-*.whl")
    found = Installed(base / "venv")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(found.venv)], check=True)
    done = subprocess.run([sys.executable, "-m", "pip", "--python", str(found.python), "install", "-q", "--no-deps",
                           "--no-index", str(wheel)], capture_output=True, text=True, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    purelib = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    site = Path(subprocess.run([str(found.python), "-c", purelib], capture_output=True, text=True,
                               check=True).stdout.strip())  # fmt: skip
    (site / "zz_test_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    (site / "batchpipe_test_moto.py").write_text(MOTO_HOOK)
    (site / "zz_test_moto.pth").write_text("import batchpipe_test_moto\n")
    return found


@pytest.fixture
def world(server: str, tmp_path: Path) -> dict[str, str]:
    """An empty working directory's environment: the moto server's account, no checkout on any path."""
    urllib.request.urlopen(urllib.request.Request(f"{server}/moto-api/reset", method="POST"))
    return {
        "AWS_ENDPOINT_URL": server,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_CONFIG_FILE": str(tmp_path / "none"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
        "HOME": str(tmp_path),
        "BATCHPIPE_TEST_CHECKOUT": str(ROOT),
    }


def run(installed: Installed, env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(installed.batchpipe), *args], cwd=cwd, env=env, capture_output=True, text=True,
                          check=False, timeout=120)  # fmt: skip


def test_the_installed_package_runs_from_its_own_files(installed: Installed, tmp_path: Path) -> None:
    where = subprocess.run(
        [str(installed.python), "-c", "import batchpipe, batchpipe.aws.template as t; print(batchpipe.__file__); "
         "print(t.template_dir())"],
        cwd=tmp_path, env={"PATH": "", "HOME": str(tmp_path)}, capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    site = str(installed.venv / "lib")
    assert where[0].startswith(site) and where[1].startswith(site), where
    assert Path(where[1], "template.json").is_file()
    assert (installed.venv / "share" / "batchpipe" / "containers" / "render" / "Dockerfile").is_file()


def test_deploy_from_an_empty_directory_plans_creates_and_builds_from_the_installed_package(
    installed: Installed, world: dict[str, str], tmp_path: Path
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    fakes: FakeBuilders = fake_builders(tmp_path / "fakes", "buildah")
    env = world | {"PATH": str(fakes.bin)}
    checkout = images.contexts()  # what this checkout would build

    planned = run(installed, env, empty, "deploy", "--dry-run")
    assert planned.returncode == 0, planned.stderr
    lines = planned.stdout.splitlines()
    assert lines[0].startswith("create stack 'batchpipe' with ")
    for name, context in checkout.items():  # the installed package's context is this checkout's, file for file
        assert (f"build and push {name} (containers/{name}/Dockerfile): tag {context.tag()}, once the stack creates "
                "its repository") in lines  # fmt: skip

    created = run(installed, env, empty, "deploy", "--no-build")
    assert created.returncode == 0, created.stderr
    assert created.stdout == "stack 'batchpipe' created\n"
    assert "no image is pushed yet: " in created.stderr and ":latest are not in ECR" in created.stderr

    built = run(installed, env, empty, "deploy")
    assert built.returncode == 0, built.stderr
    assert built.stdout == "stack 'batchpipe' updated\n"
    calls = fakes.calls()
    assert [c["argv"][0] for c in calls] == ["login", "bud", "push", "bud", "push"]
    for call, name in ((calls[1], "pricer"), (calls[3], "render")):
        context = call["argv"][-1]
        assert call["argv"][4] == f"{context}/containers/{name}/Dockerfile"
        expected = digests(checkout[name].files)
        assert sorted(call["context"]) == sorted(expected)
        assert call["context"] == expected
    assert list(empty.iterdir()) == []
    cfn = boto3.client("cloudformation", region_name=REGION, endpoint_url=world["AWS_ENDPOINT_URL"],
                       aws_access_key_id="testing", aws_secret_access_key="testing")  # fmt: skip
    stack = cfn.describe_stacks(StackName="batchpipe")["Stacks"][0]
    pinned = {p["ParameterKey"]: p["ParameterValue"] for p in stack["Parameters"]}
    assert pinned["PricerImage"].endswith(":" + checkout["pricer"].tag())
    assert pinned["RenderImage"].endswith(":" + checkout["render"].tag())
