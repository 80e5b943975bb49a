"""The batchpipe stack: read its outputs, create or update it with live events, delete it (and what it holds)."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from batchpipe.aws.clients import client, region
from batchpipe.errors import BatchpipeError, InputError

OUTPUTS = {
    "bucket": "BucketName",
    "job_queue_arn": "JobQueueArn",
    "pricer_job_definition_arn": "PricerJobDefinitionArn",
    "render_job_definition_arn": "RenderJobDefinitionArn",
    "montecarlo_state_machine_arn": "MonteCarloStateMachineArn",
    "render_state_machine_arn": "RenderStateMachineArn",
    "pricer_repository_uri": "PricerRepositoryUri",
    "render_repository_uri": "RenderRepositoryUri",
}
TERMINAL_FAILED = {"CREATE_FAILED", "ROLLBACK_COMPLETE", "ROLLBACK_FAILED", "UPDATE_ROLLBACK_COMPLETE",
                   "UPDATE_ROLLBACK_FAILED", "DELETE_FAILED"}  # fmt: skip


@dataclass(frozen=True)
class StackOutputs:
    bucket: str
    job_queue_arn: str
    pricer_job_definition_arn: str
    render_job_definition_arn: str
    montecarlo_state_machine_arn: str
    render_state_machine_arn: str
    pricer_repository_uri: str
    render_repository_uri: str


def describe(stack_name: str) -> dict[str, Any] | None:
    try:
        stacks = client("cloudformation").describe_stacks(StackName=stack_name)["Stacks"]
    except ClientError as exc:
        if "does not exist" in str(exc):
            return None
        raise
    return stacks[0] if stacks and stacks[0]["StackStatus"] != "DELETE_COMPLETE" else None


def outputs(stack_name: str) -> StackOutputs:
    """The stack's outputs, or a clear error saying to deploy."""
    stack = describe(stack_name)
    if stack is None:
        raise InputError(f"stack '{stack_name}' not found in {region()}: run `batchpipe deploy`")
    found = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
    missing = [key for key in OUTPUTS.values() if not found.get(key)]
    if missing:
        raise InputError(
            f"stack '{stack_name}' is {stack['StackStatus']} and lacks outputs {', '.join(missing)}: "
            "run `batchpipe deploy`"
        )
    return StackOutputs(**{field: found[key] for field, key in OUTPUTS.items()})


def _events(stack_name: str, since: datetime) -> Iterator[dict[str, Any]]:
    pages = client("cloudformation").get_paginator("describe_stack_events").paginate(StackName=stack_name)
    new = [e for page in pages for e in page["StackEvents"] if e["Timestamp"] >= since]
    yield from sorted(new, key=lambda e: e["Timestamp"])


def _wait(stack_name: str, since: datetime, on_event: Callable[[dict[str, Any]], None], poll: float) -> str:
    seen: set[str] = set()
    while True:
        try:
            for event in _events(stack_name, since):
                if event["EventId"] not in seen:
                    seen.add(event["EventId"])
                    on_event(event)
        except ClientError as exc:
            if "does not exist" not in str(exc):
                raise
            return "DELETE_COMPLETE"  # a deleted stack is no longer found by name
        stack = describe(stack_name)
        status = stack["StackStatus"] if stack else "DELETE_COMPLETE"
        if not status.endswith("_IN_PROGRESS"):
            return status
        time.sleep(poll)


def _same(stack_name: str, existing: dict[str, Any], template: dict[str, Any], parameters: dict[str, str]) -> bool:
    """The deployed template and the given parameters are what we would send: nothing to do."""
    deployed = client("cloudformation").get_template(StackName=stack_name)["TemplateBody"]
    deployed = json.loads(deployed) if isinstance(deployed, str) else deployed
    current = {p["ParameterKey"]: _values(p.get("ParameterValue")) for p in existing.get("Parameters", [])}
    return bool(deployed == template and all(current.get(k) == _values(v) for k, v in parameters.items()))


def _previous(existing: dict[str, Any], template: dict[str, Any], given: dict[str, str]) -> list[dict[str, Any]]:
    """An update keeps every parameter not given now at its deployed value (CloudFormation would reset it to the
    default). Values are passed explicitly rather than as UsePreviousValue, which moto cannot resolve."""
    declared = template.get("Parameters", {})
    kept = []
    for p in existing.get("Parameters", []):
        key = p["ParameterKey"]
        if key in declared and key not in given:
            value = p.get("ParameterValue", "")
            if declared[key].get("Type") == "CommaDelimitedList":
                value = ",".join(_values(value))
            kept.append({"ParameterKey": key, "ParameterValue": value})
    return kept


def _values(value: str | None) -> list[str]:
    """A parameter's value as items: "a,b" and a list rendered as "['a', 'b']" (moto's way) compare equal."""
    return re.findall(r"[^\s,\[\]'\"]+", value or "")


