"""The two container images, linted, built for real from their Dockerfiles, and run as AWS Batch runs them.

buildah builds them (`--isolation chroot`, the vfs storage driver: no daemon, no registry) FROM a base image this test
makes itself, since no registry can be assumed: Debian bookworm from debootstrap, with its Python 3.11 where the
Dockerfiles' default base (python:3.11.x-slim-bookworm) has its own (`python` and `pip` in /usr/local/bin, a venv),
the host's CA bundle (downloads may pass through a TLS proxy), tagged with the Dockerfiles' default BASE so they build
unchanged and nothing is pulled. The base and the images are kept in BATCHPIPE_IMAGE_CACHE (default
/var/tmp/batchpipe-image-tests), keyed by what goes into them: a second run only runs them.

Each stage then runs as a Batch child would: the image's own ENTRYPOINT with the job's command, as the image's user,
in the image's working directory, with the image's environment plus the job definition's (cloudformation's
ContainerProperties.Environment) and what Batch adds (AWS_BATCH_JOB_ARRAY_INDEX for array children), on a read-only
root filesystem with a tmpfs at /tmp (the pricer's job definition asks for both; the render image is held to the same),
and with s3:// input and output on a moto server on 127.0.0.1 (the container shares the host's network). The results
equal the local engine's for the same input.

Needs root (mount namespaces, buildah's chroot isolation), buildah, debootstrap and unshare: `make install`. The first
run downloads (Debian's archive, PyPI) and builds: about 6 minutes on 2 cores; then about 30 seconds, until what goes
into an image changes (a change to the code rebuilds both images, about 4 minutes: vfs has no cheap layers to reuse).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import time
import tomllib
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from batchpipe.aws.handlers import prepare
from batchpipe.aws.template import build_template
from batchpipe.cli import main
from tests.conftest import DEBIAN_BLENDER, ROOT, need_tool, small_portfolio

pytestmark = pytest.mark.slow

IMAGES = ("pricer", "render")
JOB_DEFINITIONS = {"pricer": "PricerJobDefinition", "render": "RenderJobDefinition"}
CACHE = Path(os.environ.get("BATCHPIPE_IMAGE_CACHE", "/var/tmp/batchpipe-image-tests"))
SUITE = "bookworm"
BASE_PACKAGES = ("python3", "python3-venv", "ca-certificates")
BASE_RECIPE = 1  # bump when make_base changes what it makes
KEY_LABEL = "io.batchpipe.test-key"
RUN_CONTAINER = "batchpipe-test-run-"
PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "FTP_PROXY", "ALL_PROXY")
REGION = "us-east-1"
BUCKET = "batchpipe-image-test"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing"}
MiB = 1 << 20


def dockerfile(image: str) -> Path:
    """Where an image's Dockerfile is: the one place this test names it."""
    return ROOT / "containers" / image / "Dockerfile"


def context_files() -> list[tuple[str, Path]]:
    """What the Dockerfiles COPY from the build context (the repository root), as (path in the context, file)."""
    files = [("pyproject.toml", ROOT / "pyproject.toml"), ("README.md", ROOT / "README.md")]
    for path in sorted((ROOT / "src").rglob("*")):
        rel = path.relative_to(ROOT)
        if path.is_file() and not any(p == "__pycache__" or p.endswith(".egg-info") for p in rel.parts):
            files.append((str(rel), path))
    return files


def default_base(path: Path) -> str:
    """The base a Dockerfile builds FROM when not told otherwise: its `ARG BASE=...` before the first FROM."""
    text = path.read_text()
    head = text[: text.index("\nFROM ")]
    found = re.findall(r"^ARG BASE=(\S+)$", head, flags=re.MULTILINE)
    assert len(found) == 1, f"{path}: no `ARG BASE=IMAGE` before the first FROM"
    return found[0]


def sha(*parts: bytes | str) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode() if isinstance(part, str) else part)
        digest.update(b"\0")
    return digest.hexdigest()


def hadolint() -> str:
    path = Path(sys.executable).with_name("hadolint")
    return str(path) if path.exists() else need_tool("hadolint")


# ---------------------------------------------------------------------------------------------------------- lint


