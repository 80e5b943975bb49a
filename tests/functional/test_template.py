"""The stack's template (batchpipe/resources/cloudformation/template.json): lints clean, passes checkov, creates in
moto, and grants least privilege.

The template refers to the state machines' ASL as "@asl:NAME" (the first argument of their Fn::Sub) and to the
Lambda's code as "@lambda:handlers.py"; `build_template` fills them in as the deploy will.
"""

from __future__ import annotations

import copy
import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from batchpipe.aws.template import build_template, template_dir

CHECKOV_CONFIG = template_dir() / "checkov-skips.yaml"
REGION = "us-east-1"
OUTPUTS = [
    "BucketName",
    "JobQueueArn",
    "OnDemandJobQueueArn",
    "PricerJobDefinitionArn",
    "RenderJobDefinitionArn",
    "MonteCarloStateMachineArn",
    "RenderStateMachineArn",
    "PricerRepositoryUri",
    "RenderRepositoryUri",
]
# The only actions that may be granted on Resource "*": they accept no resource-level permissions.
STAR_RESOURCE_ACTIONS = {
    "batch:DescribeJobs",
    "batch:ListJobs",
    "batch:TerminateJob",
    "ecr:GetAuthorizationToken",
    "logs:CreateLogDelivery",
    "logs:GetLogDelivery",
    "logs:UpdateLogDelivery",
    "logs:DeleteLogDelivery",
    "logs:ListLogDeliveries",
    "logs:PutResourcePolicy",
    "logs:DescribeResourcePolicies",
    "logs:DescribeLogGroups",
}
MANAGED_POLICIES = {"service-role/AmazonEC2ContainerServiceforEC2Role"}


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return build_template()


