"""The deploy planner against an account in memory: what it plans for a fresh account, an unchanged stack, a changed
parameter, images new or already in ECR, and --no-build; and the plan as --dry-run prints it."""

from __future__ import annotations

from typing import Any

import pytest

from batchpipe.deploy.plan import DeployPlan, ImageBuild, ParameterChange, ResourceChange, StackAction, describe
from batchpipe.deploy.planner import plan_deploy
from batchpipe.errors import BatchpipeError
from tests.deploy_memory import REPOSITORIES, InMemoryRemoteState

TEMPLATE: dict[str, Any] = {
    "Parameters": {
        "MaxvCpus": {"Type": "Number", "Default": 256},
        "PricerImage": {"Type": "String", "Default": "public.ecr.aws/docker/library/python:3.11-slim"},
        "RenderImage": {"Type": "String", "Default": "public.ecr.aws/docker/library/python:3.11-slim"},
        "VpcId": {"Type": "String", "Default": ""},
        "SubnetIds": {"Type": "CommaDelimitedList", "Default": ""},
    },
    "Resources": {"Bucket": {"Type": "AWS::S3::Bucket"}, "JobQueue": {"Type": "AWS::Batch::JobQueue"}},
}
IMAGES = {"pricer": ("containers/pricer/Dockerfile", "aaaa"), "render": ("containers/render/Dockerfile", "bbbb")}
PRICER = f"{REPOSITORIES['PricerRepositoryUri']}:aaaa"
RENDER = f"{REPOSITORIES['RenderRepositoryUri']}:bbbb"


def never_sleep(seconds: float) -> None:
    raise AssertionError("the in-memory change set is ready at once")


def plan(
    state: InMemoryRemoteState,
    given: dict[str, str] | None = None,
    images: dict[str, tuple[str, str]] | None = None,
    template: dict[str, Any] = TEMPLATE,
) -> DeployPlan:
    return plan_deploy(state, "batchpipe", template, given or {}, images, read_changes=True, sleep=never_sleep)


def test_a_fresh_account_creates_the_stack_then_builds_both_images() -> None:
    state = InMemoryRemoteState()
    got = plan(state, {"MaxvCpus": "64"}, IMAGES)
    assert got.action is StackAction.CREATE
    assert got.parameters == {"MaxvCpus": "64"}
    assert got.parameter_changes == (ParameterChange("MaxvCpus", None, "64"),)
    assert got.resource_changes == () and state.made == []  # no stack, no change set
    assert got.images == (
        ImageBuild("pricer", "containers/pricer/Dockerfile", "aaaa", "PricerImage", "PricerRepositoryUri", None, False),
        ImageBuild("render", "containers/render/Dockerfile", "bbbb", "RenderImage", "RenderRepositoryUri", None, False),
    )
    assert got.to_build == got.images
    lines = describe(got)
    assert lines[0] == "create stack 'batchpipe' with 2 resources"
    assert "parameter MaxvCpus: (default) -> 64" in lines
    assert "build and push render (containers/render/Dockerfile): tag bbbb, once the stack creates its repository" in (
        lines
    )


def test_an_unchanged_stack_with_its_images_in_ecr_is_nothing_to_do() -> None:
    state = InMemoryRemoteState(tags={(REPOSITORIES["PricerRepositoryUri"], "aaaa"),
                                      (REPOSITORIES["RenderRepositoryUri"], "bbbb")})  # fmt: skip
    state.deployed("batchpipe", TEMPLATE, {"PricerImage": PRICER, "RenderImage": RENDER})
    got = plan(state, {}, IMAGES)
    assert got.action is StackAction.NOTHING and got.changes_nothing
    assert got.parameter_changes == () and got.resource_changes == () and state.made == []
    assert [i.in_ecr for i in got.images] == [True, True]
    assert describe(got) == ["stack 'batchpipe' is up to date: nothing would change"]


def test_no_build_plans_no_images_and_keeps_the_pinned_ones() -> None:
    state = InMemoryRemoteState()
    state.deployed("batchpipe", TEMPLATE, {"PricerImage": PRICER, "RenderImage": RENDER})
    got = plan(state, {}, None)
    assert got.action is StackAction.NOTHING and got.images == ()
    changed = plan(state, {"MaxvCpus": "64"}, None)
    assert changed.images == ()
    assert changed.parameters["PricerImage"] == PRICER and changed.parameters["RenderImage"] == RENDER


