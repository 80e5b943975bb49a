"""The AWS commands through the CLI against a moto server on 127.0.0.1 (AWS_ENDPOINT_URL): deploy, run --no-wait,
status, results, cancel, destroy, and their error paths. Executions are started, not run (the end-to-end runs are in
test_state_machines_e2e.py). Image builds use a fake `docker` that records its arguments: no Docker engine here.
"""

from __future__ import annotations

import json
import os
import socket
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from click.testing import CliRunner, Result
from moto.server import ThreadedMotoServer

from batchpipe.aws import clients, images
from batchpipe.aws import template as template_module
from batchpipe.cli import main
from batchpipe.jobs import pricer
from tests.conftest import EXAMPLE, small_portfolio
from tests.functional.test_template import for_moto

REGION = "us-east-1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    port = free_port()
    os.environ["MOTO_PORT"] = str(port)  # moto's server must know its own port
    srv = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    srv.start()
    yield f"http://127.0.0.1:{port}"
    srv.stop()


@pytest.fixture
def aws(server: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    import urllib.request

    urllib.request.urlopen(urllib.request.Request(f"{server}/moto-api/reset", method="POST"))
    for key, value in {"AWS_ENDPOINT_URL": server, "AWS_DEFAULT_REGION": REGION, "AWS_ACCESS_KEY_ID": "testing",
                       "AWS_SECRET_ACCESS_KEY": "testing", "AWS_CONFIG_FILE": str(tmp_path / "none"),
                       "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none")}.items():  # fmt: skip
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.delenv("BATCHPIPE_STACK", raising=False)
    real = template_module.build_template
    monkeypatch.setattr(template_module, "build_template", lambda folder=None: for_moto(real(folder)))
    clients.configure()
    yield
    clients.configure()


def fake_docker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A `docker` first on PATH that records its arguments (one call a line) in the returned log."""
    log = tmp_path / "docker.log"
    fake = tmp_path / "bin" / "docker"
    fake.parent.mkdir()
    fake.write_text(f'#!/bin/sh\necho "$@" >> {log}\nif [ "$1" = login ]; then cat > /dev/null; fi\n')
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{fake.parent}{os.pathsep}{os.environ['PATH']}")
    return log


def cli(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def outputs() -> dict[str, str]:
    stack = boto3.client("cloudformation").describe_stacks(StackName="batchpipe")["Stacks"][0]
    return {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}


def test_no_credentials_and_no_stack_say_what_to_do(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    result = cli("status")
    assert result.exit_code == 2
    assert result.stderr.strip() == "error: stack 'batchpipe' not found in us-east-1: run `batchpipe deploy`"
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    clients.configure()
    result = cli("status")
    assert result.exit_code == 2 and "no AWS credentials found" in result.stderr


def given_network() -> list[str]:
    """A VPC and two subnets of the user's (moto cannot delete a stack-made VPC in dependency order)."""
    ec2 = boto3.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24")["Subnet"]["SubnetId"] for i in (1, 2)]
    return ["--vpc-id", vpc, "--subnet-ids", ",".join(subnets)]


