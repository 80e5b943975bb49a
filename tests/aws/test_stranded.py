"""The Spot fallback's Lambda (batchpipe/aws/stranded.py) against ListJobs answers stubbed as AWS gives them: which
shards of a failed fan-out Batch cancelled for lack of Spot capacity, and the command that runs just those again."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from batchpipe.aws import stranded
from batchpipe.jobs.common import parse_shard_list

CANCEL = "Canceled by JobStateTimeLimit action due to reason: CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY"
COMMAND = ["price", "--output", "s3://b/run"]


@pytest.fixture
def batch(monkeypatch: pytest.MonkeyPatch) -> Iterator[Stubber]:
    client = boto3.client("batch", region_name="us-east-1", aws_access_key_id="k", aws_secret_access_key="s")
    monkeypatch.setattr(boto3, "client", lambda service, **_: client)
    with Stubber(client) as stub:
        yield stub
        stub.assert_no_pending_responses()


def child(parent: str, index: int, reason: str) -> dict[str, Any]:
    return {"jobId": f"{parent}:{index}", "jobName": "run-price", "status": "FAILED", "statusReason": reason,
            "arrayProperties": {"index": index}}  # fmt: skip


def failure(job: dict[str, Any]) -> dict[str, Any]:
    """What a failed submitJob.sync task hands its Catch: the job's description as the Cause."""
    return {"Error": "States.TaskFailed", "Cause": json.dumps(job)}


def test_only_the_children_cancelled_for_capacity_run_again_read_page_by_page(batch: Stubber) -> None:
    first = [child("p", 1, CANCEL), child("p", 2, "Essential container in task exited")]
    batch.add_response("list_jobs", {"jobSummaryList": first, "nextToken": "t"},
                       {"arrayJobId": "p", "jobStatus": "FAILED"})  # fmt: skip
    batch.add_response("list_jobs", {"jobSummaryList": [child("p", 7, CANCEL), child("p", 6, CANCEL)]},
                       {"arrayJobId": "p", "jobStatus": "FAILED", "nextToken": "t"})  # fmt: skip
    event = {"error": failure({"JobId": "p", "ArrayProperties": {"Size": 8}}), "command": COMMAND, "shards": 8}
    out = stranded.handler(event, None)
    assert out == {"size": 3, "command": [*COMMAND, "--resume", "--shard-list", "1,6-7"], "stranded": 3}
    assert parse_shard_list(out["command"][-1]) == [1, 6, 7]  # what the array's children read back


def test_one_stranded_shard_is_one_job_and_none_is_nothing(batch: Stubber) -> None:
    batch.add_response(
        "list_jobs", {"jobSummaryList": [child("p", 4, CANCEL)]}, {"arrayJobId": "p", "jobStatus": "FAILED"}
    )
    one = stranded.handler({"error": failure({"JobId": "p", "ArrayProperties": {"Size": 5}}), "command": COMMAND,
                            "shards": 5}, None)  # fmt: skip
    assert one == {"size": 1, "command": [*COMMAND, "--resume", "--shard", "4"], "stranded": 1}
    single = {"JobId": "s", "StatusReason": CANCEL}  # a one-shard plan runs a single job, no ListJobs call
    assert stranded.handler({"error": failure(single), "command": [*COMMAND, "--resume"], "shards": 1}, None) == {
        "size": 1, "command": [*COMMAND, "--resume", "--shard", "0"], "stranded": 1}  # fmt: skip
    for error in (failure({"JobId": "s", "StatusReason": "Essential container in task exited"}),
                  {"Error": "Batch.ClientException", "Cause": "Error executing request, Exception : bad"},
                  {"Error": "States.Timeout"}):  # fmt: skip
        assert stranded.handler({"error": error, "command": COMMAND, "shards": 1}, None)["size"] == 0


def test_a_list_too_long_for_a_command_runs_every_shard_again_keeping_the_complete(batch: Stubber) -> None:
    scattered = [child("p", i, CANCEL) for i in range(0, 4000, 2)]  # 2,000 shards, no two adjacent
    batch.add_response("list_jobs", {"jobSummaryList": scattered}, {"arrayJobId": "p", "jobStatus": "FAILED"})
    out = stranded.handler({"error": failure({"JobId": "p", "ArrayProperties": {"Size": 4000}}), "command": COMMAND,
                            "shards": 4000}, None)  # fmt: skip
    assert out == {"size": 4000, "command": [*COMMAND, "--resume"], "stranded": 2000}


def test_the_handler_stays_self_contained() -> None:
    source = Path(stranded.__file__).read_text()
    imports = [line for line in source.splitlines() if line.strip().startswith(("import ", "from "))]
    assert all(line.split()[1].split(".")[0] in {"json", "typing", "boto3"} for line in imports), imports
