"""The deploy plan against AWS: `BotoRemoteState` (what the planner reads, through boto3), `plan` (the planner
wired to it), `execute` (carry a plan out: the stack, the images, the images' pins) and `missing_images` (what a
deploy leaves its job definitions pointing at that ECR lacks)."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from batchpipe.aws import images, stack
from batchpipe.aws.clients import client
from batchpipe.deploy.plan import DeployPlan, ResourceChange, StackAction
from batchpipe.deploy.planner import plan_deploy
from batchpipe.deploy.remote import ChangeSetState, StackState


class BotoRemoteState:
    """`RemoteState` over CloudFormation and ECR."""

    def describe_stack(self, stack_name: str) -> StackState | None:
        found = stack.describe(stack_name)
        if found is None:
            return None
        return StackState(
            found["StackStatus"],
            {p["ParameterKey"]: str(p.get("ParameterValue", "")) for p in found.get("Parameters", [])},
            {o["OutputKey"]: o["OutputValue"] for o in found.get("Outputs", [])},
        )

    def deployed_template(self, stack_name: str) -> dict[str, Any]:
        body = client("cloudformation").get_template(StackName=stack_name)["TemplateBody"]
        return json.loads(body) if isinstance(body, str) else dict(body)

    def create_change_set(
        self, stack_name: str, name: str, template: dict[str, Any], parameters: Mapping[str, str]
    ) -> None:
        client("cloudformation").create_change_set(
            StackName=stack_name, ChangeSetName=name, ChangeSetType="UPDATE",
            Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
            TemplateBody=json.dumps(template, separators=(",", ":")), Capabilities=stack.CAPABILITIES,
        )  # fmt: skip

    def describe_change_set(self, stack_name: str, name: str) -> ChangeSetState:
        found = client("cloudformation").describe_change_set(StackName=stack_name, ChangeSetName=name)
        changes = [c["ResourceChange"] for c in found.get("Changes", [])]
        return ChangeSetState(
            found["Status"],
            tuple(ResourceChange(c["Action"], c["LogicalResourceId"], c["ResourceType"]) for c in changes),
        )

    def delete_change_set(self, stack_name: str, name: str) -> None:
        client("cloudformation").delete_change_set(StackName=stack_name, ChangeSetName=name)

    def image_exists(self, repository_uri: str, tag: str) -> bool:
        return images.image_exists(repository_uri, tag)


def builder(choice: str | None = None) -> images.Builder:
    """The image builder a deploy would use (`choice`, else docker, podman or buildah, the first on PATH): a
    one-line InputError naming the choices and --no-build when there is none."""
    return images.builder(choice)


def plan(stack_name: str, template: dict[str, Any], parameters: Mapping[str, str], build: bool,
         image_tag: str | None = None, read_changes: bool = False) -> DeployPlan:  # fmt: skip
    """The plan for this account; with `build`, the images from their build contexts (see `images.contexts`)."""
    wanted = images.wanted(image_tag) if build else None
    return plan_deploy(BotoRemoteState(), stack_name, template, parameters, wanted, read_changes=read_changes)


def execute(plan: DeployPlan, using: images.Builder | None, on_event: Callable[[dict[str, Any]], None],
            say: Callable[[str], None]) -> str:  # fmt: skip
    """Carry the plan out. A new stack is created first (it creates the repositories), then the images are built
    and pushed, then an update pins the job definitions to them. An existing stack gets its images first, then
    one update with them pinned. Returns CREATED, UPDATED or UNCHANGED."""
    result = "UNCHANGED"
    if plan.action is StackAction.CREATE:
        result = stack.apply(plan.stack_name, plan.template, plan.parameters, True, on_event)
    repositories: dict[str, str] = {}
    if any(i.repository_uri is None for i in plan.images):
        found = stack.describe(plan.stack_name) or {}
        repositories = {o["OutputKey"]: o["OutputValue"] for o in found.get("Outputs", [])}
    for image in plan.images:
        if image.in_ecr:
            say(str(image))
    builds = [(i.name, i.image(i.repository_uri or repositories[i.repository_output])) for i in plan.to_build]
    if builds:
        if using is None:
            raise ValueError("a plan with images to build needs a builder")
        images.build_and_push(builds, using, say)
    pins = {i.parameter: i.image(i.repository_uri or repositories[i.repository_output]) for i in plan.images}
    if plan.action is StackAction.UPDATE:
        result = stack.apply(plan.stack_name, plan.template, plan.parameters, False, on_event)
    elif plan.action is StackAction.CREATE and pins:
        stack.apply(plan.stack_name, plan.template, plan.parameters | pins, False, on_event)
    return result


def missing_images(stack_name: str) -> list[str]:
    """The images the stack's job definitions name that ECR lacks: after a --no-build deploy on a fresh account,
    REPOSITORY:latest of both, which nothing pushes (every job would fail with CannotPullContainerError)."""
    found = stack.describe(stack_name) or {}
    outputs = {o["OutputKey"]: o["OutputValue"] for o in found.get("Outputs", [])}
    definitions = [outputs[key] for key in ("PricerJobDefinitionArn", "RenderJobDefinitionArn") if outputs.get(key)]
    return [image for arn in definitions if (image := images.missing_image(arn)) is not None]
