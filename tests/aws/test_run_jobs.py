"""Which Batch jobs are a run's, and what `cancel`, `status` and the tail ask AWS about them, against botocore's
Stubber: every call is queued here with its exact parameters, so an extra call (another run's job terminated, a
page of children read on every poll) fails the test.

ListJobs' JOB_NAME filter 'mc-*' is a case-insensitive prefix match: it lists the jobs of runs 'mc-2' and 'MC-big'
too, which moto does not reproduce."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.stub import Stubber

from batchpipe.aws import batch, runs
from batchpipe.backends.aws import run_status
from batchpipe.diagnostics import STUCK_AFTER_SECONDS
from tests.aws.test_services import OUTPUTS, QUEUE, SM

OD_QUEUE = OUTPUTS.on_demand_job_queue_arn

EXECUTIONS = SM.replace(":stateMachine:", ":execution:") + "mc:"
START = datetime(2026, 12, 1, 10, tzinfo=UTC)
MS = int(START.timestamp() * 1000)
CANCEL = "batchpipe cancel"


def prefix(job: str, queue: str = QUEUE) -> dict[str, Any]:
    return {"jobQueue": queue, "filters": [{"name": "JOB_NAME", "values": [f"{job}-*"]}]}


def execution(name: str, status: str = "RUNNING", start: datetime = START, job: str = "mc") -> dict[str, Any]:
    return {"executionArn": EXECUTIONS + name, "stateMachineArn": SM + "mc", "name": name, "status": status,
            "startDate": start, "input": json.dumps({"jobName": job})}  # fmt: skip


def summary(job_id: str, name: str, status: str, created: int = MS + 1000) -> dict[str, Any]:
    return {"jobId": job_id, "jobName": name, "status": status, "createdAt": created}


def described(s: dict[str, Any], **more: Any) -> dict[str, Any]:
    return s | {"jobQueue": QUEUE, "jobDefinition": "pricer-def", "startedAt": s["createdAt"]} | more


def no_resumes(states: Stubber, attempt: int = 1) -> None:
    """The run's resume `attempt` does not exist."""
    states.add_client_error("describe_execution", "ExecutionDoesNotExist",
                            expected_params={"executionArn": f"{EXECUTIONS}mc-resume-{attempt}"})  # fmt: skip


def test_cancel_terminates_exactly_this_runs_jobs(stubs: dict[str, Stubber]) -> None:
    states, jobs = stubs["stepfunctions"], stubs["batch"]
    states.add_response("describe_execution", execution("mc"), {"executionArn": EXECUTIONS + "mc"})
    no_resumes(states)
    states.add_response("stop_execution", {"stopDate": START}, {"executionArn": EXECUTIONS + "mc", "cause": CANCEL})
    mine = [summary("pre", "mc-preprocess", "SUCCEEDED"), summary("price", "mc-price", "RUNNABLE")]
    # other runs' jobs (the prefix filter ignores case) and one of an earlier run of the same name
    others = [summary("other", "mc-2-price", "RUNNING"), summary("big", "MC-big-price", "RUNNABLE"),
              summary("upper", "MC-price", "RUNNING"), summary("tool", "mc-pricey", "RUNNING"),
              summary("old", "mc-collate", "RUNNABLE", created=MS - 1)]  # fmt: skip
    jobs.add_response("list_jobs", {"jobSummaryList": others[:2] + mine[:1], "nextToken": "t"}, prefix("mc"))
    jobs.add_response("list_jobs", {"jobSummaryList": others[2:] + mine[1:]}, prefix("mc") | {"nextToken": "t"})
    jobs.add_response("list_jobs", {"jobSummaryList": []}, prefix("mc", OD_QUEUE))  # the On-Demand queue: none
    jobs.add_response("describe_jobs", {"jobs": [described(s) for s in mine]}, {"jobs": ["pre", "price"]})
    jobs.add_response("terminate_job", {}, {"jobId": "price", "reason": CANCEL})  # only mc's unfinished job
    assert runs.cancel(OUTPUTS, "mc") == (EXECUTIONS + "mc", 1)


