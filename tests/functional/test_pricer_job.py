"""The pricer container's entrypoint, run as a process: local paths, AWS_BATCH_JOB_ARRAY_INDEX, and moto S3."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from batchpipe.jobs import pricer
from tests.conftest import small_portfolio


def job(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "batchpipe.jobs.pricer", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        check=False,
    )


def test_stages_with_array_index_match_the_local_engine(tmp_path: Path, write_json: Any) -> None:
    from click.testing import CliRunner

    from batchpipe.cli import main

    portfolio = write_json(small_portfolio())
    out = tmp_path / "job"
    pre = job("preprocess", "--input", str(portfolio), "--output", str(out), "--job-name", "j",
              "--positions-per-job", "2")  # fmt: skip
    assert pre.returncode == 0, pre.stderr
    assert json.loads(pre.stdout)["shards"] == 3
    for index in range(3):
        child = job("price", "--output", str(out), env={"AWS_BATCH_JOB_ARRAY_INDEX": str(index)})
        assert child.returncode == 0, child.stderr
    assert job("collate", "--output", str(out)).returncode == 0
    container = json.loads((out / "results.json").read_text())

    local = tmp_path / "local"
    args = ["run", "montecarlo", str(portfolio), "--local", "--job-name", "j", "--output", str(local)]
    assert CliRunner().invoke(main, args).exit_code == 0
    assert container == json.loads((local / "results.json").read_text())


def test_missing_shard_collates_as_partial(tmp_path: Path, write_json: Any) -> None:
    out = tmp_path / "job"
    pricer.main(["preprocess", "--input", str(write_json(small_portfolio())), "--output", str(out),
                 "--job-name", "j", "--positions-per-job", "2"])  # fmt: skip
    pricer.main(["price", "--output", str(out), "--shard", "0"])
    pricer.main(["price", "--output", str(out), "--shard", "2"])
    # a stale result of another job at shard 1's key does not count
    (out / "shards" / "shard-00001.json").write_text(json.dumps({"jobName": "other", "shard": 1, "positions": []}))
    pricer.main(["collate", "--output", str(out)])
    doc = json.loads((out / "results.json").read_text())
    assert doc["status"] == "PARTIAL"
    assert [p["error"] is not None for p in doc["positions"]] == [False, False, True, True, False]
    assert "shard 1 produced no result" in doc["positions"][2]["error"]


@pytest.mark.parametrize(
    "spoil",
    [
        pytest.param(lambda doc: doc | {"planHash": "0" * 24}, id="another-plan-of-the-same-job"),
        pytest.param(lambda doc: doc | {"positions": doc["positions"][:1]}, id="a-position-short"),
        pytest.param(lambda doc: doc | {"blockTotals": doc["blockTotals"][:3]}, id="block-totals-cut"),
        pytest.param(lambda doc: doc | {"positions": [p | {"pv": "1e7"} for p in doc["positions"]]}, id="pv-text"),
    ],
)
def test_a_spoilt_shard_result_counts_as_missing_never_as_data(tmp_path: Path, write_json: Any, spoil: Any) -> None:
    out = tmp_path / "job"
    pricer.main(["preprocess", "--input", str(write_json(small_portfolio())), "--output", str(out),
                 "--job-name", "j", "--positions-per-job", "2"])  # fmt: skip
    for shard in range(3):
        pricer.main(["price", "--output", str(out), "--shard", str(shard)])
    pricer.main(["collate", "--output", str(out)])
    whole = json.loads((out / "results.json").read_text())
    shard_file = out / "shards" / "shard-00001.json"
    shard_file.write_text(json.dumps(spoil(json.loads(shard_file.read_text()))))
    pricer.main(["collate", "--output", str(out)])
    doc = json.loads((out / "results.json").read_text())
    assert doc["status"] == "PARTIAL" and doc["failedPositions"] == [2, 3]
    assert "shard 1: its stored result does not match the plan" in doc["positions"][2]["error"]
    assert doc["totalPv"] == pytest.approx(whole["totalPv"] - whole["positions"][2]["pv"] - whole["positions"][3]["pv"])
    # the pricer's --resume prices that shard again, and the collated result is whole again
    pricer.main(["price", "--output", str(out), "--shard", "1", "--resume"])
    pricer.main(["collate", "--output", str(out)])
    assert json.loads((out / "results.json").read_text()) == whole


def test_bad_input_and_bad_index_exit_2(tmp_path: Path, write_json: Any) -> None:
    bad = job("preprocess", "--input", str(write_json("{")), "--output", str(tmp_path / "o"), "--job-name", "j")
    assert bad.returncode == 2 and "not valid JSON" in bad.stderr
    assert not (tmp_path / "o").exists()
    job(
        "preprocess",
        "--input",
        str(write_json(small_portfolio())),
        "--output",
        str(tmp_path / "o"),
        "--job-name",
        "j",
    )
    out_of_range = job("price", "--output", str(tmp_path / "o"), env={"AWS_BATCH_JOB_ARRAY_INDEX": "9"})
    assert out_of_range.returncode == 2 and "out of range" in out_of_range.stderr


def test_s3_uris_with_moto(monkeypatch: pytest.MonkeyPatch, write_json: Any) -> None:
    import moto

    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    from batchpipe.aws import clients

    clients.client.cache_clear()
    with moto.mock_aws():
        s3 = clients.client("s3")
        s3.create_bucket(Bucket="bp-test")
        s3.put_object(Bucket="bp-test", Key="in/portfolio.json", Body=json.dumps(small_portfolio()).encode())
        out = "s3://bp-test/runs/j"
        pricer.main(["preprocess", "--input", "s3://bp-test/in/portfolio.json", "--output", out, "--job-name", "j"])
        pricer.main(["price", "--output", out])
        pricer.main(["collate", "--output", out])
        doc = json.loads(s3.get_object(Bucket="bp-test", Key="runs/j/results.json")["Body"].read())
        keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket="bp-test", Prefix="runs/j/")["Contents"])
    clients.client.cache_clear()
    assert doc["status"] == "SUCCEEDED" and len(doc["positions"]) == 5
    assert keys == [
        "runs/j/plan.json",
        "runs/j/positions.jsonl",
        "runs/j/results.csv",
        "runs/j/results.json",
        "runs/j/shards/shard-00000.json",
        "runs/j/summary.json",
    ]


def test_a_shard_prices_its_chunks_on_every_vcpu_of_its_job_bit_for_bit(tmp_path: Path, write_json: Any) -> None:
    out = tmp_path / "job"
    doc = small_portfolio() | {"simulation": {"paths": 40_000}}  # chunks of 16,384 paths: three of them
    pre = job("preprocess", "--input", str(write_json(doc)), "--output", str(out), "--job-name", "j")
    assert pre.returncode == 0, pre.stderr
    assert json.loads((out / "plan.json").read_text())["simulation"]["chunks"] >= 2
    stored = out / "shards" / "shard-00000.json"
    results = {}
    for vcpus in ("1", "2"):  # what the stack's job definitions set to the job's vCPUs
        child = job("price", "--output", str(out), env={"BATCHPIPE_VCPUS": vcpus})
        assert child.returncode == 0, child.stderr
        assert json.loads(child.stdout)["processes"] == min(int(vcpus), len(os.sched_getaffinity(0)))
        results[vcpus] = stored.read_bytes()
    assert results["1"] == results["2"]


def test_a_fallback_array_child_prices_the_shard_at_its_index_of_the_list(tmp_path: Path, write_json: Any) -> None:
    out = tmp_path / "job"
    pricer.main(["preprocess", "--input", str(write_json(small_portfolio())), "--output", str(out),
                 "--job-name", "j", "--positions-per-job", "1"])  # fmt: skip
    for index, shard in enumerate([1, 3, 4]):  # the shards Spot could not place: "1,3-4"
        child = job(
            "price", "--output", str(out), "--shard-list", "1,3-4", env={"AWS_BATCH_JOB_ARRAY_INDEX": str(index)}
        )
        assert child.returncode == 0, child.stderr
        assert json.loads(child.stdout)["shard"] == shard
    assert sorted(p.name for p in (out / "shards").iterdir()) == [f"shard-0000{i}.json" for i in (1, 3, 4)]
    past = job("price", "--output", str(out), "--shard-list", "1,3-4", env={"AWS_BATCH_JOB_ARRAY_INDEX": "3"})
    assert past.returncode == 2 and past.stderr.strip() == "error: array index 3 is past the 3 shards of --shard-list"
    for bad in ("3,1", "1-x", "2,2"):
        refused = job("price", "--output", str(out), "--shard-list", bad, env={"AWS_BATCH_JOB_ARRAY_INDEX": "0"})
        assert refused.returncode == 2 and refused.stderr.startswith(f"error: --shard-list '{bad}': "), refused.stderr
