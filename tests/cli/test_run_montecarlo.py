"""`batchpipe run montecarlo --local` through click's CliRunner, against the real engine."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from batchpipe.cli import main
from tests.conftest import EXAMPLE, small_portfolio


def run(*args: str) -> Any:
    return CliRunner().invoke(main, ["run", "montecarlo", *args], catch_exceptions=False)


def test_workshop_portfolio_runs_unchanged_and_aggregates_per_strike(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = run(str(EXAMPLE), "--local", "--paths", "2000", "--output", str(out), "--job-name", "ws")
    assert result.exit_code == 0, result.output
    doc = json.loads((out / "results.json").read_text())
    assert doc["status"] == "SUCCEEDED" and doc["jobName"] == "ws"
    assert len(doc["positions"]) == 48
    workshop = json.loads(EXAMPLE.read_text())["positions"]
    by_strike: dict[str, float] = {}
    for given, priced in zip(workshop, doc["positions"], strict=True):
        assert priced["notional"] == given["notional"] and priced["strike"] == given["strike"]
        assert priced["autocallBarrier"] == given["barrier"]
        assert 0.5 * given["notional"] < priced["pv"] < 1.4 * given["notional"]
        key = str(int(given["strike"]))
        by_strike[key] = by_strike.get(key, 0.0) + priced["pv"]
    assert doc["aggregation"].keys() == by_strike.keys()
    for key, total in by_strike.items():
        assert doc["aggregation"][key] == pytest.approx(total, rel=1e-12)
    assert doc["totalPv"] == pytest.approx(sum(p["pv"] for p in doc["positions"]), rel=1e-12)
    # calibrated once, reported with its fit
    assert 0 < doc["model"]["calibrationRmse"] < 0.01
    assert set(doc["model"]["heston"]) == {"v0", "kappa", "theta", "sigma", "rho"}
    assert doc["simulation"]["paths"] >= 2000
    rows = list(csv.DictReader((out / "results.csv").open()))
    assert [float(r["pv"]) for r in rows] == [p["pv"] for p in doc["positions"]]
    assert "PV by strike" in result.output and "Total PV" in result.output


def test_json_prints_the_results_document(tmp_path: Path, write_json: Any) -> None:
    out = tmp_path / "o"
    result = run(str(write_json(small_portfolio())), "--local", "--json", "--output", str(out), "--workers", "1")
    assert result.exit_code == 0
    printed = json.loads(result.stdout)
    assert printed == json.loads((out / "results.json").read_text())
    assert printed["model"]["calibrationRmse"] is None  # parameters given, not calibrated
    assert [p["id"] for p in printed["positions"]] == ["a", "b", "c", "d", "e"]


def _results(tmp_path: Path, portfolio: Path, name: str, *args: str) -> dict[str, Any]:
    out = tmp_path / name
    result = run(str(portfolio), "--local", "--job-name", "same", "--output", str(out), *args)
    assert result.exit_code == 0, result.output
    doc: dict[str, Any] = json.loads((out / "results.json").read_text())
    return doc


def test_same_seed_same_results_whatever_the_sharding_and_workers(tmp_path: Path, write_json: Any) -> None:
    portfolio = write_json(small_portfolio())
    base = _results(tmp_path, portfolio, "a", "--positions-per-job", "5", "--workers", "1")
    for i, args in enumerate([("--positions-per-job", "1", "--workers", "2"), ("--positions-per-job", "2")]):
        assert _results(tmp_path, portfolio, f"b{i}", *args) == base
    other_seed = _results(tmp_path, portfolio, "c", "--seed", "8", "--workers", "1")
    assert other_seed["positions"][0]["pv"] != base["positions"][0]["pv"]


def test_more_paths_shrink_the_standard_error(tmp_path: Path, write_json: Any) -> None:
    portfolio = write_json(small_portfolio())
    few = _results(tmp_path, portfolio, "few", "--paths", "2000")
    many = _results(tmp_path, portfolio, "many", "--paths", "32000")
    for a, b in zip(few["positions"], many["positions"], strict=True):
        # 16x the paths: a quarter of the error, give or take the noise of estimating it
        assert 0.15 < b["stderr"] / a["stderr"] < 0.4
        assert abs(a["pv"] - b["pv"]) < 4 * math.hypot(a["stderr"], b["stderr"])
    assert 0.1 < many["totalStderr"] / few["totalStderr"] < 0.5


def test_a_failing_shard_gives_partial_and_exit_1_counting_every_failed_position(
    tmp_path: Path, write_json: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from batchpipe.pipelines.montecarlo import price

    real = price.price_chunk

    def price_chunk(plan: Any, shard: int, positions: Any, chunk: int) -> Any:
        if shard == 12:
            raise RuntimeError("injected failure")
        return real(plan, shard, positions, chunk)

    monkeypatch.setattr(price, "price_chunk", price_chunk)  # forked workers inherit it
    doc = small_portfolio(positions=[small_portfolio()["positions"][i % 5] | {"id": str(i)} for i in range(150)])
    out = tmp_path / "o"
    result = run(str(write_json(doc)), "--local", "--output", str(out), "--positions-per-job", "10")
    assert result.exit_code == 1
    res = json.loads((out / "results.json").read_text())
    assert res["status"] == "PARTIAL" and res["failedCount"] == 10 and res["failedPositions"] == list(range(120, 130))
    failed = [p for p in res["positions"] if p["error"]]
    assert [p["index"] for p in failed] == list(range(120, 130))
    assert all("injected failure" in p["error"] and p["pv"] is None for p in failed)
    assert res["totalPv"] == pytest.approx(sum(p["pv"] for p in res["positions"] if not p["error"]))
    # every failure is past the 100-row preview: the count is the run's (it read "0 of 100" before)
    assert "PARTIAL: 10 of 150 positions not priced" in " ".join(result.stderr.split())


BAD_INPUTS = [
    ("{not json", "not valid JSON"),
    (json.dumps(small_portfolio(positions=[{"strike": 3550, "barrier": 1}])), "position 0, field notional: missing"),
    (json.dumps(small_portfolio(positions=[{"notional": 1, "strike": 1, "barrier": 1},
                                            {"notional": -5, "strike": 3550, "barrier": 1}])),
     "position 1, field notional: Input should be greater than 0"),
    (json.dumps(small_portfolio(positions=[{"notional": 1, "strike": 1, "barrier": "high"}])),
     "position 0, field barrier: Input should be a valid number"),
    (json.dumps(small_portfolio(positions=[{"notional": 1, "strike": 1, "barrier": 1, "colour": "red"}])),
     "position 0, field colour: unknown field"),
    (json.dumps(small_portfolio(positions=[])), "positions: the portfolio has no positions"),
    (json.dumps(small_portfolio(simulation={"paths": "many"})), "simulation.paths: Input should be a valid integer"),
    ("[1, 2]", "must be a JSON object"),
    # inputs the engine cannot price are refused when the file is read (they ended in FAILED files, exit 1)
    (json.dumps(small_portfolio(positions=[{"notional": 1, "strike": 1, "barrier": 1},
                                           {"notional": 1, "strike": 1, "barrier": 1,
                                            "observationDates": ["2019-06-01", "2021-01-04"]}])),
     "position 1, field observationDates[0]: 2019-06-01 is not after the valuation date 2019-11-20"),
    (json.dumps(small_portfolio(positions=[{"notional": 1, "strike": 1, "barrier": 1,
                                            "observationDates": ["2019-11-20"]}])),
     "position 0, field observationDates[0]: 2019-11-20 is not after the valuation date"),
    (json.dumps(small_portfolio(positions=[{"notional": 1, "strike": 1, "barrier": 1,
                                            "observationDates": ["2021-06-01", "2020-06-01"]}])),
     "position 0, field observationDates: observation dates must be strictly increasing"),
    (json.dumps(small_portfolio(valuationDate="2020-07-01", market={})),
     "market.volSurface.expiries[0]: 2020-06-19 is not after the valuation date 2020-07-01"),
    (json.dumps(small_portfolio(market={"heston": {"v0": 0.04, "kappa": 1, "theta": 0, "sigma": 0.3, "rho": -0.5}})),
     "market.heston.theta: 0.0 is outside the accepted range"),
    (json.dumps(small_portfolio(market={"heston": {"v0": 0, "kappa": 1, "theta": 0, "sigma": 0.3, "rho": -0.5}})),
     "market.heston.theta: 0.0 is outside the accepted range"),
    (json.dumps(small_portfolio(market={"rate": 1000, "heston": {"v0": 0.04, "kappa": 1, "theta": 0.04, "sigma": 0.3,
                                                                 "rho": -0.5}})),
     "market.rate: 1000.0 is outside the accepted range [-1, 1]"),
    (json.dumps(small_portfolio(market={"dividendYield": -1000})),
     "market.dividendYield: -1000.0 is outside the accepted range [-1, 1]"),
    (json.dumps(small_portfolio(market={"heston": {"v0": 0.04, "kappa": 1e6, "theta": 0.04, "sigma": 0.3,
                                                   "rho": -0.5}})),
     "market.heston.kappa: 1000000.0 is outside the accepted range"),
    (json.dumps(small_portfolio(market={"heston": {"v0": 0.04, "kappa": 1, "theta": 0.04, "sigma": 0.3, "rho": -1}})),
     "market.heston.rho: -1.0 is outside the accepted range [-0.999, 0.999]"),
    (json.dumps(small_portfolio(simulation={"paths": 100_000_001})),
     "simulation.paths: Input should be less than or equal to 100000000"),
    ('{"name":"a","positions":[{"notional":1e7,"notional":2e7,"strike":3550,"barrier":1}]}',
     "position 0, field notional: repeated key"),
    (json.dumps(small_portfolio(positions=[{"id": "x", "notional": 1, "strike": 1, "barrier": 1},
                                           {"id": "x", "notional": 2, "strike": 1, "barrier": 1}])),
     "position 1: id 'x' is already the id of position 0"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "message"), BAD_INPUTS)
def test_bad_input_is_one_line_exit_2_nothing_written(tmp_path: Path, write_json: Any, text: str, message: str) -> None:
    path = write_json(text)
    out = tmp_path / "out"
    result = run(str(path), "--local", "--output", str(out))
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"error: {path}: ")
    assert message in lines[0]
    assert not out.exists()


def test_missing_file_and_bad_options(tmp_path: Path) -> None:
    result = run(str(tmp_path / "nope.json"), "--local", "--output", str(tmp_path / "o"))
    assert result.exit_code == 2 and "nope.json: no such file" in result.stderr
    result = run(str(EXAMPLE), "--local", "--job-name", "bad name!", "--output", str(tmp_path / "o"))
    assert result.exit_code == 2 and "--job-name" in result.stderr
    result = run(str(EXAMPLE), "--local", "--paths", "1")
    assert result.exit_code == 2
    assert not (tmp_path / "o").exists()


def test_without_local_and_without_aws_credentials_says_what_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from batchpipe.aws import clients

    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    clients.configure(region="eu-west-1")
    try:
        result = run(str(EXAMPLE), "--output", str(tmp_path / "o"))
    finally:
        clients.configure()
    assert result.exit_code == 2 and "no AWS credentials found" in result.stderr
    [line] = result.stderr.strip().splitlines()
    assert line.endswith("or add --local to run on this machine)")  # the engine that needs no account
    assert not (tmp_path / "o").exists()


def test_every_command_has_help_with_an_example() -> None:
    commands = [["run", "montecarlo"], ["run", "render"], ["deploy"], ["status"], ["results"], ["cancel"], ["destroy"]]
    for args in [[], ["run"], *commands]:
        assert CliRunner().invoke(main, [*args, "--help"]).exit_code == 0
    for args in commands:
        assert "Example" in CliRunner().invoke(main, [*args, "--help"]).output, args


def test_paths_are_rounded_up_to_the_sampling_layout_and_both_are_reported(tmp_path: Path, write_json: Any) -> None:
    out = tmp_path / "o"
    result = run(str(write_json(small_portfolio())), "--local", "--output", str(out), "--paths", "1000")
    assert result.exit_code == 0
    sim = json.loads((out / "results.json").read_text())["simulation"]
    assert (sim["paths"], sim["pathsRequested"]) == (1024, 1000)  # 64 blocks of 8 antithetic pairs
    assert "1,024 paths for 1,000 requested" in " ".join(result.stdout.split())
    assert "100,000 runs 100,096" in " ".join(CliRunner().invoke(main, ["run", "montecarlo", "--help"]).stdout.split())


@pytest.mark.parametrize("local", [["--local"], []])
def test_paths_above_the_files_cap_are_refused_on_every_backend(tmp_path: Path, local: list[str]) -> None:
    # the file caps simulation.paths at 1e8; --paths 100000001 ran for minutes locally while AWS refused it
    result = run(str(EXAMPLE), *local, "--paths", "100000001", "--output", str(tmp_path / "o"))
    assert result.exit_code == 2 and "100000001 is not in the range 2<=x<=100000000" in result.stderr
    assert not (tmp_path / "o").exists()


def test_max_calibration_rmse_is_an_error_gate(tmp_path: Path, write_json: Any) -> None:
    calibrated = small_portfolio(market={})  # the workshop surface: calibrated to about 0.36 vol points
    path = str(write_json(calibrated))
    out = tmp_path / "o"
    refused = run(path, "--local", "--output", str(out), "--max-calibration-rmse", "0.1")
    assert refused.exit_code == 2
    [line] = refused.stderr.strip().splitlines()
    assert f"error: {path}: market.volSurface: the calibration's implied-vol RMSE is 0.36 vol points" in line
    assert "above --max-calibration-rmse 0.1" in line
    assert not out.exists()
    accepted = run(path, "--local", "--output", str(out), "--max-calibration-rmse", "0.5")
    assert accepted.exit_code == 0
    assert json.loads((out / "results.json").read_text())["model"]["calibrationRmse"] == pytest.approx(0.0036, abs=2e-4)


def test_an_input_error_is_exactly_one_line_on_stderr_of_the_real_command(tmp_path: Path, write_json: Any) -> None:
    import subprocess
    import sys

    path = write_json(small_portfolio(market={"spot": 100.0}))  # the default surface: no quote can be fitted
    done = subprocess.run([str(Path(sys.executable).with_name("batchpipe")), "run", "montecarlo", str(path), "--local",
                           "--output", str(tmp_path / "o")], capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.count("\n") == 1 and done.stderr.startswith(f"error: {path}: market.volSurface: none of the 70")
    assert not (tmp_path / "o").exists()
