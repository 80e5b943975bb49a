"""S3 objects of a run: its prefix, uploaded input, plan and result documents, frames, downloads and video link.

Only NoSuchKey / 404 means "absent"; any other refusal (AccessDenied, throttling) is one BatchpipeError line
saying what was being read or written."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from boto3.exceptions import S3UploadFailedError
from botocore.exceptions import ClientError

from batchpipe import catalog
from batchpipe.aws.clients import client, failed, not_found, s3_names
from batchpipe.aws.stack import StackOutputs
from batchpipe.errors import InputError


def run_prefix(job_name: str) -> str:
    return f"runs/{job_name}"


def name_taken(outputs: StackOutputs, job_name: str) -> bool:
    """Whether the stack's bucket already has objects of a run of this job name."""
    try:
        listed = client("s3").list_objects_v2(Bucket=outputs.bucket, Prefix=run_prefix(job_name) + "/", MaxKeys=1)
    except ClientError as exc:
        raise failed(f"listing s3://{outputs.bucket}/{run_prefix(job_name)}/", exc) from None
    return bool(listed.get("KeyCount"))


def upload_input(outputs: StackOutputs, job_name: str, input_file: Path) -> str:
    """Upload a run's input file under its prefix; returns the key."""
    key = f"{run_prefix(job_name)}/input/{input_file.name}"
    try:
        client("s3").upload_file(str(input_file), outputs.bucket, key)
    except (ClientError, S3UploadFailedError) as exc:
        raise failed(f"uploading {input_file.name} to s3://{outputs.bucket}/{key}", exc) from None
    return key


def read(uri: str) -> bytes | None:
    """An s3:// object's bytes, None only when it is absent."""
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    try:
        data: bytes = client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as exc:
        if not_found(exc):
            return None
        raise failed(f"reading {uri}", exc) from None
    return data


def _document(outputs: StackOutputs, key: str) -> dict[str, Any] | None:
    """A JSON object of the run's prefix, None when it is absent (or not an object)."""
    body = read(f"s3://{outputs.bucket}/{key}")
    doc = None if body is None else json.loads(body)
    return doc if isinstance(doc, dict) else None


def result_document(outputs: StackOutputs, pipeline: str, job_name: str) -> dict[str, Any] | None:
    """The run's collated result (None until collate or stitch has written it)."""
    return _document(outputs, f"{run_prefix(job_name)}/{catalog.pipeline(pipeline).result_file}")


def plan_document(outputs: StackOutputs, job_name: str) -> dict[str, Any] | None:
    """The run's plan.json (None until preprocess has written it)."""
    return _document(outputs, f"{run_prefix(job_name)}/plan.json")


def frames_in_s3(outputs: StackOutputs, job_name: str) -> set[str]:
    """The names of the frame files under the run's frames/ prefix.

    One paginated ListObjectsV2 (1,000 keys a page: 10,000 frames are 10 calls), never a call per frame.
    """
    prefix = f"{run_prefix(job_name)}/frames/"
    try:
        return set(s3_names(client("s3"), outputs.bucket, prefix))
    except ClientError as exc:
        raise failed(f"listing s3://{outputs.bucket}/{prefix}", exc) from None


def _inside(root: Path, key: str, prefix: str) -> Path:
    relative = key[len(prefix) :].lstrip("/")
    target = (root / relative).resolve()
    if not relative or not target.is_relative_to(root.resolve()):
        raise InputError(f"refusing to write object '{key}' outside {root}")
    return target


def download(outputs: StackOutputs, job_name: str, names: list[str], directory: Path,
             optional: frozenset[str] | set[str] = frozenset()) -> list[Path]:  # fmt: skip
    """Objects of the run's prefix into `directory` (each checked to stay inside it); a missing optional one (a
    partial render has no video) is skipped."""
    prefix = run_prefix(job_name)
    written = []
    for name in names:
        key = f"{prefix}/{name}"
        target = _inside(directory, key, prefix)
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            client("s3").download_file(outputs.bucket, key, str(target))
        except ClientError as exc:
            if not not_found(exc):
                raise failed(f"downloading s3://{outputs.bucket}/{key}", exc) from None
            if name not in optional:
                raise InputError(f"cannot download s3://{outputs.bucket}/{key}: no such object") from None
            continue
        written.append(target)
    return written


def video_link(outputs: StackOutputs, job_name: str, expires: int = 3600) -> tuple[str, str]:
    """(s3:// URI, presigned GET link) of a render run's video: signed locally with SigV4 for the regional
    virtual-hosted endpoint (https://BUCKET.s3.REGION.amazonaws.com/...), which every bucket accepts (the client's
    default, SigV2 on the global endpoint, is refused by buckets made since June 2020)."""
    key = f"{run_prefix(job_name)}/output.mp4"
    url = client("s3", presign=True).generate_presigned_url("get_object", ExpiresIn=expires,
                                                            Params={"Bucket": outputs.bucket, "Key": key})  # fmt: skip
    return f"s3://{outputs.bucket}/{key}", str(url)
