"""Why jobs sit in RUNNABLE: pure checks over DescribeJobs and DescribeComputeEnvironments answers."""

from __future__ import annotations

from typing import Any

STUCK_AFTER_SECONDS = 600  # Spot or On-Demand instances usually start within a few minutes


def _requirement(job: dict[str, Any], kind: str) -> float:
    container = job.get("container", {})
    for req in container.get("resourceRequirements", []):
        if req.get("type") == kind:
            return float(req["value"])
    legacy = {"VCPU": "vcpus", "MEMORY": "memory"}[kind]
    return float(container.get(legacy) or 0)


def runnable_problem(job: dict[str, Any], compute_environments: list[dict[str, Any]], now_ms: int) -> str | None:
    """A one-line explanation when `job` has been RUNNABLE for long, else None."""
    if job.get("status") != "RUNNABLE":
        return None
    waited = (now_ms - int(job.get("createdAt", now_ms))) / 1000
    if waited < STUCK_AFTER_SECONDS:
        return None
    vcpus, memory = _requirement(job, "VCPU"), _requirement(job, "MEMORY")
    enabled = [ce for ce in compute_environments if ce.get("state", "ENABLED") == "ENABLED"]
    if not enabled:
        return f"RUNNABLE for {waited / 60:.0f} min: the job queue has no enabled compute environment"
    largest = max(int(ce.get("computeResources", {}).get("maxvCpus", 0)) for ce in enabled)
    if vcpus > largest:
        return (
            f"RUNNABLE for {waited / 60:.0f} min: the job asks for {vcpus:g} vCPUs but the compute environments "
            f"allow at most {largest} (deploy with --max-vcpus, or ask for fewer)"
        )
    if memory > 0 and memory > 768 * 1024:  # the largest instance types the template allows have 768 GiB
        return (
            f"RUNNABLE for {waited / 60:.0f} min: the job asks for {memory / 1024:g} GiB of memory, more than any "
            "instance type the compute environments may start"
        )
    if all(ce.get("computeResources", {}).get("type") in ("SPOT", "FARGATE_SPOT") for ce in enabled):
        return (
            f"RUNNABLE for {waited / 60:.0f} min: no capacity yet: Spot capacity, or the account's Spot vCPU quota, "
            "is short (when AWS Batch reports insufficient capacity, the Spot queue cancels the shard after its "
            "SpotCapacityWaitSeconds at the head of the queue and the run puts it on the On-Demand queue)"
        )
    return (
        f"RUNNABLE for {waited / 60:.0f} min: no capacity yet: the account's On-Demand vCPU quota for the instance "
        "families, or their capacity in the region, is short (check the quota)"
    )
