"""AWS Batch: a run's jobs (ListJobs page by page, DescribeJobs 100 ids a call), the failed children of its arrays,
why its RUNNABLE jobs wait, terminating them, and the image a job definition runs. Nothing here is "absent"
(DescribeJobs and DescribeJobDefinitions leave unknown ones out): every refusal is one BatchpipeError line saying
what was being done."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from itertools import islice
from typing import Any

from botocore.exceptions import ClientError

from batchpipe.aws.clients import client, failed, pages
from batchpipe.aws.handlers import STAGES as PIPELINE_STAGES
from batchpipe.aws.stack import StackOutputs

DESCRIBE_LIMIT = 100  # DescribeJobs' most job ids a call
FINISHED = ("SUCCEEDED", "FAILED")
# The states machines name a run's jobs JOB-preprocess, JOB-price | JOB-render, JOB-collate | JOB-stitch (the ASL's
# JobName: States.Format('{}-price', batchJobName)), whatever execution (a resume's too) submits them.
STAGES = tuple(dict.fromkeys(stage for stages in PIPELINE_STAGES.values() for stage in stages))
FAILED_CHILDREN_SHOWN = 100  # `status` describes this many failed children of an array: one ListJobs page, one call
RUNNABLE_SAMPLE = 5  # the RUNNABLE children of an array described for a diagnosis


def summaries(doing: str, **params: Any) -> Iterator[dict[str, Any]]:
    """The job summaries ListJobs gives for these parameters, page by page."""
    for page in pages(client("batch"), "list_jobs", doing, **params):
        yield from page["jobSummaryList"]


def job_ids(doing: str, **params: Any) -> Iterator[str]:
    """The ids ListJobs names for these parameters, page by page."""
    for summary in summaries(doing, **params):
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


def own_names(job_name: str) -> set[str]:
    """The names of a run's jobs, exactly."""
    return {f"{job_name}-{stage}" for stage in STAGES}


def jobs_of(outputs: StackOutputs, job_name: str, since_ms: float = 0) -> list[dict[str, Any]]:
    """A run's own Batch jobs (the singles and the array parents), described: named exactly JOB-preprocess,
    JOB-price, ... (case-sensitive) and created at or after `since_ms` (its execution's start: a resumed run's
    executions submit jobs of the same names).

    ListJobs' JOB_NAME filter is a case-insensitive prefix match, so 'mc-*' also lists the jobs of runs 'mc-2' and
    'MC-big': its answer is only a superset to filter. Children are not listed with the queue's jobs: see
    `failed_children` and `runnable_problems`.
    """
    doing = f"listing the Batch jobs of run '{job_name}'"
    names = own_names(job_name)

    def own(job: dict[str, Any]) -> bool:
        return job.get("jobName") in names and job.get("createdAt", since_ms) >= since_ms

    ids: dict[str, None] = {}
    for queue in outputs.job_queues:  # shards on the Spot queue, the rest (and the fallback) on the On-Demand one
        listed = summaries(doing, jobQueue=queue, filters=[{"name": "JOB_NAME", "values": [f"{job_name}-*"]}])
        ids.update(dict.fromkeys(s["jobId"] for s in listed if own(s)))
    return [j for j in describe(ids, doing) if own(j)]


def is_array(job: dict[str, Any]) -> bool:
    return "size" in (job.get("arrayProperties") or {})


def children_by_status(parent: dict[str, Any]) -> dict[str, int]:
    return dict(parent["arrayProperties"].get("statusSummary") or {})


def children(parent: dict[str, Any], status: str, limit: int, doing: str) -> list[dict[str, Any]]:
    """The first `limit` (at most 100) children of an array in this status, described: one ListJobs page, one
    DescribeJobs call."""
    try:
        page = client("batch").list_jobs(arrayJobId=parent["jobId"], jobStatus=status, maxResults=limit)
    except ClientError as exc:
        raise failed(doing, exc) from None
    return list(describe([s["jobId"] for s in page["jobSummaryList"]][:limit], doing))


def failed_children(jobs: list[dict[str, Any]], limit: int = FAILED_CHILDREN_SHOWN) -> list[dict[str, Any]]:
    """The failed children of these jobs' arrays, the first `limit` of each (its statusSummary says how many)."""
    found = []
    for parent in jobs:
        if is_array(parent) and children_by_status(parent).get("FAILED"):
            found += children(parent, "FAILED", limit, f"listing the failed children of {parent['jobName']}")
    return found


