"""A re-run of the same job resumes: finished shards are kept, corrupt or missing ones are priced again, and the
collated result equals an uninterrupted run's."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from batchpipe.cli import main
from tests.conftest import small_portfolio


def run(portfolio: Path, out: Path, *extra: str) -> Any:
    args = ["run", "montecarlo", str(portfolio), "--local", "--job-name", "resume", "--output", str(out),
            "--positions-per-job", "1", "--workers", "1", *extra]  # fmt: skip
    return CliRunner().invoke(main, args, catch_exceptions=False)


def identities(out: Path) -> dict[str, tuple[int, int]]:
    return {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in sorted((out / "shards").glob("shard-*.json"))}


def test_resume_keeps_finished_shards_and_redoes_corrupt_and_missing_ones(tmp_path: Path, write_json: Any) -> None:
    portfolio = write_json(small_portfolio())
    out = tmp_path / "out"
    first = run(portfolio, out)
    assert first.exit_code == 0
    expected = json.loads((out / "results.json").read_text())
    before = identities(out)
    assert len(before) == 5
    (out / "shards" / "shard-00002.json").write_text("{half a file")
    (out / "shards" / "shard-00004.json").unlink()
    (out / "results.json").unlink()

    again = run(portfolio, out)
    assert again.exit_code == 0
    assert "resuming resume: 3 of 5 shards already priced" in again.stderr
    after = identities(out)
    assert {n for n in before if before[n] == after[n]} == {"shard-00000.json", "shard-00001.json", "shard-00003.json"}
    assert json.loads((out / "results.json").read_text()) == expected  # nothing lost, nothing counted twice

    fresh = run(portfolio, out, "--fresh")
    assert fresh.exit_code == 0 and "resuming" not in fresh.stderr
    assert all(identities(out)[n] != after[n] for n in after)


def test_a_different_plan_never_reuses_old_shards(tmp_path: Path, write_json: Any) -> None:
    portfolio = write_json(small_portfolio())
    out = tmp_path / "out"
    assert run(portfolio, out).exit_code == 0
    other = run(portfolio, out, "--seed", "99")
    assert other.exit_code == 0 and "resuming" not in other.stderr
    assert json.loads((out / "results.json").read_text())["simulation"]["seed"] == 99


def test_a_worker_that_dies_fails_only_its_shard(tmp_path: Path, write_json: Any,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    import os

    from batchpipe.pipelines.montecarlo import price

    real = price.price_chunk

    def dies_on_shard_2(plan: dict[str, Any], shard: int, positions: Any, chunk: int) -> dict[str, Any]:
        if shard == 2:
            os._exit(9)  # what the OOM killer or a segfault looks like from outside
        return real(plan, shard, positions, chunk)

    monkeypatch.setattr(price, "price_chunk", dies_on_shard_2)  # forked workers inherit it
    portfolio = write_json(small_portfolio())
    out = tmp_path / "out"
    args = ["run", "montecarlo", str(portfolio), "--local", "--job-name", "crash", "--output", str(out),
            "--positions-per-job", "1", "--workers", "2"]  # fmt: skip
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    assert result.exit_code == 1
    doc = json.loads((out / "results.json").read_text())
    assert doc["status"] == "PARTIAL"
    errors = [p["error"] for p in doc["positions"]]
    assert [e is not None for e in errors] == [False, False, True, False, False]
    assert "worker process died" in errors[2]
    monkeypatch.setattr(price, "price_chunk", real)
    # the next run resumes and prices only the lost shard
    again = CliRunner().invoke(main, args, catch_exceptions=False)
    assert again.exit_code == 0 and "4 of 5 shards already priced" in again.stderr


def test_ctrl_c_stops_cleanly_keeps_finished_shards_and_the_rerun_completes(tmp_path: Path, write_json: Any) -> None:
    """SIGINT to the whole process group, as a terminal's Ctrl-C sends it, while shards are being priced."""
    import os
    import signal
    import subprocess
    import sys
    import time

    portfolio = write_json(small_portfolio(simulation={"paths": 400_000, "seed": 7}))
    out = tmp_path / "out"

    def command(output: Path) -> list[str]:
        return [str(Path(sys.executable).parent / "batchpipe"), "run", "montecarlo", str(portfolio), "--local",
                "--job-name", "cc", "--output", str(output), "--positions-per-job", "1", "--workers", "2"]  # fmt: skip

    cmd = command(out)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.monotonic() + 120
    while not list((out / "shards").glob("shard-*.json")) and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before it could be interrupted: give it more paths"
    os.killpg(proc.pid, signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 1, stderr
    kept = sorted(p.name for p in (out / "shards").glob("shard-*.json"))
    assert 1 <= len(kept) < 5 and f"interrupted: {len(kept)} of 5 shards finished and kept" in stderr
    assert "run the same command with --job-name cc to resume" in stderr
    assert not (out / "results.json").exists()
    assert not list(out.rglob("*.tmp"))  # nothing half-written
    with pytest.raises(ProcessLookupError):  # no worker left behind
        os.killpg(proc.pid, 0)

    again = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert again.returncode == 0 and f"{len(kept)} of 5 shards already priced" in again.stderr
    whole = subprocess.run(command(tmp_path / "whole"), capture_output=True, text=True, check=False)
    assert whole.returncode == 0
    assert json.loads((out / "results.json").read_text()) == json.loads(
        (tmp_path / "whole" / "results.json").read_text()
    )