def deploy(
    stack_name: str,
    template: dict[str, Any],
    parameters: dict[str, str],
    on_event: Callable[[dict[str, Any]], None],
    poll: float = 2.0,
) -> str:
    """Create or update the stack and wait. Returns CREATED, UPDATED or UNCHANGED."""
    cfn = client("cloudformation")
    body = json.dumps(template, separators=(",", ":"))
    existing = describe(stack_name)
    params: list[dict[str, Any]] = [{"ParameterKey": k, "ParameterValue": v} for k, v in sorted(parameters.items())]
    if existing is not None:
        params += _previous(existing, template, parameters)
    if existing is not None and existing["StackStatus"] == "ROLLBACK_COMPLETE":
        raise BatchpipeError(
            f"stack '{stack_name}' failed to create earlier (ROLLBACK_COMPLETE)",
            "run `batchpipe destroy` and deploy again",
        )
    if existing is not None and _same(stack_name, existing, template, parameters):
        return "UNCHANGED"
    since = datetime.now(tz=datetime.now().astimezone().tzinfo)
    capabilities = ["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM"]
    try:
        if existing is None:
            cfn.create_stack(StackName=stack_name, TemplateBody=body, Parameters=params, Capabilities=capabilities,
                             OnFailure="ROLLBACK", Tags=[{"Key": "batchpipe", "Value": stack_name}])  # fmt: skip
            action = "CREATED"
        else:
            cfn.update_stack(StackName=stack_name, TemplateBody=body, Parameters=params, Capabilities=capabilities)
            action = "UPDATED"
    except ClientError as exc:
        if "No updates are to be performed" in str(exc):
            return "UNCHANGED"
        raise BatchpipeError(f"while deploying stack '{stack_name}': {exc}") from None
    status = _wait(stack_name, since, on_event, poll)
    if status in TERMINAL_FAILED or not status.endswith("_COMPLETE"):
        raise BatchpipeError(f"stack '{stack_name}' ended {status}: see the events above")
    return action


def parameter(stack_name: str, key: str) -> str | None:
    stack = describe(stack_name)
    for p in (stack or {}).get("Parameters", []):
        if p["ParameterKey"] == key:
            return str(p.get("ParameterValue", ""))
    return None


def planned_changes(stack_name: str, template: dict[str, Any], parameters: dict[str, str]) -> list[str]:
    """What a deploy would change, read from a change set that is then deleted (--dry-run)."""
    cfn = client("cloudformation")
    existing = describe(stack_name)
    if existing is None:
        return [f"create stack '{stack_name}' with {len(template['Resources'])} resources"]
    name = f"batchpipe-dry-run-{int(time.time())}"
    params: list[dict[str, Any]] = [{"ParameterKey": k, "ParameterValue": v} for k, v in sorted(parameters.items())]
    params += _previous(existing, template, parameters)
    cfn.create_change_set(StackName=stack_name, ChangeSetName=name, ChangeSetType="UPDATE", Parameters=params,
                          TemplateBody=json.dumps(template, separators=(",", ":")),
                          Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM"])  # fmt: skip
    try:
        for _ in range(60):
            desc = cfn.describe_change_set(StackName=stack_name, ChangeSetName=name)
            if desc["Status"] in ("CREATE_COMPLETE", "FAILED"):
                break
            time.sleep(1)
        changes = [
            f"{c['ResourceChange']['Action'].lower()} {c['ResourceChange']['LogicalResourceId']} "
            f"({c['ResourceChange']['ResourceType']})"
            for c in desc.get("Changes", [])
        ]
    finally:
        cfn.delete_change_set(StackName=stack_name, ChangeSetName=name)
    return changes


def empty_bucket(bucket: str) -> int:
    """Delete every object version and delete marker (the bucket is versioned). Returns how many."""
    s3 = client("s3")
    removed = 0
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
        batch = [{"Key": v["Key"], "VersionId": v["VersionId"]}
                 for v in page.get("Versions", []) + page.get("DeleteMarkers", [])]  # fmt: skip
        for start in range(0, len(batch), 1000):
            s3.delete_objects(Bucket=bucket, Delete={"Objects": batch[start : start + 1000], "Quiet": True})
            removed += len(batch[start : start + 1000])
    return removed


def empty_repository(repository_uri: str) -> int:
    ecr = client("ecr")
    name = repository_uri.split("/", 1)[1]
    ids = [i for page in ecr.get_paginator("list_images").paginate(repositoryName=name) for i in page["imageIds"]]
    for start in range(0, len(ids), 100):
        ecr.batch_delete_image(repositoryName=name, imageIds=ids[start : start + 100])
    return len(ids)


def destroy(stack_name: str, on_event: Callable[[dict[str, Any]], None], poll: float = 2.0) -> None:
    """Empty the bucket and the repositories, delete the stack, wait."""
    stack = describe(stack_name)
    if stack is None:
        raise InputError(f"stack '{stack_name}' not found in {region()}: nothing to destroy")
    found = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
    if found.get("BucketName"):
        empty_bucket(found["BucketName"])
    for key in ("PricerRepositoryUri", "RenderRepositoryUri"):
        if found.get(key):
            empty_repository(found[key])
    since = datetime.now(tz=datetime.now().astimezone().tzinfo)
    try:
        client("cloudformation").delete_stack(StackName=stack_name)
    except ClientError as exc:
        raise BatchpipeError(f"while deleting stack '{stack_name}': {exc}") from None
    status = _wait(stack_name, since, on_event, poll)
    if status != "DELETE_COMPLETE":
        raise BatchpipeError(f"stack '{stack_name}' ended {status}: see the events above")
