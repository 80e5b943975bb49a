"""What the planner reads of the account: the stack, its template, change sets, image tags. `batchpipe.aws.deploy`
implements it with boto3; the tests with an in-memory stand-in."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from batchpipe.deploy.plan import ResourceChange


@dataclass(frozen=True)
class StackState:
    """A deployed stack: its status, parameter values as CloudFormation reports them, and outputs."""

    status: str
    parameters: dict[str, str] = field(default_factory=dict)
    outputs: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ChangeSetState:
    status: str  # CREATE_PENDING, CREATE_IN_PROGRESS, CREATE_COMPLETE or FAILED
    changes: tuple[ResourceChange, ...] = ()


class RemoteState(Protocol):
    def describe_stack(self, stack_name: str) -> StackState | None:
        """The stack, or None where there is none (or it is deleted)."""

    def deployed_template(self, stack_name: str) -> dict[str, Any]: ...

    def create_change_set(
        self, stack_name: str, name: str, template: dict[str, Any], parameters: Mapping[str, str]
    ) -> None: ...

    def describe_change_set(self, stack_name: str, name: str) -> ChangeSetState: ...

    def delete_change_set(self, stack_name: str, name: str) -> None: ...

    def image_exists(self, repository_uri: str, tag: str) -> bool: ...
