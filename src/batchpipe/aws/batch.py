"""AWS Batch: a run's jobs (ListJobs page by page, DescribeJobs 100 ids a call), why its RUNNABLE jobs wait,
terminating them, and the image a job definition runs. Nothing here is "absent" (DescribeJobs and
DescribeJobDefinitions leave unknown ones out): every refusal is one BatchpipeError line saying what was being done."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import islice
from typing import Any

from botocore.exceptions import ClientError

from batchpipe.aws.clients import client, failed, pages
from batchpipe.aws.stack import StackOutputs

DESCRIBE_LIMIT = 100  # DescribeJobs' most job ids a call
FINISHED = ("SUCCEEDED", "FAILED")


def job_ids(doing: str, **params: Any) -> Iterator[str]:
    """The ids ListJobs names for these parameters, page by page."""
    for page in pages(client("batch"), "list_jobs", doing, **params):
        for summary in page["jobSummaryList"]:
            yield summary["jobId"]


def describe(ids: Iterable[str], doing: str) -> Iterator[dict[str, Any]]:
    """DescribeJobs of these ids, DESCRIBE_LIMIT a call."""
    batch, remaining = client("batch"), iter(ids)
    while chunk := list(islice(remaining, DESCRIBE_LIMIT)):
        try:
            described = batch.describe_jobs(jobs=chunk)["jobs"]
        except ClientError as exc:
            raise failed(doing, exc) from None
        yield from described


def jobs_of(outputs: StackOutputs, job_name: str) -> list[dict[str, Any]]:
    """A run's Batch jobs (their names start with the job name) and the failed children of its arrays.

    ListJobs names array parents only; their failed children are listed per parent.
    """
    doing = f"listing the Batch jobs of run '{job_name}'"
    named = list(job_ids(doing, jobQueue=outputs.job_queue_arn,
                         filters=[{"name": "JOB_NAME", "values": [f"{job_name}-*"]}]))  # fmt: skip
    jobs = list(describe(named, doing))
    for parent in [j for j in jobs if "size" in (j.get("arrayProperties") or {})]:
        if parent["arrayProperties"].get("statusSummary", {}).get("FAILED"):
            jobs.extend(describe(list(job_ids(doing, arrayJobId=parent["jobId"], jobStatus="FAILED")), doing))
    return list({j["jobId"]: j for j in jobs}.values())


def definition_image(arn: str) -> str | None:
    """The container image a job definition (by ARN) runs, None when Batch knows no such definition."""
    try:
        found = client("batch").describe_job_definitions(jobDefinitions=[arn])["jobDefinitions"]
    except ClientError as exc:
        raise failed(f"describing job definition {arn}", exc) from None
    image = next((d.get("containerProperties", {}).get("image") for d in found), None)
    return str(image) if image else None


def array_index(job: dict[str, Any]) -> int | None:
    """An array child's index: arrayProperties.index, or the ':N' its job id ends with."""
    index = (job.get("arrayProperties") or {}).get("index")
    if index is None and ":" in job.get("jobId", ""):
        tail = job["jobId"].rsplit(":", 1)[1]
        index = int(tail) if tail.isdigit() else None
    return None if index is None else int(index)


def runnable_problems(outputs: StackOutputs, jobs: list[dict[str, Any]]) -> list[str]:
    """Explanations for these jobs stuck in RUNNABLE (one line per distinct cause), from the queue's compute
    environments."""
    import time

    from batchpipe.diagnostics import runnable_problem

    runnable = [j for j in jobs if j.get("status") == "RUNNABLE"]
    if not runnable:
        return []
    batch = client("batch")
    try:
        queue = batch.describe_job_queues(jobQueues=[outputs.job_queue_arn])["jobQueues"]
        names = [o["computeEnvironment"] for q in queue for o in q.get("computeEnvironmentOrder", [])]
        envs = batch.describe_compute_environments(computeEnvironments=names)["computeEnvironments"] if names else []
    except ClientError as exc:
        raise failed("reading the job queue's compute environments", exc) from None
    now = int(time.time() * 1000)
    problems = [p for j in runnable if (p := runnable_problem(j, envs, now))]
    return list(dict.fromkeys(problems))


def cancel(outputs: StackOutputs, job_name: str, reason: str) -> int:
    """Terminate a run's unfinished jobs; returns how many."""
    terminated = 0
    for job in jobs_of(outputs, job_name):
        if job["status"] not in FINISHED:
            try:
                client("batch").terminate_job(jobId=job["jobId"], reason=reason)
            except ClientError as exc:
                raise failed(f"terminating Batch job {job['jobName']}", exc) from None
            terminated += 1
    return terminated
