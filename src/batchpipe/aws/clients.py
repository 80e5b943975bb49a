"""boto3 clients made in one place: retries configured once; boto3 resolves credentials, region and
AWS_ENDPOINT_URL itself; --region / --profile apply through `configure`."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import closing
from functools import cache
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError, ProfileNotFound

from batchpipe.errors import BatchpipeError, InputError

RETRIES = Config(retries={"max_attempts": 10, "mode": "adaptive"})
_SESSION: dict[str, str | None] = {"region": None, "profile": None}


def configure(region: str | None = None, profile: str | None = None) -> None:
    """--region / --profile for every client made after this."""
    _SESSION.update(region=region, profile=profile)
    client.cache_clear()


@cache
def client(service: str) -> Any:
    try:
        session = boto3.session.Session(profile_name=_SESSION["profile"], region_name=_SESSION["region"])
    except ProfileNotFound as exc:
        raise InputError(f"{exc}: check --profile or AWS_PROFILE") from None
    if session.get_credentials() is None:
        raise InputError("no AWS credentials found: run `aws configure`, set AWS_PROFILE, or pass --profile")
    if session.region_name is None:
        raise InputError("no AWS region: pass --region or set AWS_DEFAULT_REGION")
    return session.client(service, config=RETRIES)


def region() -> str:
    return str(client("cloudformation").meta.region_name)


def not_found(exc: ClientError) -> bool:
    """Whether an S3 error means the object is absent (and nothing else: AccessDenied is not absence)."""
    return exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound")


def code(exc: ClientError) -> str:
    """AWS's error code of a refusal ("ExecutionDoesNotExist", "NoSuchKey", "AccessDeniedException", ...)."""
    return str(exc.response.get("Error", {}).get("Code", ""))


def failed(doing: str, exc: Exception) -> BatchpipeError:
    """An AWS refusal in one line: what was being done, AWS's code and message (AccessDenied is not "absent")."""
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return BatchpipeError(f"{doing}: {error.get('Code')}: {error.get('Message')}")
    return BatchpipeError(f"{doing}: {exc}")


def pages(service: Any, operation: str, doing: str, **params: Any) -> Iterator[dict[str, Any]]:
    """Every page of a paginated call (botocore's paginator passes each page's token to the next call), as they
    come; any refusal is `failed(doing, ...)`. `service` is the client to use."""
    try:
        yield from service.get_paginator(operation).paginate(**params)
    except ClientError as exc:
        raise failed(doing, exc) from None


def _body(bucket: str, key: str, **extra: str) -> Any:
    """GetObject's streaming body; a missing object is FileNotFoundError."""
    try:
        return client("s3").get_object(Bucket=bucket, Key=key, **extra)["Body"]
    except ClientError as exc:
        if not_found(exc):
            raise FileNotFoundError(f"s3://{bucket}/{key}") from None
        raise


def s3_get(bucket: str, key: str, start: int | None = None, end: int | None = None) -> bytes:
    """An object's bytes, or bytes start..end-1 of it; a missing object is FileNotFoundError."""
    extra = {} if start is None else {"Range": f"bytes={start}-{'' if end is None else end - 1}"}
    data: bytes = _body(bucket, key, **extra).read()
    return data


def s3_lines(bucket: str, key: str) -> Iterator[bytes]:
    """An object's lines, streamed (one request, never the whole object in memory)."""
    body = _body(bucket, key)
    with closing(body):
        yield from body.iter_lines(chunk_size=1 << 16)


def s3_names(s3: Any, bucket: str, prefix: str) -> Iterator[str]:
    """The names of the objects under a prefix (the key less the prefix): one paginated ListObjectsV2, 1,000 keys a
    page, never a call per object. `s3` is the client to use."""
    pages = s3.get_paginator("list_objects_v2").paginate(
        Bucket=bucket, Prefix=prefix, PaginationConfig={"PageSize": 1000}
    )
    for page in pages:
        for o in page.get("Contents", []):
            yield o["Key"][len(prefix) :]


def s3_put(bucket: str, key: str, data: bytes) -> None:
    client("s3").put_object(Bucket=bucket, Key=key, Body=data)


def s3_put_file(bucket: str, key: str, path: str) -> None:
    """Upload a local file (in parts when large: a results file is never held in memory)."""
    client("s3").upload_file(path, bucket, key)


def s3_exists(bucket: str, key: str) -> bool:
    try:
        client("s3").head_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        if not_found(exc):
            return False
        raise
    return True
