"""The state machines' Lambda handler: payload normalisation and commands (pure), and its packaging limits."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

from batchpipe.aws import handlers

SOURCE = Path(handlers.__file__)
ARNS = {
    "jobDefinitionArn": "arn:aws:batch:us-east-1:123456789012:job-definition/pricer:1",
    "jobQueueArn": "arn:aws:batch:us-east-1:123456789012:job-queue/batchpipe",
}


def workshop_montecarlo() -> dict[str, str]:
    # the workshop's start-execution input, unchanged
    return {"jobName": "MCAutocallable", "inputUri": "s3://bucket/portfolio.json", "outputUri": "s3://bucket/MCAutocallable",
            **ARNS}  # fmt: skip


def test_workshop_montecarlo_payload_builds_the_three_commands() -> None:
    out = handlers.handler({"action": "prepare", "pipeline": "montecarlo", "input": workshop_montecarlo()}, None)
    expected = ["preprocess", "--input", "s3://bucket/portfolio.json", "--output", "s3://bucket/MCAutocallable",
                "--job-name", "MCAutocallable"]  # fmt: skip
    assert out["preprocessCommand"] == expected
    assert out["shardCommand"] == ["price", "--output", "s3://bucket/MCAutocallable"]
    assert out["collateCommand"] == ["collate", "--output", "s3://bucket/MCAutocallable"]
    assert out["planUri"] == "s3://bucket/MCAutocallable/plan.json"
    assert out["resultUri"] == "s3://bucket/MCAutocallable/results.json"


@pytest.mark.parametrize("frames", ["1", 1, " 4 "])
def test_render_payload_accepts_frames_per_job_as_string_or_number(frames: object) -> None:
    payload = {"jobName": "Pottery", "inputUri": "s3://b/pottery.blend", "outputUri": "s3://b/Pottery/", **ARNS,
               "framesPerJob": frames}  # fmt: skip
    out = handlers.prepare({"pipeline": "render", "input": payload})
    assert out["preprocessCommand"][-2:] == ["--frames-per-job", str(int(str(frames).strip()))]
    assert out["shardCommand"] == ["render", "--output", "s3://b/Pottery"]
    assert out["resultUri"] == "s3://b/Pottery/render.json"


def test_render_preview_options_travel_to_the_preprocess_job() -> None:
    payload = {"jobName": "Pottery", "inputUri": "s3://b/pottery.blend", "outputUri": "s3://b/Pottery", **ARNS,
               "framesPerJob": 2, "frames": "5-9", "resolutionPercentage": "50", "samples": 4}  # fmt: skip
    command = handlers.prepare({"pipeline": "render", "input": payload})["preprocessCommand"]
    assert command[5:] == ["--job-name", "Pottery", "--frames-per-job", "2", "--frames", "5-9",
                           "--resolution-percentage", "50", "--samples", "4"]  # fmt: skip
    plain = handlers.prepare({"pipeline": "render", "input": {**payload, "frames": None, "samples": None,
                                                               "resolutionPercentage": ""}})  # fmt: skip
    assert plain["preprocessCommand"][-2:] == ["--frames-per-job", "2"]
    for bad, message in (({"frames": "5..9"}, "frames '5..9': expected START-END"),
                         ({"frames": "-1-3"}, "frames '-1-3'"), ({"samples": 0}, "samples 0: must be at least 1"),
                         ({"resolutionPercentage": "half"}, "resolutionPercentage 'half'")):  # fmt: skip
        with pytest.raises(ValueError, match=message):
            handlers.prepare({"pipeline": "render", "input": {**payload, **bad}})


def test_positions_per_job_is_passed_when_given() -> None:
    out = handlers.prepare({"pipeline": "montecarlo", "input": {**workshop_montecarlo(), "positionsPerJob": "5"}})
    assert out["preprocessCommand"][-2:] == ["--positions-per-job", "5"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"jobName": ""}, "jobName is required"),
        ({"jobName": "bad name"}, "jobName 'bad name'"),
        ({"inputUri": "/local/file"}, "inputUri '/local/file': expected an s3:// URI"),
        ({"jobQueueArn": None}, "jobQueueArn is required"),
        ({"positionsPerJob": "0"}, "positionsPerJob '0': must be at least 1"),
        ({"positionsPerJob": "five"}, "positionsPerJob 'five': expected a whole number"),
    ],
)
def test_bad_payloads_are_named(change: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        handlers.prepare({"pipeline": "montecarlo", "input": {**workshop_montecarlo(), **change}})


def test_render_needs_frames_per_job() -> None:
    payload = {"jobName": "P", "inputUri": "s3://b/p.blend", "outputUri": "s3://b/P", **ARNS}
    with pytest.raises(ValueError, match="framesPerJob is required"):
        handlers.prepare({"pipeline": "render", "input": payload})


def test_handler_fits_inline_lambda_code_and_imports_only_the_runtime() -> None:
    assert len(SOURCE.read_bytes()) < 4096  # CloudFormation's limit for inline ZipFile code
    imported = set()
    for node in ast.walk(ast.parse(SOURCE.read_text())):
        if isinstance(node, ast.Import):
            imported |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
    assert imported <= set(sys.stdlib_module_names) | {"boto3"}, imported


@pytest.mark.parametrize("pipeline", ["montecarlo", "render"])
def test_a_resumed_execution_passes_resume_to_the_shard_command(pipeline: str) -> None:
    payload = {**workshop_montecarlo(), "framesPerJob": "1"}
    plain = handlers.prepare({"pipeline": pipeline, "input": payload})
    resumed = handlers.prepare({"pipeline": pipeline, "input": {**payload, "resume": True}})
    assert "--resume" not in plain["shardCommand"]
    assert resumed["shardCommand"] == [*plain["shardCommand"], "--resume"]
    assert resumed["preprocessCommand"] == plain["preprocessCommand"]
