"""`batchpipe logs RUN`: the CloudWatch events of a run's Batch jobs. A partial run is executed end to end on moto
(tests/aws/moto_runtime.py); moto's Batch names each attempt's log stream but writes nothing to CloudWatch, so each
stream gets its events here, in the log group the job definition names, and the command reads them through moto's
Logs API. Following a running job is against botocore's Stubber (moto's executions end before a poll)."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from botocore.stub import Stubber
from click.testing import CliRunner, Result

from batchpipe.aws import batch, clients
from batchpipe.aws import logs as cloudwatch
from batchpipe.aws import stack as stack_module
from batchpipe.backends.aws import Target
from batchpipe.backends.aws import logs as show_logs
from batchpipe.cli import main
from tests.aws.moto_stack import Stack
from tests.aws.test_run_jobs import EXECUTIONS, OD_QUEUE, START, execution, prefix, summary
from tests.aws.test_services import OUTPUTS
from tests.conftest import small_portfolio

GROUP = "/batchpipe/e2e/batch"


def write_logs(stack: Stack, job: str) -> dict[str, list[str]]:
    """Three events in each attempt's stream of the run's jobs and failed children, named after the job; returns
    the lines by label ('JOB' or 'JOB shard N')."""
    logs = clients.client("logs")
    logs.create_log_group(logGroupName=GROUP)
    outputs = stack.outputs()
    jobs = batch.jobs_of(outputs, job)
    everyone = jobs + [c for p in jobs if batch.is_array(p) for s in ("SUCCEEDED", "FAILED")
                       for c in batch.children(p, s, 100, "listing")]  # fmt: skip
    written: dict[str, list[str]] = {}
    now = int(time.time() * 1000)
    for j in everyone:
        for stream in cloudwatch.streams(j):
            index = batch.array_index(j)
            label = j["jobName"] + ("" if index is None else f" shard {index}")
            lines = [f"{label} line {n}" for n in range(3)]
            logs.create_log_stream(logGroupName=GROUP, logStreamName=stream)
            events = [{"timestamp": now + n, "message": m + "\n"} for n, m in enumerate(lines)]
            logs.put_log_events(logGroupName=GROUP, logStreamName=stream, logEvents=events)
            written[label] = lines
    return written


def cli(*args: str) -> Result:
    return CliRunner().invoke(main, ["logs", *args], catch_exceptions=False)


def test_logs_of_a_partial_run_failed_child_first_then_by_shard_and_stage(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    stack.runtime.fail_children = {1}
    uri = stack.put("inputs/small.json", json.dumps(small_portfolio()).encode())
    stack.execute("montecarlo", stack.payload("montecarlo", "partial", uri, positionsPerJob="2"))
    written = write_logs(stack, "partial")
    assert {"partial-preprocess", "partial-price shard 0", "partial-price shard 1", "partial-collate"} <= set(written)
    monkeypatch.setattr(stack_module, "outputs", lambda name: stack.outputs())
    monkeypatch.setattr(cloudwatch, "PAGE_LIMIT", 2)  # three events a stream: two pages, then the token repeats

    every = cli("partial")
    assert every.exit_code == 0, every.output
    lines = every.stdout.splitlines()
    headers = [line for line in lines if line.startswith("==> ")]
    # the failed child first, then the stages in order
    assert [h.split(",")[0] for h in headers] == ["==> partial-price shard 1", "==> partial-preprocess",
                                                  "==> partial-collate"]  # fmt: skip
    assert headers[0].endswith("attempt 1 of 1 (FAILED) <==")
    body = [line for line in lines if not line.startswith("==> ")]
    assert body == written["partial-price shard 1"] + written["partial-preprocess"] + written["partial-collate"]
    assert "partial-price: an array of 3 children; shown: its failed ones; one child: --shard N" in every.stderr

    one = cli("partial", "--shard", "2")
    assert one.exit_code == 0, one.output
    assert one.stdout.splitlines()[1:] == written["partial-price shard 2"]
    assert cli("partial", "--stage", "collate").stdout.splitlines()[1:] == written["partial-collate"]
    followed = cli("partial", "--stage", "preprocess", "--follow")  # the job has ended: it prints and returns
    assert followed.exit_code == 0 and followed.stdout.splitlines()[1:] == written["partial-preprocess"]

    wrong = cli("partial", "--stage", "stitch")
    assert wrong.exit_code == 2 and "a montecarlo run has no stage 'stitch'" in wrong.stderr
    beyond = cli("partial", "--shard", "3")
    assert beyond.exit_code == 2 and "run 'partial' has 3 shards: --shard is 0 to 2" in beyond.stderr


def test_the_log_group_is_the_job_definitions_or_batchs_default(stubs: dict[str, Stubber]) -> None:
    awslogs = {"logDriver": "awslogs", "options": {"awslogs-group": "/batchpipe/s/batch"}}
    assert cloudwatch.group_of({"container": {"logConfiguration": awslogs}}, {}) == "/batchpipe/s/batch"
    definition = {"jobDefinitionName": "d", "jobDefinitionArn": "arn:d", "revision": 1, "type": "container",
                  "containerProperties": {"logConfiguration": {"logDriver": "json-file"}}}  # fmt: skip
    stubs["batch"].add_response(
        "describe_job_definitions", {"jobDefinitions": [definition]}, {"jobDefinitions": ["arn:d"]}
    )
    cache: dict[str, str] = {}
    assert cloudwatch.group_of({"jobDefinition": "arn:d", "container": {}}, cache) == "/aws/batch/job"
    assert cloudwatch.group_of({"jobDefinition": "arn:d"}, cache) == "/aws/batch/job"  # read once


def running_job(status: str, streams: int = 1) -> dict[str, Any]:
    attempts = [{"container": {"logStreamName": f"pricer/default/a{n}"}} for n in range(streams - 1)]
    return summary("pre", "mc-preprocess", status) | {
        "jobQueue": "q", "jobDefinition": "arn:d", "startedAt": 1, "attempts": attempts,
        "container": {"logStreamName": f"pricer/default/a{streams - 1}", "logConfiguration": {
            "logDriver": "awslogs", "options": {"awslogs-group": "/g"}}}}  # fmt: skip


def page(messages: list[str], token: str) -> dict[str, Any]:
    stamp = int(START.timestamp() * 1000)
    return {"events": [{"timestamp": stamp, "message": m, "ingestionTime": stamp} for m in messages],
            "nextForwardToken": token, "nextBackwardToken": "b"}  # fmt: skip


def test_follow_polls_new_events_from_where_it_stopped_until_the_job_ends(stubs: dict[str, Stubber]) -> None:
    states, jobs, logs = stubs["stepfunctions"], stubs["batch"], stubs["logs"]
    arn = EXECUTIONS + "mc"
    states.add_response("describe_execution", execution("mc"), {"executionArn": arn})
    stream = {"logGroupName": "/g", "logStreamName": "pricer/default/a0", "startFromHead": True, "limit": 10_000}
    # poll 1: the job runs; its stream is read to its end (the token comes back unchanged)
    jobs.add_response("list_jobs", {"jobSummaryList": []}, prefix("mc"))  # the Spot queue: shards only
    jobs.add_response("list_jobs", {"jobSummaryList": [summary("pre", "mc-preprocess", "RUNNING")]},
                      prefix("mc", OD_QUEUE))  # fmt: skip
    jobs.add_response("describe_jobs", {"jobs": [running_job("RUNNING")]}, {"jobs": ["pre"]})
    logs.add_response("get_log_events", page(["reading", "planning"], "f1"), stream)
    logs.add_response("get_log_events", page([], "f1"), stream | {"nextToken": "f1"})
    states.add_response("describe_execution", execution("mc"), {"executionArn": arn})
    # poll 2: it has ended, after one more event (a retry's second attempt streams into a0's successor)
    jobs.add_response("list_jobs", {"jobSummaryList": []}, prefix("mc"))  # the Spot queue: shards only
    jobs.add_response("list_jobs", {"jobSummaryList": [summary("pre", "mc-preprocess", "SUCCEEDED")]},
                      prefix("mc", OD_QUEUE))  # fmt: skip
    jobs.add_response("describe_jobs", {"jobs": [running_job("SUCCEEDED", streams=2)]}, {"jobs": ["pre"]})
    logs.add_response("get_log_events", page(["planned"], "f2"), stream | {"nextToken": "f1"})
    logs.add_response("get_log_events", page([], "f2"), stream | {"nextToken": "f2"})
    second = stream | {"logStreamName": "pricer/default/a1"}
    logs.add_response("get_log_events", page(["again"], "g1"), second)
    logs.add_response("get_log_events", page([], "g1"), second | {"nextToken": "g1"})
    printed: list[str] = []
    target = Target()
    target._outputs = OUTPUTS
    assert show_logs(target, "mc", stage="preprocess", follow=True, out=printed.append, poll=0) == 4
    assert printed == ["==> mc-preprocess, attempt 1 of 1 (RUNNING) <==", "reading", "planning", "planned",
                       "==> mc-preprocess, attempt 2 of 2 (SUCCEEDED) <==", "again"]  # fmt: skip