def test_a_changed_parameter_is_an_update_listed_from_a_change_set_that_is_deleted() -> None:
    state = InMemoryRemoteState(changes=(ResourceChange("Modify", "SpotComputeEnvironment",
                                                        "AWS::Batch::ComputeEnvironment"),))  # fmt: skip
    state.deployed("batchpipe", TEMPLATE, {"VpcId": "vpc-1", "SubnetIds": "['subnet-1', 'subnet-2']"})
    got = plan(state, {"MaxvCpus": "64"}, None)
    assert got.action is StackAction.UPDATE
    assert got.parameter_changes == (ParameterChange("MaxvCpus", "256", "64"),)
    # the parameters not given keep their deployed values (a list as a list), sent to the change set and the update
    assert got.parameters == {"MaxvCpus": "64", "PricerImage": TEMPLATE["Parameters"]["PricerImage"]["Default"],
                              "RenderImage": TEMPLATE["Parameters"]["RenderImage"]["Default"], "VpcId": "vpc-1",
                              "SubnetIds": "subnet-1,subnet-2"}  # fmt: skip
    assert len(state.made) == 1 and state.change_sets == {}  # made, then deleted
    assert got.resource_changes == state.changes
    lines = describe(got)
    assert lines == ["update stack 'batchpipe'", "parameter MaxvCpus: 256 -> 64",
                     "modify SpotComputeEnvironment (AWS::Batch::ComputeEnvironment)"]  # fmt: skip


def test_a_list_parameter_given_as_moto_renders_it_is_unchanged() -> None:
    state = InMemoryRemoteState()
    state.deployed("batchpipe", TEMPLATE, {"VpcId": "vpc-1", "SubnetIds": "['subnet-1', 'subnet-2']"})
    assert plan(state, {"VpcId": "vpc-1", "SubnetIds": "subnet-1,subnet-2"}).action is StackAction.NOTHING


def test_a_changed_template_is_an_update_without_parameter_changes() -> None:
    state = InMemoryRemoteState()
    state.deployed("batchpipe", TEMPLATE, {})
    more = TEMPLATE | {"Resources": TEMPLATE["Resources"] | {"Topic": {"Type": "AWS::SNS::Topic"}}}
    got = plan(state, {}, None, template=more)
    assert got.action is StackAction.UPDATE and got.parameter_changes == ()


def test_a_new_image_tag_is_built_and_pinned_and_one_in_ecr_only_pinned() -> None:
    state = InMemoryRemoteState(tags={(REPOSITORIES["RenderRepositoryUri"], "bbbb")})
    state.deployed("batchpipe", TEMPLATE, {"PricerImage": f"{REPOSITORIES['PricerRepositoryUri']}:old"})
    got = plan(state, {}, IMAGES)
    assert got.action is StackAction.UPDATE
    pricer, render = got.images
    assert (pricer.repository_uri, pricer.in_ecr) == (REPOSITORIES["PricerRepositoryUri"], False)
    assert (render.repository_uri, render.in_ecr) == (REPOSITORIES["RenderRepositoryUri"], True)
    assert got.to_build == (pricer,)
    assert got.parameters["PricerImage"] == PRICER and got.parameters["RenderImage"] == RENDER
    assert [c.key for c in got.parameter_changes] == ["PricerImage", "RenderImage"]
    assert got.parameter_changes[0].old == f"{REPOSITORIES['PricerRepositoryUri']}:old"
    lines = describe(got)
    assert f"build and push pricer (containers/pricer/Dockerfile): {PRICER}" in lines
    assert f"render: {RENDER} is already in ECR" in lines


def test_an_image_missing_from_ecr_but_pinned_is_rebuilt_without_an_update() -> None:
    state = InMemoryRemoteState(tags={(REPOSITORIES["RenderRepositoryUri"], "bbbb")})
    state.deployed("batchpipe", TEMPLATE, {"PricerImage": PRICER, "RenderImage": RENDER})
    got = plan(state, {}, IMAGES)
    assert got.action is StackAction.NOTHING and not got.changes_nothing
    assert [i.name for i in got.to_build] == ["pricer"]
    assert describe(got)[0] == f"build and push pricer (containers/pricer/Dockerfile): {PRICER}"


def test_a_stack_that_failed_to_create_is_refused() -> None:
    state = InMemoryRemoteState()
    state.deployed("batchpipe", TEMPLATE, {}, status="ROLLBACK_COMPLETE")
    with pytest.raises(BatchpipeError, match="ROLLBACK_COMPLETE"):
        plan(state, {}, IMAGES)


def test_no_build_on_a_fresh_account_says_the_job_definitions_have_no_image() -> None:
    lines = describe(plan(InMemoryRemoteState(), {}, None))
    assert lines[0] == "create stack 'batchpipe' with 2 resources"
    assert lines[-1].startswith("no image is built (--no-build): the job definitions name REPOSITORY:latest")
    assert "`batchpipe run` refuses" in lines[-1]
    built = describe(plan(InMemoryRemoteState(), {}, IMAGES))
    assert not [line for line in built if line.startswith("no image")]
