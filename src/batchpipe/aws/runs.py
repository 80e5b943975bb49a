"""Runs on AWS: upload the input, start the state machine with the workshop's payload, find, watch, stop."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from batchpipe import catalog
from batchpipe.aws.clients import client, not_found, s3_names
from batchpipe.aws.stack import StackOutputs
from batchpipe.errors import BatchpipeError, InputError

PIPELINES = tuple(catalog.PIPELINES)


def run_prefix(job_name: str) -> str:
    return f"runs/{job_name}"


def payload(pipeline: str, outputs: StackOutputs, job_name: str, input_key: str, **extra: Any) -> dict[str, Any]:
    """The workshop's start-execution input (plus framesPerJob / positionsPerJob)."""
    definition = getattr(outputs, catalog.pipeline(pipeline).job_definition_output)
    doc = {
        "jobName": job_name,
        "inputUri": f"s3://{outputs.bucket}/{input_key}",
        "outputUri": f"s3://{outputs.bucket}/{run_prefix(job_name)}",
        "jobDefinitionArn": definition,
        "jobQueueArn": outputs.job_queue_arn,
    }
    doc.update({k: v for k, v in extra.items() if v is not None})
    return doc


def machine(outputs: StackOutputs, pipeline: str) -> str:
    return str(getattr(outputs, catalog.pipeline(pipeline).state_machine_output))


def _name_taken(outputs: StackOutputs, job_name: str) -> bool:
    listed = client("s3").list_objects_v2(Bucket=outputs.bucket, Prefix=run_prefix(job_name) + "/", MaxKeys=1)
    return bool(listed.get("KeyCount"))


def start(pipeline: str, outputs: StackOutputs, job_name: str, input_file: Path, **extra: Any) -> str:
    """Upload the (already validated) input and start the execution; returns its ARN."""
    if _name_taken(outputs, job_name):
        raise InputError(f"job name '{job_name}' is already used in this stack: choose another with --job-name")
    key = f"{run_prefix(job_name)}/input/{input_file.name}"
    client("s3").upload_file(str(input_file), outputs.bucket, key)
    body = payload(pipeline, outputs, job_name, key, **extra)
    try:
        arn: str = client("stepfunctions").start_execution(
            stateMachineArn=machine(outputs, pipeline), name=job_name, input=json.dumps(body)
        )["executionArn"]
    except ClientError as exc:
        if "ExecutionAlreadyExists" in str(exc):
            raise InputError(f"job name '{job_name}' is already used: choose another with --job-name") from None
        raise BatchpipeError(f"could not start the {pipeline} state machine: {exc}") from None
    return arn


def job_of(execution: dict[str, Any]) -> str:
    """The job an execution runs (a resumed run's executions share their job's name and output)."""
    try:
        return str(json.loads(execution.get("input") or "{}").get("jobName") or execution["name"])
    except ValueError:
        return str(execution["name"])


def resume(outputs: StackOutputs, run: str, expected_input: bytes, pipeline: str | None = None) -> str:
    """Run a finished run again over its own output: complete shards are kept, the rest priced or rendered.

    The new execution (named RUN-resume-N) gets the original payload plus "resume": true, so every array child
    first checks whether its shard's result is already complete for the same plan (a render shard: and that its
    frames are all in S3). `pipeline`, when given, is the pipeline the caller means to resume.
    """
    found, desc = find(outputs, run)
    if pipeline is not None and found != pipeline:
        raise InputError(f"run '{desc['name']}' is a {found} run: resume it with `batchpipe run {found} ... --resume`")
    if desc["status"] == "RUNNING":
        raise InputError(f"run '{desc['name']}' is still running: `batchpipe status {desc['name']} --watch`")
    payload = json.loads(desc["input"])
    payload.pop("resume", None)
    if not _same_input(outputs, payload, expected_input):
        what = catalog.pipeline(found).input_noun
        raise InputError(f"{what} differs from the input of run '{payload['jobName']}': resume needs the same file")
    sfn = client("stepfunctions")
    for attempt in range(1, 100):
        name = f"{payload['jobName'][:64]}-resume-{attempt}"
        try:
            arn: str = sfn.start_execution(stateMachineArn=desc["stateMachineArn"], name=name,
                                           input=json.dumps({**payload, "resume": True}))["executionArn"]  # fmt: skip
            return arn
        except ClientError as exc:
            if "ExecutionAlreadyExists" not in str(exc):
                raise BatchpipeError(f"could not start the resume of '{payload['jobName']}': {exc}") from None
    raise BatchpipeError(f"run '{payload['jobName']}' was resumed too many times")


