"""A local run's directory: claimed by one run at a time, and never a place where batchpipe touches other files.

A run writes into a new or empty directory, or into an earlier run of the same job (same pipeline, same job name),
which it resumes; any other non-empty directory is refused unless `force`. The directory holds two files of
batchpipe's own beside the run's results:

- `.batchpipe-run.json`, the run's marker: pipeline, job name, input, when it started and finished, its status.
  It is what makes a directory "an earlier run of this job", and what `status --local` reads.
- `.batchpipe.lock`, present while a run holds the directory: its pid, host and job name. The lock itself is a POSIX
  record lock on that file (`lockf`), which the kernel drops when the process dies, so a lock file left by a killed
  run is recognised as stale and taken over with a warning; a second run while the first is alive is refused.
  Record locks are not inherited by forked worker processes, so only the run's own process holds it.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import socket
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from batchpipe import __version__
from batchpipe.catalog import PIPELINES
from batchpipe.errors import InputError, Interrupted
from batchpipe.storage import file_mode

MARKER = ".batchpipe-run.json"
LOCK = ".batchpipe.lock"
OWN_FILES = frozenset({MARKER, LOCK})
# the files a run writes through a staging file (storage.write_bytes / staging_file)
STAGED = frozenset({"plan.json", "positions.jsonl", "results.json", "results.csv", "summary.json", "render.json"})


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def read_marker(directory: Path) -> dict[str, Any] | None:
    """The run marker of a directory, or None when there is none (or it is not one of ours)."""
    try:
        doc = json.loads((directory / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(doc, dict) or doc.get("tool") != "batchpipe":
        return None
    return doc


def _legacy_run(directory: Path) -> dict[str, Any] | None:
    """A run directory written before markers existed: its plan.json names the pipeline and the job."""
    try:
        plan = json.loads((directory / "plan.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(plan, dict) or not isinstance(plan.get("jobName"), str):
        return None
    if plan.get("pipeline") in PIPELINES:
        return {"tool": "batchpipe", "pipeline": plan["pipeline"], "jobName": plan["jobName"]}
    return None


def _write_json_atomic(path: Path, doc: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(json.dumps(doc, indent=2, allow_nan=False) + "\n")
    os.chmod(tmp, file_mode())
    os.replace(tmp, path)


@dataclass(frozen=True)
class Holder:
    """Who holds (or held) a directory's lock."""

    pid: int | None
    host: str | None
    job_name: str | None
    started: str | None

    def text(self) -> str:
        who = f"run '{self.job_name}'" if self.job_name else "another run"
        return f"{who} (pid {self.pid} on {self.host}, started {self.started})"


def _read_holder(fd: int) -> Holder | None:
    os.lseek(fd, 0, os.SEEK_SET)
    raw = os.read(fd, 4096)
    if not raw.strip():
        return None
    try:
        doc = json.loads(raw)
    except ValueError:
        return Holder(None, None, None, None)
    if not isinstance(doc, dict):
        return Holder(None, None, None, None)
    return Holder(doc.get("pid"), doc.get("host"), doc.get("jobName"), doc.get("started"))


