"""The cores this process may use: the local engine's default number of workers, the containers' Blender threads,
and how worker processes start."""

from __future__ import annotations

import math
import multiprocessing
import multiprocessing.context
import os
from pathlib import Path

VCPUS_VARIABLE = "BATCHPIPE_VCPUS"  # set by the stack's job definitions to the job's vCPUs
CGROUP_V2 = Path("/sys/fs/cgroup/cpu.max")
CGROUP_V1 = (Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us"), Path("/sys/fs/cgroup/cpu/cpu.cfs_period_us"))


def quota_cores(quota: str, period: str) -> int | None:
    """Cores a CFS quota allows ("150000", "100000" -> 2), None for no quota ("max" or -1)."""
    if quota.strip() in ("max", "-1", ""):
        return None
    q, p = int(quota), int(period)
    return max(1, math.ceil(q / p)) if q > 0 and p > 0 else None


def _cgroup_cores() -> int | None:
    try:
        if CGROUP_V2.is_file():
            quota, _, period = CGROUP_V2.read_text().strip().partition(" ")
            return quota_cores(quota, period or "100000")
        if CGROUP_V1[0].is_file():
            return quota_cores(CGROUP_V1[0].read_text(), CGROUP_V1[1].read_text())
    except (OSError, ValueError):
        return None
    return None


def _given_vcpus() -> int | None:
    value = os.environ.get(VCPUS_VARIABLE, "").strip()
    try:
        n = int(float(value))
    except ValueError:
        return None
    return n if n >= 1 else None


def process_context() -> multiprocessing.context.BaseContext:
    """How worker processes start: fork where the platform has it (they inherit the parent's imports and state),
    else spawn."""
    return multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn")


def default_workers() -> int:
    """The cores this process may use: the CPUs it may run on, capped by a cgroup CPU quota (a container's hard
    limit) and by $BATCHPIPE_VCPUS (an AWS Batch job's vCPUs: on EC2, Batch only weights CPU time by shares, so
    the container still sees every core of its host)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    limits = [n for n in (_cgroup_cores(), _given_vcpus()) if n is not None]
    return max(1, min([cores, *limits]))
