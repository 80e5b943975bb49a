"""An account in memory for the deploy planner (after chalice's InMemoryRemoteState): stacks with their templates,
parameters and outputs, the image tags in each repository, and the change sets made and deleted."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from batchpipe.deploy.plan import ResourceChange
from batchpipe.deploy.remote import ChangeSetState, StackState

REPOSITORIES = {
    "PricerRepositoryUri": "123456789012.dkr.ecr.us-east-1.amazonaws.com/batchpipe-pricer",
    "RenderRepositoryUri": "123456789012.dkr.ecr.us-east-1.amazonaws.com/batchpipe-render",
}


@dataclass
class InMemoryRemoteState:
    stacks: dict[str, tuple[StackState, dict[str, Any]]] = field(default_factory=dict)
    tags: set[tuple[str, str]] = field(default_factory=set)  # (repository URI, tag)
    changes: tuple[ResourceChange, ...] = ()  # what any change set lists
    change_sets: dict[tuple[str, str], dict[str, str]] = field(default_factory=dict)  # live ones: their parameters
    made: list[str] = field(default_factory=list)  # every change set created, by name

    def deployed(self, stack_name: str, template: dict[str, Any], parameters: Mapping[str, str],
                 status: str = "CREATE_COMPLETE") -> None:  # fmt: skip
        """A stack as a deploy leaves it: the template's defaults where no value was given, the repositories made."""
        values = {k: str(p.get("Default", "")) for k, p in template.get("Parameters", {}).items()} | dict(parameters)
        self.stacks[stack_name] = (StackState(status, values, dict(REPOSITORIES)), template)

    def describe_stack(self, stack_name: str) -> StackState | None:
        found = self.stacks.get(stack_name)
        return found[0] if found else None

    def deployed_template(self, stack_name: str) -> dict[str, Any]:
        return self.stacks[stack_name][1]

    def create_change_set(
        self, stack_name: str, name: str, template: dict[str, Any], parameters: Mapping[str, str]
    ) -> None:
        assert stack_name in self.stacks, "a change set of UPDATE needs the stack"
        self.change_sets[(stack_name, name)] = dict(parameters)
        self.made.append(name)

    def describe_change_set(self, stack_name: str, name: str) -> ChangeSetState:
        assert (stack_name, name) in self.change_sets
        return ChangeSetState("CREATE_COMPLETE", self.changes)

    def delete_change_set(self, stack_name: str, name: str) -> None:
        del self.change_sets[(stack_name, name)]

    def image_exists(self, repository_uri: str, tag: str) -> bool:
        return (repository_uri, tag) in self.tags