@pytest.mark.parametrize("image", IMAGES)
def test_dockerfile_is_hadolint_clean(image: str) -> None:
    """No finding at any level, style included; an inline `# hadolint ignore=` needs its reason on the line above."""
    run = subprocess.run([hadolint(), "--no-color", "--failure-threshold", "style", str(dockerfile(image))],
                         capture_output=True, text=True, check=False, timeout=60)  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    lines = dockerfile(image).read_text().splitlines()
    for i, line in enumerate(lines):
        if line.startswith("# hadolint ignore="):
            assert i > 0 and lines[i - 1].startswith("#") and "hadolint" not in lines[i - 1], f"{image}: {line}"


@pytest.mark.parametrize("image", IMAGES)
def test_dockerfile_pins_an_overridable_base_and_installs_binary_wheels_only(image: str) -> None:
    text = dockerfile(image).read_text()
    base = default_base(dockerfile(image))
    assert re.fullmatch(r"python:3\.11\.\d+-slim-bookworm", base), base  # a patch release, and the Debian release
    froms = re.findall(r"^FROM (\S+)", text, flags=re.MULTILINE)
    assert froms and all(f == "${BASE}" for f in froms), froms
    installs = re.findall(r"pip install [^\n]*", text)
    assert installs and all("--only-binary=:all:" in i for i in installs), installs
    assert default_base(dockerfile("pricer")) == default_base(dockerfile("render"))


# ----------------------------------------------------------------------------------------------- the builder


@dataclass(frozen=True)
class Buildah:
    home: Path

    def command(self, *args: str) -> list[str]:
        return [need_tool("buildah"), "--root", str(self.home / "storage"), "--runroot", str(self.home / "run"),
                "--storage-driver", "vfs", *args]  # fmt: skip

    def run(self, *args: str, timeout: float = 300, log: Path | None = None) -> str:
        """buildah's output; with `log`, its lines go there instead, each after the seconds since it started."""
        if log is None:
            done = subprocess.run(self.command(*args), capture_output=True, text=True, check=False, timeout=timeout)
            code, out, err = done.returncode, done.stdout, done.stderr
        else:
            start = time.monotonic()
            with log.open("w") as sink, subprocess.Popen(self.command(*args), stdout=subprocess.PIPE,
                                                         stderr=subprocess.STDOUT, text=True) as proc:  # fmt: skip
                timer = threading.Timer(timeout, proc.kill)
                timer.start()
                assert proc.stdout is not None
                for line in proc.stdout:
                    sink.write(f"{time.monotonic() - start:7.1f} {line}")
                timer.cancel()
                sink.write(f"{time.monotonic() - start:7.1f} exit {proc.wait()}\n")
            code, out, err = proc.returncode, "", log.read_text()
        assert code == 0, f"buildah {' '.join(args[:4])} ... failed ({code}):\n{err[-6000:]}"
        return out.strip()

    def image(self, name: str) -> dict[str, Any] | None:
        """`buildah inspect` of an image, None when there is none of that name."""
        done = subprocess.run(self.command("inspect", "--type", "image", name), capture_output=True, text=True,
                              check=False, timeout=60)  # fmt: skip
        return json.loads(done.stdout) if done.returncode == 0 else None

    def size(self, name: str) -> int:
        """The image's size: its layers, uncompressed."""
        found = self.image(name)
        assert found is not None, name
        return sum(int(layer["size"]) for layer in json.loads(found["Manifest"])["layers"])


def debian_mirror() -> str:
    """The Debian archive this machine's apt uses (a Debian host's first non-security source), else deb.debian.org."""
    if os.environ.get("BATCHPIPE_DEBIAN_MIRROR"):
        return os.environ["BATCHPIPE_DEBIAN_MIRROR"]
    os_release = Path("/etc/os-release").read_text() if Path("/etc/os-release").exists() else ""
    if re.search(r"^ID=debian$", os_release, flags=re.MULTILINE):
        apt = Path("/etc/apt")
        for source in [apt / "sources.list", *sorted(apt.glob("sources.list.d/*"))]:
            if not source.is_file() or source.suffix not in (".list", ".sources", ""):
                continue
            text = source.read_text()
            if source.suffix == ".sources":  # deb822: URIs: and Suites: in one paragraph
                for para in re.split(r"\n\s*\n", text):
                    fields = dict(re.findall(r"^(\w[\w-]*):\s*(.*)$", para, flags=re.MULTILINE))
                    suites = fields.get("Suites", "").split()
                    if "deb" in fields.get("Types", "").split() and any("-" not in s for s in suites):
                        return fields["URIs"].split()[0]
            else:
                for line in text.splitlines():
                    words = [w for w in line.split() if not w.startswith("[")]
                    if words[:1] == ["deb"] and len(words) > 2 and "-" not in words[2]:
                        return words[1]
    return "http://deb.debian.org/debian"


