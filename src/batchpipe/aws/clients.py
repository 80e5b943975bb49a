"""boto3 clients made in one place: timeouts and retries configured once, sized for an interactive command (an
unreachable endpoint is an answer within seconds, not a 30 s hang); boto3 resolves credentials, region and
AWS_ENDPOINT_URL itself; --region / --profile apply through `configure`. `unreachable` turns a network failure, a bad
region or an endpoint that is not AWS into one line."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import closing
from functools import cache
from typing import Any
from urllib.parse import urlsplit

import boto3
from botocore import exceptions as boto_errors
from botocore.config import Config
from botocore.exceptions import ClientError, ProfileNotFound
from botocore.parsers import ResponseParserError

from batchpipe.errors import BatchpipeError, InputError

# Connecting takes well under a second when the endpoint is there; an answer under 30 s (the slowest calls here are
# S3 reads of a part); three attempts in all with standard retries (throttling, 5xx, a dropped connection): an
# endpoint that is not there fails in seconds, not after ten adaptive attempts.
# A pool of 32 connections: the S3 store reads 32 objects at once (storage's read_concurrency), each thread keeping
# its connection (and its TLS session) instead of opening a new one past botocore's default of 10.
CONFIG = Config(connect_timeout=5, read_timeout=30, retries={"mode": "standard", "max_attempts": 3},
                max_pool_connections=32)  # fmt: skip
# Presigned links: SigV4 (buckets made since June 2020 refuse SigV2, which the global endpoint still signs with) on
# the regional virtual-hosted endpoint (https://BUCKET.s3.REGION.amazonaws.com/KEY, us-east-1 included).
PRESIGN = CONFIG.merge(
    Config(signature_version="s3v4", s3={"addressing_style": "virtual", "us_east_1_regional_endpoint": "regional"})
)
_SESSION: dict[str, str | None] = {"region": None, "profile": None}
_SEEN: dict[str, str] = {}  # the region of the clients made, the endpoint that answered last (for error lines)


class NotAws(InputError):
    """The endpoint answered with a web page, not as an AWS API (a proxy, a captive portal, a wrong
    AWS_ENDPOINT_URL)."""

    def __init__(self, endpoint: str, what: str) -> None:
        super().__init__(f"{endpoint} did not answer as AWS: {what}",
                         "check AWS_ENDPOINT_URL, --region and any HTTPS_PROXY")  # fmt: skip


def configure(region: str | None = None, profile: str | None = None) -> None:
    """--region / --profile for every client made after this."""
    _SESSION.update(region=region, profile=profile)
    client.cache_clear()


@cache
def client(service: str, presign: bool = False) -> Any:
    """The client of a service (`presign`: an S3 client that signs links with SigV4 on the regional endpoint)."""
    try:
        session = boto3.session.Session(profile_name=_SESSION["profile"], region_name=_SESSION["region"])
    except ProfileNotFound as exc:
        raise InputError(f"{exc}: check --profile or AWS_PROFILE") from None
    if session.get_credentials() is None:
        raise InputError("no AWS credentials found: run `aws configure`, set AWS_PROFILE, or pass --profile")
    if session.region_name is None:
        raise InputError("no AWS region: pass --region or set AWS_DEFAULT_REGION")
    _SEEN["region"] = session.region_name
    made = session.client(service, config=PRESIGN if presign else CONFIG)
    made.meta.events.register("before-parse", _answered_as_aws(str(made.meta.endpoint_url)))
    return made


def _answered_as_aws(endpoint: str) -> Callable[..., None]:
    """A check of every answer before botocore parses it: an HTML page is no AWS API's answer (botocore would
    raise a KeyError from its parser, a ClientError 'Unknown', or retry a proxy's 502 page)."""

    def check(operation_model: Any, response_dict: dict[str, Any], **_: Any) -> None:
        _SEEN["endpoint"] = endpoint
        body = response_dict.get("body")
        if operation_model.has_streaming_output or not isinstance(body, bytes):
            return  # an object's own bytes (GetObject) may be anything
        if body[:512].lstrip().lower().startswith((b"<!doctype html", b"<html")):
            raise NotAws(endpoint, f"a web page (HTTP {response_dict.get('status_code')})")

    return check


def unreachable(exc: BaseException) -> InputError | None:
    """A failure to talk to AWS at all, as one line naming the endpoint and what to check; None for anything else.

    A connection refused, a name that does not resolve (offline, or a region that does not exist), a connect or
    read timeout, a malformed region name, an answer that does not parse as AWS's."""
    if isinstance(exc, boto_errors.InvalidRegionError):
        return InputError(f"'{exc.kwargs.get('region_name')}' is not a region name",
                          "check --region or AWS_DEFAULT_REGION, e.g. eu-west-1")  # fmt: skip
    if isinstance(exc, ResponseParserError):
        return NotAws(_SEEN.get("endpoint", "the endpoint"), "an answer that does not parse as AWS's")
    if not isinstance(exc, boto_errors.ConnectionError | boto_errors.HTTPClientError):
        return None
    url = str(exc.kwargs.get("endpoint_url") or _SEEN.get("endpoint", "the AWS endpoint"))
    parts = urlsplit(url)
    endpoint = f"{parts.scheme}://{parts.netloc}" if parts.netloc else url
    why = ("timed out" if isinstance(exc, boto_errors.ConnectTimeoutError | boto_errors.ReadTimeoutError)
           else "could not connect")  # fmt: skip
    if parts.hostname and parts.hostname.endswith((".amazonaws.com", ".amazonaws.com.cn")):
        hint = f"check the network connection, and the region '{_SEEN.get('region')}': --region or AWS_DEFAULT_REGION"
    else:
        hint = "check AWS_ENDPOINT_URL: is the service running there?"
    return InputError(f"cannot reach {endpoint}: {why}", hint)


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
