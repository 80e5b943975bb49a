"""A run's output location as a store: one interface (`Store`), two implementations (`LocalStore`, a directory;
`S3Store`, an s3:// prefix), chosen once from the location by `store_for`.

Names are relative to the store's root ("plan.json", "frames/0001.png"); the empty name is the root itself (a
file's own path or URI). Local writes go to a temporary file renamed into place, so a reader never sees half a
file, with the mode the umask gives. S3 access goes through `batchpipe.aws.clients`, the only place that touches
boto3, imported only when an S3 store is used.

The module-level functions take a whole path or URI: each is the operation of the store rooted there.
"""

from __future__ import annotations

import os
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path


def umask() -> int:
    """The process's umask, read without changing it (Linux's /proc); elsewhere by setting and restoring it."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def file_mode() -> int:
    """0666 less the umask: what open() gives a new file (mkstemp's 0600 would hide results from a shared group)."""
    return 0o666 & ~umask()


def is_s3(uri: str) -> bool:
    return uri.startswith("s3://")


def split_s3(uri: str) -> tuple[str, str]:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    if not bucket:
        raise ValueError(f"not an s3 URI: {uri}")
    return bucket, key


def join(base: str, *parts: str) -> str:
    if is_s3(base):
        return "/".join([base.rstrip("/"), *(p.strip("/") for p in parts)])
    return str(Path(base).joinpath(*parts))


class Store(ABC):
    """Files by name under one root: read (whole, a byte range, line by line), list, write atomically, check."""

    read_concurrency = 1
    """How many reads are worth running at once (a directory: one at a time; S3: many requests in flight)."""

    def __init__(self, root: str) -> None:
        self.root = root

    def uri(self, name: str = "") -> str:
        """The path or URI of `name` (the root itself for "")."""
        return join(self.root, name) if name else self.root

    @abstractmethod
    def read_bytes(self, name: str) -> bytes:
        """A file's bytes; a missing one is FileNotFoundError."""

    @abstractmethod
    def read_range(self, name: str, start: int, end: int) -> bytes:
        """Bytes start..end-1 of a file."""

    @abstractmethod
    def read_lines(self, name: str) -> Iterator[bytes]:
        """A file's lines without their line ends, streamed."""

    @abstractmethod
    def list_names(self, name: str) -> set[str]:
        """The names of the files directly under `name` (listed page by page in S3)."""

    @abstractmethod
    def write_bytes(self, name: str, data: bytes) -> None:
        """Write a whole file atomically: a reader sees the old file or the new one, never half of one."""

    @abstractmethod
    def staging_file(self, name: str) -> str:
        """A new local temporary file for what will become `name` (hand it to `put_file` when written)."""

    @abstractmethod
    def put_file(self, name: str, local: str) -> None:
        """Move a finished local file (a `staging_file`, or one in a `local_dir`) to `name`: large outputs are
        written to a temporary file first, and a reader never sees them half-written."""

    @abstractmethod
    def exists(self, name: str) -> bool: ...

    @abstractmethod
    def local_file(self, name: str) -> Path | None:
        """The file's own local path where the store is a directory; None where it is not (an object store)."""

    @abstractmethod
    @contextmanager
    def local_copy(self, name: str, suffix: str = "") -> Iterator[Path]:
        """A local path to read `name` from: the file itself, or a temporary download (ending in `suffix`); a
        missing file is FileNotFoundError."""

    @abstractmethod
    @contextmanager
    def local_dir(self, name: str, fetch: Iterable[str] = ()) -> Iterator[Path]:
        """A local directory standing for `name`: the directory itself (created), or a temporary one holding those
        of the `fetch` names that are there (one listing, concurrent downloads). Files written into it become the
        store's with `publish`."""

    @abstractmethod
    def publish(self, name: str, path: Path, keep: bool = False) -> None:
        """Make a file written in a `local_dir` the store's file `name`: nothing to do where it already is; else
        an upload (the local file deleted, unless `keep`)."""

    def read_text(self, name: str) -> str:
        return self.read_bytes(name).decode("utf-8")

    def write_text(self, name: str, text: str) -> None:
        self.write_bytes(name, text.encode("utf-8"))


class LocalStore(Store):
    """A directory."""

    def path(self, name: str = "") -> Path:
        return Path(self.uri(name))

    def read_bytes(self, name: str) -> bytes:
        return self.path(name).read_bytes()

    def read_range(self, name: str, start: int, end: int) -> bytes:
        if end <= start:
            return b""
        with open(self.path(name), "rb") as fh:
            fh.seek(start)
            return fh.read(end - start)

    def read_lines(self, name: str) -> Iterator[bytes]:
        with open(self.path(name), "rb") as fh:
            for line in fh:
                yield line.rstrip(b"\n")

    def list_names(self, name: str) -> set[str]:
        path = self.path(name)
        return {p.name for p in path.iterdir() if p.is_file()} if path.is_dir() else set()

    def write_bytes(self, name: str, data: bytes) -> None:
        tmp = self.staging_file(name)
        try:
            with open(tmp, "wb") as fh:
                fh.write(data)
            os.replace(tmp, self.path(name))
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def staging_file(self, name: str) -> str:
        """Beside the file it becomes, so the rename is atomic; shared like any other file (the umask's mode)."""
        path = self.path(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            os.fchmod(fd, file_mode())
        finally:
            os.close(fd)
        return tmp

    def put_file(self, name: str, local: str) -> None:
        path = self.path(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        os.replace(local, path)

    def exists(self, name: str) -> bool:
        return self.path(name).exists()

    def local_file(self, name: str) -> Path | None:
        return self.path(name)

    @contextmanager
    def local_copy(self, name: str, suffix: str = "") -> Iterator[Path]:
        yield self.path(name)

    @contextmanager
    def local_dir(self, name: str, fetch: Iterable[str] = ()) -> Iterator[Path]:
        path = self.path(name)
        path.mkdir(parents=True, exist_ok=True)
        yield path

    def publish(self, name: str, path: Path, keep: bool = False) -> None:
        if path.resolve() != self.path(name).resolve():
            if keep:
                self.write_bytes(name, path.read_bytes())
            else:
                self.put_file(name, str(path))


class S3Store(Store):
    """An s3:// prefix: objects through `batchpipe.aws.clients`."""

    read_concurrency = 32

    def _at(self, name: str) -> tuple[str, str]:
        return split_s3(self.uri(name))

    def read_bytes(self, name: str) -> bytes:
        from batchpipe.aws.clients import s3_get

        return s3_get(*self._at(name))

    def read_range(self, name: str, start: int, end: int) -> bytes:
        if end <= start:
            return b""
        from batchpipe.aws.clients import s3_get

        return s3_get(*self._at(name), start=start, end=end)

    def read_lines(self, name: str) -> Iterator[bytes]:
        from batchpipe.aws.clients import s3_lines

        yield from s3_lines(*self._at(name))

    def list_names(self, name: str) -> set[str]:
        from batchpipe.aws.clients import client, s3_names

        bucket, key = self._at(name)
        return set(s3_names(client("s3"), bucket, key.rstrip("/") + "/"))

    def write_bytes(self, name: str, data: bytes) -> None:
        from batchpipe.aws.clients import s3_put

        s3_put(*self._at(name), data)

    def staging_file(self, name: str) -> str:
        """In the temporary directory."""
        fd, tmp = tempfile.mkstemp(prefix="batchpipe-", suffix=".tmp")
        os.close(fd)
        return tmp

    def put_file(self, name: str, local: str) -> None:
        """An upload (in parts when large), then the local file deleted."""
        from batchpipe.aws.clients import s3_put_file

        try:
            s3_put_file(*self._at(name), local)
        finally:
            os.unlink(local)

    def exists(self, name: str) -> bool:
        from batchpipe.aws.clients import s3_exists

        return s3_exists(*self._at(name))

    def local_file(self, name: str) -> Path | None:
        return None

    @contextmanager
    def local_copy(self, name: str, suffix: str = "") -> Iterator[Path]:
        with tempfile.TemporaryDirectory(prefix="batchpipe-") as tmp:
            path = Path(tmp) / f"input{suffix}"
            path.write_bytes(self.read_bytes(name))
            yield path

    @contextmanager
    def local_dir(self, name: str, fetch: Iterable[str] = ()) -> Iterator[Path]:
        with tempfile.TemporaryDirectory(prefix="batchpipe-") as tmp:
            wanted = list(fetch)
            if wanted:
                there = self.list_names(name)
                names = [n for n in wanted if n in there]

                def download(n: str) -> None:
                    (Path(tmp) / n).write_bytes(self.read_bytes(join(name, n) if name else n))

                with ThreadPoolExecutor(max_workers=self.read_concurrency) as pool:
                    list(pool.map(download, names))
            yield Path(tmp)

    def publish(self, name: str, path: Path, keep: bool = False) -> None:
        if keep:
            self.write_bytes(name, path.read_bytes())
        else:
            self.put_file(name, str(path))


def store_for(location: str) -> Store:
    """The store at an output location: an s3:// prefix or a directory."""
    return S3Store(location) if is_s3(location) else LocalStore(location)


def read_bytes(uri: str) -> bytes:
    return store_for(uri).read_bytes("")


def read_range(uri: str, start: int, end: int) -> bytes:
    """Bytes start..end-1 of a file or object."""
    return store_for(uri).read_range("", start, end)


def read_lines(uri: str) -> Iterator[bytes]:
    """A file's or object's lines without their line ends, streamed."""
    return store_for(uri).read_lines("")


def list_names(prefix: str) -> set[str]:
    """The names of the files in a directory, or of the objects under an s3:// prefix (listed page by page)."""
    return store_for(prefix).list_names("")


def read_text(uri: str) -> str:
    return store_for(uri).read_text("")


def write_bytes(uri: str, data: bytes) -> None:
    store_for(uri).write_bytes("", data)


def write_text(uri: str, text: str) -> None:
    store_for(uri).write_text("", text)


def exists(uri: str) -> bool:
    return store_for(uri).exists("")


def local_file(uri: str) -> Path | None:
    """A local path's own file; None for an s3:// URI."""
    return store_for(uri).local_file("")