def test_cancel_of_a_resumed_execution_finds_the_jobs_it_submitted(stubs: dict[str, Stubber]) -> None:
    """A resume (execution mc-resume-1) submits jobs named after the run's job, mc-price: not mc-resume-1-price."""
    states, jobs = stubs["stepfunctions"], stubs["batch"]
    resumed = START + timedelta(hours=1)
    states.add_response("describe_execution", execution("mc-resume-1", start=resumed),
                        {"executionArn": EXECUTIONS + "mc-resume-1"})  # fmt: skip
    states.add_response("stop_execution", {"stopDate": resumed},
                        {"executionArn": EXECUTIONS + "mc-resume-1", "cause": CANCEL})  # fmt: skip
    after = int(resumed.timestamp() * 1000) + 1000
    first, again = summary("first", "mc-price", "FAILED"), summary("again", "mc-price", "RUNNING", created=after)
    jobs.add_response("list_jobs", {"jobSummaryList": [summary("pre", "mc-preprocess", "SUCCEEDED"), first, again]},
                      prefix("mc"))  # fmt: skip
    jobs.add_response("list_jobs", {"jobSummaryList": []}, prefix("mc", OD_QUEUE))  # the On-Demand queue: none
    jobs.add_response("describe_jobs", {"jobs": [described(again)]}, {"jobs": ["again"]})
    jobs.add_response("terminate_job", {}, {"jobId": "again", "reason": CANCEL})
    assert runs.cancel(OUTPUTS, "mc-resume-1") == (EXECUTIONS + "mc-resume-1", 1)


def test_cancel_by_job_name_also_stops_its_running_resume(stubs: dict[str, Stubber]) -> None:
    states, jobs = stubs["stepfunctions"], stubs["batch"]
    states.add_response("describe_execution", execution("mc", "FAILED"), {"executionArn": EXECUTIONS + "mc"})
    states.add_response("describe_execution", execution("mc-resume-1", start=START + timedelta(hours=1)),
                        {"executionArn": EXECUTIONS + "mc-resume-1"})  # fmt: skip
    no_resumes(states, attempt=2)
    states.add_response("stop_execution", {"stopDate": START},
                        {"executionArn": EXECUTIONS + "mc-resume-1", "cause": CANCEL})  # fmt: skip
    jobs.add_response("list_jobs", {"jobSummaryList": []}, prefix("mc"))
    jobs.add_response("list_jobs", {"jobSummaryList": []}, prefix("mc", OD_QUEUE))  # the On-Demand queue: none
    assert runs.cancel(OUTPUTS, "mc") == (EXECUTIONS + "mc", 0)


def array(job_id: str, created: int, **counts: int) -> dict[str, Any]:
    size = sum(counts.values())
    return described(summary(job_id, "mc-price", "PENDING", created), arrayProperties={"size": size, "statusSummary": {
        "SUBMITTED": 0, "PENDING": 0, "RUNNABLE": 0, "STARTING": 0, "RUNNING": 0, "SUCCEEDED": 0, "FAILED": 0,
        **counts}})  # fmt: skip


def child(parent: str, index: int, status: str, created: int, **more: Any) -> dict[str, Any]:
    doc = summary(f"{parent}:{index}", "mc-price", status, created) | {"arrayProperties": {"index": index}}
    return described(doc, container={"vcpus": 2, "memory": 4096}, **more)


ENVS = [{"computeEnvironmentName": "spot", "computeEnvironmentArn": "arn:ce/spot", "ecsClusterArn": "c",
         "state": "ENABLED", "computeResources": {"type": "SPOT", "maxvCpus": 256, "subnets": ["s"]}}]  # fmt: skip


def queue_and_environments(jobs: Stubber) -> None:
    jobs.add_response("describe_job_queues", {"jobQueues": [{"jobQueueName": "q", "jobQueueArn": QUEUE, "state":
        "ENABLED", "priority": 1, "computeEnvironmentOrder": [{"order": 1, "computeEnvironment": "arn:ce/spot"}]}]},
        {"jobQueues": [QUEUE, OD_QUEUE]})  # fmt: skip
    jobs.add_response("describe_compute_environments", {"computeEnvironments": ENVS},
                      {"computeEnvironments": ["arn:ce/spot"]})  # fmt: skip


def test_runnable_children_are_diagnosed_from_one_page_a_few_described(stubs: dict[str, Stubber]) -> None:
    jobs = stubs["batch"]
    now = MS + 3600_000
    parent = array("p", MS, RUNNABLE=400)  # an hour, none of its children started
    page = [summary(f"p:{i}", "mc-price", "RUNNABLE", MS) for i in range(batch.RUNNABLE_SAMPLE)]
    jobs.add_response("list_jobs", {"jobSummaryList": page, "nextToken": "more"},
                      {"arrayJobId": "p", "jobStatus": "RUNNABLE", "maxResults": batch.RUNNABLE_SAMPLE})  # fmt: skip
    reason = "MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT - The job resource requirement is higher than the CEs allow"
    children = [child("p", i, "RUNNABLE", MS, statusReason=reason) for i in range(batch.RUNNABLE_SAMPLE)]
    jobs.add_response("describe_jobs", {"jobs": children}, {"jobs": [s["jobId"] for s in page]})
    queue_and_environments(jobs)
    [problem] = batch.runnable_problems(OUTPUTS, [parent], now)
    assert problem.startswith("mc-price (400 of 400 children): RUNNABLE for 60 min: no capacity yet")
    assert problem.endswith(f"(AWS Batch: {reason})")


