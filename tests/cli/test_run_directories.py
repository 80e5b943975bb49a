"""Run directories: batchpipe writes only into a new or empty directory or an earlier run of the same job, touches
only its own files, holds a directory for one run at a time, and follows the umask.

The concurrency and kill cases use real `batchpipe` processes."""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from batchpipe.cli import main
from batchpipe.cli.run import _job_name
from tests.conftest import EXAMPLE, small_portfolio

BATCHPIPE = str(Path(sys.executable).with_name("batchpipe"))


def run(*args: str) -> Any:
    return CliRunner().invoke(main, ["run", "montecarlo", *args], catch_exceptions=False)


def user_files(directory: Path) -> dict[str, str]:
    """Files a user keeps in what is, or will be, a run directory, with the names batchpipe uses for its own."""
    files = {"notes.txt": "mine", "shards/notes.txt": "mine too", "frames/reference.png": "a reference image",
             "logs/build.log": "my build"}  # fmt: skip
    for name, text in files.items():
        (directory / name).parent.mkdir(parents=True, exist_ok=True)
        (directory / name).write_text(text)
    return files


def test_a_non_empty_directory_is_refused_and_left_as_it_was(tmp_path: Path, write_json: Any) -> None:
    out = tmp_path / "out"
    out.mkdir()
    files = user_files(out)
    before = sorted(p.relative_to(out) for p in out.rglob("*"))
    result = run(str(write_json(small_portfolio())), "--local", "--output", str(out), "--job-name", "j")
    assert result.exit_code == 2
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(f"error: {out} is not empty") and "--force" in line
    assert sorted(p.relative_to(out) for p in out.rglob("*")) == before  # no marker, no lock, nothing
    assert all((out / name).read_text() == text for name, text in files.items())


def test_force_writes_beside_the_users_files_and_a_rerun_of_the_job_keeps_them(tmp_path: Path, write_json: Any) -> None:
    out = tmp_path / "out"
    out.mkdir()
    files = user_files(out)
    path = str(write_json(small_portfolio()))
    first = run(path, "--local", "--output", str(out), "--job-name", "j", "--force")
    assert first.exit_code == 0, first.output
    assert json.loads((out / "results.json").read_text())["status"] == "SUCCEEDED"
    # the same job again: an earlier run of it, no --force needed; and with --fresh it prices everything again
    for extra in ([], ["--fresh"], ["--paths", "4096"]):
        again = run(path, "--local", "--output", str(out), "--job-name", "j", *extra)
        assert again.exit_code == 0, again.output
    assert all((out / name).read_text() == text for name, text in files.items())
    marker = json.loads((out / ".batchpipe-run.json").read_text())
    assert (marker["jobName"], marker["pipeline"], marker["status"]) == ("j", "montecarlo", "SUCCEEDED")
    assert not (out / ".batchpipe.lock").exists()


def test_another_jobs_run_directory_is_refused(tmp_path: Path, write_json: Any) -> None:
    out = tmp_path / "out"
    path = str(write_json(small_portfolio()))
    assert run(path, "--local", "--output", str(out), "--job-name", "a").exit_code == 0
    results = (out / "results.json").read_bytes()
    other = run(path, "--local", "--output", str(out), "--job-name", "b")
    assert other.exit_code == 2
    assert "holds another run ('a', montecarlo)" in other.stderr
    assert (out / "results.json").read_bytes() == results


