"""Two small patches that let moto's Step Functions interpreter run batchpipe's pipelines end to end in-process.

moto 5.2.5 (pinned in pyproject.toml) without Docker only echoes Lambda events and marks Batch jobs SUCCEEDED
without running them. These patches make:
- a Lambda invocation run the function's deployed code (the handler module inside its zip), and
- the Batch integration translate its PascalCase parameters to the API's names and the API's responses back to
  PascalCase, as Step Functions does (moto's port leaves both translations empty), and
- a Batch job run the container's entrypoint in-process (batchpipe.jobs.pricer or .render, chosen by the job
  definition's name) with the job's command and AWS_BATCH_JOB_ARRAY_INDEX for array children; the job succeeds
  if the entrypoint exits 0, and
- a shard job on the Spot queue fail, without running, as the queue's jobStateTimeLimitActions cancel it when
  `no_spot_capacity` names it (with AWS Batch's status reason), and
- ListJobs of a queue name array parents and single jobs, not array children, as AWS does (children are listed by
  their parent's arrayJobId).
Everything else (the interpreter, S3, the Batch and Lambda APIs) is moto's own.
"""

from __future__ import annotations

import io
import json
import os
import threading
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from moto.awslambda_simple.models import LambdaSimpleBackend
from moto.batch.models import BatchBackend, Job
from moto.batch_simple.models import BatchSimpleBackend
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_batch import (
    StateTaskServiceBatch,
)

from batchpipe.jobs import pricer, render

CONFIG = {
    "stepfunctions": {"execute_state_machine": True},
    "batch": {"use_docker": False},
    "lambda": {"use_docker": False},
}
_ENV_LOCK = threading.Lock()
CAPACITY_CANCEL = "Canceled by JobStateTimeLimit action due to reason: CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY"


@dataclass
class Submitted:
    name: str
    definition: str
    command: list[str]
    array_size: int | None
    queue: str = ""  # the job queue's name


@dataclass
class BatchRuntime:
    """What ran, and knobs for fault injection."""

    submitted: list[Submitted] = field(default_factory=list)
    run_shards: bool = True  # False: shard children are recorded and marked SUCCEEDED without running
    fail_children: set[int] = field(default_factory=set)  # array indexes that fail
    failed_parents: set[str] = field(default_factory=set)
    # shards the Spot queue cancels for lack of capacity, as its jobStateTimeLimitActions would: array indexes, or
    # 0 for a single shard job; they never start there
    no_spot_capacity: set[int] = field(default_factory=set)

    def run(self, job: Job) -> bool:
        command = list(job.container_overrides.get("command") or [])
        entry = render.main if "render" in job.job_definition.name.lower() else pricer.main
        index = job.array_properties.get("index") if isinstance(job.array_properties, dict) else None
        is_shard = command[:1] in (["price"], ["render"])
        if index is not None and index in self.fail_children:
            return False
        if is_shard and not self.run_shards:
            return True
        with _ENV_LOCK:
            saved = os.environ.get("AWS_BATCH_JOB_ARRAY_INDEX")
            if index is not None:
                os.environ["AWS_BATCH_JOB_ARRAY_INDEX"] = str(index)
            else:
                os.environ.pop("AWS_BATCH_JOB_ARRAY_INDEX", None)
            try:
                entry(command)
                return True
            except SystemExit as exc:
                return exc.code in (0, None)
            finally:
                if saved is None:
                    os.environ.pop("AWS_BATCH_JOB_ARRAY_INDEX", None)
                else:
                    os.environ["AWS_BATCH_JOB_ARRAY_INDEX"] = saved


def _operation(service: StateTaskServiceBatch, action: str | None) -> Any:
    from botocore import xform_name
    from botocore.session import get_session

    model = get_session().get_service_model("batch")
    wanted = xform_name(action or service.resource.api_action)
    return model.operation_model(next(op for op in model.operation_names if xform_name(op) == wanted))


def _to_api(self: StateTaskServiceBatch, parameters: dict[str, Any], boto_service_name: str | None = None,
            service_action_name: str | None = None) -> None:  # fmt: skip
    self._to_boto_request(parameters, _operation(self, service_action_name).input_shape)


def _from_api(self: StateTaskServiceBatch, response: Any, boto_service_name: str | None = None,
              service_action_name: str | None = None) -> None:  # fmt: skip
    self._from_boto_response(response, _operation(self, service_action_name).output_shape)


