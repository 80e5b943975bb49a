"""The ASL files: statelint, and what no validator checks.

A small symbolic walk runs every path through each state machine on a sample of the real data (the workshop's
start-execution input, the real Lambda handler's outputs, a Batch job's description, an error object): each JSONPath
a state reads must exist in that state's input, and Batch and Lambda task parameters must be the PascalCase names
of their APIs (Step Functions passes unknown lower-case keys through to nothing, silently).
"""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from batchpipe.aws import handlers, stranded
from batchpipe.aws.template import template_dir

MACHINES = {name: template_dir() / f"{name}.asl.json" for name in ("montecarlo", "render")}
ARNS = {
    "jobDefinitionArn": "arn:aws:batch:us-east-1:123456789012:job-definition/d:1",
    "jobQueueArn": "arn:aws:batch:us-east-1:123456789012:job-queue/q",
}
INPUTS = {
    "montecarlo": {"jobName": "MCAutocallable", "inputUri": "s3://b/portfolio.json", "outputUri": "s3://b/MC", **ARNS},
    "render": {
        "jobName": "Pottery",
        "inputUri": "s3://b/p.blend",
        "outputUri": "s3://b/P",
        "framesPerJob": "1",
        **ARNS,
    },
}
BATCH_PARAMETERS = {"JobName", "JobQueue", "JobDefinition", "ArrayProperties", "ContainerOverrides", "Parameters",
                    "RetryStrategy", "Timeout", "DependsOn", "Tags", "PropagateTags", "Size", "Command",
                    "Environment", "ResourceRequirements"}  # fmt: skip
LAMBDA_PARAMETERS = {"FunctionName", "Payload", "Qualifier", "InvocationType"}
PATH = re.compile(r"^\$(\.[A-Za-z0-9_]+)*$")