def test_an_empty_output_is_refused_and_nothing_is_written_in_the_current_directory(
    tmp_path: Path, write_json: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = str(write_json(small_portfolio()))
    here = tmp_path / "cwd"
    here.mkdir()
    (here / "keep.txt").write_text("x")
    monkeypatch.chdir(here)
    result = run(path, "--local", "--output", "")
    assert result.exit_code == 2 and "--output is empty" in result.stderr
    assert sorted(p.name for p in here.iterdir()) == ["keep.txt"]


@pytest.mark.parametrize("where", ["/proc/batchpipe-test/out", "file", "file/sub"])
def test_an_output_that_cannot_be_written_is_one_line_and_exit_2(tmp_path: Path, write_json: Any, where: str) -> None:
    (tmp_path / "file").write_text("a file, not a directory")
    target = where if where.startswith("/") else str(tmp_path / where)
    result = run(str(write_json(small_portfolio())), "--local", "--output", target)
    assert result.exit_code == 2, result.output
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(f"error: --output {target}: ")
    assert "Traceback" not in result.output
    assert (tmp_path / "file").read_text() == "a file, not a directory"


@pytest.mark.parametrize("mask", [0o002, 0o077])
def test_results_follow_the_umask(tmp_path: Path, write_json: Any, mask: int) -> None:
    old = os.umask(mask)
    try:
        out = tmp_path / "out"
        assert run(str(write_json(small_portfolio())), "--local", "--output", str(out)).exit_code == 0
    finally:
        os.umask(old)
    files = [p for p in out.rglob("*") if p.is_file()]
    assert {p.name for p in files} >= {"results.json", "results.csv", "summary.json", "plan.json", "positions.jsonl",
                                       "shard-00000.json", ".batchpipe-run.json"}  # fmt: skip
    assert {stat.S_IMODE(p.stat().st_mode) for p in files} == {0o666 & ~mask}


def test_default_job_names_never_collide_and_are_printed(
    tmp_path: Path, write_json: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    names = {_job_name(None, "autocallable") for _ in range(50)}
    assert len(names) == 50  # same second, same file name
    assert all(n.startswith("autocallable-") and len(n.split("-")[-1]) == 4 for n in names)
    path = str(write_json(small_portfolio()))
    monkeypatch.chdir(tmp_path)
    printed = []
    for _ in range(2):  # two runs of one file in the same second get two directories
        result = CliRunner().invoke(main, ["run", "montecarlo", path, "--local"], catch_exceptions=False)
        assert result.exit_code == 0
        [line] = [x for x in result.stderr.splitlines() if x.startswith("Job ")]
        printed.append(line.split()[1].rstrip(":"))
    runs = sorted(p.name for p in (tmp_path / "batchpipe-runs").iterdir())
    assert runs == sorted(printed) and len(set(printed)) == 2


def test_workers_are_capped_at_the_cores_and_the_work(tmp_path: Path, write_json: Any) -> None:
    result = run(str(write_json(small_portfolio())), "--local", "--output", str(tmp_path / "o"), "--workers", "300")
    assert result.exit_code == 0
    cores = len(os.sched_getaffinity(0))
    expected = min(cores, 1)  # one shard of one chunk: one task
    assert f"--workers 300: using {expected} (the run has 1 task to do)" in " ".join(result.stderr.split())


def start(args: list[str], cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([BATCHPIPE, *args], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)  # fmt: skip


def wait_for(predicate: Any, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


SLOW = ["--paths", "100000", "--positions-per-job", "8"]  # 6 shards, several seconds on two cores


def test_two_runs_into_one_directory_at_once_the_second_is_refused_naming_the_first(tmp_path: Path) -> None:
    out = tmp_path / "out"
    args = ["run", "montecarlo", str(EXAMPLE), "--local", "--job-name", "same", "--output", str(out), *SLOW]
    first = start(args, tmp_path)
    try:
        wait_for(lambda: (out / ".batchpipe.lock").exists() and (out / ".batchpipe.lock").stat().st_size > 0)
        second = subprocess.run([BATCHPIPE, *args], cwd=tmp_path, capture_output=True, text=True, timeout=120)
        assert first.poll() is None, "the first run ended before the second started: the test proves nothing"
        assert second.returncode == 2
        [line] = second.stderr.strip().splitlines()
        assert f"{out} is in use by run 'same' (pid {first.pid} on {socket.gethostname()}" in line
        # status reads the lock without taking it: the run goes on undisturbed
        status = CliRunner().invoke(main, ["status", "--local", str(out), "--json"], catch_exceptions=False)
        running = json.loads(status.stdout)
        assert running["status"] == "RUNNING" and running["holder"] == {"pid": first.pid, "host": socket.gethostname()}
    finally:
        _, err = first.communicate(timeout=300)
    assert first.returncode == 0, err
    doc = json.loads((out / "results.json").read_text())
    assert doc["status"] == "SUCCEEDED" and doc["positionCount"] == 48
    assert [p["index"] for p in doc["positions"]] == list(range(48))


def test_a_killed_runs_stale_lock_is_taken_over_and_the_rerun_resumes(tmp_path: Path) -> None:
    out = tmp_path / "out"
    args = ["run", "montecarlo", str(EXAMPLE), "--local", "--job-name", "k", "--output", str(out), *SLOW]
    victim = start(args, tmp_path)
    shards = out / "shards"
    wait_for(lambda: shards.is_dir() and len(list(shards.glob("shard-*.json"))) >= 2)
    os.killpg(victim.pid, signal.SIGKILL)  # the run and its workers, as the OOM killer or `kill -9` would
    victim.wait(timeout=30)
    kept = len(list(shards.glob("shard-*.json")))
    assert (out / ".batchpipe.lock").exists()  # left behind by the dead run
    status = CliRunner().invoke(main, ["status", "--local", str(out), "--json"], catch_exceptions=False)
    assert json.loads(status.stdout)["status"] == "INTERRUPTED"
    rerun = subprocess.run([BATCHPIPE, *args], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    err = " ".join(rerun.stderr.split())
    assert f"taking over the lock of run 'k' (pid {victim.pid} on {socket.gethostname()}" in err
    assert f"resuming k: {kept} of 6 shards already priced" in err
    assert not list(out.rglob(".*.tmp"))  # what the killed run was writing is gone
    assert json.loads((out / "results.json").read_text())["status"] == "SUCCEEDED"
    assert not (out / ".batchpipe.lock").exists()
    status = CliRunner().invoke(main, ["status", "--local", str(out), "--json"], catch_exceptions=False)
    assert json.loads(status.stdout)["status"] == "SUCCEEDED"


def test_status_and_results_of_local_runs(tmp_path: Path, write_json: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    path = str(write_json(small_portfolio()))
    monkeypatch.chdir(tmp_path)
    assert run(path, "--local", "--job-name", "first").exit_code == 0
    assert run(path, "--local", "--job-name", "second", "--paths", "4096").exit_code == 0
    (tmp_path / "batchpipe-runs" / "not-a-run").mkdir()  # ignored: no marker
    listed = CliRunner().invoke(main, ["status", "--local", "--json"], catch_exceptions=False)
    rows = json.loads(listed.stdout)
    assert sorted((r["jobName"], r["pipeline"], r["status"]) for r in rows) == [
        ("first", "montecarlo", "SUCCEEDED"),
        ("second", "montecarlo", "SUCCEEDED"),
    ]
    assert all(r["seconds"] is not None and r["started"] for r in rows)
    table = CliRunner().invoke(main, ["status", "--local"], catch_exceptions=False, env={"COLUMNS": "120"})
    assert "first" in table.stdout and "second" in table.stdout and "SUCCEEDED" in table.stdout
    detail = CliRunner().invoke(main, ["status", "--local", "first", "--json"], catch_exceptions=False)
    doc = json.loads(detail.stdout)
    assert (doc["status"], doc["shards"], doc["shardsDone"], doc["positions"]) == ("SUCCEEDED", 1, 1, 5)
    shown = CliRunner().invoke(main, ["results", "--local", "second"], catch_exceptions=False)
    results = json.loads((tmp_path / "batchpipe-runs" / "second" / "results.json").read_text())
    assert shown.exit_code == 0 and f"{results['totalPv']:,.2f}" in shown.stdout
    printed = CliRunner().invoke(main, ["results", "--local", "batchpipe-runs/second", "--json"])
    assert json.loads(printed.stdout) == results
    missing = CliRunner().invoke(main, ["results", "--local", "third"])
    assert missing.exit_code == 2 and "no local run 'third'" in missing.stderr
    elsewhere = CliRunner().invoke(main, ["status", "--local", str(tmp_path / "empty-root")])
    assert elsewhere.exit_code == 2
