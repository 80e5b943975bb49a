"""The state machines' Lambda, self-contained (stdlib, the runtime's boto3): the template inlines it."""

import json
import os
import re
from typing import Any

Doc = dict[str, Any]

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,79}$")
FRAMES = re.compile(r"^\d{1,7}-\d{1,7}$")
STAGES = {"montecarlo": ("preprocess", "price", "collate"), "render": ("preprocess", "render", "stitch")}
RESULTS = {"montecarlo": "results.json", "render": "render.json"}


def _count(event: Doc, key: str, required: bool) -> int | None:
    value = event.get(key)
    if value in (None, ""):
        if required:
            raise ValueError(f"{key} is required")
        return None
    try:
        n = int(str(value).strip())
    except ValueError:
        raise ValueError(f"{key} {value!r}: expected a whole number") from None
    if n < 1:
        raise ValueError(f"{key} {value!r}: must be at least 1")
    return n


def prepare(event: Doc) -> Doc:
    """Check the start-execution payload; the three stages' container commands."""
    pipeline, event = event.get("pipeline"), event.get("input") or {}
    if pipeline not in STAGES:
        raise ValueError(f"unknown pipeline {pipeline!r}")
    for key in ("jobName", "inputUri", "outputUri", "jobDefinitionArn", "jobQueueArn"):
        if not isinstance(event.get(key), str) or not event[key]:
            raise ValueError(f"{key} is required")
    if not NAME.match(event["jobName"]):
        raise ValueError(f"jobName {event['jobName']!r}: 1-80 letters, digits, '-' or '_'")
    for key in ("inputUri", "outputUri"):
        if not event[key].startswith("s3://"):
            raise ValueError(f"{key} {event[key]!r}: expected an s3:// URI")
    out = event["outputUri"].rstrip("/")
    pre, shard, last = STAGES[pipeline]
    first = [pre, "--input", event["inputUri"], "--output", out, "--job-name", event["jobName"]]
    if pipeline == "render":
        first += ["--frames-per-job", str(_count(event, "framesPerJob", True))]
        options = ["resolutionPercentage", "samples"]
        frames = event.get("frames")
        if frames is not None and not FRAMES.match(str(frames)):
            raise ValueError(f"frames {frames!r}: expected START-END")
        first += ["--frames", frames] if frames else []
    else:
        options = ["positionsPerJob"]
    for key in options:
        n = _count(event, key, False)
        first += ["--" + re.sub("([A-Z])", r"-\1", key).lower(), str(n)] if n else []
    return {
        "batchJobName": event["jobName"],
        "outputUri": out,
        "planUri": out + "/plan.json",
        "resultUri": out + "/" + RESULTS[pipeline],
        "preprocessCommand": first,
        "shardCommand": [shard, "--output", out] + (["--resume"] if event.get("resume") is True else []),
        "collateCommand": [last, "--output", out],
    }


def _read_json(uri: str) -> Any:
    import boto3

    bucket, _, key = uri[len("s3://") :].partition("/")
    body = boto3.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    return json.loads(body)


def plan(event: Doc) -> Doc:
    """The plan's shards (the array size; 1: a single job)."""
    shards = int(_read_json(event["planUri"])["shards"])
    if not 1 <= shards <= 10000:
        raise ValueError(f"the plan has {shards} shards: expected 1 to 10000")
    return {"shards": shards}


def summary(event: Doc) -> Doc:
    """The collated status, and what is missing."""
    uri = event["resultUri"]  # summary.json: results.json's small head
    doc = _read_json(uri[: -len("results.json")] + "summary.json" if uri.endswith("/results.json") else uri)
    missing = doc.get("failedPositions") or doc.get("missingFrames", [])
    count = doc.get("failedCount", len(missing))
    return {"status": doc["status"], "resultUri": uri, "missing": missing[:100],
            "missingCount": count, "bucket": os.environ.get("BATCHPIPE_BUCKET")}  # fmt: skip


def handler(event: Doc, context: Any) -> Doc:
    actions = {"prepare": prepare, "plan": plan, "summary": summary}
    result: Doc = actions[event["action"]](event)
    return result
