"""Container images: each image's build context, tagged by its content; building and pushing it to ECR with docker,
podman or buildah; and whether an image is in ECR.

The build context is what the Dockerfiles COPY, laid out as in a checkout of batchpipe: pyproject.toml, README.md,
src/batchpipe/ (the package, without bytecode) and the image's own folder, containers/NAME/ (its Dockerfile and any
file beside it). It is assembled in a temporary directory, from the checkout when batchpipe is imported from one,
else from the installed batchpipe: the package itself, and the rest from the distribution's data files, which the
wheel installs under <prefix>/share/batchpipe/ (pyproject.toml's [tool.setuptools.data-files]). So a deploy works
from any directory, and only these files reach the builder.
"""

from __future__ import annotations

import base64
import hashlib
import re
import shutil
import subprocess
import tempfile
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from botocore.exceptions import ClientError

from batchpipe.aws import batch
from batchpipe.aws.clients import client, code, failed, region
from batchpipe.errors import BatchpipeError, InputError

IMAGES = {"pricer": "containers/pricer/Dockerfile", "render": "containers/render/Dockerfile"}
TOP_FILES = ("pyproject.toml", "README.md")
DATA_DIR = "share/batchpipe"  # the data files' folder under the installation prefix (pyproject.toml)
PACKAGE = Path(__file__).resolve().parents[1]  # the batchpipe package this module belongs to
BUILDERS = ("docker", "podman", "buildah")  # auto-detected in this order
PLATFORM = "linux/amd64"  # the compute environments' instance families are x86_64
ECR_HOST = re.compile(r"^(?P<account>\d{12})\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(\.cn)?$")


@dataclass(frozen=True)
class BuildContext:
    """One image's build context: each file by its path in the context (see the module's docstring)."""

    name: str  # pricer, render
    files: Mapping[str, Path]

    @property
    def dockerfile(self) -> str:
        return IMAGES[self.name]

    def tag(self) -> str:
        """A tag from exactly the context's files, paths and bytes: the same context, the same tag."""
        digest = hashlib.sha256()
        for path in sorted(self.files):
            digest.update(path.encode() + b"\0" + self.files[path].read_bytes() + b"\0")
        return digest.hexdigest()[:16]

    def write(self, directory: Path) -> Path:
        """The context's files copied into `directory` (with their permission bits: a COPY keeps them); returns it."""
        for path, source in self.files.items():
            target = directory / path
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(source, target)
        return directory


def checkout_root(package: Path = PACKAGE) -> Path | None:
    """The checkout `package` is imported from (src/batchpipe beside a pyproject.toml of batchpipe), or None."""
    root = package.parents[1]
    if package.parent.name != "src" or not (root / "pyproject.toml").is_file():
        return None
    try:
        name = tomllib.loads((root / "pyproject.toml").read_text())["project"]["name"]
    except (tomllib.TOMLDecodeError, KeyError, TypeError):
        return None
    return root if name == "batchpipe" else None


def installed_data(package: Path = PACKAGE) -> Path:
    """<prefix>/share/batchpipe of the installed distribution that `package` belongs to."""
    from importlib import metadata

    missing = InputError(
        f"cannot build the images: batchpipe at {package} comes with no build context "
        f"({', '.join(TOP_FILES)} and containers/ under {DATA_DIR}/)",
        "install batchpipe from its wheel or sdist, run it from a checkout, or deploy with --no-build",
    )
    try:
        dist = metadata.distribution("batchpipe")
    except metadata.PackageNotFoundError:
        raise missing from None
    own = Path(str(dist.locate_file("batchpipe/__init__.py"))).resolve()
    marker = next((f for f in dist.files or [] if f.as_posix().endswith(f"{DATA_DIR}/{TOP_FILES[0]}")), None)
    if own != package / "__init__.py" or marker is None:
        raise missing
    data = Path(str(dist.locate_file(marker))).resolve().parent
    if not all((data / name).is_file() for name in TOP_FILES):
        raise missing
    return data


