"""From what is deployed and what is wanted to a `DeployPlan`, reading the account only through `RemoteState`."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from typing import Any

from batchpipe.deploy.plan import DeployPlan, ImageBuild, ParameterChange, ResourceChange, StackAction
from batchpipe.deploy.remote import RemoteState, StackState
from batchpipe.errors import BatchpipeError

# pipeline image -> (the parameter pinning it, the output naming its repository)
IMAGE_SLOTS = {"pricer": ("PricerImage", "PricerRepositoryUri"), "render": ("RenderImage", "RenderRepositoryUri")}


def values(value: str | None) -> list[str]:
    """A parameter's value as items: "a,b" and a list rendered as "['a', 'b']" (moto's way) compare equal."""
    return re.findall(r"[^\s,\[\]'\"]+", value or "")


def kept(existing: StackState, template: dict[str, Any], given: Mapping[str, str]) -> dict[str, str]:
    """An update keeps every parameter not given now at its deployed value (CloudFormation would reset it to the
    default). Values are passed explicitly rather than as UsePreviousValue, which moto cannot resolve."""
    declared = template.get("Parameters", {})
    found = {}
    for key, value in existing.parameters.items():
        if key in declared and key not in given:
            found[key] = ",".join(values(value)) if declared[key].get("Type") == "CommaDelimitedList" else value
    return found


def plan_deploy(
    state: RemoteState,
    stack_name: str,
    template: dict[str, Any],
    given: Mapping[str, str],
    images: Mapping[str, tuple[str, str]] | None,
    read_changes: bool = True,
    sleep: Callable[[float], None] = time.sleep,
) -> DeployPlan:
    """The plan for deploying `template` with the `given` parameters and, unless `images` is None (--no-build), the
    images name -> (Dockerfile, tag). `read_changes`: list an update's resource changes from a change set (deleted
    again), as --dry-run shows them."""
    existing = state.describe_stack(stack_name)
    if existing is not None and existing.status == "ROLLBACK_COMPLETE":
        raise BatchpipeError(
            f"stack '{stack_name}' failed to create earlier (ROLLBACK_COMPLETE)",
            "run `batchpipe destroy` and deploy again",
        )
    builds = []
    for name, (dockerfile, tag) in (images or {}).items():
        parameter, output = IMAGE_SLOTS[name]
        uri = existing.outputs.get(output) if existing is not None else None
        if existing is not None and not uri:
            raise BatchpipeError(f"stack '{stack_name}' is {existing.status} and lacks output {output}",
                                 "wait for it to settle, or deploy with --no-build")  # fmt: skip
        builds.append(ImageBuild(name, dockerfile, tag, parameter, output, uri, uri is not None and
                                 state.image_exists(uri, tag)))  # fmt: skip
    if existing is None:
        new = tuple(ParameterChange(k, None, v) for k, v in sorted(given.items()))
        return DeployPlan(stack_name, template, StackAction.CREATE, dict(sorted(given.items())), new, (), tuple(builds))
    wanted = dict(given) | {b.parameter: b.image() for b in builds}
    changed = tuple(
        ParameterChange(k, existing.parameters.get(k), v)
        for k, v in sorted(wanted.items())
        if values(existing.parameters.get(k)) != values(v)
    )
    parameters = dict(sorted(wanted.items())) | kept(existing, template, wanted)
    if not changed and state.deployed_template(stack_name) == template:
        return DeployPlan(stack_name, template, StackAction.NOTHING, parameters, (), (), tuple(builds))
    resources = _resource_changes(state, stack_name, template, parameters, sleep) if read_changes else ()
    return DeployPlan(stack_name, template, StackAction.UPDATE, parameters, changed, resources, tuple(builds))


def _resource_changes(state: RemoteState, stack_name: str, template: dict[str, Any], parameters: Mapping[str, str],
                      sleep: Callable[[float], None]) -> tuple[ResourceChange, ...]:  # fmt: skip
    name = f"batchpipe-dry-run-{int(time.time())}"
    state.create_change_set(stack_name, name, template, parameters)
    try:
        for _ in range(60):
            found = state.describe_change_set(stack_name, name)
            if found.status in ("CREATE_COMPLETE", "FAILED"):
                break
            sleep(1)
        return found.changes
    finally:
        state.delete_change_set(stack_name, name)
