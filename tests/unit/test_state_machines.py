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

from batchpipe.aws import handlers
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
    if state["Resource"].startswith("arn:aws:states:::lambda:invoke"):
        payload = args["Payload"]
        if payload["action"] == "prepare":
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
            check_keys(params, BATCH_PARAMETERS, where, free=set())
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


@pytest.mark.parametrize("name", MACHINES)
def test_failed_shards_still_collate(name: str) -> None:
    machine = load(name)
    fan = [s for s in machine["States"].values() if s["Type"] == "Task" and "ArrayProperties" in s["Parameters"]]
    assert len(fan) == 1
    collate = fan[0]["Next"]
    assert [c["Next"] for c in fan[0]["Catch"]] == [collate]  # a failed child still leads to collate / stitch
    assert machine["States"][collate]["Parameters"]["ContainerOverrides"]["Command.$"].endswith("collateCommand")


def test_the_walk_catches_a_missing_path_and_a_camel_case_parameter() -> None:
    broken = load("montecarlo")
    broken["States"]["Plan"]["Parameters"]["Payload"]["planUri.$"] = "$.prepared.value.noSuchKey"
    with pytest.raises(AssertionError, match="noSuchKey does not exist"):
        walk(broken, "montecarlo")
    broken = load("montecarlo")
    params = broken["States"]["Preprocess"]["Parameters"]
    params["jobQueue.$"] = params.pop("JobQueue.$")
    with pytest.raises(AssertionError, match="'jobQueue' is not part of the API"):
        walk(broken, "montecarlo")
