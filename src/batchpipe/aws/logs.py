"""CloudWatch Logs of a run's Batch jobs: which log group and streams a job wrote (each attempt's own stream), and
their events, page by page from where the last read stopped.

A stream not created yet (the container has not started) has no events; any other refusal is one BatchpipeError
line saying what was being read."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from botocore.exceptions import ClientError

from batchpipe.aws.clients import client, code, failed

DEFAULT_GROUP = "/aws/batch/job"  # where Batch's awslogs driver writes unless the job definition names a group
PAGE_LIMIT = 10_000  # GetLogEvents' most events a call (it also stops at 1 MB)


def _awslogs_group(config: dict[str, Any] | None) -> str | None:
    if not config or config.get("logDriver") != "awslogs":
        return None
    group = (config.get("options") or {}).get("awslogs-group")
    return str(group) if group else None


def group_of(job: dict[str, Any], definitions: dict[str, str]) -> str:
    """The log group a job writes to: its container's awslogs-group, else its job definition's (DescribeJobDefinitions
    once per definition: `definitions` caches them), else Batch's default."""
    own = _awslogs_group((job.get("container") or {}).get("logConfiguration"))
    if own is not None:
        return own
    arn = job.get("jobDefinition")
    if not arn:
        return DEFAULT_GROUP
    if arn not in definitions:
        try:
            found = client("batch").describe_job_definitions(jobDefinitions=[arn])["jobDefinitions"]
        except ClientError as exc:
            raise failed(f"reading job definition {arn}", exc) from None
        configs = [(d.get("containerProperties") or {}).get("logConfiguration") for d in found]
        definitions[arn] = next((g for c in configs if (g := _awslogs_group(c))), DEFAULT_GROUP)
    return definitions[arn]


def streams(job: dict[str, Any]) -> list[str]:
    """A job's log streams, one per attempt, oldest first: each finished attempt's, then the running one's."""
    names = [(a.get("container") or {}).get("logStreamName") for a in job.get("attempts") or []]
    names.append((job.get("container") or {}).get("logStreamName"))
    return [n for n in dict.fromkeys(names) if n]


def events(group: str, stream: str, positions: dict[tuple[str, str], str]) -> Iterator[dict[str, Any]]:
    """A stream's events after the last read (`positions` holds each stream's next forward token; none: from its
    start), oldest first: GetLogEvents page after page until the forward token comes back unchanged, which means
    there is nothing newer yet."""
    logs = client("logs")
    key = (group, stream)
    while True:
        params: dict[str, Any] = {"logGroupName": group, "logStreamName": stream, "startFromHead": True,
                                  "limit": PAGE_LIMIT}  # fmt: skip
        if key in positions:
            params["nextToken"] = positions[key]
        try:
            page = logs.get_log_events(**params)
        except ClientError as exc:
            if code(exc) == "ResourceNotFoundException":  # not written yet
                return
            raise failed(f"reading log stream {stream} of {group}", exc) from None
        yield from page["events"]
        token = page.get("nextForwardToken")
        if not token or token == positions.get(key):
            return
        positions[key] = token
