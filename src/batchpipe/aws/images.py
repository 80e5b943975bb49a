"""Container images: tag by content, log in to ECR, build and push with the docker CLI."""

from __future__ import annotations

import base64
import hashlib
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

from batchpipe.aws.clients import client
from batchpipe.errors import BatchpipeError, InputError

REPO_ROOT = Path(__file__).resolve().parents[3]
IMAGES = {"pricer": "containers/pricer/Dockerfile", "render": "containers/render/Dockerfile"}


def content_tag(root: Path, dockerfile: str) -> str:
    """A tag from what goes into the image (the Dockerfile, pyproject.toml, README.md, src/): same input, same tag."""
    digest = hashlib.sha256()
    files = [root / dockerfile, root / "pyproject.toml", root / "README.md"]
    files += sorted(p for p in (root / "src").rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    for path in files:
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def docker() -> str:
    found = shutil.which("docker")
    if not found:
        raise InputError("docker not found on PATH: install Docker to build the images, or deploy with --no-build")
    return found


def _run(args: list[str], say: Callable[[str], None], stdin: str | None = None) -> None:
    say("$ " + " ".join(args))
    done = subprocess.run(args, input=stdin, text=True, capture_output=True, check=False)
    if done.returncode != 0:
        raise BatchpipeError(
            f"`{' '.join(args[:3])} ...` failed (exit {done.returncode}): {done.stderr.strip()[-600:]}"
        )


def wanted(root: Path, tag: str | None = None) -> dict[str, tuple[str, str]]:
    """Each pipeline image's Dockerfile and tag: `tag` where given, else its content tag."""
    return {name: (dockerfile, tag or content_tag(root, dockerfile)) for name, dockerfile in IMAGES.items()}


def image_exists(repository_uri: str, tag: str) -> bool:
    name = repository_uri.split("/", 1)[1]
    try:
        found = client("ecr").describe_images(repositoryName=name, imageIds=[{"imageTag": tag}])["imageDetails"]
    except client("ecr").exceptions.ImageNotFoundException:
        return False
    return bool(found)


def build_and_push(root: Path, builds: list[tuple[str, str]], say: Callable[[str], None]) -> None:
    """Log in to ECR once, then build and push each (Dockerfile, image URI)."""
    if not builds:
        return
    exe = docker()
    auth = client("ecr").get_authorization_token()["authorizationData"][0]
    user, password = base64.b64decode(auth["authorizationToken"]).decode().split(":", 1)
    registry = auth["proxyEndpoint"].removeprefix("https://")
    _run([exe, "login", "--username", user, "--password-stdin", registry], say, stdin=password)
    for dockerfile, image in builds:
        _run([exe, "build", "--platform", "linux/amd64", "-f", dockerfile, "-t", image, str(root)], say)
        _run([exe, "push", image], say)