def host_ca_bundle() -> bytes:
    paths = ssl.get_default_verify_paths()
    for candidate in (paths.cafile, paths.openssl_cafile, "/etc/ssl/certs/ca-certificates.crt"):
        if candidate and Path(candidate).is_file():
            return Path(candidate).read_bytes()
    raise AssertionError("no CA bundle on this machine to give the base image")


def proxies() -> dict[str, str]:
    """The proxy settings of this environment, which builds and debootstrap need to download through."""
    return {k: os.environ[k] for name in PROXY_VARS for k in (name, name.lower()) if os.environ.get(k)}


def make_base(buildah: Buildah, name: str) -> str:
    """The stand-in for python:3.11-slim-bookworm, made once per recipe, mirror and CA bundle: its image id."""
    mirror, ca = debian_mirror(), host_ca_bundle()
    key = sha(str(BASE_RECIPE), SUITE, mirror, *BASE_PACKAGES, ca)[:24]
    found = buildah.image(name)
    if found and found["OCIv1"]["config"].get("Labels", {}).get(KEY_LABEL) == key:
        return str(found["FromImageID"])
    ctr = buildah.run("from", "--name", f"batchpipe-test-base-{os.getpid()}", "scratch")
    try:
        rootfs = Path(buildah.run("mount", ctr))
        debootstrap = subprocess.run(
            [need_tool("debootstrap"), "--variant=minbase", f"--include={','.join(BASE_PACKAGES)}", SUITE,
             str(rootfs), mirror],
            capture_output=True, text=True, check=False, timeout=1200, env={**os.environ, **proxies()},
        )  # fmt: skip
        assert debootstrap.returncode == 0, debootstrap.stdout[-3000:] + debootstrap.stderr[-3000:]
        # python, python3 and pip in /usr/local/bin, installing into /usr/local/lib/python3.11/site-packages
        venv = subprocess.run(["chroot", str(rootfs), "/usr/bin/python3", "-m", "venv", "/usr/local"],
                              capture_output=True, text=True, check=False, timeout=300)  # fmt: skip
        assert venv.returncode == 0, venv.stderr
        (rootfs / "etc/ssl/certs/ca-certificates.crt").write_bytes(ca)
        for junk in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for path in (rootfs / junk).glob("*"):
                if path.is_file():
                    path.unlink()
        bundle = "/etc/ssl/certs/ca-certificates.crt"
        env = {"PATH": "/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8",
               "PIP_CERT": bundle, "SSL_CERT_FILE": bundle, "REQUESTS_CA_BUNDLE": bundle}  # fmt: skip
        buildah.run("config", *(f"--env={k}={v}" for k, v in env.items()), f"--label={KEY_LABEL}={key}",
                    "--cmd=python3", ctr)  # fmt: skip
        buildah.run("commit", "--rm", "--quiet", ctr, name, timeout=600)
    except BaseException:
        subprocess.run(buildah.command("rm", ctr), capture_output=True, check=False)
        raise
    image = buildah.image(name)
    assert image is not None
    return str(image["FromImageID"])


@dataclass(frozen=True)
class Image:
    name: str
    id: str
    config: dict[str, Any]  # the OCI image config: User, Env, Entrypoint, Cmd, WorkingDir
    size: int
    base_size: int


