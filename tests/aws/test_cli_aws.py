"""The AWS commands through the CLI against a moto server on 127.0.0.1 (AWS_ENDPOINT_URL): deploy, run --no-wait,
status, results, cancel, destroy, and their error paths. Executions are started, not run (the end-to-end runs are in
test_state_machines_e2e.py). Image builds use fake builders that record their calls (tests/aws/builders.py): no
container engine here.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from click.testing import CliRunner, Result

from batchpipe.aws import clients, images
from batchpipe.aws import template as template_module
from batchpipe.cli import main
from batchpipe.jobs import pricer
from tests.aws.builders import FakeBuilders, digests, fake_builders
from tests.conftest import EXAMPLE, ROOT, small_portfolio
from tests.functional.test_template import for_moto

REGION = "us-east-1"
MANIFEST = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                       "config": {"digest": "sha256:" + "0" * 64, "size": 1}, "layers": []})  # fmt: skip


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


def builders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *names: str) -> FakeBuilders:
    """Fakes of these builders as the whole PATH (a real docker, podman or buildah may be installed here)."""
    fakes = fake_builders(tmp_path, *names)
    monkeypatch.setenv("PATH", str(fakes.bin))
    return fakes


def given_pushed(*images: str) -> None:
    """Each image (REPOSITORY_URI:TAG) in ECR, as a push leaves it."""
    ecr = boto3.client("ecr")
    for image in images:
        repository, tag = image.split("/", 1)[1].rsplit(":", 1)
        ecr.put_image(repositoryName=repository, imageManifest=MANIFEST, imageTag=tag)


def latest_images() -> list[str]:
    """What a --no-build deploy leaves the job definitions on."""
    out = outputs()
    return [f"{out['PricerRepositoryUri']}:latest", f"{out['RenderRepositoryUri']}:latest"]


def parameters() -> dict[str, str]:
    stack = boto3.client("cloudformation").describe_stacks(StackName="batchpipe")["Stacks"][0]
    return {p["ParameterKey"]: p.get("ParameterValue", "") for p in stack["Parameters"]}


def ecr_password() -> str:
    token = boto3.client("ecr").get_authorization_token()["authorizationData"][0]["authorizationToken"]
    return base64.b64decode(token).decode().split(":", 1)[1]


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
    given_pushed(*latest_images())
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

    # every resource is tagged with the stack (its tag on the stack), for cost allocation
    [described] = boto3.client("cloudformation").describe_stacks(StackName="batchpipe")["Stacks"]
    assert {"Key": "batchpipe:stack", "Value": "batchpipe"} in described["Tags"]
    # a revision of the stack's job definition that the stack no longer holds (what an update leaves ACTIVE with
    # SkipDeregisterOnUpdate): destroy deregisters it; the stack's own is CloudFormation's to deregister
    current = out["PricerJobDefinitionArn"]
    name = current.rsplit("/", 1)[1].split(":")[0]
    left = batch.register_job_definition(jobDefinitionName=name, type="container",
                                         containerProperties={"image": "i", "vcpus": 1, "memory": 512})  # fmt: skip
    gone = cli("destroy", "--yes")
    assert gone.exit_code == 0, gone.output
    assert cli("status").exit_code == 2
    [revision] = batch.describe_job_definitions(jobDefinitions=[left["jobDefinitionArn"]])["jobDefinitions"]
    assert revision["status"] == "INACTIVE"


def test_bad_input_uploads_nothing_and_reused_names_are_refused(aws: None, tmp_path: Path) -> None:
    assert cli("deploy", "--no-build").exit_code == 0
    given_pushed(*latest_images())
    bucket = outputs()["BucketName"]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(small_portfolio(positions=[{"notional": -1, "strike": 1, "barrier": 1}])))
    result = cli("run", "montecarlo", str(bad), "--no-wait", "--job-name", "bad")
    assert result.exit_code == 2 and "position 0, field notional" in result.stderr
    assert boto3.client("s3").list_objects_v2(Bucket=bucket).get("KeyCount", 0) == 0
    assert cli("run", "montecarlo", str(EXAMPLE), "--no-wait", "--job-name", "twice").exit_code == 0
    again = cli("run", "montecarlo", str(EXAMPLE), "--no-wait", "--job-name", "twice")
    assert again.exit_code == 2 and "job name 'twice' is already used" in again.stderr


def test_deploy_builds_and_pushes_with_docker_from_any_directory_then_pins_the_images(
    aws: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fakes = builders(tmp_path, monkeypatch, "docker", "podman", "buildah")  # docker comes first
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    result = cli("deploy")
    assert result.exit_code == 0, result.output
    out = outputs()
    contexts = images.contexts()
    pricer_image = f"{out['PricerRepositoryUri']}:{contexts['pricer'].tag()}"
    render_image = f"{out['RenderRepositoryUri']}:{contexts['render'].tag()}"
    calls = fakes.calls()
    assert [(c["exe"], c["argv"][0]) for c in calls] == [("docker", verb) for verb in
                                                         ("login", "build", "push", "build", "push")]  # fmt: skip
    login, build, push, _, render_push = calls
    assert login["argv"][:-1] == ["login", "--username", "AWS", "--password-stdin"]
    assert login["stdin"] == ecr_password() and not [a for c in calls for a in c["argv"] if ecr_password() in a]
    context = build["argv"][-1]
    assert build["argv"] == ["build", "--platform", "linux/amd64", "-f", f"{context}/containers/pricer/Dockerfile",
                             "-t", pricer_image, context]  # fmt: skip
    assert build["context"] == digests(contexts["pricer"].files)  # exactly the files the tag covers
    assert {"pyproject.toml", "README.md", "src/batchpipe/cli/__init__.py"} <= set(build["context"])
    assert not [f for f in build["context"] if "__pycache__" in f or f.startswith(("containers/render", ".venv"))]
    assert push["argv"] == ["push", pricer_image] and render_push["argv"] == ["push", render_image]
    assert not list(elsewhere.iterdir()) and not Path(context).exists()  # the context was a temporary directory
    params = parameters()
    assert params["PricerImage"] == pricer_image and params["RenderImage"] == render_image
    assert "not in ECR" not in result.stderr


@pytest.mark.parametrize("name", ["podman", "buildah"])
def test_without_docker_deploy_builds_with_podman_or_buildah(
    aws: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    fakes = builders(tmp_path, monkeypatch, *(["podman", "buildah"] if name == "podman" else ["buildah"]))
    result = cli("deploy")
    assert result.exit_code == 0, result.output
    out = outputs()
    contexts = images.contexts()
    pricer_image = f"{out['PricerRepositoryUri']}:{contexts['pricer'].tag()}"
    calls = fakes.calls()
    assert {c["exe"] for c in calls} == {name} and len(calls) == 5
    login, build, push = calls[:3]
    registry = out["PricerRepositoryUri"].split("/", 1)[0]
    assert login["argv"] == ["login", "--username", "AWS", "--password-stdin", registry]
    assert login["stdin"] == ecr_password()
    context = build["argv"][-1]
    assert build["argv"] == ["bud" if name == "buildah" else "build", "--platform", "linux/amd64", "-f",
                             f"{context}/containers/pricer/Dockerfile", "-t", pricer_image, context]  # fmt: skip
    assert build["context"] == digests(contexts["pricer"].files)
    assert push["argv"] == (["push", pricer_image, f"docker://{pricer_image}"] if name == "buildah" else
                            ["push", pricer_image])  # fmt: skip
    assert parameters()["PricerImage"] == pricer_image


def test_builder_picks_one_and_a_missing_builder_is_one_line(
    aws: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fakes = builders(tmp_path, monkeypatch, "docker", "buildah")
    missing = cli("deploy", "--builder", "podman")
    assert missing.exit_code == 2 and fakes.calls() == []
    assert missing.stderr == ("error: podman not found on PATH: install it, pick another with --builder "
                              "docker|podman|buildah, or deploy with --no-build\n")  # fmt: skip
    assert cli("status").exit_code == 2  # nothing was deployed
    chosen = cli("deploy", "--builder", "buildah")
    assert chosen.exit_code == 0, chosen.output
    assert [c["exe"] for c in fakes.calls()] == ["buildah"] * 5
    refused = cli("deploy", "--no-build", "--builder", "docker")
    assert refused.exit_code == 2 and "--builder is for building the images" in refused.stderr


def test_an_existing_stack_builds_what_ecr_lacks_then_pins_both_in_one_update(
    aws: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert cli("deploy", "--no-build").exit_code == 0
    out = outputs()
    render_image = f"{out['RenderRepositoryUri']}:{images.contexts()['render'].tag()}"
    given_pushed(render_image)
    fakes = builders(tmp_path, monkeypatch, "docker")
    planned = cli("deploy", "--dry-run")
    assert planned.exit_code == 0, planned.output
    assert f"render: {render_image} is already in ECR" in planned.stdout and fakes.calls() == []
    assert "parameter PricerImage: " in planned.stdout and "build and push pricer" in planned.stdout
    result = cli("deploy")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "stack 'batchpipe' updated"
    assert [argv[0] for argv in fakes.argvs()] == ["login", "build", "push"]
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


def test_no_builder_at_all_is_one_line_naming_the_three_and_no_build(
    aws: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    for args in (["deploy"], ["deploy", "--dry-run"]):
        result = cli(*args)
        assert result.exit_code == 2
        assert result.stderr == ("error: no image builder on PATH: install docker, podman or buildah (--builder "
                                 "docker|podman|buildah picks one), or deploy with --no-build\n")  # fmt: skip
    assert cli("status").exit_code == 2  # nothing was deployed


def test_no_build_says_no_image_is_pushed_and_run_refuses_until_one_is(aws: None, tmp_path: Path) -> None:
    portfolio = tmp_path / "portfolio.json"
    portfolio.write_text(json.dumps(small_portfolio()))
    planned = cli("deploy", "--no-build", "--dry-run")
    assert planned.exit_code == 0 and "no image is built (--no-build)" in planned.stdout
    deployed = cli("deploy", "--no-build")
    assert deployed.exit_code == 0, deployed.output
    assert deployed.stdout == "stack 'batchpipe' created\n"
    pricer_latest, render_latest = latest_images()
    assert deployed.stderr.splitlines()[-1] == (
        f"no image is pushed yet: {pricer_latest} and {render_latest} are not in ECR, so `batchpipe run` refuses to "
        "start runs: build and push the images with `batchpipe deploy` (docker, podman or buildah)")  # fmt: skip
    bucket = outputs()["BucketName"]
    refused = cli("run", "montecarlo", str(portfolio), "--no-wait", "--job-name", "mc")
    assert refused.exit_code == 2
    assert refused.stderr == (f"error: image {pricer_latest} is not in ECR: the montecarlo run's jobs could not pull "
                              "it (build and push the images with `batchpipe deploy`)\n")  # fmt: skip
    assert boto3.client("s3").list_objects_v2(Bucket=bucket).get("KeyCount", 0) == 0  # nothing uploaded
    sfn = boto3.client("stepfunctions")
    assert not sfn.list_executions(stateMachineArn=outputs()["MonteCarloStateMachineArn"])["executions"]

    given_pushed(pricer_latest)
    again = cli("deploy", "--no-build")  # nothing changes; one image still missing
    assert again.exit_code == 0 and again.stderr.splitlines()[-1].startswith(f"image {render_latest} is not in ECR")
    started = cli("run", "montecarlo", str(portfolio), "--no-wait", "--job-name", "mc")
    assert started.exit_code == 0, started.output
    scene = ROOT / "tests" / "data" / "golden" / "render" / "scene.blend"  # saved by Blender
    render = cli("run", "render", str(scene), "--no-wait", "--job-name", "r")
    assert render.exit_code == 2 and f"image {render_latest} is not in ECR" in render.stderr

    # a resume starts an execution too: refused once the image is gone from ECR
    assert cli("cancel", "mc").exit_code == 0
    repository = pricer_latest.split("/", 1)[1].rsplit(":", 1)[0]
    boto3.client("ecr").batch_delete_image(repositoryName=repository, imageIds=[{"imageTag": "latest"}])
    resumed = cli("run", "montecarlo", str(portfolio), "--resume", "mc", "--no-wait")
    assert resumed.exit_code == 2 and f"image {pricer_latest} is not in ECR" in resumed.stderr


def test_in_ecr_answers_by_tag_or_digest_and_only_for_this_regions_ecr(aws: None) -> None:
    repository_uri = boto3.client("ecr").create_repository(repositoryName="team/pricer")["repository"]["repositoryUri"]
    assert images.in_ecr(f"{repository_uri}:latest") is False and images.in_ecr(repository_uri) is False
    given_pushed(f"{repository_uri}:v1")
    digest = boto3.client("ecr").describe_images(repositoryName=repository_uri.split("/", 1)[1])["imageDetails"][0][
        "imageDigest"
    ]
    assert images.in_ecr(f"{repository_uri}:v1") is True and images.in_ecr(f"{repository_uri}@{digest}") is True
    assert images.in_ecr(f"{repository_uri}@sha256:{'1' * 64}") is False
    assert images.in_ecr(f"{repository_uri.rsplit('/', 1)[0]}/no-such-repository:v1") is False
    assert images.in_ecr("public.ecr.aws/docker/library/python:3.11-slim") is None  # not ours to check
    assert images.in_ecr(repository_uri.replace(f".{REGION}.", ".eu-west-1.") + ":v1") is None


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
    given_pushed(*latest_images())
    bucket = outputs()["BucketName"]
    result = cli("run", "montecarlo", str(EXAMPLE), "--no-wait", "--job-name", "ov", "--paths", "5000", "--seed", "3")
    assert result.exit_code == 0, result.output
    uploaded = json.loads(
        boto3.client("s3").get_object(Bucket=bucket, Key="runs/ov/input/portfolio.json")["Body"].read()
    )
    assert uploaded["simulation"] == {"paths": 5000, "seed": 3}
    assert uploaded["positions"] == json.loads(EXAMPLE.read_text())["positions"]


def test_greeks_and_scenarios_travel_in_the_uploaded_portfolio(aws: None, tmp_path: Path) -> None:
    assert cli("deploy", "--no-build").exit_code == 0
    given_pushed(*latest_images())
    bucket = outputs()["BucketName"]
    result = cli("run", "montecarlo", str(EXAMPLE), "--no-wait", "--job-name", "risk", "--greeks", "--vol-bump",
                 "0.02", "--scenarios", "spot=-10%:10%:10%", "--paths", "2048")  # fmt: skip
    assert result.exit_code == 0, result.output
    uploaded = json.loads(
        boto3.client("s3").get_object(Bucket=bucket, Key="runs/risk/input/portfolio.json")["Body"].read()
    )
    assert uploaded["greeks"] == {"spotBump": 0.01, "volBump": 0.02, "rateBump": 0.0001}
    assert uploaded["scenarios"] == {"spot": [-0.1, 0.0, 0.1], "vol": [0.0]}
    assert uploaded["simulation"] == {"paths": 2048}
    assert uploaded["positions"] == json.loads(EXAMPLE.read_text())["positions"]
    # the pricer's stages over S3 read them from there, and the run's files include the ladder's
    run_uri = f"s3://{bucket}/runs/risk"
    pricer.main(["preprocess", "--input", f"{run_uri}/input/portfolio.json", "--output", run_uri, "--job-name",
                 "risk", "--positions-per-job", "24"])  # fmt: skip
    for shard in range(2):
        pricer.main(["price", "--output", run_uri, "--shard", str(shard)])
    pricer.main(["collate", "--output", run_uri])
    got = cli("results", "risk", "--download", str(tmp_path / "dl"), "--json")
    assert got.exit_code == 0, got.output
    doc = json.loads(got.stdout)
    assert doc["totalGreeks"]["vega"] < 0 and len(doc["scenarios"]["totalPv"]) == 3
    assert sorted(p.name for p in (tmp_path / "dl").iterdir()) == ["results.csv", "results.json", "scenarios.csv"]
    assert len((tmp_path / "dl" / "scenarios.csv").read_text().splitlines()) == 1 + 48 * 3
    refused = cli("run", "montecarlo", str(EXAMPLE), "--no-wait", "--job-name", "risk2", "--greeks", "--vol-bump",
                  "0.5")  # fmt: skip
    assert refused.exit_code == 2 and "--vol-bump 0.5: sqrt(v0)" in refused.stderr  # checked before any upload
    listed = boto3.client("s3").list_objects_v2(Bucket=bucket, Prefix="runs/risk2/")
    assert listed.get("KeyCount", 0) == 0
