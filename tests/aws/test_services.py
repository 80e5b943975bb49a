"""The service modules against botocore's Stubber: every page of a paginated call is read and joined, DescribeJobs
is asked 100 ids at a time, and a refusal (AccessDenied) is one clear error, never "no such run"."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.stub import Stubber

from batchpipe.aws import batch, objects, runs, sfn
from batchpipe.aws.stack import StackOutputs
from batchpipe.errors import BatchpipeError, InputError

SM = "arn:aws:states:us-east-1:123456789012:stateMachine:"
QUEUE = "arn:aws:batch:us-east-1:123456789012:job-queue/q"
OUTPUTS = StackOutputs(
    "bucket", QUEUE, "pricer-def", "render-def", SM + "mc", SM + "render", "pricer", "render", "od-queue"
)
ARN = SM.replace(":stateMachine:", ":execution:") + "mc:r"
BY_NAME = {"jobQueue": QUEUE, "filters": [{"name": "JOB_NAME", "values": ["r-*"]}]}
WHEN = datetime(2026, 12, 1, tzinfo=UTC)
MS = int(WHEN.timestamp() * 1000)  # the execution's start, in Batch's milliseconds


def event(number: int, state: str | None = None) -> dict[str, Any]:
    doc: dict[str, Any] = {"timestamp": WHEN, "type": "TaskStateEntered", "id": number}
    return doc | ({"stateEnteredEventDetails": {"name": state}} if state else {})


def job(job_id: str, status: str = "SUCCEEDED", name: str = "r-price", **more: Any) -> dict[str, Any]:
    return {"jobId": job_id, "jobName": name, "jobQueue": QUEUE, "status": status, "startedAt": 1, "createdAt": 1,
            "jobDefinition": "pricer-def", **more}  # fmt: skip


def listed(ids: list[str], token: str | None = None, name: str = "r-price", created: int = 1) -> dict[str, Any]:
    page: dict[str, Any] = {"jobSummaryList": [{"jobId": i, "jobName": name, "createdAt": created} for i in ids]}
    return page | ({"nextToken": token} if token else {})


def test_history_joins_its_pages_reading_each_only_when_needed(stubs: dict[str, Stubber]) -> None:
    states = stubs["stepfunctions"]
    states.add_response("get_execution_history", {"events": [event(1, "Prepare"), event(2)], "nextToken": "t"},
                        {"executionArn": ARN})  # fmt: skip
    states.add_response("get_execution_history", {"events": [event(3, "Preprocess")]},
                        {"executionArn": ARN, "nextToken": "t"})  # fmt: skip
    events = sfn.history(ARN)
    assert next(events)["id"] == 1
    with pytest.raises(AssertionError):  # a generator: the second page is not asked for yet
        states.assert_no_pending_responses()
    assert [e["id"] for e in events] == [2, 3]


def test_a_run_of_250_jobs_is_listed_page_by_page_and_described_100_ids_a_call(stubs: dict[str, Stubber]) -> None:
    ids = [f"id-{n:03d}" for n in range(250)]
    stub = stubs["batch"]
    stub.add_response("list_jobs", listed(ids[:200], "t"), BY_NAME)
    stub.add_response("list_jobs", listed(ids[200:]), BY_NAME | {"nextToken": "t"})
    stub.add_response("list_jobs", listed([]), BY_NAME | {"jobQueue": "od-queue"})
    for chunk in (ids[:100], ids[100:200], ids[200:]):  # 100, 100, 50
        stub.add_response("describe_jobs", {"jobs": [job(i) for i in chunk]}, {"jobs": chunk})
    assert [j["jobId"] for j in batch.jobs_of(OUTPUTS, "r")] == ids


def test_describe_reads_ids_as_they_come(stubs: dict[str, Stubber]) -> None:
    ids = [str(n) for n in range(150)]
    stubs["batch"].add_response("describe_jobs", {"jobs": [job(i) for i in ids[:100]]}, {"jobs": ids[:100]})
    described = batch.describe(iter(ids), "describing")
    assert next(described)["jobId"] == "0"  # one call of 100 so far; the 50 left wait until they are read
    stubs["batch"].add_response("describe_jobs", {"jobs": [job(i) for i in ids[100:]]}, {"jobs": ids[100:]})
    assert len(list(described)) == 149


def test_the_failed_children_of_an_array_are_its_first_100_in_one_page(stubs: dict[str, Stubber]) -> None:
    stub = stubs["batch"]
    parent = job("p", "FAILED", arrayProperties={"size": 400, "statusSummary": {"SUCCEEDED": 100, "FAILED": 300}})
    ids = [f"p:{i}" for i in range(100)]
    stub.add_response("list_jobs", listed(ids, "more"), {"arrayJobId": "p", "jobStatus": "FAILED", "maxResults": 100})
    stub.add_response("describe_jobs", {"jobs": [job(i, "FAILED") for i in ids]}, {"jobs": ids})
    children = batch.failed_children([parent, job("single", "FAILED")])  # the next page is not read
    assert [batch.array_index(j) for j in children] == list(range(100))


@pytest.mark.parametrize("operation", ["list_jobs", "describe_jobs"])
def test_batch_refusals_are_one_clear_error(stubs: dict[str, Stubber], operation: str) -> None:
    if operation == "describe_jobs":
        stubs["batch"].add_response("list_jobs", listed(["a"]), BY_NAME)
        stubs["batch"].add_response("list_jobs", listed([]), BY_NAME | {"jobQueue": "od-queue"})
    stubs["batch"].add_client_error(operation, "AccessDeniedException", "not allowed", http_status_code=403)
    refused = r"^listing the Batch jobs of run 'r': AccessDeniedException: not allowed$"
    with pytest.raises(BatchpipeError, match=refused):
        batch.jobs_of(OUTPUTS, "r")


def test_a_run_in_neither_machine_is_no_such_run(stubs: dict[str, Stubber]) -> None:
    stubs["stepfunctions"].add_client_error("describe_execution", "ExecutionDoesNotExist")
    stubs["stepfunctions"].add_client_error("describe_execution", "InvalidArn")
    with pytest.raises(InputError, match="no run 'r' in this stack"):
        sfn.find(OUTPUTS, "r")


@pytest.mark.parametrize("code", ["AccessDeniedException", "ThrottlingException"])
def test_step_functions_refusals_are_not_no_such_run(stubs: dict[str, Stubber], code: str) -> None:
    states = stubs["stepfunctions"]
    states.add_client_error("list_executions", code, "no", expected_params={"stateMachineArn": SM + "mc"})
    with pytest.raises(BatchpipeError, match=f"^listing the runs of the montecarlo state machine: {code}: no$") as got:
        list(sfn.executions(OUTPUTS))
    states.add_client_error("get_execution_history", code, "no")
    with pytest.raises(BatchpipeError, match=f"^reading the history of {ARN}: {code}: no$"):
        runs.stages(ARN)
    states.add_client_error("describe_execution", code, "no")
    with pytest.raises(BatchpipeError, match=f"^looking up run 'r': {code}: no$") as found:
        sfn.find(OUTPUTS, "r")
    assert not isinstance(got.value, InputError) and not isinstance(found.value, InputError)


def test_recent_executions_of_both_machines_newest_first(stubs: dict[str, Stubber]) -> None:
    states = stubs["stepfunctions"]

    def item(machine: str, name: str, day: int) -> dict[str, Any]:
        return {"executionArn": f"{machine}:{name}", "stateMachineArn": machine, "name": name, "status": "SUCCEEDED",
                "startDate": datetime(2026, 12, day, tzinfo=UTC)}  # fmt: skip

    states.add_response("list_executions", {"executions": [item(SM + "mc", "b", 3)], "nextToken": "t"},
                        {"stateMachineArn": SM + "mc"})  # fmt: skip
    states.add_response("list_executions", {"executions": [item(SM + "mc", "a", 1)]},
                        {"stateMachineArn": SM + "mc", "nextToken": "t"})  # fmt: skip
    states.add_response("list_executions", {"executions": [item(SM + "render", "c", 2)]},
                        {"stateMachineArn": SM + "render"})  # fmt: skip
    assert [(p, e["name"]) for p, e in sfn.executions(OUTPUTS)] == [("montecarlo", "b"), ("render", "c"),
                                                                    ("montecarlo", "a")]  # fmt: skip


def test_cancel_stops_the_execution_and_terminates_the_unfinished_jobs(stubs: dict[str, Stubber]) -> None:
    states, jobs = stubs["stepfunctions"], stubs["batch"]
    running = {"executionArn": ARN, "stateMachineArn": SM + "mc", "name": "r", "status": "RUNNING", "startDate": WHEN}
    states.add_response("describe_execution", running, {"executionArn": ARN})
    states.add_client_error("describe_execution", "ExecutionDoesNotExist", expected_params={
        "executionArn": ARN + "-resume-1"})  # fmt: skip
    states.add_response("stop_execution", {"stopDate": WHEN}, {"executionArn": ARN, "cause": "batchpipe cancel"})
    jobs.add_response("list_jobs", listed(["done", "queued"], created=MS), BY_NAME)
    jobs.add_response("list_jobs", listed([]), BY_NAME | {"jobQueue": "od-queue"})
    jobs.add_response("describe_jobs", {"jobs": [job("done", createdAt=MS), job("queued", "RUNNABLE", createdAt=MS)]},
                      {"jobs": ["done", "queued"]})  # fmt: skip
    jobs.add_response("terminate_job", {}, {"jobId": "queued", "reason": "batchpipe cancel"})
    assert runs.cancel(OUTPUTS, "r") == (ARN, 1)


def test_an_absent_optional_download_is_skipped_and_a_refused_one_is_an_error(stubs: dict[str, Stubber],
                                                                               tmp_path: Any) -> None:  # fmt: skip
    s3 = stubs["s3"]
    s3.add_client_error("head_object", "404", "Not Found", http_status_code=404,
                        expected_params={"Bucket": "bucket", "Key": "runs/r/output.mp4"})  # fmt: skip
    assert objects.download(OUTPUTS, "r", ["output.mp4"], tmp_path, optional={"output.mp4"}) == []
    s3.add_client_error("head_object", "403", "Forbidden", http_status_code=403)
    with pytest.raises(BatchpipeError, match=r"^downloading s3://bucket/runs/r/output\.mp4: 403: Forbidden$") as got:
        objects.download(OUTPUTS, "r", ["output.mp4"], tmp_path, optional={"output.mp4"})
    assert not isinstance(got.value, InputError)