@pytest.fixture(scope="module")
def template_file(template: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cfn") / "template.json"
    path.write_text(json.dumps(template, indent=2))
    return path


def strings(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for value in node.values():
            yield from strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from strings(value)
    elif isinstance(node, str):
        yield node


def test_build_fills_every_placeholder(template: dict[str, Any]) -> None:
    assert not [s for s in strings(template) if s.startswith(("@asl:", "@lambda:"))]
    for name in ("MonteCarloStateMachine", "RenderStateMachine"):
        text, variables = template["Resources"][name]["Properties"]["DefinitionString"]["Fn::Sub"]
        assert "StartAt" in json.loads(text)
        assert set(variables) == {"PlanFunctionArn", "StrandedFunctionArn", "OnDemandJobQueueArn"}
        pseudo = {"AWS::Partition", "AWS::StackName"}  # CloudFormation's own, filled in by Fn::Sub
        assert set(re.findall(r"\$\{([^}!]+)\}", text)) == set(variables) | pseudo
    for function in ("PlanFunction", "StrandedFunction"):
        code = template["Resources"][function]["Properties"]["Code"]["ZipFile"]
        assert "def handler(" in code and len(code.encode()) < 4096  # CloudFormation's limit on inline code


# --- static checks ---------------------------------------------------------------------------------------------------


def tool(name: str) -> str:
    """A console script of this virtual environment (installed by `make install` from the dev extra)."""
    path = Path(sys.executable).with_name(name)
    found = str(path) if path.exists() else shutil.which(name)
    assert found, f"{name} is not installed: run `make install`"
    return found


def test_cfn_lint_reports_no_errors_or_warnings(template_file: Path) -> None:
    run = subprocess.run(
        [tool("cfn-lint"), "--format", "json", "--regions", "us-east-1", "eu-west-1", "ap-southeast-2",
         "--", str(template_file)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert run.stdout.strip(), run.stderr
    findings = [m for m in json.loads(run.stdout) if m["Level"] in ("Error", "Warning")]
    assert not findings, "\n".join(f"{m['Rule']['Id']} {m['Location']['Path']}: {m['Message']}" for m in findings)


@pytest.fixture(scope="module")
def checkov_report(template_file: Path) -> dict[str, Any]:
    run = subprocess.run(
        [tool("checkov"), "--config-file", str(CHECKOV_CONFIG), "-f", str(template_file), "-o", "json"],
        capture_output=True, text=True, check=False, cwd=template_file.parent,
    )  # fmt: skip
    assert run.stdout.strip().startswith(("{", "[")), run.stdout[-2000:] + run.stderr[-2000:]
    report = json.loads(run.stdout)
    reports = report if isinstance(report, list) else [report]
    (found,) = [r for r in reports if r.get("check_type") == "cloudformation"]
    result: dict[str, Any] = found
    return result


def test_checkov_passes_with_only_the_listed_skips(checkov_report: dict[str, Any]) -> None:
    summary = checkov_report["summary"]
    failed = [f"{c['check_id']} {c['resource']}: {c['check_name']}" for c in checkov_report["results"]["failed_checks"]]
    assert failed == [] and summary["failed"] == 0
    assert summary["parsing_errors"] == 0
    assert summary["resource_count"] >= 30 and summary["passed"] >= 50  # it did scan the whole template


def test_every_checkov_skip_has_a_reason() -> None:
    config = yaml.safe_load(CHECKOV_CONFIG.read_text())
    assert config["framework"] == ["cloudformation"]
    skips = config["skip-check"]
    assert skips and len(skips) == len(set(skips))
    reasons = dict(re.findall(r"^\s*-\s*(CKV\w+)\s*#(.*)$", CHECKOV_CONFIG.read_text(), flags=re.MULTILINE))
    for check in skips:
        assert reasons.get(check, "").strip(), f"{check} is skipped without a reason (`- {check}  # why`)"


def policy_statements(template: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(resource, statement) for every identity-policy statement: roles' inline policies and policy resources."""
    for name, resource in template["Resources"].items():
        props = resource.get("Properties", {})
        documents = []
        if resource["Type"] in ("AWS::IAM::Role", "AWS::IAM::User", "AWS::IAM::Group"):
            documents = [p["PolicyDocument"] for p in props.get("Policies", [])]
        elif resource["Type"] in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy", "AWS::IAM::RolePolicy"):
            documents = [props["PolicyDocument"]]
        for document in documents:
            statements = document["Statement"]
            for statement in statements if isinstance(statements, list) else [statements]:
                yield name, statement


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def privilege_problems(template: dict[str, Any]) -> list[str]:
    problems = []
    for name, st in policy_statements(template):
        where = f"{name} {st.get('Sid', '')}".strip()
        if st.get("Effect") != "Allow":
            continue
        if "NotAction" in st or "NotResource" in st:
            problems.append(f"{where}: NotAction/NotResource grant everything else")
        actions = [a for a in as_list(st.get("Action", [])) if isinstance(a, str)]
        problems += [f"{where}: wildcard action {a!r}" for a in actions if "*" in a]
        if "*" in as_list(st.get("Resource", [])):
            problems += [f"{where}: {a} on Resource '*'" for a in actions if a not in STAR_RESOURCE_ACTIONS]
    for name, resource in template["Resources"].items():
        for arn in resource.get("Properties", {}).get("ManagedPolicyArns", []):
            text = arn.get("Fn::Sub", "") if isinstance(arn, dict) else arn
            if not any(text.endswith(f":iam::aws:policy/{allowed}") for allowed in MANAGED_POLICIES):
                problems.append(f"{name}: managed policy {arn}")
    return problems


def test_policies_grant_least_privilege(template: dict[str, Any]) -> None:
    assert len(list(policy_statements(template))) >= 8
    assert privilege_problems(template) == []


@pytest.mark.parametrize(
    "statement",
    [
        {"Effect": "Allow", "Action": "*", "Resource": {"Fn::GetAtt": ["DataBucket", "Arn"]}},
        {"Effect": "Allow", "Action": ["s3:*"], "Resource": {"Fn::GetAtt": ["DataBucket", "Arn"]}},
        {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"},
        {"Effect": "Allow", "NotAction": "iam:*", "Resource": {"Fn::GetAtt": ["DataBucket", "Arn"]}},
    ],
    ids=["star-action", "service-wildcard", "star-resource", "not-action"],
)
def test_privilege_check_catches_wildcards(template: dict[str, Any], statement: dict[str, Any]) -> None:
    widened = copy.deepcopy(template)
    widened["Resources"]["JobRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"].append(statement)
    assert privilege_problems(widened)


def test_jobs_retry_only_when_the_host_goes_away(template: dict[str, Any]) -> None:
    for name in ("PricerJobDefinition", "RenderJobDefinition"):
        props = template["Resources"][name]["Properties"]
        assert props["RetryStrategy"]["EvaluateOnExit"] == [
            {"OnStatusReason": "Host EC2*", "Action": "RETRY"},
            {"OnReason": "*", "Action": "EXIT"},
        ]
        assert props["ContainerProperties"]["Privileged"] is False
        assert props["ContainerProperties"]["JobRoleArn"] == {"Fn::GetAtt": ["JobRole", "Arn"]}


def test_data_bucket_is_private_encrypted_and_tls_only(template: dict[str, Any]) -> None:
    """What moto 5.2.5 does not apply from the template (see test_moto_applies_public_access_block) is checked here."""
    bucket = template["Resources"]["DataBucket"]["Properties"]
    assert bucket["PublicAccessBlockConfiguration"] == dict.fromkeys(
        ["BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets"], True
    )
    assert bucket["OwnershipControls"] == {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}
    assert bucket["VersioningConfiguration"] == {"Status": "Enabled"}
    (rule,) = bucket["LifecycleConfiguration"]["Rules"]
    assert rule["NoncurrentVersionExpiration"] and rule["AbortIncompleteMultipartUpload"]
    statements = template["Resources"]["DataBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert {"Bool": {"aws:SecureTransport": "false"}} in [s["Condition"] for s in statements if s["Effect"] == "Deny"]


def test_launch_template_requires_imdsv2_and_encrypted_disks(template: dict[str, Any]) -> None:
    data = template["Resources"]["BatchLaunchTemplate"]["Properties"]["LaunchTemplateData"]
    assert data["MetadataOptions"]["HttpTokens"] == "required"
    assert all(b["Ebs"]["Encrypted"] is True for b in data["BlockDeviceMappings"])
    group = template["Resources"]["BatchSecurityGroup"]["Properties"]
    assert "SecurityGroupIngress" not in group


def test_spot_shards_that_find_no_capacity_are_cancelled_for_the_on_demand_fallback(template: dict[str, Any]) -> None:
    resources = template["Resources"]
    spot, on_demand = (resources[q]["Properties"] for q in ("JobQueue", "OnDemandJobQueue"))
    assert spot["ComputeEnvironmentOrder"] == [{"Order": 1, "ComputeEnvironment": {"Ref": "SpotComputeEnvironment"}}]
    assert on_demand["ComputeEnvironmentOrder"] == [
        {"Order": 1, "ComputeEnvironment": {"Ref": "OnDemandComputeEnvironment"}}]  # fmt: skip
    capacity = [a for a in spot["JobStateTimeLimitActions"] if a["Reason"] == "CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY"]
    assert capacity == [{"Action": "CANCEL", "State": "RUNNABLE", "MaxTimeSeconds": {"Ref": "SpotCapacityWaitSeconds"},
                         "Reason": "CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY"}]  # fmt: skip
    assert template["Parameters"]["SpotCapacityWaitSeconds"]["MinValue"] == 600  # AWS Batch's least MaxTimeSeconds
    # nothing waits forever for an instance that can never fit it, on either queue
    never = {"MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT", "MISCONFIGURATION:COMPUTE_ENVIRONMENT_MAX_RESOURCE"}
    for queue in (spot, on_demand):
        assert never <= {a["Reason"] for a in queue["JobStateTimeLimitActions"]}
    # only the Spot queue gives up on capacity: On-Demand has nowhere else to go
    assert "CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY" not in {a["Reason"] for a in on_demand["JobStateTimeLimitActions"]}


# Memory the ECS agent leaves to jobs is less than the instance's (the kernel's share, and the 32 MiB AWS Batch's AMI
# reserves: "Compute resource memory management" in the AWS Batch guide; an m4.large's 8 GiB register as 7,985 MiB).
# Counted here as at most 90% of it, to leave room for the kernel's share on small instances.
INSTANCES = {"c5.large": (2, 4096), "c5.xlarge": (4, 8192), "m5.large": (2, 8192), "m5.xlarge": (4, 16384)}


def jobs_per_instance(vcpus: int, memory: int, instance: str) -> int:
    cores, installed = INSTANCES[instance]
    return min(cores // vcpus, int(installed * 0.9) // memory)


def test_default_job_sizes_fit_common_instances_after_the_ecs_reservation(template: dict[str, Any]) -> None:
    params = template["Parameters"]
    pricer = int(params["PricerVcpus"]["Default"]), int(params["PricerMemory"]["Default"])
    render = int(params["RenderVcpus"]["Default"]), int(params["RenderMemory"]["Default"])
    # a pricer job on one vCPU (what it uses: its shard prices its chunks on all of its vCPUs), two to a c5.large
    assert pricer == (1, 1792) and jobs_per_instance(*pricer, "c5.large") == 2
    assert jobs_per_instance(*render, "c5.xlarge") == 1 and jobs_per_instance(*render, "m5.xlarge") == 1
    assert jobs_per_instance(4, 8192, "c5.xlarge") == 0  # the old render size left every c5.xlarge unused
    assert jobs_per_instance(2, 4096, "c5.large") == 0  # and the old pricer size every c5.large
    for name in ("PricerJobDefinition", "RenderJobDefinition"):
        env = template["Resources"][name]["Properties"]["ContainerProperties"]["Environment"]
        vcpus = next(e["Value"] for e in env if e["Name"] == "BATCHPIPE_VCPUS")  # what the containers use
        assert vcpus == {"Ref": name.replace("JobDefinition", "Vcpus")}


def test_job_definitions_keep_old_revisions_and_propagate_tags(template: dict[str, Any]) -> None:
    for name in ("PricerJobDefinition", "RenderJobDefinition"):
        props = template["Resources"][name]["Properties"]
        assert props["ResourceRetentionPolicy"] == {"SkipDeregisterOnUpdate": True}  # a deploy keeps runs going
        assert props["PropagateTags"] is True


def test_least_privilege_details(template: dict[str, Any]) -> None:
    resources = template["Resources"]
    job = resources["JobRole"]["Properties"]
    actions = {a for st in job["Policies"][0]["PolicyDocument"]["Statement"] for a in as_list(st["Action"])}
    assert actions == {"s3:ListBucket", "s3:GetObject", "s3:PutObject"}  # no job deletes
    for role in ("JobRole", "StatesRole"):  # no other account's service can assume them (confused deputy)
        [trust] = resources[role]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
        assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}, role
    plan = resources["PlanFunctionRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
    assert {(st["Action"], json.dumps(st["Resource"])) for st in plan} == {
        ("s3:ListBucket", json.dumps({"Fn::GetAtt": ["DataBucket", "Arn"]})),  # a missing object is a 404, not a 403
        ("s3:GetObject", json.dumps({"Fn::Sub": "${DataBucket.Arn}/*"})),
    }
    stranded = resources["StrandedFunctionRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
    assert [st["Action"] for st in stranded] == ["batch:ListJobs"]
    # CAPABILITY_IAM is enough: no IAM resource is given a name
    named = [
        k
        for k, r in resources.items()
        if r["Type"].startswith("AWS::IAM::")
        and {"RoleName", "InstanceProfileName", "ManagedPolicyName", "UserName", "GroupName"} & set(r["Properties"])
    ]
    assert named == []  # fmt: skip
    from batchpipe.aws import stack

    assert stack.CAPABILITIES == ["CAPABILITY_IAM"]


def test_instances_and_stack_resources_carry_the_stack_tag(template: dict[str, Any]) -> None:
    for name in ("SpotComputeEnvironment", "OnDemandComputeEnvironment"):
        tags = template["Resources"][name]["Properties"]["ComputeResources"]["Tags"]
        assert tags["batchpipe:stack"] == {"Ref": "AWS::StackName"}  # on the EC2 instances Batch starts
    states = dict(policy_statements(template))  # the last statement of each resource; find the tagging one
    tagging = [
        st for name, st in policy_statements(template) if name == "StatesRole" and st.get("Sid") == "TagJobsOnSubmit"
    ]
    assert states and tagging and tagging[0]["Action"] == "batch:TagResource"
    assert tagging[0]["Resource"] == {"Fn::Sub": "arn:${AWS::Partition}:batch:${AWS::Region}:${AWS::AccountId}:job/*"}


# --- creating the stack in moto --------------------------------------------------------------------------------------

MOTO_HAS_NO_BUCKET_POLICY = pytest.mark.filterwarnings("ignore:Tried to parse AWS..S3..BucketPolicy:UserWarning")


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    import moto

    for key in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
        monkeypatch.delenv(key, raising=False)
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_SESSION_TOKEN": "testing", "AWS_DEFAULT_REGION": REGION}.items():  # fmt: skip
        monkeypatch.setenv(key, value)
    with moto.mock_aws():
        yield


def for_moto(template: dict[str, Any]) -> dict[str, Any]:
    """Two workarounds for moto 5.2.5, which neither change what the template asks of real AWS:

    - moto's AWS::Batch::ComputeEnvironment reads Properties["ServiceRole"] unconditionally (KeyError) and its
      CreateComputeEnvironment demands one, while real Batch uses its service-linked role AWSServiceRoleForBatch when
      ServiceRole is left out (as the template does): create that role in moto and name it.
    - moto names an unnamed AWS::ECR::Repository after the stack and logical id, upper case included, which its own
      ECR then rejects; CloudFormation generates lower-case names: name the repositories in lower case.
    """
    import boto3

    doc = copy.deepcopy(template)
    iam = boto3.client("iam", region_name=REGION)
    try:
        role = iam.create_service_linked_role(AWSServiceName="batch.amazonaws.com")["Role"]["Arn"]
    except iam.exceptions.EntityAlreadyExistsException:  # built again for an update of the same stack
        role = next(r["Arn"] for r in iam.list_roles()["Roles"] if r["RoleName"].lower() == "awsserviceroleforbatch")
    for name, resource in doc["Resources"].items():
        if resource["Type"] == "AWS::Batch::ComputeEnvironment":
            assert "ServiceRole" not in resource["Properties"]
            resource["Properties"]["ServiceRole"] = role
        if resource["Type"] == "AWS::ECR::Repository":
            assert "RepositoryName" not in resource["Properties"]
            resource["Properties"]["RepositoryName"] = name.lower()
    return doc


def create_stack(template: dict[str, Any], name: str, parameters: dict[str, str] | None = None) -> dict[str, str]:
    import boto3

    cfn = boto3.client("cloudformation", region_name=REGION)
    cfn.create_stack(
        StackName=name,
        TemplateBody=json.dumps(for_moto(template)),
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in (parameters or {}).items()],
        Capabilities=["CAPABILITY_IAM"],
    )
    cfn.get_waiter("stack_create_complete").wait(StackName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    (stack,) = cfn.describe_stacks(StackName=name)["Stacks"]
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    return {o["OutputKey"]: o.get("OutputValue", "") for o in stack.get("Outputs", [])}


@MOTO_HAS_NO_BUCKET_POLICY
def test_stack_creates_in_moto_with_every_output(aws: None, template: dict[str, Any]) -> None:
    import boto3

    outputs = create_stack(template, "batchpipe")
    assert [key for key in OUTPUTS if not outputs.get(key)] == []

    s3 = boto3.client("s3", region_name=REGION)
    rules = s3.get_bucket_encryption(Bucket=outputs["BucketName"])["ServerSideEncryptionConfiguration"]["Rules"]
    assert rules[0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"

    batch = boto3.client("batch", region_name=REGION)
    envs = {e["computeEnvironmentArn"]: e for e in batch.describe_compute_environments()["computeEnvironments"]}
    for key, kind in (("JobQueueArn", "SPOT"), ("OnDemandJobQueueArn", "EC2")):  # a queue each, no spill-over
        (queue,) = batch.describe_job_queues(jobQueues=[outputs[key]])["jobQueues"]
        assert [envs[o["computeEnvironment"]]["computeResources"]["type"] for o in queue["computeEnvironmentOrder"]
                ] == [kind]  # fmt: skip
    assert all(e["computeResources"]["minvCpus"] == 0 for e in envs.values())
    for key, repo in (
        ("PricerJobDefinitionArn", "PricerRepositoryUri"),
        ("RenderJobDefinitionArn", "RenderRepositoryUri"),
    ):
        (jobdef,) = batch.describe_job_definitions(jobDefinitions=[outputs[key]])["jobDefinitions"]
        assert jobdef["containerProperties"]["image"] == outputs[repo] + ":latest"
        env = {e["name"]: e["value"] for e in jobdef["containerProperties"]["environment"]}
        assert env["BATCHPIPE_BUCKET"] == outputs["BucketName"]

    sfn = boto3.client("stepfunctions", region_name=REGION)
    functions = [f["FunctionArn"] for f in boto3.client("lambda", region_name=REGION).list_functions()["Functions"]]
    assert len(functions) == 2  # the plan function and the Spot fallback's
    for key in ("MonteCarloStateMachineArn", "RenderStateMachineArn"):
        definition = sfn.describe_state_machine(stateMachineArn=outputs[key])["definition"]
        assert "StartAt" in json.loads(definition) and "${" not in definition
        assert all(arn in definition for arn in functions) and outputs["OnDemandJobQueueArn"] in definition
        assert (
            '"arn:aws:states:::batch:submitJob.sync"' in definition and '"batchpipe:stack": "batchpipe"' in definition
        )


@MOTO_HAS_NO_BUCKET_POLICY
def test_stack_uses_a_given_vpc_and_images(aws: None, template: dict[str, Any]) -> None:
    import boto3

    ec2 = boto3.client("ec2", region_name=REGION)
    vpc = ec2.create_vpc(CidrBlock="10.7.0.0/16")["Vpc"]["VpcId"]
    subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.7.{i}.0/24")["Subnet"]["SubnetId"] for i in range(2)]
    image = "123456789012.dkr.ecr.us-east-1.amazonaws.com/pricer:0123abcd"
    outputs = create_stack(
        template, "batchpipe-own-vpc", {"VpcId": vpc, "SubnetIds": ",".join(subnets), "PricerImage": image}
    )

    cfn = boto3.client("cloudformation", region_name=REGION)
    resources = cfn.list_stack_resources(StackName="batchpipe-own-vpc")["StackResourceSummaries"]
    created = {r.get("LogicalResourceId") for r in resources}
    assert {"BatchSecurityGroup", "SpotComputeEnvironment", "OnDemandComputeEnvironment"} <= created
    assert not created & {"Vpc", "PublicSubnet1", "PublicSubnet2", "InternetGateway"}
    batch = boto3.client("batch", region_name=REGION)
    for env in batch.describe_compute_environments()["computeEnvironments"]:
        assert sorted(env["computeResources"]["subnets"]) == sorted(subnets)
        (group,) = env["computeResources"]["securityGroupIds"]
        assert ec2.describe_security_groups(GroupIds=[group])["SecurityGroups"][0]["VpcId"] == vpc
    (pricer,) = batch.describe_job_definitions(jobDefinitions=[outputs["PricerJobDefinitionArn"]])["jobDefinitions"]
    assert pricer["containerProperties"]["image"] == image
