"""`status RUN --cost`: the vCPU-seconds of every attempt of a run's jobs (array children included), an estimated
cost, and Spot interruptions counted apart from application failures. The arithmetic on DescribeJobs answers as AWS
gives them (attempts with their statusReason and exit code, which moto leaves out); the calls against botocore's
Stubber; the command end to end on moto."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.stub import Stubber
from click.testing import CliRunner

from batchpipe.aws import batch
from batchpipe.aws import stack as stack_module
from batchpipe.backends.aws import run_status
from batchpipe.cli import main
from batchpipe.usage import VCPU_HOUR_USD, usage
from tests.aws.moto_stack import Stack
from tests.aws.test_run_jobs import MS, array, child, status_calls, summary
from tests.aws.test_services import OUTPUTS
from tests.conftest import small_portfolio

NOW = MS + 3_600_000
SPOT = "Host EC2 (instance i-0abc) terminated."


def attempt(start_s: float, stop_s: float, reason: str = "Essential container in task exited", exit_code: int | None
            = 0) -> dict[str, Any]:  # fmt: skip
    container = {} if exit_code is None else {"exitCode": exit_code}
    return {"startedAt": MS + int(start_s * 1000), "stoppedAt": MS + int(stop_s * 1000), "statusReason": reason,
            "container": container}  # fmt: skip


def one(status: str, attempts: list[dict[str, Any]], vcpus: float = 2, new: bool = True, **more: Any) -> dict[str, Any]:
    container = {"resourceRequirements": [{"type": "VCPU", "value": f"{vcpus:g}"}, {"type": "MEMORY", "value": "4096"}]}
    return {"jobId": "j", "jobName": "mc-price", "status": status, "attempts": attempts,
            "container": container if new else {"vcpus": vcpus}, **more}  # fmt: skip


def test_every_attempt_counts_its_vcpu_seconds_and_retries_are_told_apart() -> None:
    jobs = [
        one("SUCCEEDED", [attempt(0, 100, SPOT, None), attempt(200, 500)]),  # Spot took the host, the retry ran
        one("FAILED", [attempt(0, 30, exit_code=1)], vcpus=4, new=False),  # the application failed: no retry
        one("RUNNING", [attempt(0, 60, SPOT, None)], startedAt=NOW - 40_000),  # retried after Spot, running
        array("p", MS, SUCCEEDED=2),  # a parent runs nothing itself
    ]
    used = usage(jobs, NOW)
    assert used["vcpuSeconds"] == 2 * (100 + 300) + 4 * 30 + 2 * (60 + 40)
    assert (used["attempts"], used["spotInterruptions"], used["applicationFailures"]) == (5, 2, 1)
    assert used["estimatedCostUsd"] == round(used["vcpuSeconds"] / 3600 * VCPU_HOUR_USD, 4)
    assert used["costBasis"].startswith("estimate: vCPU-seconds at $0.048 per vCPU-hour")


def test_cost_describes_every_child_by_the_statuses_its_array_counts(stubs: dict[str, Stubber]) -> None:
    jobs = stubs["batch"]
    parent = array("p", MS, SUCCEEDED=150, FAILED=1)
    status_calls(stubs, parent)
    failed = child("p", 150, "FAILED", MS, attempts=[attempt(0, 10, exit_code=3)])
    only = {"jobSummaryList": [summary("p:150", "mc-price", "FAILED", MS)]}
    jobs.add_response("list_jobs", only, {"arrayJobId": "p", "jobStatus": "FAILED", "maxResults": 100})  # status's
    jobs.add_response("describe_jobs", {"jobs": [failed]}, {"jobs": ["p:150"]})
    done = [child("p", i, "SUCCEEDED", MS, attempts=[attempt(0, 1)]) for i in range(150)]
    ids = [d["jobId"] for d in done]
    by_status = {"arrayJobId": "p", "jobStatus": "SUCCEEDED", "maxResults": 1000}
    jobs.add_response("list_jobs", {"jobSummaryList": [summary(i, "mc-price", "SUCCEEDED", MS) for i in ids[:120]],
                                    "nextToken": "t"}, by_status)  # fmt: skip
    jobs.add_response("describe_jobs", {"jobs": done[:100]}, {"jobs": ids[:100]})
    # (the ids of the next page are read once these 100 are described)
    jobs.add_response("list_jobs", {"jobSummaryList": [summary(i, "mc-price", "SUCCEEDED", MS) for i in ids[120:]]},
                      by_status | {"nextToken": "t"})  # fmt: skip
    jobs.add_response("describe_jobs", {"jobs": done[100:]}, {"jobs": ids[100:]})
    jobs.add_response("list_jobs", only, {"arrayJobId": "p", "jobStatus": "FAILED", "maxResults": 1000})
    jobs.add_response("describe_jobs", {"jobs": [failed]}, {"jobs": ["p:150"]})
    used = run_status(OUTPUTS, "mc", cost=True)["usage"]  # no RUNNING or STARTING listing: none counted
    assert used["vcpuSeconds"] == 150 * 2 * 1 + 2 * 10 and used["attempts"] == 151
    assert used["applicationFailures"] == 1 and used["spotInterruptions"] == 0


def test_status_cost_on_a_run(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    stack.runtime.fail_children = {1}
    uri = stack.put("inputs/small.json", json.dumps(small_portfolio()).encode())
    stack.execute("montecarlo", stack.payload("montecarlo", "partial", uri, positionsPerJob="2"))
    monkeypatch.setattr(stack_module, "outputs", lambda name: stack.outputs())
    shown = CliRunner().invoke(main, ["status", "partial", "--cost", "--json"])
    assert shown.exit_code == 0, shown.output
    used = json.loads(shown.stdout)["usage"]
    jobs = batch.jobs_of(stack.outputs(), "partial")
    every = [j for j in jobs if not batch.is_array(j)] + [c for p in jobs if batch.is_array(p)
                                                          for c in batch.every_child(p)]  # fmt: skip
    assert len(every) == 5 and used["attempts"] == 5  # preprocess, three shards, collate
    seconds = sum((a["stoppedAt"] - a["startedAt"]) / 1000 for j in every for a in j["attempts"])  # 1 vCPU each
    assert used["vcpuSeconds"] == pytest.approx(seconds, abs=0.1)
    text = CliRunner().invoke(main, ["status", "partial", "--cost"])
    assert "vCPU-seconds" in text.stdout and "estimated cost $" in text.stdout and "Spot interruptions" in text.stdout
    refused = CliRunner().invoke(main, ["status", "--cost"])
    assert refused.exit_code == 2 and "--cost is for one AWS run" in refused.stderr