def _same_input(outputs: StackOutputs, payload: dict[str, Any], expected: bytes) -> bool:
    """Whether the run's uploaded input has these bytes: a render's plan records the .blend's sha256 (a large file
    is not downloaded again), otherwise the input is read back and compared."""
    import hashlib

    try:
        recorded = plan_document(outputs, payload["jobName"]) or {}
    except ValueError:
        recorded = {}
    if recorded.get("blendSha256"):
        return bool(recorded["blendSha256"] == hashlib.sha256(expected).hexdigest())
    bucket, _, key = payload["inputUri"].removeprefix("s3://").partition("/")
    uploaded: bytes = client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    return uploaded == expected


def executions(outputs: StackOutputs, limit: int = 20) -> Iterator[tuple[str, dict[str, Any]]]:
    """Recent executions of both state machines, newest first: (pipeline, execution)."""
    sfn = client("stepfunctions")
    found: list[tuple[str, dict[str, Any]]] = []
    for pipeline in PIPELINES:
        pages = sfn.get_paginator("list_executions").paginate(
            stateMachineArn=machine(outputs, pipeline), PaginationConfig={"MaxItems": limit}
        )
        found.extend((pipeline, e) for page in pages for e in page["executions"])
    found.sort(key=lambda pe: pe[1]["startDate"], reverse=True)
    yield from found[:limit]


def find(outputs: StackOutputs, run: str) -> tuple[str, dict[str, Any]]:
    """A run by execution ARN or job name: (pipeline, DescribeExecution)."""
    sfn = client("stepfunctions")
    for pipeline in PIPELINES:
        arn = (
            run
            if run.startswith("arn:")
            else machine(outputs, pipeline).replace(":stateMachine:", ":execution:") + f":{run}"
        )
        try:
            desc = sfn.describe_execution(executionArn=arn)
        except ClientError as exc:
            if _code(exc) in ("ExecutionDoesNotExist", "InvalidArn"):  # not this machine's: try the other
                continue
            raise _failed(f"looking up run '{run}'", exc) from None
        if desc["stateMachineArn"] == machine(outputs, pipeline):
            return pipeline, desc
    raise InputError(f"no run '{run}' in this stack: `batchpipe status` lists the recent ones")


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _failed(doing: str, exc: ClientError) -> BatchpipeError:
    """An AWS refusal in one line: what was being done, AWS's code and message (AccessDenied is not "absent")."""
    error = exc.response.get("Error", {})
    return BatchpipeError(f"{doing}: {error.get('Code')}: {error.get('Message')}")


def _document(outputs: StackOutputs, key: str) -> dict[str, Any] | None:
    """A JSON object of the run's prefix, None only when it is absent (any other error is raised as one)."""
    try:
        body = client("s3").get_object(Bucket=outputs.bucket, Key=key)["Body"].read()
    except ClientError as exc:
        if not_found(exc):
            return None
        raise _failed(f"reading s3://{outputs.bucket}/{key}", exc) from None
    doc = json.loads(body)
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
    return set(s3_names(client("s3"), outputs.bucket, f"{run_prefix(job_name)}/frames/"))


