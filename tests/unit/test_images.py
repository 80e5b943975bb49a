"""The images' build contexts and builders, without AWS: what a context holds and what its content tag covers, the
builders found in the order docker, podman, buildah, and their command lines."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from batchpipe.aws import images
from batchpipe.errors import InputError
from tests.aws.builders import fake_builders
from tests.conftest import ROOT


def test_a_checkout_context_holds_what_the_dockerfiles_copy() -> None:
    contexts = images.contexts()
    assert images.checkout_root() == ROOT
    for name, context in contexts.items():
        other = "render" if name == "pricer" else "pricer"
        assert {"pyproject.toml", "README.md", f"containers/{name}/Dockerfile"} <= set(context.files)
        assert not [f for f in context.files if f.startswith(f"containers/{other}/")]
        assert not [f for f in context.files if not f.startswith(("src/batchpipe/", "containers/"))
                    and f not in images.TOP_FILES]  # fmt: skip
        assert not [f for f in context.files if "__pycache__" in f or f.endswith(".pyc")]
        assert context.files["src/batchpipe/resources/cloudformation/template.json"].is_file()
        assert context.files["pyproject.toml"] == ROOT / "pyproject.toml"
    for name, context in contexts.items():  # every source a Dockerfile COPYs is in its context
        lines = (ROOT / f"containers/{name}/Dockerfile").read_text().splitlines()
        sources = [src for line in lines if line.startswith("COPY ") for src in line.split()[1:-1]]
        assert {"pyproject.toml", "README.md", "src"} <= set(sources)
        for src in sources:
            assert src in context.files or any(f.startswith(src.rstrip("/") + "/") for f in context.files), src


def fake_checkout(root: Path) -> Path:
    """A minimal checkout of batchpipe: its pyproject.toml's name, a README, both Dockerfiles, a package."""
    (root / "src" / "batchpipe").mkdir(parents=True)
    (root / "pyproject.toml").write_text('[project]\nname = "batchpipe"\n')
    (root / "README.md").write_text("# batchpipe\n")
    for name in images.IMAGES:
        (root / "containers" / name).mkdir(parents=True)
        (root / "containers" / name / "Dockerfile").write_text(f"FROM scratch\n# {name}\n")
    (root / "src" / "batchpipe" / "__init__.py").write_text("")
    return root / "src" / "batchpipe"


def tags(package: Path) -> dict[str, str]:
    return {name: context.tag() for name, context in images.contexts(package).items()}


def test_the_content_tag_covers_exactly_the_context(tmp_path: Path) -> None:
    package = fake_checkout(tmp_path / "checkout")
    root = package.parents[1]
    first = tags(package)
    assert first == tags(package) and first["pricer"] != first["render"]
    (package / "__pycache__").mkdir()
    (package / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"\0")
    (root / "notes.txt").write_text("not in the context")
    (root / ".venv").mkdir()
    assert tags(package) == first  # bytecode and what lies outside the context change nothing
    (root / "containers" / "render" / "Dockerfile").write_text("FROM scratch\n# changed\n")
    changed = tags(package)
    assert changed["pricer"] == first["pricer"] and changed["render"] != first["render"]
    for edit in (root / "README.md", root / "pyproject.toml", package / "__init__.py"):
        before = tags(package)
        edit.write_text(edit.read_text() + "\n# edited\n")
        after = tags(package)
        assert after["pricer"] != before["pricer"] and after["render"] != before["render"], edit
    (package / "new.py").write_text("")
    assert tags(package)["pricer"] != after["pricer"]
    (root / "containers" / "pricer" / "entrypoint.sh").write_text("#!/bin/sh\n")
    (root / "containers" / "pricer" / "entrypoint.sh").chmod(0o755)
    context = images.contexts(package)["pricer"]
    assert "containers/pricer/entrypoint.sh" in context.files  # the image's folder goes whole
    written = context.write(tmp_path / "context")
    assert os.access(written / "containers" / "pricer" / "entrypoint.sh", os.X_OK)  # a COPY keeps the mode
    assert sorted(p.relative_to(written).as_posix() for p in written.rglob("*") if p.is_file()) == sorted(context.files)
    assert all((written / path).read_bytes() == source.read_bytes() for path, source in context.files.items())


def test_a_package_with_no_checkout_and_no_installed_context_says_so(tmp_path: Path) -> None:
    package = fake_checkout(tmp_path / "checkout")
    (package.parents[1] / "pyproject.toml").write_text('[project]\nname = "someone-else"\n')
    assert images.checkout_root(package) is None
    with pytest.raises(InputError, match=r"cannot build the images: batchpipe at .* comes with no build context") as e:
        images.contexts(package)
    assert "--no-build" in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize(
    ("present", "found"),
    [(("docker", "podman", "buildah"), "docker"), (("podman", "buildah"), "podman"), (("buildah",), "buildah")],
)
def test_builders_are_found_in_the_order_docker_podman_buildah(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, present: tuple[str, ...], found: str
) -> None:
    fakes = fake_builders(tmp_path, *present)
    monkeypatch.setenv("PATH", str(fakes.bin))
    assert images.builder() == images.Builder(found, str(fakes.bin / found))
    assert images.builder("buildah").name == "buildah"


def test_a_missing_builder_is_one_line_naming_the_choices_and_no_build(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(fake_builders(tmp_path, "docker").bin))
    with pytest.raises(InputError) as chosen:
        images.builder("podman")
    assert str(chosen.value) == ("podman not found on PATH: install it, pick another with --builder "
                                 "docker|podman|buildah, or deploy with --no-build")  # fmt: skip
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(InputError) as none:
        images.builder()
    assert str(none.value) == ("no image builder on PATH: install docker, podman or buildah (--builder "
                               "docker|podman|buildah picks one), or deploy with --no-build")  # fmt: skip


def test_each_builders_command_lines() -> None:
    image, dockerfile, context = "1.dkr.ecr.r.amazonaws.com/p:t", Path("/c/containers/pricer/Dockerfile"), Path("/c")
    for name in ("docker", "podman"):
        b = images.Builder(name, f"/bin/{name}")
        assert b.login("reg", "AWS") == [f"/bin/{name}", "login", "--username", "AWS", "--password-stdin", "reg"]
        assert b.build(dockerfile, image, context) == [f"/bin/{name}", "build", "--platform", "linux/amd64", "-f",
                                                       str(dockerfile), "-t", image, "/c"]  # fmt: skip
        assert b.push(image) == [f"/bin/{name}", "push", image]
    b = images.Builder("buildah", "/bin/buildah")
    assert b.login("reg", "AWS") == ["/bin/buildah", "login", "--username", "AWS", "--password-stdin", "reg"]
    assert b.build(dockerfile, image, context)[1] == "bud"
    assert b.push(image) == ["/bin/buildah", "push", image, f"docker://{image}"]
