"""boto3 clients made in one place: retries configured once, AWS_ENDPOINT_URL honoured by boto3 itself."""

from __future__ import annotations

from collections.abc import Iterator
from functools import cache
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

RETRIES = Config(retries={"max_attempts": 10, "mode": "adaptive"})


@cache
def client(service: str, region: str | None = None, profile: str | None = None) -> Any:
    session = boto3.session.Session(profile_name=profile, region_name=region)
    return session.client(service, config=RETRIES)


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


def s3_list(bucket: str, prefix: str) -> Iterator[str]:
    paginator = client("s3").get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            yield str(obj["Key"])