def build_image(buildah: Buildah, image: str, base_id: str, base_size: int, scratch: Path) -> Image:
    """The image built from its Dockerfile and the repository's files, unless one of the same key is there."""
    files = context_files()
    key = sha(dockerfile(image).read_bytes(), base_id, *(f"{rel}\0".encode() + p.read_bytes() for rel, p in files))
    repository = f"localhost/batchpipe-test-{image}"
    name = f"{repository}:{key[:24]}"
    if buildah.image(name) is None:
        context = scratch / f"context-{image}"
        for rel, path in files:
            (context / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, context / rel)
        args = [f"--build-arg={k}={v}" for k, v in proxies().items()]
        log = CACHE / "logs" / f"{image}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        buildah.run("build", "--isolation=chroot", "--pull=never", f"--file={dockerfile(image)}", f"--tag={name}",
                    *args, str(context), timeout=1800, log=log)  # fmt: skip
        for line in buildah.run("images", "--format", "{{.Name}}:{{.Tag}}").splitlines():
            if line.startswith(repository + ":") and line != name:  # an older build's: with vfs, whole copies
                buildah.run("rmi", "--force", line)
        buildah.run("rmi", "--prune")
    found = buildah.image(name)
    assert found is not None
    return Image(name, found["FromImageID"], found["OCIv1"]["config"], buildah.size(name), base_size)


