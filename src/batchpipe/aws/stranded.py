"""The state machines' second Lambda, self-contained (stdlib, the runtime's boto3): the template inlines it.

When a fan-out of shards fails, it finds the shards AWS Batch cancelled because the Spot queue had no capacity for
them (the queue's jobStateTimeLimitActions), and gives the container command that runs just those again on the
On-Demand queue. Shards that ran and failed are not among them: they are the application's failures, which the
result document reports and `--resume` retries.
"""

import json
from typing import Any

Doc = dict[str, Any]

# AWS Batch's statusReason for a job that its queue's jobStateTimeLimitActions cancelled for lack of capacity
CANCELLED = "JobStateTimeLimit action due to reason: CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY"
LIST_LIMIT = 4000  # the longest --shard-list put in a container command; past it every shard runs with --resume


def ranges(shards: list[int]) -> str:
    """Sorted shard indexes as "0,3-5,9"."""
    runs: list[list[int]] = []
    for n in shards:
        if runs and n == runs[-1][1] + 1:
            runs[-1][1] = n
        else:
            runs.append([n, n])
    return ",".join(str(a) if a == b else f"{a}-{b}" for a, b in runs)


def cancelled_children(array_job_id: str) -> list[int]:
    """The indexes of an array's children that Batch cancelled for lack of capacity (ListJobs, page by page; a
    child's index is in its arrayProperties, and its job id is the parent's with ":INDEX")."""
    import boto3

    pages = boto3.client("batch").get_paginator("list_jobs").paginate(arrayJobId=array_job_id, jobStatus="FAILED")
    found = [j for page in pages for j in page["jobSummaryList"] if CANCELLED in j.get("statusReason", "")]
    return sorted(int((j.get("arrayProperties") or {}).get("index", j["jobId"].rsplit(":", 1)[-1])) for j in found)


def stranded(event: Doc) -> Doc:
    """event: the fan-out's error ({Error, Cause}: the Cause of a failed Batch job is its description), its shard
    command and the plan's shard count. Returns the On-Demand fan-out: size 0 (none to run), 1 (one job) or more (an
    array), its command, and how many shards were stranded."""
    try:
        job = json.loads(event["error"].get("Cause") or "{}")
    except ValueError:  # not a Batch job's description: a failure of another kind
        job = {}
    if not isinstance(job, dict):
        job = {}
    if (job.get("ArrayProperties") or {}).get("Size"):
        shards = cancelled_children(job["JobId"])
    else:
        shards = [0] if CANCELLED in str(job.get("StatusReason", "")) else []
    command = [a for a in event["command"] if a != "--resume"] + ["--resume"]
    listed = ranges(shards)
    if len(listed) > LIST_LIMIT:  # too long for a command: every shard again, the complete ones kept
        return {"size": int(event["shards"]), "command": command, "stranded": len(shards)}
    if len(shards) == 1:
        command += ["--shard", listed]
    elif shards:
        command += ["--shard-list", listed]
    return {"size": len(shards), "command": command, "stranded": len(shards)}


def handler(event: Doc, context: Any) -> Doc:
    return stranded(event)