def every_child(parent: dict[str, Any], statuses: tuple[str, ...] = ("STARTING", "RUNNING", "SUCCEEDED", "FAILED")
                ) -> Iterator[dict[str, Any]]:  # fmt: skip
    """Every child of an array in these statuses, described: ListJobs per status its statusSummary counts (1,000 a
    page), DescribeJobs 100 ids a call (10,000 children: 10 pages and 100 calls)."""
    doing = f"listing the children of {parent['jobName']}"
    counts = children_by_status(parent)
    for status in [s for s in statuses if counts.get(s)]:
        ids = job_ids(doing, arrayJobId=parent["jobId"], jobStatus=status, PaginationConfig={"PageSize": 1000})
        yield from describe(ids, doing)


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


def runnable_problems(outputs: StackOutputs, jobs: list[dict[str, Any]], now_ms: int | None = None) -> list[str]:
    """Explanations for a run's jobs stuck in RUNNABLE (one line per distinct cause), from the queue's compute
    environments and, where AWS Batch gives one, the job's own statusReason.

    `jobs` are the run's singles and array parents (`jobs_of`). An array's children are seen through its
    statusSummary: when some have waited RUNNABLE past the threshold while none of their siblings run, one
    ListJobs page of its RUNNABLE children is read and a few of them described (children waiting behind running
    siblings are only queued, not stuck). Nothing is called while no job has waited that long.
    """
    from batchpipe.diagnostics import STUCK_AFTER_SECONDS, runnable_problem

    now = int(time.time() * 1000) if now_ms is None else now_ms

    def waited(job: dict[str, Any]) -> bool:
        return now - int(job.get("createdAt", now)) >= STUCK_AFTER_SECONDS * 1000

    stuck = [(j["jobName"], j) for j in jobs if not is_array(j) and j.get("status") == "RUNNABLE" and waited(j)]
    for parent in [j for j in jobs if is_array(j) and waited(j)]:
        counts = children_by_status(parent)
        if counts.get("RUNNABLE") and not counts.get("STARTING") and not counts.get("RUNNING"):
            label = f"{parent['jobName']} ({counts['RUNNABLE']} of {parent['arrayProperties']['size']} children)"
            sample = children(parent, "RUNNABLE", RUNNABLE_SAMPLE, f"listing the RUNNABLE children of {label}")
            stuck += [(label, child) for child in sample]
    if not stuck:
        return []
    batch = client("batch")
    try:
        queues = batch.describe_job_queues(jobQueues=list(outputs.job_queues))["jobQueues"]
        names = [o["computeEnvironment"] for q in queues for o in q.get("computeEnvironmentOrder", [])]
        envs = batch.describe_compute_environments(computeEnvironments=names)["computeEnvironments"] if names else []
    except ClientError as exc:
        raise failed("reading the job queues' compute environments", exc) from None
    by_arn = {ce.get("computeEnvironmentArn"): ce for ce in envs} | {
        ce.get("computeEnvironmentName"): ce for ce in envs
    }
    of_queue = {q.get(key): [by_arn[o["computeEnvironment"]] for o in q.get("computeEnvironmentOrder", [])
                             if o["computeEnvironment"] in by_arn]
                for q in queues for key in ("jobQueueArn", "jobQueueName")}  # fmt: skip
    problems = []
    for label, job in stuck:
        problem = runnable_problem(job, of_queue.get(job.get("jobQueue"), envs), now)
        if problem:
            reason = f" (AWS Batch: {job['statusReason']})" if job.get("statusReason") else ""
            problems.append(f"{label}: {problem}{reason}")
    return list(dict.fromkeys(problems))


def cancel(outputs: StackOutputs, job_name: str, since_ms: float, reason: str) -> int:
    """Terminate a run's unfinished jobs (an array parent's children with it); returns how many."""
    terminated = 0
    for job in jobs_of(outputs, job_name, since_ms):
        if job["status"] not in FINISHED:
            try:
                client("batch").terminate_job(jobId=job["jobId"], reason=reason)
            except ClientError as exc:
                raise failed(f"terminating Batch job {job['jobName']}", exc) from None
            terminated += 1
    return terminated