def test_deploy_run_status_results_cancel_destroy(aws: None, tmp_path: Path, blend_scene: Any) -> None:
    network = given_network()
    deployed = cli("deploy", "--no-build", *network)
    assert deployed.exit_code == 0, deployed.output
    out = outputs()
    assert set(out) >= {"BucketName", "JobQueueArn", "MonteCarloStateMachineArn", "RenderStateMachineArn"}
    again = cli("deploy", "--no-build", *network)
    assert again.exit_code == 0 and "nothing changed" in again.stdout

    portfolio = tmp_path / "portfolio.json"
    portfolio.write_text(json.dumps(small_portfolio()))
    started = cli("run", "montecarlo", str(portfolio), "--no-wait", "--job-name", "mc1", "--positions-per-job", "2")
    assert started.exit_code == 0, started.output
    arn = started.stdout.strip()
    sfn = boto3.client("stepfunctions")
    execution = sfn.describe_execution(executionArn=arn)
    payload = json.loads(execution["input"])
    bucket = out["BucketName"]
    assert payload == {"jobName": "mc1", "inputUri": f"s3://{bucket}/runs/mc1/input/portfolio.json",
                       "outputUri": f"s3://{bucket}/runs/mc1", "jobDefinitionArn": out["PricerJobDefinitionArn"],
                       "jobQueueArn": out["JobQueueArn"], "positionsPerJob": 2}  # fmt: skip
    batch = boto3.client("batch")
    assert batch.describe_job_queues(jobQueues=[payload["jobQueueArn"]])["jobQueues"]
    assert batch.describe_job_definitions(jobDefinitions=[payload["jobDefinitionArn"]])["jobDefinitions"]
    s3 = boto3.client("s3")
    assert json.loads(s3.get_object(Bucket=bucket, Key="runs/mc1/input/portfolio.json")["Body"].read())

    blend = blend_scene(start=1, end=4)
    started = cli("run", "render", str(blend), "--frames-per-job", "2", "--no-wait", "--job-name", "r1")
    assert started.exit_code == 0, started.output
    render_input = json.loads(sfn.describe_execution(executionArn=started.stdout.strip())["input"])
    assert render_input["framesPerJob"] == 2 and render_input["jobDefinitionArn"] == out["RenderJobDefinitionArn"]

    listed = cli("status", "--json")
    runs = {r["jobName"]: r for r in json.loads(listed.stdout)}
    assert runs["mc1"]["pipeline"] == "montecarlo" and runs["r1"]["pipeline"] == "render"
    assert runs["mc1"]["status"] == "RUNNING"
    one = json.loads(cli("status", "mc1", "--json").stdout)
    assert one["executionArn"] == arn and one["status"] == "RUNNING"

    # the pricer's own stages produce a collated result where the state machine would
    run_uri = f"s3://{bucket}/runs/mc1"
    pricer.main(["preprocess", "--input", payload["inputUri"], "--output", run_uri, "--job-name", "mc1"])
    pricer.main(["price", "--output", run_uri])
    pricer.main(["collate", "--output", run_uri])
    got = cli("results", "mc1", "--download", str(tmp_path / "dl"), "--json")
    assert got.exit_code == 0, got.output
    assert json.loads(got.stdout)["status"] == "SUCCEEDED"
    assert sorted(p.name for p in (tmp_path / "dl").iterdir()) == ["results.csv", "results.json"]

    cancelled = cli("cancel", "r1")
    assert cancelled.exit_code == 0, cancelled.output
    stopped_arn = cancelled.stdout.split()[1].rstrip(";")
    assert sfn.describe_execution(executionArn=stopped_arn)["status"] == "ABORTED"

    gone = cli("destroy", "--yes")
    assert gone.exit_code == 0, gone.output
    assert cli("status").exit_code == 2


def test_bad_input_uploads_nothing_and_reused_names_are_refused(aws: None, tmp_path: Path) -> None:
    assert cli("deploy", "--no-build").exit_code == 0
    bucket = outputs()["BucketName"]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(small_portfolio(positions=[{"notional": -1, "strike": 1, "barrier": 1}])))
    result = cli("run", "montecarlo", str(bad), "--no-wait", "--job-name", "bad")
    assert result.exit_code == 2 and "position 0, field notional" in result.stderr
    assert boto3.client("s3").list_objects_v2(Bucket=bucket).get("KeyCount", 0) == 0
    assert cli("run", "montecarlo", str(EXAMPLE), "--no-wait", "--job-name", "twice").exit_code == 0
    again = cli("run", "montecarlo", str(EXAMPLE), "--no-wait", "--job-name", "twice")
    assert again.exit_code == 2 and "job name 'twice' is already used" in again.stderr


