"""AWS clients answer in domain terms: only the error that means "absent" is absence; AccessDenied and the like are
one clear error. botocore's Stubber answers exactly the calls queued here (moto never refuses access)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.stub import Stubber

from batchpipe.aws import objects, runs, sfn
from batchpipe.aws.stack import StackOutputs
from batchpipe.errors import BatchpipeError, InputError

SM = "arn:aws:states:us-east-1:123456789012:stateMachine:"
OUTPUTS = StackOutputs(
    "bucket", "queue", "pricer-def", "render-def", SM + "mc", SM + "render", "pricer", "render", "od-queue"
)


def execution(machine: str, name: str) -> dict[str, Any]:
    arn = machine.replace(":stateMachine:", ":execution:") + f":{name}"
    return {"executionArn": arn, "stateMachineArn": machine, "name": name, "status": "SUCCEEDED",
            "startDate": datetime(2026, 12, 1, tzinfo=UTC), "input": "{}"}  # fmt: skip


def test_find_tries_the_other_machine_only_when_the_execution_does_not_exist(stubs: dict[str, Stubber]) -> None:
    states = stubs["stepfunctions"]
    states.add_client_error("describe_execution", "ExecutionDoesNotExist", expected_params={
        "executionArn": SM.replace(":stateMachine:", ":execution:") + "mc:r"})  # fmt: skip
    states.add_response("describe_execution", execution(SM + "render", "r"),
                     {"executionArn": SM.replace(":stateMachine:", ":execution:") + "render:r"})  # fmt: skip
    assert sfn.find(OUTPUTS, "r")[0] == "render"


def test_find_reports_access_denied_instead_of_no_such_run(stubs: dict[str, Stubber]) -> None:
    stubs["stepfunctions"].add_client_error("describe_execution", "AccessDeniedException", "not allowed")
    with pytest.raises(BatchpipeError, match="looking up run 'r': AccessDeniedException: not allowed") as caught:
        sfn.find(OUTPUTS, "r")
    assert not isinstance(caught.value, InputError)  # was "no run 'r' in this stack"


def test_documents_are_none_only_when_absent(stubs: dict[str, Stubber]) -> None:
    s3 = stubs["s3"]
    s3.add_client_error("get_object", "NoSuchKey", http_status_code=404,
                        expected_params={"Bucket": "bucket", "Key": "runs/r/plan.json"})  # fmt: skip
    assert objects.plan_document(OUTPUTS, "r") is None
    s3.add_client_error("get_object", "AccessDenied", "no", http_status_code=403,
                        expected_params={"Bucket": "bucket", "Key": "runs/r/results.json"})  # fmt: skip
    with pytest.raises(BatchpipeError, match=r"reading s3://bucket/runs/r/results\.json: AccessDenied: no"):
        objects.result_document(OUTPUTS, "montecarlo", "r")


def test_stages_read_the_whole_paginated_history(stubs: dict[str, Stubber]) -> None:
    states = stubs["stepfunctions"]
    arn = "arn:aws:states:us-east-1:123456789012:execution:mc:r"
    event = {"timestamp": datetime(2026, 12, 1, tzinfo=UTC), "type": "TaskStateEntered", "id": 1}
    states.add_response("get_execution_history", {"events": [event | {"stateEnteredEventDetails": {"name": "Prepare"}}],
                                               "nextToken": "t"}, {"executionArn": arn})  # fmt: skip
    states.add_response("get_execution_history", {"events": [event | {"id": 2, "stateEnteredEventDetails": {
        "name": "Preprocess"}}]}, {"executionArn": arn, "nextToken": "t"})  # fmt: skip
    assert runs.stages(arn) == ["Prepare", "Preprocess"]  # maxResults=1000 without pagination stopped at one page