def test_runnable_children_queued_behind_running_siblings_or_young_cost_no_call(stubs: dict[str, Stubber]) -> None:
    now = MS + 3600_000
    queued = array("p", MS, RUNNABLE=300, RUNNING=64, SUCCEEDED=36)  # the compute environments are busy, not stuck
    young = array("q", now - (STUCK_AFTER_SECONDS - 60) * 1000, RUNNABLE=10)
    assert batch.runnable_problems(OUTPUTS, [queued, young], now) == []  # no call was queued: none was made


def status_calls(stubs: dict[str, Stubber], parent: dict[str, Any]) -> None:
    """What every poll asks: the execution, its history, the run's jobs."""
    states, jobs = stubs["stepfunctions"], stubs["batch"]
    states.add_response("describe_execution", execution("mc", start=START), {"executionArn": EXECUTIONS + "mc"})
    entered = {"timestamp": START, "type": "TaskStateEntered", "id": 1, "stateEnteredEventDetails": {"name": "Price"}}
    states.add_response("get_execution_history", {"events": [entered]}, {"executionArn": EXECUTIONS + "mc"})
    jobs.add_response("list_jobs", {"jobSummaryList": [summary("p", "mc-price", "PENDING", parent["createdAt"])]},
                      prefix("mc"))  # fmt: skip
    jobs.add_response("list_jobs", {"jobSummaryList": []}, prefix("mc", OD_QUEUE))  # the On-Demand queue: none
    jobs.add_response("describe_jobs", {"jobs": [parent]}, {"jobs": ["p"]})


def test_a_tail_poll_reads_no_failed_children_and_status_reads_100(stubs: dict[str, Stubber]) -> None:
    jobs = stubs["batch"]
    created = int(time.time() * 1000) - 60_000  # a minute old: nothing is stuck yet
    parent = array("p", created, FAILED=300, RUNNING=50, SUCCEEDED=650)
    status_calls(stubs, parent)
    polled = run_status(OUTPUTS, "mc", children=False)  # 4 calls, however many children failed
    assert polled["failedJobs"] == [] and polled["arrays"][0]["statusSummary"]["FAILED"] == 300
    assert "failedChildrenNotShown" not in polled
    status_calls(stubs, parent)
    ids = [f"p:{i}" for i in range(100)]
    page = {"jobSummaryList": [summary(i, "mc-price", "FAILED", created) for i in ids], "nextToken": "more"}
    jobs.add_response("list_jobs", page, {"arrayJobId": "p", "jobStatus": "FAILED", "maxResults": 100})
    exited = [child("p", i, "FAILED", created, statusReason="Essential container in task exited") for i in range(100)]
    jobs.add_response("describe_jobs", {"jobs": exited}, {"jobs": ids})
    shown = run_status(OUTPUTS, "mc")
    assert [f["index"] for f in shown["failedJobs"]] == list(range(100))
    assert shown["failedChildrenNotShown"] == 200


class Warnings:
    """A Progress that keeps the warnings."""

    def __init__(self) -> None:
        self.warned: list[str] = []

    def stage(self, name: str, description: str, total: int | None = None) -> None:
        pass

    def advance(self, units: int = 1) -> None:
        pass

    def warn(self, message: str) -> None:
        self.warned.append(message)


def test_the_tail_warns_of_a_stuck_job_once_not_each_minute(monkeypatch: pytest.MonkeyPatch) -> None:
    from batchpipe.aws import objects
    from batchpipe.backends import aws

    stuck = "mc-price: RUNNABLE for {} min: no capacity yet"
    polls = iter([(["RUNNING"], [stuck.format(10)]), (["RUNNING"], [stuck.format(11), "mc-collate: RUNNABLE for 10 "
                  "min: other"]), (["SUCCEEDED"], [])])  # fmt: skip
    asked: list[bool] = []

    def run_status(outputs: Any, run: str, frames: Any, children: bool = True) -> dict[str, Any]:
        asked.append(children)
        [status], problems = next(polls)
        return {"stages": ["Price"], "arrays": [], "status": status, "stuck": problems, "pipeline": "montecarlo",
                "executionArn": EXECUTIONS + "mc"}  # fmt: skip

    monkeypatch.setattr(aws, "run_status", run_status)
    monkeypatch.setattr(objects, "result_document", lambda *args: None)
    target = aws.Target()
    target._outputs = OUTPUTS
    progress = Warnings()
    aws.follow(target, "mc", progress, poll=0)
    assert progress.warned == [stuck.format(10), "mc-collate: RUNNABLE for 10 min: other"]
    assert asked == [False, False, False]  # a poll never reads the failed children
