"""The batchpipe stack: read its outputs, create or update it with live events (as a deploy plan says: see
`batchpipe.aws.deploy`), delete it (and what it holds)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
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
    "on_demand_job_queue_arn": "OnDemandJobQueueArn",
}
TERMINAL_FAILED = {"CREATE_FAILED", "ROLLBACK_COMPLETE", "ROLLBACK_FAILED", "UPDATE_ROLLBACK_COMPLETE",
                   "UPDATE_ROLLBACK_FAILED", "DELETE_FAILED"}  # fmt: skip
CAPABILITIES = ["CAPABILITY_IAM"]  # the template names no IAM resource, so CAPABILITY_NAMED_IAM is not asked for
STACK_TAG = "batchpipe:stack"  # on the stack, so on every resource of it that takes tags (cost allocation)


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
    on_demand_job_queue_arn: str  # job_queue_arn is the Spot queue, for shards

    @property
    def job_queues(self) -> tuple[str, str]:
        """The Spot queue (shards) and the On-Demand queue (single-job stages, shards Spot could not place)."""
        return (self.job_queue_arn, self.on_demand_job_queue_arn)


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


def _events(stack_name: str, since: datetime, last: str | None) -> list[dict[str, Any]]:
    """The stack's events after event `last` (None: since `since`), oldest first.

    DescribeStackEvents answers newest first, so paging stops at the first event already seen (or older than
    `since`): a poll reads one page while a deploy adds fewer than a page of events, not the stack's whole history.
    """
    pages = client("cloudformation").get_paginator("describe_stack_events").paginate(StackName=stack_name)
    new: list[dict[str, Any]] = []
    for page in pages:
        for event in page["StackEvents"]:
            if event["EventId"] == last or event["Timestamp"] < since:
                return new[::-1]
            new.append(event)
    return new[::-1]


def _wait(stack_name: str, since: datetime, on_event: Callable[[dict[str, Any]], None], poll: float) -> str:
    last: str | None = None
    while True:
        try:
            for event in _events(stack_name, since, last):
                on_event(event)
                last = event["EventId"]
        except ClientError as exc:
            if "does not exist" not in str(exc):
                raise
            return "DELETE_COMPLETE"  # a deleted stack is no longer found by name
        stack = describe(stack_name)
        status = stack["StackStatus"] if stack else "DELETE_COMPLETE"
        if not status.endswith("_IN_PROGRESS"):
            return status
        time.sleep(poll)


def apply(
    stack_name: str,
    template: dict[str, Any],
    parameters: Mapping[str, str],
    create: bool,
    on_event: Callable[[dict[str, Any]], None],
    poll: float = 2.0,
) -> str:
    """Create or update the stack with exactly these parameters and wait. Returns CREATED, UPDATED or UNCHANGED
    (CloudFormation found nothing to update)."""
    cfn = client("cloudformation")
    body = json.dumps(template, separators=(",", ":"))
    params = [{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()]
    since = datetime.now(tz=datetime.now().astimezone().tzinfo)
    try:
        tags = [{"Key": STACK_TAG, "Value": stack_name}]
        if create:
            cfn.create_stack(StackName=stack_name, TemplateBody=body, Parameters=params, Capabilities=CAPABILITIES,
                             OnFailure="ROLLBACK", Tags=tags)  # fmt: skip
        else:
            cfn.update_stack(StackName=stack_name, TemplateBody=body, Parameters=params, Capabilities=CAPABILITIES,
                             Tags=tags)  # fmt: skip
    except ClientError as exc:
        if "No updates are to be performed" in str(exc):
            return "UNCHANGED"
        raise BatchpipeError(f"while deploying stack '{stack_name}': {exc}") from None
    status = _wait(stack_name, since, on_event, poll)
    if status in TERMINAL_FAILED or not status.endswith("_COMPLETE"):
        raise BatchpipeError(f"stack '{stack_name}' ended {status}: see the events above")
    return "CREATED" if create else "UPDATED"


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


def retained_revisions(definition_arn: str) -> list[str]:
    """The ACTIVE revisions of a job definition other than this one: what updates kept (SkipDeregisterOnUpdate)."""
    name = definition_arn.rsplit("/", 1)[-1].rsplit(":", 1)[0]
    pages = client("batch").get_paginator("describe_job_definitions").paginate(jobDefinitionName=name, status="ACTIVE")
    return [d["jobDefinitionArn"] for page in pages for d in page["jobDefinitions"]
            if d["jobDefinitionArn"] != definition_arn]  # fmt: skip


def destroy(stack_name: str, on_event: Callable[[dict[str, Any]], None], poll: float = 2.0) -> None:
    """Empty the bucket and the repositories, deregister the job definition revisions updates kept (the stack's
    deletion deregisters its current ones), delete the stack, wait."""
    stack = describe(stack_name)
    if stack is None:
        raise InputError(f"stack '{stack_name}' not found in {region()}: nothing to destroy")
    found = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
    if found.get("BucketName"):
        empty_bucket(found["BucketName"])
    for key in ("PricerRepositoryUri", "RenderRepositoryUri"):
        if found.get(key):
            empty_repository(found[key])
    try:
        for key in ("PricerJobDefinitionArn", "RenderJobDefinitionArn"):
            for arn in retained_revisions(found[key]) if found.get(key) else []:
                client("batch").deregister_job_definition(jobDefinition=arn)
    except ClientError as exc:
        raise BatchpipeError(f"while deregistering the job definitions of stack '{stack_name}': {exc}") from None
    since = datetime.now(tz=datetime.now().astimezone().tzinfo)
    try:
        client("cloudformation").delete_stack(StackName=stack_name)
    except ClientError as exc:
        raise BatchpipeError(f"while deleting stack '{stack_name}': {exc}") from None
    status = _wait(stack_name, since, on_event, poll)
    if status != "DELETE_COMPLETE":
        raise BatchpipeError(f"stack '{stack_name}' ended {status}: see the events above")