def load(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(MACHINES[name].read_text())
    return doc


@pytest.mark.parametrize("name", MACHINES)
def test_statelint_passes(name: str) -> None:
    statelint = Path(sys.executable).parent / "statelint"
    run = subprocess.run([str(statelint), str(MACHINES[name])], capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stdout + run.stderr


def get(doc: Any, path: str, where: str) -> Any:
    assert PATH.match(path), f"{where}: unsupported or malformed JSONPath {path!r}"
    for part in path.split(".")[1:]:
        assert isinstance(doc, dict) and part in doc, f"{where}: {path} does not exist in the state's input"
        doc = doc[part]
    return doc


def put(doc: dict[str, Any], path: str | None, value: Any) -> Any:
    if path is None:
        return doc
    if path == "$":
        return value
    out = copy.deepcopy(doc)
    node = out
    parts = path.split(".")[1:]
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value
    return out


def resolve(template: Any, data: Any, where: str) -> Any:
    """Parameters / ResultSelector: keys ending in .$ take a JSONPath or an intrinsic function."""
    if isinstance(template, dict):
        out = {}
        for key, value in template.items():
            if key.endswith(".$"):
                if value.startswith("States.Format("):
                    args = re.findall(r"\$(?:\.[A-Za-z0-9_]+)+|\$(?=[,)])", value)
                    out[key[:-2]] = "-".join(str(get(data, a, where)) for a in args)
                else:
                    out[key[:-2]] = get(data, value, where)
            else:
                out[key] = resolve(value, data, where)
        return out
    return template


def check_keys(params: dict[str, Any], allowed: set[str], where: str, free: set[str]) -> None:
    for key, value in params.items():
        bare = key.removesuffix(".$")
        assert bare in allowed, f"{where}: parameter {bare!r} is not part of the API (PascalCase expected)"
        if isinstance(value, dict) and bare not in free:
            check_keys(value, allowed, where, free)


def task_result(state: dict[str, Any], args: dict[str, Any], pipeline: str) -> Any:
    if state["Resource"] == "arn:${AWS::Partition}:states:::lambda:invoke":
        payload = args["Payload"]
        if args["FunctionName"] == "${StrandedFunctionArn}":
            value = stranded.handler(payload, None)  # the error is not a capacity cancel: size 0
        elif payload["action"] == "prepare":
            value = handlers.handler(payload, None)
        elif payload["action"] == "plan":
            value = {"shards": 3}
        else:
            value = {"status": "SUCCEEDED", "resultUri": payload["resultUri"], "missing": [], "missingCount": 0}
        return {"Payload": value, "StatusCode": 200}
    # what DescribeJobs returns for the finished job, as .sync hands it over
    return {"JobId": "j-1", "JobName": args["JobName"], "Status": "SUCCEEDED", "JobQueue": args["JobQueue"]}


def walk(machine: dict[str, Any], pipeline: str) -> list[str]:
    """Every path from StartAt to an end, checking each state's reads; returns the paths' state names."""
    finished: list[str] = []
    stack: list[tuple[str, Any, list[str]]] = [(machine["StartAt"], copy.deepcopy(INPUTS[pipeline]), [])]
    while stack:
        name, data, trail = stack.pop()
        assert name not in trail, f"loop through {name}"
        trail = [*trail, name]
        state = machine["States"][name]
        where = f"{pipeline}.{name}"
        if state["Type"] == "Choice":
            for choice in state["Choices"]:
                get(data, choice["Variable"], where)
                stack.append((choice["Next"], data, trail))
            stack.append((state["Default"], data, trail))
            continue
        if state["Type"] in ("Succeed", "Fail"):
            if "OutputPath" in state:
                get(data, state["OutputPath"], where)
            finished.append(" > ".join(trail))
            continue
        assert state["Type"] == "Task", f"{where}: unexpected state type"
        params = state["Parameters"]
        if "batch:submitJob" in state["Resource"]:
            check_keys(params, BATCH_PARAMETERS, where, free={"Tags"})
        else:
            check_keys(params, LAMBDA_PARAMETERS, where, free={"Payload"})
        args = resolve(params, data, where)
        result = task_result(state, args, pipeline)
        if "ResultSelector" in state:
            result = resolve(state["ResultSelector"], result, where + ".ResultSelector")
        stack.append((state["Next"], put(data, state.get("ResultPath", "$"), result), trail))
        for catch in state.get("Catch", []):
            error = {"Error": "States.TaskFailed", "Cause": "boom"}
            stack.append((catch["Next"], put(data, catch.get("ResultPath", "$"), error), trail))
    return finished


@pytest.mark.parametrize("name", MACHINES)
def test_every_path_reads_only_what_exists_and_uses_api_names(name: str) -> None:
    paths = walk(load(name), name)
    assert any(p.endswith("Succeeded") for p in paths)
    assert any("Array" in p for p in paths) and any("Single" in p for p in paths)


SHARD_STAGES = {"montecarlo": ("Price", "Collate"), "render": ("Render", "Stitch")}
BATCH_API_ERRORS = {"Batch.AWSBatchException", "Batch.ServerException", "Batch.TooManyRequestsException"}


def batch_tasks(machine: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {k: s for k, s in machine["States"].items() if "batch:submitJob" in s.get("Resource", "")}


@pytest.mark.parametrize("name", MACHINES)
def test_failed_shards_still_collate_after_the_on_demand_fallback(name: str) -> None:
    machine = load(name)
    states = machine["States"]
    shard, last = SHARD_STAGES[name]
    assert states[last]["Parameters"]["ContainerOverrides"]["Command.$"].endswith("collateCommand")
    for spot in (f"{shard}Array", f"{shard}Single"):  # a failed fan-out asks which shards Spot could not place
        assert states[spot]["Next"] == last and [c["Next"] for c in states[spot]["Catch"]] == ["Stranded"]
    assert states["Stranded"]["Parameters"]["FunctionName"] == "${StrandedFunctionArn}"
    assert [c["Next"] for c in states["Stranded"]["Catch"]] == [last]
    fallback = states[states["Stranded"]["Next"]]
    assert [(c["NumericEquals"], c["Next"]) for c in fallback["Choices"]] == [(0, last), (1, f"{shard}OnDemandSingle")]
    assert fallback["Default"] == f"{shard}OnDemandArray"
    for again in (f"{shard}OnDemandArray", f"{shard}OnDemandSingle"):  # those shards once more, then collate
        state = states[again]
        assert state["Next"] == last and [c["Next"] for c in state["Catch"]] == [last]
        assert state["Parameters"]["ContainerOverrides"] == {"Command.$": "$.stranded.value.command"}
    assert states[f"{shard}OnDemandArray"]["Parameters"]["ArrayProperties"] == {"Size.$": "$.stranded.value.size"}


@pytest.mark.parametrize("name", MACHINES)
def test_shards_go_to_the_spot_queue_and_everything_else_to_on_demand(name: str) -> None:
    shard, _ = SHARD_STAGES[name]
    for key, state in batch_tasks(load(name)).items():
        queue = state["Parameters"].get("JobQueue.$") or state["Parameters"]["JobQueue"]
        on_spot = key in (f"{shard}Array", f"{shard}Single")
        assert queue == ("$.jobQueueArn" if on_spot else "${OnDemandJobQueueArn}"), key


@pytest.mark.parametrize("name", MACHINES)
def test_batch_tasks_retry_the_api_not_the_jobs(name: str) -> None:
    tasks = batch_tasks(load(name))
    assert len(tasks) == 6
    for key, state in tasks.items():
        [retry] = state["Retry"]  # a throttled or failed SubmitJob / DescribeJobs call, never a failed job
        assert set(retry["ErrorEquals"]) == BATCH_API_ERRORS, key
        assert retry["MaxAttempts"] >= 5 and retry["BackoffRate"] >= 2 and retry["JitterStrategy"] == "FULL"


@pytest.mark.parametrize("name", MACHINES)
def test_every_job_is_tagged_for_cost_allocation(name: str) -> None:
    for key, state in batch_tasks(load(name)).items():
        params = state["Parameters"]
        assert params["PropagateTags"] is True, key
        assert params["Tags"] == {"batchpipe:run.$": "$.jobName", "batchpipe:pipeline": name,
                                  "batchpipe:stack": "${AWS::StackName}"}, key  # fmt: skip


@pytest.mark.parametrize("name", MACHINES)
def test_service_arns_follow_the_partition(name: str) -> None:
    text = MACHINES[name].read_text()
    assert "arn:aws:" not in text  # China (aws-cn) and GovCloud (aws-us-gov) have their own
    resources = {s["Resource"] for s in load(name)["States"].values() if "Resource" in s}
    assert resources == {
        "arn:${AWS::Partition}:states:::lambda:invoke",
        "arn:${AWS::Partition}:states:::batch:submitJob.sync",
    }


def test_the_walk_catches_a_missing_path_and_a_camel_case_parameter() -> None:
    broken = load("montecarlo")
    broken["States"]["Plan"]["Parameters"]["Payload"]["planUri.$"] = "$.prepared.value.noSuchKey"
    with pytest.raises(AssertionError, match="noSuchKey does not exist"):
        walk(broken, "montecarlo")
    broken = load("montecarlo")
    params = broken["States"]["PriceArray"]["Parameters"]
    params["jobQueue.$"] = params.pop("JobQueue.$")
    with pytest.raises(AssertionError, match="'jobQueue' is not part of the API"):
        walk(broken, "montecarlo")
