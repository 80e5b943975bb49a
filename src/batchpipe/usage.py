"""What a run's Batch jobs used, from their DescribeJobs answers (pure): vCPU-seconds of every attempt, an estimated
cost, and its retries told apart: Spot interruptions (the host went away) from the application's own failures.

The cost is an estimate, labelled so wherever it is shown: vCPU-seconds times one per-vCPU-hour figure,
`VCPU_HOUR_USD`, the On-Demand list price of the m5/m6i instances the compute environments may start (Linux,
us-east-1: m5.large and m6i.large are $0.096 an hour for 2 vCPUs). c5/c6i cost less ($0.0425), r5/r6i more
($0.063); Spot usually 60-90% less; other regions differ. Not counted: instance time no job uses, EBS, S3, logs,
data transfer, Lambda and Step Functions.
"""

from __future__ import annotations

from typing import Any

VCPU_HOUR_USD = 0.048
SPOT_REASON = "Host EC2"  # an attempt's statusReason when its instance went away: "Host EC2 (instance i-1) terminated."


def vcpus(job: dict[str, Any]) -> float:
    """The vCPUs a job's container asked for: resourceRequirements' VCPU, else the legacy container.vcpus."""
    container = job.get("container") or {}
    for requirement in container.get("resourceRequirements") or []:
        if requirement.get("type") == "VCPU":
            return float(requirement["value"])
    return float(container.get("vcpus") or 0)


def _attempts(job: dict[str, Any], now_ms: int) -> list[tuple[float, str, int | None]]:
    """(seconds, statusReason, exit code) of each attempt; the running one counts until now."""
    found = []
    last_stop = 0
    for attempt in job.get("attempts") or []:
        started, stopped = attempt.get("startedAt"), attempt.get("stoppedAt")
        seconds = max(0, int(stopped) - int(started)) / 1000 if started and stopped else 0.0
        last_stop = max(last_stop, int(stopped or 0))
        exit_code = (attempt.get("container") or {}).get("exitCode")
        found.append((seconds, str(attempt.get("statusReason") or ""), exit_code))
    started = job.get("startedAt")
    if job.get("status") == "RUNNING" and started and int(started) >= last_stop:
        found.append((max(0, now_ms - int(started)) / 1000, "", None))
    return found


def usage(jobs: list[dict[str, Any]], now_ms: int) -> dict[str, Any]:
    """The run's use of compute over these jobs (singles and array children; array parents run nothing)."""
    seconds = attempts = spot = failures = 0.0
    for job in jobs:
        if "size" in (job.get("arrayProperties") or {}):
            continue
        for took, reason, exit_code in _attempts(job, now_ms):
            attempts += 1
            seconds += took * vcpus(job)
            if reason.startswith(SPOT_REASON):
                spot += 1
            elif exit_code not in (None, 0):
                failures += 1
    return {
        "vcpuSeconds": round(seconds, 1),
        "attempts": int(attempts),
        "spotInterruptions": int(spot),
        "applicationFailures": int(failures),
        "estimatedCostUsd": round(seconds / 3600 * VCPU_HOUR_USD, 4),
        "costBasis": f"estimate: vCPU-seconds at ${VCPU_HOUR_USD} per vCPU-hour (On-Demand m5/m6i, us-east-1); "
        "Spot costs less; idle instance time, storage and requests are not counted",
    }
