"""The cores a process may use: its CPU affinity, capped by a cgroup quota and by the job's vCPUs on AWS Batch."""

from __future__ import annotations

import os

import pytest

from batchpipe import cores


@pytest.mark.parametrize(
    ("quota", "period", "expected"),
    [("max", "100000", None), ("-1", "100000", None), ("200000", "100000", 2), ("150000", "100000", 2),
     ("50000", "100000", 1), ("400000", "100000", 4)],
)  # fmt: skip
def test_a_cfs_quota_allows_whole_cores(quota: str, period: str, expected: int | None) -> None:
    assert cores.quota_cores(quota, period) == expected


def test_the_jobs_vcpus_cap_the_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    affinity = len(os.sched_getaffinity(0))
    monkeypatch.delenv(cores.VCPUS_VARIABLE, raising=False)
    unlimited = cores.default_workers()
    assert 1 <= unlimited <= affinity
    monkeypatch.setenv(cores.VCPUS_VARIABLE, "1")
    assert cores.default_workers() == 1
    monkeypatch.setenv(cores.VCPUS_VARIABLE, str(affinity + 64))  # more than the host has: the host's
    assert cores.default_workers() == unlimited
    for junk in ("", "0", "many"):
        monkeypatch.setenv(cores.VCPUS_VARIABLE, junk)
        assert cores.default_workers() == unlimited


def test_the_stacks_job_definitions_tell_the_container_its_vcpus() -> None:
    from batchpipe.aws.template import build_template

    resources = build_template()["Resources"]
    for definition, parameter in (("PricerJobDefinition", "PricerVcpus"), ("RenderJobDefinition", "RenderVcpus")):
        props = resources[definition]["Properties"]["ContainerProperties"]
        env = {e["Name"]: e["Value"] for e in props["Environment"]}
        vcpu = next(r["Value"] for r in props["ResourceRequirements"] if r["Type"] == "VCPU")
        assert env[cores.VCPUS_VARIABLE] == vcpu == {"Ref": parameter}
