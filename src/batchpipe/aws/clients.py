"""boto3 clients made in one place: retries configured once; boto3 resolves credentials, region and
AWS_ENDPOINT_URL itself; --region / --profile apply through `configure`."""

from __future__ import annotations

from functools import cache
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError, ProfileNotFound

from batchpipe.errors import InputError

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


def s3_get(bucket: str, key: str) -> bytes:
    body: bytes = client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    return body


def s3_put(bucket: str, key: str, data: bytes) -> None:
    client("s3").put_object(Bucket=bucket, Key=key, Body=data)


def s3_exists(bucket: str, key: str) -> bool:
    try:
        client("s3").head_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            return False
        raise
    return True