def test_deploy_builds_and_pushes_with_docker_then_pins_the_images(
    aws: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = fake_docker(tmp_path, monkeypatch)
    result = cli("deploy")
    assert result.exit_code == 0, result.output
    out = outputs()
    calls = [line.split() for line in log.read_text().splitlines()]
    assert [c[0] for c in calls] == ["login", "build", "push", "build", "push"]
    assert calls[0][:4] == ["login", "--username", "AWS", "--password-stdin"]
    root = images.REPO_ROOT
    pricer_image = f"{out['PricerRepositoryUri']}:{images.content_tag(root, 'containers/pricer/Dockerfile')}"
    assert calls[1] == ["build", "--platform", "linux/amd64", "-f", "containers/pricer/Dockerfile", "-t",
                        pricer_image, str(root)]  # fmt: skip
    assert calls[2] == ["push", pricer_image]
    stack = boto3.client("cloudformation").describe_stacks(StackName="batchpipe")["Stacks"][0]
    params = {p["ParameterKey"]: p.get("ParameterValue") for p in stack["Parameters"]}
    assert params["PricerImage"] == pricer_image and params["RenderImage"].startswith(out["RenderRepositoryUri"])


def test_an_existing_stack_builds_what_ecr_lacks_then_pins_both_in_one_update(
    aws: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert cli("deploy", "--no-build").exit_code == 0
    out = outputs()
    render_tag = images.content_tag(images.REPO_ROOT, "containers/render/Dockerfile")
    manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                           "config": {"digest": "sha256:" + "0" * 64, "size": 1}, "layers": []})  # fmt: skip
    ecr = boto3.client("ecr")
    ecr.put_image(repositoryName=out["RenderRepositoryUri"].split("/", 1)[1], imageManifest=manifest,
                  imageTag=render_tag)  # fmt: skip
    log = fake_docker(tmp_path, monkeypatch)
    render_image = f"{out['RenderRepositoryUri']}:{render_tag}"
    planned = cli("deploy", "--dry-run")
    assert planned.exit_code == 0, planned.output
    assert f"render: {render_image} is already in ECR" in planned.stdout and not log.exists()
    assert "parameter PricerImage: " in planned.stdout and "build and push pricer" in planned.stdout
    result = cli("deploy")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "stack 'batchpipe' updated"
    assert [line.split()[0] for line in log.read_text().splitlines()] == ["login", "build", "push"]
    assert f"render: {render_image} is already in ECR" in " ".join(result.stderr.split())  # rich wraps lines
    cfn = boto3.client("cloudformation")
    stack = cfn.describe_stacks(StackName="batchpipe")["Stacks"][0]
    params = {p["ParameterKey"]: p.get("ParameterValue") for p in stack["Parameters"]}
    assert params["RenderImage"] == render_image and params["PricerImage"].startswith(out["PricerRepositoryUri"])
    events = [e for page in cfn.get_paginator("describe_stack_events").paginate(StackName="batchpipe")
              for e in page["StackEvents"]]  # fmt: skip
    stack_updates = [e for e in events if e["LogicalResourceId"] == "batchpipe" and
                     e["ResourceStatus"] == "UPDATE_IN_PROGRESS"]  # fmt: skip
    assert len(stack_updates) == 1


def test_deploy_without_docker_suggests_no_build(aws: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    result = cli("deploy")
    assert result.exit_code == 2 and "--no-build" in result.stderr


def test_dry_run_lists_changes_and_changes_nothing(aws: None) -> None:
    first = cli("deploy", "--no-build", "--dry-run")
    assert first.exit_code == 0 and first.stdout.startswith("create stack 'batchpipe' with ")
    assert cli("status").exit_code == 2  # still no stack
    network = given_network()
    assert cli("deploy", "--no-build", *network).exit_code == 0
    planned = cli("deploy", "--no-build", "--max-vcpus", "64", "--dry-run", *network)
    assert planned.exit_code == 0, planned.output
    stack = boto3.client("cloudformation").describe_stacks(StackName="batchpipe")["Stacks"][0]
    assert {p["ParameterKey"]: p["ParameterValue"] for p in stack["Parameters"]}["MaxvCpus"] == "256"


def test_paths_and_seed_travel_in_the_uploaded_portfolio(aws: None, tmp_path: Path) -> None:
    assert cli("deploy", "--no-build").exit_code == 0
    bucket = outputs()["BucketName"]
    result = cli("run", "montecarlo", str(EXAMPLE), "--no-wait", "--job-name", "ov", "--paths", "5000", "--seed", "3")
    assert result.exit_code == 0, result.output
    uploaded = json.loads(
        boto3.client("s3").get_object(Bucket=bucket, Key="runs/ov/input/portfolio.json")["Body"].read()
    )
    assert uploaded["simulation"] == {"paths": 5000, "seed": 3}
    assert uploaded["positions"] == json.loads(EXAMPLE.read_text())["positions"]