def lock_holder(directory: Path) -> Holder | None:
    """The live process holding a run directory's lock, or None (no lock file, or a stale one). Reads only: the
    lock is tested with F_GETLK, never taken."""
    try:
        fd = os.open(directory / LOCK, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        # struct flock on Linux: short l_type, short l_whence, off_t l_start, off_t l_len, pid_t l_pid
        query = struct.pack("hhqqi", fcntl.F_WRLCK, os.SEEK_SET, 0, 0, 0)
        try:
            answer = fcntl.fcntl(fd, fcntl.F_GETLK, query)
        except OSError:
            return None
        if struct.unpack("hhqqi", answer[: struct.calcsize("hhqqi")])[0] == fcntl.F_UNLCK:
            return None
        return _read_holder(fd) or Holder(None, None, None, None)
    finally:
        os.close(fd)


@dataclass
class RunDir:
    """A claimed run directory. `earlier` is the marker of the earlier run of this job it continues (None for a
    new or forced directory): only then may the run remove files an earlier run of this job wrote."""

    path: Path
    pipeline: str
    job_name: str
    earlier: dict[str, Any] | None
    marker: dict[str, Any] = field(default_factory=dict)

    def finish(self, status: str, error: str | None = None) -> None:
        self.marker |= {"finished": now(), "status": status, "error": error}
        _write_json_atomic(self.path / MARKER, self.marker)


def _refuse_reason(directory: Path, pipeline: str, job_name: str, force: bool) -> tuple[str | None, Any]:
    """(why the directory may not be used, the earlier run's marker when it is one of this job)."""
    marker = read_marker(directory) or _legacy_run(directory)
    if marker is not None and marker.get("pipeline") == pipeline and marker.get("jobName") == job_name:
        return None, marker
    if force:
        return None, None
    if marker is not None:
        return (
            f"{directory} holds another run ('{marker.get('jobName')}', {marker.get('pipeline')}): use another "
            "--output, or the same --job-name to resume it (--force writes into it anyway)"
        ), None
    others = sorted(name for name in os.listdir(directory) if name not in OWN_FILES)
    if others:
        shown = ", ".join(others[:3]) + (f" and {len(others) - 3} more" if len(others) > 3 else "")
        return (
            f"{directory} is not empty ({shown}) and is not an earlier run of job '{job_name}': use a new or empty "
            "--output directory (--force writes batchpipe's files beside what is there and deletes nothing)"
        ), None
    return None, None


def _remove_staging(directory: Path) -> None:
    """Temporary files a killed run of this job left half-written (storage's `.NAME.XXXX.tmp`, beside NAME)."""
    for folder in (directory, directory / "shards"):
        if folder.is_dir():
            for path in folder.glob(".*.tmp"):
                name = path.name[1:].rsplit(".", 2)[0]
                if name in STAGED or (name.startswith("shard-") and name.endswith(".json")):
                    path.unlink(missing_ok=True)


def _make_dirs(directory: Path) -> list[Path]:
    """Create the directory and its missing parents; returns what was created, deepest first."""
    created: list[Path] = []
    probe = directory
    while not probe.exists() and probe != probe.parent:
        created.append(probe)
        probe = probe.parent
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise InputError(f"--output {directory}: exists and is not a directory") from None
    except OSError as exc:
        raise InputError(f"--output {directory}: cannot create the directory: {exc.strerror or exc}") from None
    if not directory.is_dir():
        raise InputError(f"--output {directory}: exists and is not a directory")
    return created


def _open_locked(directory: Path) -> tuple[int, Holder | None]:
    """Open and lock the directory's lock file: (fd, the stale holder it replaces, if any)."""
    lock = directory / LOCK
    for _ in range(10):
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, file_mode())
        except OSError as exc:
            raise InputError(f"--output {directory}: cannot write there: {exc.strerror or exc}") from None
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = _read_holder(fd)
            os.close(fd)
            if exc.errno in (errno.EACCES, errno.EAGAIN):
                running = holder.text() if holder else "another run"
                raise InputError(
                    f"{directory} is in use by {running}: one run at a time per directory; wait for it to finish "
                    "or use another --output"
                ) from None
            raise InputError(f"--output {directory}: cannot lock {LOCK}: {exc.strerror or exc}") from None
        try:
            same = os.fstat(fd).st_ino == os.stat(lock).st_ino
        except FileNotFoundError:
            same = False
        if same:  # not a file its previous holder unlinked while we opened it
            return fd, _read_holder(fd)
        os.close(fd)
    raise InputError(f"--output {directory}: the lock file keeps changing: is another run starting there?")


def _release(directory: Path, fd: int) -> None:
    with contextlib.suppress(OSError):
        if os.fstat(fd).st_ino == os.stat(directory / LOCK).st_ino:
            os.unlink(directory / LOCK)
    os.close(fd)


