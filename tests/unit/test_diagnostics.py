"""Why jobs sit RUNNABLE: the pure diagnosis behind `status` and the tail."""

from __future__ import annotations

from typing import Any

from batchpipe.diagnostics import STUCK_AFTER_SECONDS, runnable_problem

NOW = 1_800_000_000_000
CES = [{"state": "ENABLED", "computeResources": {"maxvCpus": 16}},
       {"state": "ENABLED", "computeResources": {"maxvCpus": 8}}]  # fmt: skip


def job(status: str = "RUNNABLE", waited: float = 2 * STUCK_AFTER_SECONDS, vcpus: str = "2",
        memory: str = "4096") -> dict[str, Any]:  # fmt: skip
    return {"status": status, "createdAt": NOW - int(waited * 1000),
            "container": {"resourceRequirements": [{"type": "VCPU", "value": vcpus},
                                                   {"type": "MEMORY", "value": memory}]}}  # fmt: skip


def test_recent_or_running_jobs_are_fine() -> None:
    assert runnable_problem(job(waited=60), CES, NOW) is None
    assert runnable_problem(job(status="RUNNING"), CES, NOW) is None


def test_a_job_bigger_than_the_compute_environments_is_named() -> None:
    problem = runnable_problem(job(vcpus="32"), CES, NOW)
    assert problem is not None and "asks for 32 vCPUs" in problem and "at most 16" in problem


def test_too_much_memory_is_named() -> None:
    problem = runnable_problem(job(memory=str(1024 * 1024)), CES, NOW)
    assert problem is not None and "1024 GiB" in problem


def test_otherwise_capacity_or_quota_as_its_queue_handles_it() -> None:
    problem = runnable_problem(job(), CES, NOW)
    assert problem is not None and problem.startswith("RUNNABLE for 20 min: no capacity yet")
    assert "On-Demand vCPU quota" in problem and "Spot" not in problem  # On-Demand has nowhere else to go
    spot = [{"state": "ENABLED", "computeResources": {"type": "SPOT", "maxvCpus": 16}}]
    problem = runnable_problem(job(), spot, NOW)
    assert problem is not None and "Spot capacity, or the account's Spot vCPU quota" in problem
    assert "cancels the shard after its SpotCapacityWaitSeconds" in problem and "On-Demand queue" in problem


def test_no_enabled_compute_environment() -> None:
    problem = runnable_problem(job(), [{"state": "DISABLED", "computeResources": {"maxvCpus": 4}}], NOW)
    assert problem is not None and "no enabled compute environment" in problem
