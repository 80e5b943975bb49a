"""A deploy's live events: each poll pages DescribeStackEvents (newest first) only down to the last event shown,
not through the stack's whole history every 2 s. botocore's Stubber answers exactly the calls queued here."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.stub import Stubber

from batchpipe.aws import stack

STACK = "arn:aws:cloudformation:us-east-1:123456789012:stack/batchpipe/1"


def event(number: int, when: datetime, status: str = "UPDATE_IN_PROGRESS") -> dict[str, Any]:
    return {"StackId": STACK, "EventId": f"e{number}", "StackName": "batchpipe", "LogicalResourceId": f"R{number}",
            "Timestamp": when, "ResourceStatus": status}  # fmt: skip


def stack_status(status: str) -> dict[str, Any]:
    return {"Stacks": [{"StackName": "batchpipe", "CreationTime": datetime(2026, 1, 1, tzinfo=UTC),
                        "StackStatus": status}]}  # fmt: skip


def test_a_poll_pages_only_down_to_the_last_event_seen(stubs: dict[str, Stubber]) -> None:
    cfn = stubs["cloudformation"]
    soon = datetime.now(UTC) + timedelta(seconds=5)
    e = {n: event(n, soon + timedelta(seconds=n)) for n in range(1, 6)}
    old = event(0, soon - timedelta(days=30), "CREATE_COMPLETE")  # the stack's history, before this deploy
    by_name = {"StackName": "batchpipe"}
    cfn.add_response("update_stack", {"StackId": STACK})
    # first poll: two pages, down to the first event older than the deploy
    cfn.add_response("describe_stack_events", {"StackEvents": [e[3], e[2]], "NextToken": "t"}, by_name)
    cfn.add_response("describe_stack_events", {"StackEvents": [e[1], old], "NextToken": "t2"},
                     by_name | {"NextToken": "t"})  # fmt: skip
    cfn.add_response("describe_stacks", stack_status("UPDATE_IN_PROGRESS"), by_name)
    # second poll: one call, which reaches e3, already shown: its next page is never asked for
    cfn.add_response("describe_stack_events", {"StackEvents": [e[5], e[4], e[3], e[2]], "NextToken": "t"}, by_name)
    cfn.add_response("describe_stacks", stack_status("UPDATE_COMPLETE"), by_name)
    shown: list[str] = []
    done = stack.apply("batchpipe", {"Resources": {}}, {}, create=False, poll=0,
                       on_event=lambda ev: shown.append(ev["EventId"]))  # fmt: skip
    assert done == "UPDATED"
    assert shown == ["e1", "e2", "e3", "e4", "e5"]  # oldest first, each once
