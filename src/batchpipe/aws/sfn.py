"""Step Functions: start an execution, find a run's (by job name or ARN), list recent ones, read its history.

Only ExecutionDoesNotExist (or an ARN that is not an execution's) means "no such run"; any other refusal is one
BatchpipeError line saying what was being done."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from botocore.exceptions import ClientError

from batchpipe import catalog
from batchpipe.aws.clients import client, code, failed, pages
from batchpipe.aws.stack import StackOutputs
from batchpipe.errors import InputError

PIPELINES = tuple(catalog.PIPELINES)
ABSENT = ("ExecutionDoesNotExist", "InvalidArn")


def machine(outputs: StackOutputs, pipeline: str) -> str:
    return str(getattr(outputs, catalog.pipeline(pipeline).state_machine_output))


def start(machine_arn: str, name: str, payload: dict[str, Any], doing: str) -> str | None:
    """Start an execution named `name`: its ARN, or None when the machine already has an execution of that name."""
    try:
        arn: str = client("stepfunctions").start_execution(
            stateMachineArn=machine_arn, name=name, input=json.dumps(payload)
        )["executionArn"]
    except ClientError as exc:
        if code(exc) == "ExecutionAlreadyExists":
            return None
        raise failed(doing, exc) from None
    return arn


def describe(execution_arn: str, doing: str) -> dict[str, Any] | None:
    """DescribeExecution, None only when there is no such execution."""
    try:
        desc: dict[str, Any] = client("stepfunctions").describe_execution(executionArn=execution_arn)
    except ClientError as exc:
        if code(exc) in ABSENT:
            return None
        raise failed(doing, exc) from None
    return desc


def find(outputs: StackOutputs, run: str) -> tuple[str, dict[str, Any]]:
    """A run by execution ARN or job name: (pipeline, DescribeExecution)."""
    for pipeline in PIPELINES:
        own = machine(outputs, pipeline)
        arn = run if run.startswith("arn:") else own.replace(":stateMachine:", ":execution:") + f":{run}"
        desc = describe(arn, f"looking up run '{run}'")  # None: not this machine's, try the other
        if desc is not None and desc["stateMachineArn"] == own:
            return pipeline, desc
    raise InputError(f"no run '{run}' in this stack: `batchpipe status` lists the recent ones")


def job_of(execution: dict[str, Any]) -> str:
    """The job an execution runs (a resumed run's executions share their job's name and output)."""
    try:
        return str(json.loads(execution.get("input") or "{}").get("jobName") or execution["name"])
    except ValueError:
        return str(execution["name"])


def executions(outputs: StackOutputs, limit: int = 20) -> Iterator[tuple[str, dict[str, Any]]]:
    """Recent executions of both state machines, newest first: (pipeline, execution)."""
    sfn = client("stepfunctions")
    found: list[tuple[str, dict[str, Any]]] = []
    for pipeline in PIPELINES:
        listed = pages(sfn, "list_executions", f"listing the runs of the {pipeline} state machine",
                       stateMachineArn=machine(outputs, pipeline), PaginationConfig={"MaxItems": limit})  # fmt: skip
        found.extend((pipeline, e) for page in listed for e in page["executions"])
    found.sort(key=lambda pe: pe[1]["startDate"], reverse=True)
    yield from found[:limit]


def history(execution_arn: str) -> Iterator[dict[str, Any]]:
    """An execution's events, oldest first: GetExecutionHistory page by page (each call passes on nextToken)."""
    sfn = client("stepfunctions")
    for page in pages(sfn, "get_execution_history", f"reading the history of {execution_arn}",
                      executionArn=execution_arn):  # fmt: skip
        yield from page["events"]


def stop(execution_arn: str, cause: str) -> None:
    try:
        client("stepfunctions").stop_execution(executionArn=execution_arn, cause=cause)
    except ClientError as exc:
        raise failed(f"stopping {execution_arn}", exc) from None
