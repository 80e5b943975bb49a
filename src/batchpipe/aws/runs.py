"""A run as a whole, composed from the service modules: start it (input to S3, execution to Step Functions),
resume it, cancel it (execution and Batch jobs), and the stages its execution entered."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from batchpipe import catalog
from batchpipe.aws import batch, images, objects, sfn
from batchpipe.aws.stack import StackOutputs
from batchpipe.errors import BatchpipeError, InputError

CANCEL_REASON = "batchpipe cancel"


def payload(pipeline: str, outputs: StackOutputs, job_name: str, input_key: str, **extra: Any) -> dict[str, Any]:
    """The workshop's start-execution input (plus framesPerJob / positionsPerJob)."""
    definition = getattr(outputs, catalog.pipeline(pipeline).job_definition_output)
    doc = {
        "jobName": job_name,
        "inputUri": f"s3://{outputs.bucket}/{input_key}",
        "outputUri": f"s3://{outputs.bucket}/{objects.run_prefix(job_name)}",
        "jobDefinitionArn": definition,
        "jobQueueArn": outputs.job_queue_arn,
    }
    doc.update({k: v for k, v in extra.items() if v is not None})
    return doc


def require_image(pipeline: str, definition_arn: str) -> None:
    """Refuse to start an execution whose jobs could not pull their image (see `images.missing_image`)."""
    image = images.missing_image(definition_arn)
    if image is not None:
        raise InputError(f"image {image} is not in ECR: the {pipeline} run's jobs could not pull it",
                         "build and push the images with `batchpipe deploy`")  # fmt: skip


def start(pipeline: str, outputs: StackOutputs, job_name: str, input_file: Path, **extra: Any) -> str:
    """Upload the (already validated) input and start the execution; returns its ARN. Nothing is uploaded when
    the name is taken or the pipeline's image is not in ECR."""
    if objects.name_taken(outputs, job_name):
        raise InputError(f"job name '{job_name}' is already used in this stack: choose another with --job-name")
    require_image(pipeline, getattr(outputs, catalog.pipeline(pipeline).job_definition_output))
    key = objects.upload_input(outputs, job_name, input_file)
    body = payload(pipeline, outputs, job_name, key, **extra)
    arn = sfn.start(sfn.machine(outputs, pipeline), job_name, body, f"starting the {pipeline} state machine")
    if arn is None:
        raise InputError(f"job name '{job_name}' is already used: choose another with --job-name")
    return arn


def resume(
    outputs: StackOutputs, run: str, expected_input: bytes | Sequence[bytes], pipeline: str | None = None
) -> str:
    """Run a finished run again over its own output: complete shards are kept, the rest priced or rendered.

    The new execution (named RUN-resume-N) gets the original payload plus "resume": true, so every array child
    first checks whether its shard's result is already complete for the same plan (a render shard: and that its
    frames are all in S3). Its jobs run on the stack's current job definition and queue, not the original's: after
    "fix, deploy, resume" they run the fixed image (the plan's fingerprint, not the image, decides what is kept).
    `pipeline`, when given, is the pipeline the caller means to resume. `expected_input`: the input's bytes, or the
    forms it may have been uploaded in (a render: its pack, or the bare .blend).
    """
    found, desc = sfn.find(outputs, run)
    if pipeline is not None and found != pipeline:
        raise InputError(f"run '{desc['name']}' is a {found} run: resume it with `batchpipe run {found} ... --resume`")
    if desc["status"] == "RUNNING":
        raise InputError(f"run '{desc['name']}' is still running: `batchpipe status {desc['name']} --watch`")
    original = json.loads(desc["input"])
    original.pop("resume", None)
    if not _same_input(outputs, original, expected_input):
        what = catalog.pipeline(found).input_noun
        raise InputError(f"{what} differs from the input of run '{original['jobName']}': resume needs the same file")
    definition = getattr(outputs, catalog.pipeline(found).job_definition_output)
    require_image(found, definition)
    body = {**original, "jobDefinitionArn": definition, "jobQueueArn": outputs.job_queue_arn, "resume": True}
    for attempt in range(1, 100):
        name = resume_name(original["jobName"], attempt)
        arn = sfn.start(desc["stateMachineArn"], name, body, f"starting the resume of '{original['jobName']}'")
        if arn is not None:
            return arn
    raise BatchpipeError(f"run '{original['jobName']}' was resumed too many times")


def _same_input(outputs: StackOutputs, payload: dict[str, Any], expected: bytes | Sequence[bytes]) -> bool:
    """Whether the run's uploaded input has these bytes (or one of these forms): a render's plan records its pack's
    sha256, or the bare .blend's (a large file is not downloaded again), otherwise the input is read back."""
    forms = [expected] if isinstance(expected, bytes) else list(expected)
    digests = {hashlib.sha256(form).hexdigest() for form in forms}
    try:
        recorded = objects.plan_document(outputs, payload["jobName"]) or {}
    except ValueError:
        recorded = {}
    pack = recorded.get("pack")
    if isinstance(pack, dict) and pack.get("zipSha256"):
        return pack["zipSha256"] in digests
    if recorded.get("blendSha256"):
        return recorded["blendSha256"] in digests
    uploaded = objects.read(payload["inputUri"])
    if uploaded is None:
        raise InputError(f"the input of run '{payload['jobName']}' is gone ({payload['inputUri']}): it cannot resume")
    return uploaded in forms


def stages(execution_arn: str) -> list[str]:
    """The states an execution entered, in order (its whole history, page by page)."""
    entered = (e["stateEnteredEventDetails"] for e in sfn.history(execution_arn) if "stateEnteredEventDetails" in e)
    return [details["name"] for details in entered]


def resume_name(job_name: str, attempt: int) -> str:
    return f"{job_name[:64]}-resume-{attempt}"


def resumes(desc: dict[str, Any]) -> list[dict[str, Any]]:
    """The resumes of a run's first execution (RUN-resume-1, -2, ... until one does not exist): one call each."""
    found = []
    prefix = desc["executionArn"].rsplit(":", 1)[0]
    for attempt in range(1, 100):
        name = resume_name(desc["name"], attempt)
        resumed = sfn.describe(f"{prefix}:{name}", f"looking up run '{name}'")
        if resumed is None:
            break
        found.append(resumed)
    return found


def cancel(outputs: StackOutputs, run: str) -> tuple[str, int]:
    """Stop the run's execution (a run named by its job name: and its resumes) and terminate its unfinished Batch
    jobs: exactly this run's (JOB-preprocess, JOB-price, ..., whichever execution submitted them, a resume's too),
    created since the execution named started. Returns (execution ARN, jobs terminated)."""
    _, desc = sfn.find(outputs, run)
    job = sfn.job_of(desc)
    executions = [desc] + (resumes(desc) if desc["name"] == job else [])
    for execution in executions:
        if execution["status"] == "RUNNING":
            sfn.stop(execution["executionArn"], CANCEL_REASON)
    since = desc["startDate"].timestamp() * 1000
    return desc["executionArn"], batch.cancel(outputs, job, since, CANCEL_REASON)