@pytest.fixture(scope="session")
def buildah() -> Iterator[Buildah]:
    assert os.geteuid() == 0, "the image tests need root: buildah's chroot isolation and the runs' mount namespaces"
    for tool in ("buildah", "debootstrap", "unshare", "chroot"):
        need_tool(tool)
    CACHE.mkdir(parents=True, exist_ok=True)
    with (CACHE / "lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one session at a time uses the cache
        b = Buildah(CACHE)
        for name in b.run("containers", "--format", "{{.ContainerName}}").split():
            if not name.startswith(RUN_CONTAINER):  # a killed session's build or base container
                b.run("rm", name)
        yield b


@pytest.fixture(scope="session")
def images(buildah: Buildah, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Image]:
    base = default_base(dockerfile("pricer"))
    base_name = base if "/" in base.split(":")[0] else f"docker.io/library/{base}"
    base_id = make_base(buildah, base_name)
    base_size = buildah.size(base_name)
    scratch = tmp_path_factory.mktemp("image-contexts")
    return {i: build_image(buildah, i, base_id, base_size, scratch) for i in IMAGES}  # one at a time: the disk


# ------------------------------------------------------------------------------------------ running as Batch

# In a new mount and PID namespace: the image's root read-only, a fresh tmpfs at /tmp, /proc, /sys read-only, a
# minimal /dev; then the entrypoint as the image's user, in its working directory, with only the given environment.
RUN_AS_BATCH = r"""
set -eu
root=$1 tmpfs=$2 userspec=$3 workdir=$4
shift 4
mount --make-rprivate /
mount --bind "$root" "$root"
mount -o remount,bind,ro,nosuid,nodev "$root"
mount -t tmpfs -o "$tmpfs" tmpfs "$root/tmp"
mount -t proc -o nosuid,nodev,noexec proc "$root/proc"
mount -t sysfs -o ro,nosuid,nodev,noexec sysfs "$root/sys"
mount -t tmpfs -o nosuid,noexec,mode=755,size=64k tmpfs "$root/dev"
for node in null zero full random urandom tty; do
  touch "$root/dev/$node"
  mount --bind "/dev/$node" "$root/dev/$node"
done
mkdir "$root/dev/shm"
mount -t tmpfs -o nosuid,nodev,noexec,size=64m tmpfs "$root/dev/shm"
ln -s /proc/self/fd "$root/dev/fd"
ln -s /proc/self/fd/0 "$root/dev/stdin"
ln -s /proc/self/fd/1 "$root/dev/stdout"
ln -s /proc/self/fd/2 "$root/dev/stderr"
exec chroot --userspec="$userspec" "$root" /usr/bin/env -i -C "$workdir" "$@"
"""


def resolve(value: Any, refs: dict[str, str], parameters: dict[str, Any]) -> str:
    """A job definition's value: a literal, or a Ref to a parameter's default or to one of `refs`."""
    if isinstance(value, dict):
        assert list(value) == ["Ref"], f"cannot resolve {value}"
        name = value["Ref"]
        return refs[name] if name in refs else str(parameters[name]["Default"])
    return str(value)


@dataclass
class BatchContainer:
    """An image's root filesystem, unpacked once, and how its job definition runs it."""

    image: Image
    rootfs: Path
    job_definition: dict[str, Any]
    parameters: dict[str, Any]

    def user(self) -> tuple[str, str]:
        """The image's USER as uid:gid (names looked up in the image, as the container runtime does) and HOME."""
        user, _, group = (self.image.config.get("User") or "0").partition(":")
        passwd = [line.split(":") for line in (self.rootfs / "etc/passwd").read_text().splitlines() if line]
        entry = next((e for e in passwd if user in (e[0], e[2])), None)
        uid = entry[2] if entry else user
        assert uid.isdigit(), f"the image's user {user!r} is not in its /etc/passwd"
        if not group:
            group = entry[3] if entry else "0"
        if not group.isdigit():
            groups = [line.split(":") for line in (self.rootfs / "etc/group").read_text().splitlines() if line]
            group = next(g[2] for g in groups if g[0] == group)
        return f"{uid}:{group}", entry[5] if entry else "/"

    def environment(self, endpoint: str, index: int | None) -> dict[str, str]:
        """The image's ENV, then the job definition's Environment, then what Batch and ECS add for a child."""
        env = dict(item.split("=", 1) for item in self.image.config.get("Env", []))
        refs = {"DataBucket": BUCKET, "AWS::Region": REGION}
        for item in self.job_definition["ContainerProperties"].get("Environment", []):
            env[item["Name"]] = resolve(item["Value"], refs, self.parameters)
        env.update({"AWS_BATCH_JOB_ID": "00000000-0000-0000-0000-000000000000", "AWS_BATCH_JOB_ATTEMPT": "1",
                    "AWS_BATCH_JQ_NAME": "batchpipe", "AWS_BATCH_CE_NAME": "batchpipe", "HOSTNAME": "ip-10-0-0-1",
                    "AWS_EXECUTION_ENV": "AWS_ECS_EC2", "AWS_ENDPOINT_URL": endpoint, **CREDENTIALS})  # fmt: skip
        if index is not None:
            env["AWS_BATCH_JOB_ARRAY_INDEX"] = str(index)
        env.setdefault("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
        env.setdefault("HOME", self.user()[1])
        return env

    def tmpfs(self) -> str:
        """The /tmp mount: the job definition's tmpfs where it has one, else a plain one."""
        for mount in self.job_definition["ContainerProperties"].get("LinuxParameters", {}).get("Tmpfs", []):
            if mount["ContainerPath"] == "/tmp":
                return ",".join([*mount.get("MountOptions", ["rw"]), f"size={int(mount['Size'])}m"])
        return "rw,nosuid,nodev,size=1024m"

    def run(self, command: list[str], endpoint: str, index: int | None = None,
            entrypoint: list[str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess[str]:  # fmt: skip
        """One container run: the image's ENTRYPOINT (or `entrypoint`) with `command` as the job's Command."""
        entry = (self.image.config.get("Entrypoint") or []) if entrypoint is None else entrypoint
        env = self.environment(endpoint, index)
        userspec, _ = self.user()
        workdir = self.image.config.get("WorkingDir") or "/"
        return subprocess.run(
            [need_tool("unshare"), "--mount", "--pid", "--fork", "--kill-child", "sh", "-c", RUN_AS_BATCH, "sh",
             str(self.rootfs), self.tmpfs(), userspec, workdir, *(f"{k}={v}" for k, v in env.items()), *entry,
             *command],
            capture_output=True, text=True, check=False, timeout=timeout,
        )  # fmt: skip


def unpacked(buildah: Buildah, image: str, built: Image) -> Path:
    """The image's root filesystem, from a working container of it kept for every session that runs the same image
    (each run mounts it read-only, so it stays as the image has it)."""
    name = f"{RUN_CONTAINER}{image}-{built.id[:16]}"
    have = buildah.run("containers", "--format", "{{.ContainerName}}").split()
    for other in have:
        if other.startswith(f"{RUN_CONTAINER}{image}-") and other != name:
            buildah.run("rm", other)
    if name not in have:
        buildah.run("from", "--pull=never", "--name", name, built.name)
    return Path(buildah.run("mount", name))


@pytest.fixture(scope="session")
def containers(buildah: Buildah, images: dict[str, Image]) -> dict[str, BatchContainer]:
    template = build_template()
    return {
        image: BatchContainer(built, unpacked(buildah, image, built),
                              template["Resources"][JOB_DEFINITIONS[image]]["Properties"], template["Parameters"])
        for image, built in images.items()
    }  # fmt: skip


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def s3(tmp_path: Path) -> Iterator[tuple[str, Any]]:
    """A moto server on 127.0.0.1 with the data bucket: (endpoint, a boto3 S3 client of it)."""
    import boto3

    port = free_port()
    server = Path(sys.executable).with_name("moto_server")
    log = (tmp_path / "moto.log").open("w")
    proc = subprocess.Popen([str(server), "-H", "127.0.0.1", "-p", str(port)], stdout=log, stderr=subprocess.STDOUT)
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(endpoint + "/moto-api/", timeout=2).close()
                break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, (tmp_path / "moto.log").read_text()
                time.sleep(0.2)
        client = boto3.client("s3", endpoint_url=endpoint, region_name=REGION,
                              aws_access_key_id="testing", aws_secret_access_key="testing")  # fmt: skip
        client.create_bucket(Bucket=BUCKET)
        yield endpoint, client
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


def s3_json(client: Any, key: str) -> Any:
    return json.loads(client.get_object(Bucket=BUCKET, Key=key)["Body"].read())


def stage(container: BatchContainer, command: list[str], endpoint: str, index: int | None = None) -> Any:
    """Run one stage; it must exit 0 and print one JSON line last."""
    done = container.run(command, endpoint, index)
    assert done.returncode == 0, f"{command[0]} (index {index}) exited {done.returncode}:\n{done.stderr[-4000:]}"
    return json.loads(done.stdout.strip().splitlines()[-1])


def commands(pipeline: str, job_name: str, **options: Any) -> dict[str, Any]:
    """The stages' commands, as the state machine's Lambda makes them for the Batch jobs."""
    return prepare({"pipeline": pipeline, "input": {
        "jobName": job_name, "inputUri": f"s3://{BUCKET}/inputs/{job_name}", "outputUri": f"s3://{BUCKET}/runs/{job_name}",
        "jobDefinitionArn": "arn:aws:batch:us-east-1:123456789012:job-definition/batchpipe:1",
        "jobQueueArn": "arn:aws:batch:us-east-1:123456789012:job-queue/batchpipe", **options}})  # fmt: skip


# ------------------------------------------------------------------------------------------------- the images


def test_images_run_as_a_non_root_user_with_no_compiler_and_only_the_pricer_without_bpy(
    containers: dict[str, BatchContainer],
) -> None:
    probe = """if True:
        import importlib.util, json, os, shutil, sys
        compilers = [c for c in ("cc", "gcc", "c++", "g++", "clang", "make") if shutil.which(c)]
        writable = []
        for d in ("/", "/etc", "/opt/batchpipe", "/usr/local", "/var/tmp", "/tmp"):
            try:
                open(os.path.join(d, "probe"), "w").close()
                writable.append(d)
            except OSError:
                pass
        print(json.dumps({"uid": os.getuid(), "python": sys.version_info[:2], "compilers": compilers,
                          "bpy": importlib.util.find_spec("bpy") is not None, "ffmpeg": bool(shutil.which("ffmpeg")),
                          "home": os.environ["HOME"], "tmp": os.environ.get("TMPDIR"), "writable": writable}))
    """
    for image, container in containers.items():
        done = container.run(["-c", probe], "http://127.0.0.1:9", entrypoint=["python"])
        assert done.returncode == 0, done.stderr
        facts = json.loads(done.stdout)
        assert facts["uid"] != 0 and facts["python"] == [3, 11] and facts["compilers"] == [], (image, facts)
        assert facts["home"] == facts["tmp"] == "/tmp", (image, facts)
        assert facts["writable"] == ["/tmp"], (image, facts)  # the runs below are held to a read-only root
        assert facts["bpy"] == facts["ffmpeg"] == (image == "render"), (image, facts)
        assert container.image.config["Entrypoint"] == ["python", "-m", f"batchpipe.jobs.{image}"]


def test_image_sizes(images: dict[str, Image]) -> None:
    """What each Dockerfile adds to its base, uncompressed: the pricer's dependencies; the render image's also bpy
    (~800 MB unpacked) and FFmpeg with the X11/GL libraries (~700 MB). Printed for `pytest -s`."""
    added = {image: (built.size - built.base_size) / MiB for image, built in images.items()}
    print("\nimage sizes (MiB, uncompressed):", {i: round(b.size / MiB) for i, b in images.items()},
          "added to the base:", {i: round(a) for i, a in added.items()})  # fmt: skip
    assert added["pricer"] < 400, added
    assert added["render"] < 2200, added


def test_pricer_image_runs_a_montecarlo_pipeline_on_s3_as_batch_does(
    containers: dict[str, BatchContainer], s3: tuple[str, Any], write_json: Any, tmp_path: Path
) -> None:
    endpoint, client = s3
    portfolio = write_json(small_portfolio())
    cmd = commands("montecarlo", "img-mc", positionsPerJob=2)
    client.upload_file(str(portfolio), BUCKET, "inputs/img-mc")
    pricer = containers["pricer"]
    plan = stage(pricer, cmd["preprocessCommand"], endpoint)
    assert plan["shards"] == 3
    for index in range(plan["shards"]):
        assert stage(pricer, cmd["shardCommand"], endpoint, index)["shard"] == index
    assert stage(pricer, cmd["collateCommand"], endpoint)["status"] == "SUCCEEDED"
    from_image = s3_json(client, "runs/img-mc/results.json")

    local = tmp_path / "local"
    args = ["run", "montecarlo", str(portfolio), "--local", "--job-name", "img-mc", "--positions-per-job", "2",
            "--output", str(local)]  # fmt: skip
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert from_image == json.loads((local / "results.json").read_text())  # bit for bit: same floats


def test_render_image_renders_a_scene_on_s3_as_batch_does(
    containers: dict[str, BatchContainer], s3: tuple[str, Any], blend_scene: Any, tmp_path: Path
) -> None:
    import importlib.util

    endpoint, client = s3
    # saved and rendered here by the pinned official build where this interpreter has it, else by Debian's Blender
    # (which has no OpenImageDenoise: no denoising); the image renders with its own, the pinned build
    blender = None if importlib.util.find_spec("bpy") else DEBIAN_BLENDER
    blend = blend_scene(start=1, end=3, width=32, height=24, blender=blender, denoise=False)
    cmd = commands("render", "img-render", framesPerJob=2)
    client.upload_file(str(blend), BUCKET, "inputs/img-render")
    render = containers["render"]
    plan = stage(render, cmd["preprocessCommand"], endpoint)
    assert (plan["shards"], plan["frames"]) == (2, 3)
    for index in range(plan["shards"]):
        done = stage(render, cmd["shardCommand"], endpoint, index)
        assert done["shard"] == index and done["missing"] == [], done
    assert stage(render, cmd["collateCommand"], endpoint)["status"] == "SUCCEEDED"
    assert s3_json(client, "runs/img-render/plan.json")["compression"] == "zstd"  # read by BAT with zstandard
    from_image = s3_json(client, "runs/img-render/render.json")
    listed = client.list_objects_v2(Bucket=BUCKET, Prefix="runs/img-render/frames/")["Contents"]
    frames = {o["Key"].rsplit("/", 1)[1]: client.get_object(Bucket=BUCKET, Key=o["Key"])["Body"].read() for o in listed}
    assert sorted(frames) == from_image["framesRendered"] == ["0001.png", "0002.png", "0003.png"]
    assert all(png[:8] == b"\x89PNG\r\n\x1a\n" and png[16:24] == (32).to_bytes(4) + (24).to_bytes(4)
               for png in frames.values())  # fmt: skip
    head = client.head_object(Bucket=BUCKET, Key="runs/img-render/output.mp4")
    assert head["ContentLength"] > 0

    local = tmp_path / "local"
    args = ["run", "render", str(blend), "--local", "--job-name", "img-render", "--frames-per-job", "2",
            "--output", str(local), *(["--blender", blender] if blender else [])]  # fmt: skip
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    here = json.loads((local / "render.json").read_text())
    assert from_image["input"] == f"s3://{BUCKET}/inputs/img-render"
    # where render.json names the Blender that rendered: the image's is the pinned build, as `make install`'s is
    extra = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["render"]
    (pinned,) = [r.removeprefix("bpy==").rstrip("*") for r in extra if r.startswith("bpy==")]  # "4.5."
    assert from_image.get("blender", pinned).startswith(pinned), from_image.get("blender")
    differ = {"input", *(["blender"] if blender else [])}  # a local Debian Blender is another version
    same = {k: v for k, v in from_image.items() if k not in differ}
    assert same == {k: v for k, v in here.items() if k not in differ}
