"""A deploy as a value: what happens to the stack, its parameters and resources, and which images are built."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any


class StackAction(Enum):
    CREATE = "create"
    UPDATE = "update"
    NOTHING = "nothing"


@dataclass(frozen=True)
class ParameterChange:
    key: str
    old: str | None  # None: not set before (a new stack, or the template's default)
    new: str

    def __str__(self) -> str:
        return f"parameter {self.key}: {self.old if self.old is not None else '(default)'} -> {self.new}"


@dataclass(frozen=True)
class ResourceChange:
    action: str  # Add, Modify, Remove (a change set's word)
    logical_id: str
    resource_type: str

    def __str__(self) -> str:
        return f"{self.action.lower()} {self.logical_id} ({self.resource_type})"


@dataclass(frozen=True)
class ImageBuild:
    """One pipeline image: built and pushed unless its tag is already in its repository. The repository is None
    when the stack that creates it does not exist yet: the image then follows the stack's creation."""

    name: str  # pricer, render
    dockerfile: str
    tag: str
    parameter: str  # the stack parameter that pins it: PricerImage, RenderImage
    repository_output: str  # the stack output naming its repository
    repository_uri: str | None
    in_ecr: bool

    def image(self, repository_uri: str | None = None) -> str:
        return f"{repository_uri or self.repository_uri}:{self.tag}"

    def __str__(self) -> str:
        if self.in_ecr:
            return f"{self.name}: {self.image()} is already in ECR"
        where = self.image() if self.repository_uri else f"tag {self.tag}, once the stack creates its repository"
        return f"build and push {self.name} ({self.dockerfile}): {where}"


@dataclass(frozen=True)
class DeployPlan:
    """`parameters` go with the stack action: all of them for an update (the ones not given kept at their deployed
    values, the images pinned); for a create, the given ones, the images being pinned by an update once built."""

    stack_name: str
    template: dict[str, Any]
    action: StackAction
    parameters: dict[str, str]
    parameter_changes: tuple[ParameterChange, ...]
    resource_changes: tuple[ResourceChange, ...]
    images: tuple[ImageBuild, ...]

    @property
    def to_build(self) -> tuple[ImageBuild, ...]:
        return tuple(i for i in self.images if not i.in_ecr)

    @property
    def changes_nothing(self) -> bool:
        return self.action is StackAction.NOTHING and not self.to_build


def describe(plan: DeployPlan) -> list[str]:
    """The plan as `--dry-run` prints it: one line a change."""
    if plan.changes_nothing:
        return [f"stack '{plan.stack_name}' is up to date: nothing would change"]
    lines = []
    if plan.action is StackAction.CREATE:
        lines.append(f"create stack '{plan.stack_name}' with {len(plan.template['Resources'])} resources")
    elif plan.action is StackAction.UPDATE:
        lines.append(f"update stack '{plan.stack_name}'")
    lines += [str(c) for c in plan.parameter_changes]
    lines += [str(c) for c in plan.resource_changes]
    lines += [str(i) for i in plan.images]
    if plan.action is StackAction.CREATE and not plan.images:
        lines.append(
            "no image is built (--no-build): the job definitions name REPOSITORY:latest, which nothing pushes, "
            "so `batchpipe run` refuses to start runs until `batchpipe deploy` builds the images"
        )
    return lines