def _package_files(package: Path) -> dict[str, Path]:
    """The package's files by their path in a context (src/batchpipe/...), bytecode left out."""
    return {
        f"src/batchpipe/{p.relative_to(package).as_posix()}": p
        for p in sorted(package.rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts and p.suffix not in (".pyc", ".pyo")
    }


def contexts(package: Path = PACKAGE) -> dict[str, BuildContext]:
    """Each image's build context, from the checkout `package` is in, else from its installed distribution."""
    top = checkout_root(package) or installed_data(package)
    common = {name: top / name for name in TOP_FILES} | _package_files(package)
    found = {}
    for name, dockerfile in IMAGES.items():
        folder = top / dockerfile.rsplit("/", 1)[0]
        own = {p.relative_to(top).as_posix(): p for p in sorted(folder.glob("*")) if p.is_file()}
        if dockerfile not in own:
            raise InputError(f"cannot build the {name} image: {top / dockerfile} is missing",
                             "reinstall batchpipe, or deploy with --no-build")  # fmt: skip
        found[name] = BuildContext(name, common | own)
    return found


def wanted(tag: str | None = None) -> dict[str, tuple[str, str]]:
    """Each pipeline image's Dockerfile and tag: `tag` where given, else its content tag."""
    return {name: (ctx.dockerfile, tag or ctx.tag()) for name, ctx in contexts().items()}


@dataclass(frozen=True)
class Builder:
    """An image builder's command lines. docker and podman share theirs; buildah builds with `bud` (every version
    has it) and pushes to an explicit docker:// destination."""

    name: str  # docker, podman, buildah
    exe: str

    def login(self, registry: str, user: str) -> list[str]:
        """Logging in, the password read from stdin (never on the command line)."""
        return [self.exe, "login", "--username", user, "--password-stdin", registry]

    def build(self, dockerfile: Path, image: str, context: Path) -> list[str]:
        verb = "bud" if self.name == "buildah" else "build"
        return [self.exe, verb, "--platform", PLATFORM, "-f", str(dockerfile), "-t", image, str(context)]

    def push(self, image: str) -> list[str]:
        return [self.exe, "push", image, f"docker://{image}"] if self.name == "buildah" else [self.exe, "push", image]


def builder(choice: str | None = None) -> Builder:
    """The builder to use: `choice`, or the first of docker, podman, buildah on PATH."""
    for name in [choice] if choice else BUILDERS:
        found = shutil.which(name)
        if found:
            return Builder(name, found)
    if choice:
        raise InputError(f"{choice} not found on PATH: install it, pick another with --builder docker|podman|buildah, "
                         "or deploy with --no-build")  # fmt: skip
    raise InputError("no image builder on PATH: install docker, podman or buildah (--builder docker|podman|buildah "
                     "picks one), or deploy with --no-build")  # fmt: skip


def _run(args: list[str], say: Callable[[str], None], stdin: str | None = None) -> None:
    say("$ " + " ".join(args))
    done = subprocess.run(args, input=stdin, stdin=None if stdin is not None else subprocess.DEVNULL, text=True,
                          capture_output=True, check=False)  # fmt: skip
    if done.returncode != 0:
        raise BatchpipeError(
            f"`{' '.join(args[:3])} ...` failed (exit {done.returncode}): {done.stderr.strip()[-600:]}"
        )


def image_exists(repository_uri: str, tag: str) -> bool:
    name = repository_uri.split("/", 1)[1]
    try:
        found = client("ecr").describe_images(repositoryName=name, imageIds=[{"imageTag": tag}])["imageDetails"]
    except client("ecr").exceptions.ImageNotFoundException:
        return False
    return bool(found)


def in_ecr(image: str) -> bool | None:
    """Whether an image (REPOSITORY_URI:TAG or REPOSITORY_URI@DIGEST) is in ECR. None when it is not in this region's
    ECR, so not ours to check; ECR's refusals other than "not found" are one BatchpipeError line."""
    host, _, rest = image.partition("/")
    match = ECR_HOST.match(host)
    if match is None or not rest or match["region"] != region():
        return None
    if "@" in rest:
        repository, digest = rest.split("@", 1)
        ident = {"imageDigest": digest}
    else:
        name, colon, tag = rest.rpartition(":")
        repository, ident = (name, {"imageTag": tag}) if colon and "/" not in tag else (rest, {"imageTag": "latest"})
    try:
        found = client("ecr").describe_images(registryId=match["account"], repositoryName=repository,
                                              imageIds=[ident])["imageDetails"]  # fmt: skip
    except ClientError as exc:
        if code(exc) in ("ImageNotFoundException", "RepositoryNotFoundException"):
            return False
        raise failed(f"looking up image {image} in ECR", exc) from None
    return bool(found)


def missing_image(definition_arn: str) -> str | None:
    """The image of a job definition when ECR lacks it (its jobs would fail with CannotPullContainerError). None
    when ECR has it or it cannot be told: an image outside this region's ECR, or a refusal to describe (a user who
    may start runs need not be allowed to read job definitions or images; the jobs themselves would still say)."""
    try:
        image = batch.definition_image(definition_arn)
        return image if image is not None and in_ecr(image) is False else None
    except BatchpipeError:
        return None


def build_and_push(builds: list[tuple[str, str]], using: Builder, say: Callable[[str], None]) -> None:
    """Log in to ECR once, then build each (image name, image URI) from its context and push it."""
    if not builds:
        return
    auth = client("ecr").get_authorization_token()["authorizationData"][0]
    user, password = base64.b64decode(auth["authorizationToken"]).decode().split(":", 1)
    registry = auth["proxyEndpoint"].removeprefix("https://")
    _run(using.login(registry, user), say, stdin=password)
    found = contexts()
    for name, image in builds:
        with tempfile.TemporaryDirectory(prefix=f"batchpipe-{name}-context-") as tmp:
            context = found[name].write(Path(tmp))
            _run(using.build(context / IMAGES[name], image, context), say)
        _run(using.push(image), say)