@contextmanager
def patched(runtime: BatchRuntime) -> Iterator[BatchRuntime]:
    original_finish = BatchSimpleBackend._mark_job_as_finished
    original_invoke = LambdaSimpleBackend.invoke
    original_translation = StateTaskServiceBatch._normalise_parameters, StateTaskServiceBatch._normalise_response

    def finish(self: BatchSimpleBackend, include_start_attempt: bool, job: Job) -> None:
        self.backend._jobs[job.job_id] = job
        props = job.array_properties if isinstance(job.array_properties, dict) else {}
        command = list(job.container_overrides.get("command") or [])
        shard = command[:1] in (["price"], ["render"]) and "size" not in props
        if shard and job.job_queue.name.endswith("-spot") and props.get("index", 0) in runtime.no_spot_capacity:
            job.job_stopped_reason = CAPACITY_CANCEL
            if "index" in props:
                runtime.failed_parents.add(job.job_id.rsplit(":", 1)[0])
            else:
                runtime.submitted.append(
                    Submitted(job.job_name, job.job_definition.name, command, None, job.job_queue.name)
                )
            job._mark_stopped(success=False)
            return
        job.job_started_at = __import__("datetime").datetime.now()
        job.log_stream_name = job._stream_name
        if include_start_attempt:
            job._start_attempt()
        if "size" in props:  # the array parent: its children already ran
            runtime.submitted.append(
                Submitted(job.job_name, job.job_definition.name, command, props["size"], job.job_queue.name)
            )
            job._mark_stopped(success=job.job_id not in runtime.failed_parents)
            return
        if "index" not in props:
            runtime.submitted.append(
                Submitted(job.job_name, job.job_definition.name, command, None, job.job_queue.name)
            )
        ok = runtime.run(job)
        if not ok and "index" in props:
            runtime.failed_parents.add(job.job_id.rsplit(":", 1)[0])
        job._mark_stopped(success=ok)

    def invoke(
        self: LambdaSimpleBackend,
        function_name: str,
        qualifier: str | None,
        body: Any,
        headers: Any,
        response_headers: Any,
    ) -> bytes:
        fn = self.get_function(function_name, qualifier)
        module, function = fn.handler.split(".")
        source = zipfile.ZipFile(io.BytesIO(fn.code_bytes)).read(f"{module}.py")
        namespace: dict[str, Any] = {"__name__": f"lambda_{module}"}
        exec(compile(source, f"<lambda {fn.function_name}>/{module}.py", "exec"), namespace)
        try:
            return json.dumps(namespace[function](json.loads(body or "{}"), None)).encode()
        except Exception as exc:  # how Lambda reports a handler's exception
            response_headers["x-amz-function-error"] = "Unhandled"
            return json.dumps({"errorMessage": str(exc), "errorType": type(exc).__name__}).encode()

    def list_jobs(self: BatchBackend, job_queue_name: str | None, array_job_id: str | None, *args: Any,
                  **kwargs: Any) -> list[Job]:  # fmt: skip
        jobs = original_list_jobs(self, job_queue_name, array_job_id, *args, **kwargs)
        if array_job_id:
            return jobs
        return [j for j in jobs if "index" not in (j.array_properties if isinstance(j.array_properties, dict) else {})]

    original_list_jobs = BatchBackend.list_jobs
    BatchBackend.list_jobs = list_jobs  # type: ignore[method-assign]
    BatchSimpleBackend._mark_job_as_finished = finish  # type: ignore[method-assign]
    LambdaSimpleBackend.invoke = invoke  # type: ignore[method-assign]
    StateTaskServiceBatch._normalise_parameters = _to_api  # type: ignore[method-assign]
    StateTaskServiceBatch._normalise_response = _from_api  # type: ignore[method-assign]
    try:
        yield runtime
    finally:
        BatchBackend.list_jobs = original_list_jobs  # type: ignore[method-assign]
        BatchSimpleBackend._mark_job_as_finished = original_finish  # type: ignore[method-assign]
        LambdaSimpleBackend.invoke = original_invoke  # type: ignore[method-assign]
        StateTaskServiceBatch._normalise_parameters, StateTaskServiceBatch._normalise_response = original_translation
