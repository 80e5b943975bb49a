"""One small interface over local paths and s3:// URIs: read, write (atomically), check.

Local writes go to a temporary file renamed into place, so a reader never sees half a file. S3 access goes
through `batchpipe.aws.clients`, the only place that touches boto3, imported only when an s3:// URI is used.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
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


def read_bytes(uri: str) -> bytes:
    if is_s3(uri):
        from batchpipe.aws.clients import s3_get

        return s3_get(*split_s3(uri))
    return Path(uri).read_bytes()


def read_range(uri: str, start: int, end: int) -> bytes:
    """Bytes start..end-1 of a file or object."""
    if end <= start:
        return b""
    if is_s3(uri):
        from batchpipe.aws.clients import s3_get

        return s3_get(*split_s3(uri), start=start, end=end)
    with open(uri, "rb") as fh:
        fh.seek(start)
        return fh.read(end - start)


def read_lines(uri: str) -> Iterator[bytes]:
    """A file's or object's lines without their line ends, streamed."""
    if is_s3(uri):
        from batchpipe.aws.clients import s3_lines

        yield from s3_lines(*split_s3(uri))
        return
    with open(uri, "rb") as fh:
        for line in fh:
            yield line.rstrip(b"\n")


def list_names(prefix: str) -> set[str]:
    """The names of the files in a directory, or of the objects under an s3:// prefix (listed page by page)."""
    if is_s3(prefix):
        from batchpipe.aws.clients import client, s3_names

        bucket, key = split_s3(prefix)
        return set(s3_names(client("s3"), bucket, key.rstrip("/") + "/"))
    path = Path(prefix)
    return {p.name for p in path.iterdir() if p.is_file()} if path.is_dir() else set()


def read_text(uri: str) -> str:
    return read_bytes(uri).decode("utf-8")


def write_bytes(uri: str, data: bytes) -> None:
    if is_s3(uri):
        from batchpipe.aws.clients import s3_put

        s3_put(*split_s3(uri), data)
        return
    path = Path(uri)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, file_mode())
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def put_file(uri: str, local: str) -> None:
    """Move a finished local file to `uri` (a rename, or an upload for s3:// that then deletes it): large outputs
    are written to a temporary file first, and a reader never sees them half-written."""
    if is_s3(uri):
        from batchpipe.aws.clients import s3_put_file

        try:
            s3_put_file(*split_s3(uri), local)
        finally:
            os.unlink(local)
        return
    Path(uri).parent.mkdir(parents=True, exist_ok=True)
    os.replace(local, uri)


def staging_file(uri: str) -> str:
    """A new temporary file for what will become `uri`: beside it for a local path (so the rename is atomic),
    in the temporary directory for s3://."""
    if is_s3(uri):
        fd, tmp = tempfile.mkstemp(prefix="batchpipe-", suffix=".tmp")
    else:
        path = Path(uri)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.fchmod(fd, file_mode())  # the file it becomes is shared like any other: follow the umask
    os.close(fd)
    return tmp


def write_text(uri: str, text: str) -> None:
    write_bytes(uri, text.encode("utf-8"))


def exists(uri: str) -> bool:
    if is_s3(uri):
        from batchpipe.aws.clients import s3_exists

        return s3_exists(*split_s3(uri))
    return Path(uri).exists()