@contextlib.contextmanager
def claim(
    directory: Path,
    pipeline: str,
    job_name: str,
    *,
    force: bool = False,
    input_name: str | None = None,
    warn: Callable[[str], None] = lambda _m: None,
) -> Iterator[RunDir]:
    """Hold `directory` for one run of `job_name`: create it if needed, lock it, check that it may be used, write
    the marker. A refusal raises InputError and leaves nothing behind (no directory, lock or marker of its own).
    The marker says RUNNING until `RunDir.finish`; an exception marks it FAILED (INTERRUPTED for Ctrl-C)."""
    created = _make_dirs(directory)
    fd, stale = _open_locked(directory)
    try:
        reason, earlier = _refuse_reason(directory, pipeline, job_name, force)
        if reason is not None:
            raise InputError(reason)
    except BaseException:
        _release(directory, fd)
        for path in created:
            with contextlib.suppress(OSError):
                path.rmdir()
        raise
    try:
        if stale is not None:
            warn(f"{directory}: taking over the lock of {stale.text()}, which ended without releasing it")
        if earlier is not None:
            _remove_staging(directory)
        holder = {"pid": os.getpid(), "host": socket.gethostname(), "jobName": job_name, "started": now()}
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(holder) + "\n").encode(), 0)
        marker: dict[str, Any] = {
            "tool": "batchpipe",
            "version": __version__,
            "pipeline": pipeline,
            "jobName": job_name,
            "input": input_name,
            "created": (earlier or {}).get("created") or holder["started"],
            "started": holder["started"],
            "finished": None,
            "status": "RUNNING",
            "error": None,
            "host": holder["host"],
        }
        _write_json_atomic(directory / MARKER, marker)
        run = RunDir(directory, pipeline, job_name, earlier, marker)
        try:
            yield run
        except (KeyboardInterrupt, Interrupted) as exc:
            with contextlib.suppress(OSError, ValueError):
                run.finish("INTERRUPTED", str(exc) or "interrupted (Ctrl-C)")
            raise
        except BaseException as exc:
            if run.marker.get("status") == "RUNNING":
                with contextlib.suppress(OSError, ValueError):
                    run.finish("FAILED", str(exc) or type(exc).__name__)
            raise
    finally:
        _release(directory, fd)


def _seconds_between(start: str | None, end: str | None) -> float | None:
    try:
        a = datetime.fromisoformat(str(start).replace("Z", "+00:00"))
        b = datetime.fromisoformat(str(end).replace("Z", "+00:00")) if end else datetime.now(UTC)
    except ValueError:
        return None
    return max(0.0, (b - a).total_seconds())


def describe(directory: Path) -> dict[str, Any] | None:
    """A run directory's state from its marker and lock (None when it is not a batchpipe run): RUNNING while a
    live process holds it; INTERRUPTED when its run ended without finishing (Ctrl-C, or killed)."""
    marker = read_marker(directory)
    legacy = marker is None
    if marker is None:
        marker = _legacy_run(directory)
        if marker is None:
            return None
    holder = lock_holder(directory)
    status = str(marker.get("status") or "UNKNOWN")
    if holder is not None:
        status = "RUNNING"
    elif status == "RUNNING":
        status = "INTERRUPTED"
    if legacy:  # before markers: the collated document says how it ended
        name = PIPELINES[marker["pipeline"]].status_file
        try:
            status = str(json.loads((directory / name).read_text(encoding="utf-8"))["status"])
        except (OSError, ValueError, KeyError, TypeError):
            status = "UNKNOWN"
    return {
        "jobName": marker.get("jobName"),
        "pipeline": marker.get("pipeline"),
        "status": status,
        "started": marker.get("started"),
        "finished": marker.get("finished"),
        "seconds": _seconds_between(marker.get("started"), marker.get("finished") if holder is None else None),
        "input": marker.get("input"),
        "error": marker.get("error"),
        "directory": str(directory),
        "holder": None if holder is None else {"pid": holder.pid, "host": holder.host},
    }


def find_runs(root: Path) -> list[dict[str, Any]]:
    """Every run directory directly under root, newest first."""
    if not root.is_dir():
        return []
    found = [info for child in root.iterdir() if child.is_dir() and (info := describe(child)) is not None]
    return sorted(found, key=lambda r: str(r.get("started") or ""), reverse=True)
