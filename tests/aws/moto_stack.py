"""The resources batchpipe's template would create, made directly through moto's APIs (`Stack`), and the `stack`
fixture: moto in-process with the runtime patches of tests/aws/moto_runtime.py, so state machines execute end to
end."""

from __future__ import annotations

import io
import json
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import moto
import pytest

from batchpipe.aws import clients, handlers, stranded
from batchpipe.aws.stack import StackOutputs
from batchpipe.aws.template import template_dir
from tests.aws.moto_runtime import CONFIG, BatchRuntime, patched

ROOT = Path(__file__).resolve().parents[2]
BUCKET = "batchpipe-e2e"
STACK_NAME = "batchpipe-e2e"


class Stack:
    """The resources the template would create, made directly through the APIs."""

    def __init__(self, runtime: BatchRuntime) -> None:
        self.runtime = runtime
        iam = clients.client("iam")
        role = iam.create_role(RoleName="batchpipe-e2e", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        self.s3 = clients.client("s3")
        self.s3.create_bucket(Bucket=BUCKET)
        functions = {}
        for name, module in (("plan", handlers), ("stranded", stranded)):
            code = io.BytesIO()
            with zipfile.ZipFile(code, "w") as zf:
                zf.writestr("index.py", Path(module.__file__).read_text())
            functions[name] = clients.client("lambda").create_function(
                FunctionName=f"batchpipe-{name}", Runtime="python3.12", Role=role, Handler="index.handler",
                Code={"ZipFile": code.getvalue()},
            )["FunctionArn"]  # fmt: skip
        batch = clients.client("batch")
        env = batch.create_compute_environment(computeEnvironmentName="batchpipe-ce", type="UNMANAGED",
                                               serviceRole=role)["computeEnvironmentArn"]  # fmt: skip
        self.queue, self.on_demand_queue = (
            batch.create_job_queue(
                jobQueueName=f"batchpipe-{kind}", priority=1, state="ENABLED",
                computeEnvironmentOrder=[{"order": 1, "computeEnvironment": env}],
            )["jobQueueArn"]
            for kind in ("spot", "ondemand")
        )  # fmt: skip
        self.definitions = {
            name: batch.register_job_definition(
                jobDefinitionName=f"batchpipe-{name}", type="container",
                containerProperties={"image": f"{name}:test", "vcpus": 1, "memory": 512, "logConfiguration": {
                    "logDriver": "awslogs", "options": {"awslogs-group": "/batchpipe/e2e/batch"}}},
            )["jobDefinitionArn"]
            for name in ("pricer", "render")
        }  # fmt: skip
        self.sfn = clients.client("stepfunctions")
        self.machines = {}
        for name in ("montecarlo", "render"):
            asl = (template_dir() / f"{name}.asl.json").read_text()
            for variable, value in {"PlanFunctionArn": functions["plan"], "StrandedFunctionArn": functions["stranded"],
                                    "OnDemandJobQueueArn": self.on_demand_queue, "AWS::Partition": "aws",
                                    "AWS::StackName": STACK_NAME}.items():  # fmt: skip
                asl = asl.replace("${" + variable + "}", value)
            self.machines[name] = self.sfn.create_state_machine(name=f"batchpipe-{name}", definition=asl,
                                                                roleArn=role)["stateMachineArn"]  # fmt: skip

    def outputs(self) -> StackOutputs:
        return StackOutputs(BUCKET, self.queue, self.definitions["pricer"], self.definitions["render"],
                            self.machines["montecarlo"], self.machines["render"], "pricer", "render",
                            self.on_demand_queue)  # fmt: skip

    def put(self, key: str, body: bytes) -> str:
        self.s3.put_object(Bucket=BUCKET, Key=key, Body=body)
        return f"s3://{BUCKET}/{key}"

    def payload(self, pipeline: str, job: str, input_uri: str, **extra: Any) -> dict[str, Any]:
        definition = self.definitions["pricer" if pipeline == "montecarlo" else "render"]
        return {"jobName": job, "inputUri": input_uri, "outputUri": f"s3://{BUCKET}/{job}",
                "jobDefinitionArn": definition, "jobQueueArn": self.queue, **extra}  # fmt: skip

    def execute(self, pipeline: str, payload: dict[str, Any]) -> dict[str, Any]:
        machine = self.machines[pipeline]
        started = self.sfn.start_execution(stateMachineArn=machine, name=payload["jobName"], input=json.dumps(payload))
        arn = started["executionArn"]
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            desc: dict[str, Any] = self.sfn.describe_execution(executionArn=arn)
            if desc["status"] != "RUNNING":
                return desc
            time.sleep(0.1)
        raise AssertionError("execution did not finish")

    def result(self, job: str, name: str) -> dict[str, Any]:
        doc: dict[str, Any] = json.loads(self.s3.get_object(Bucket=BUCKET, Key=f"{job}/{name}")["Body"].read())
        return doc


@pytest.fixture
def stack(monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    for key, value in {"AWS_DEFAULT_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "testing",
                       "AWS_SECRET_ACCESS_KEY": "testing"}.items():  # fmt: skip
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    clients.client.cache_clear()
    with moto.mock_aws(config=CONFIG), patched(BatchRuntime()) as runtime:  # type: ignore[arg-type]
        yield Stack(runtime)
    clients.client.cache_clear()