def batch_jobs(outputs: StackOutputs, job_name: str) -> list[dict[str, Any]]:
    """This run's Batch jobs (names start with the job name) and the failed children of its arrays.

    ListJobs names array parents only; their failed children are listed per parent. DescribeJobs takes 100 ids a
    call.
    """
    batch = client("batch")

    def listed(**kwargs: Any) -> list[str]:
        return [s["jobId"] for page in batch.get_paginator("list_jobs").paginate(**kwargs)
                for s in page["jobSummaryList"]]  # fmt: skip

    def described(ids: list[str]) -> list[dict[str, Any]]:
        jobs: list[dict[str, Any]] = []
        for start in range(0, len(ids), 100):
            jobs.extend(batch.describe_jobs(jobs=ids[start : start + 100])["jobs"])
        return jobs

    jobs = described(
        listed(jobQueue=outputs.job_queue_arn, filters=[{"name": "JOB_NAME", "values": [f"{job_name}-*"]}])
    )
    for parent in [j for j in jobs if "size" in (j.get("arrayProperties") or {})]:
        if parent["arrayProperties"].get("statusSummary", {}).get("FAILED"):
            jobs.extend(described(listed(arrayJobId=parent["jobId"], jobStatus="FAILED")))
    return list({j["jobId"]: j for j in jobs}.values())


def array_index(job: dict[str, Any]) -> int | None:
    """An array child's index: arrayProperties.index, or the ':N' its job id ends with."""
    index = (job.get("arrayProperties") or {}).get("index")
    if index is None and ":" in job.get("jobId", ""):
        tail = job["jobId"].rsplit(":", 1)[1]
        index = int(tail) if tail.isdigit() else None
    return None if index is None else int(index)


def cancel(outputs: StackOutputs, run: str) -> tuple[str, int]:
    """Stop the execution and terminate its unfinished Batch jobs. Returns (execution ARN, jobs terminated)."""
    _, desc = find(outputs, run)
    if desc["status"] == "RUNNING":
        client("stepfunctions").stop_execution(executionArn=desc["executionArn"], cause="batchpipe cancel")
    terminated = 0
    for job in batch_jobs(outputs, desc["name"]):
        if job["status"] not in ("SUCCEEDED", "FAILED"):
            client("batch").terminate_job(jobId=job["jobId"], reason="batchpipe cancel")
            terminated += 1
    return desc["executionArn"], terminated


def runnable_problems(outputs: StackOutputs, jobs: list[dict[str, Any]]) -> list[str]:
    """Explanations for this run's jobs stuck in RUNNABLE (one line per distinct cause)."""
    import time

    from batchpipe.diagnostics import runnable_problem

    runnable = [j for j in jobs if j.get("status") == "RUNNABLE"]
    if not runnable:
        return []
    batch = client("batch")
    queue = batch.describe_job_queues(jobQueues=[outputs.job_queue_arn])["jobQueues"]
    names = [o["computeEnvironment"] for q in queue for o in q.get("computeEnvironmentOrder", [])]
    envs = batch.describe_compute_environments(computeEnvironments=names)["computeEnvironments"] if names else []
    now = int(time.time() * 1000)
    problems = [p for j in runnable if (p := runnable_problem(j, envs, now))]
    return list(dict.fromkeys(problems))


def stages(execution_arn: str) -> list[str]:
    """The states an execution entered, in order (its whole history, page by page)."""
    pages = client("stepfunctions").get_paginator("get_execution_history").paginate(executionArn=execution_arn)
    return [e["stateEnteredEventDetails"]["name"] for page in pages for e in page["events"]
            if "stateEnteredEventDetails" in e]  # fmt: skip


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
            if name not in optional:
                raise InputError(f"cannot download s3://{outputs.bucket}/{key}: {exc}") from None
            continue
        written.append(target)
    return written


def video_link(outputs: StackOutputs, job_name: str, expires: int = 3600) -> tuple[str, str]:
    """(s3:// URI, presigned GET link) of a render run's video."""
    key = f"{run_prefix(job_name)}/output.mp4"
    url = client("s3").generate_presigned_url("get_object", Params={"Bucket": outputs.bucket, "Key": key},
                                              ExpiresIn=expires)  # fmt: skip
    return f"s3://{outputs.bucket}/{key}", str(url)
