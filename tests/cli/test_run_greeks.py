"""`batchpipe run montecarlo --greeks --scenarios` through click's CliRunner, and the pricer job's stages, against
the real engine: the options, their errors, the files, sharding, resume and the AWS upload."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from batchpipe.cli import main
from batchpipe.jobs import pricer
from batchpipe.pipelines import montecarlo as mc
from batchpipe.pipelines.montecarlo.collate import GREEK_FIELDS, RESULT_FIELDS, SCENARIO_FIELDS
from batchpipe.pipelines.portfolio import load_portfolio, parse_portfolio, with_simulation_overrides
from tests.conftest import small_portfolio

LADDER = "spot=-10%:10%:10%,vol=-1:1:1"
RISK = ("--greeks", "--scenarios", LADDER)
FILES = ("results.json", "results.csv", "scenarios.csv", "summary.json")


def run(*args: str) -> Any:
    return CliRunner().invoke(main, ["run", "montecarlo", *args], catch_exceptions=False)


def _run(tmp_path: Path, portfolio: Path, name: str, *args: str) -> dict[str, bytes]:
    out = tmp_path / name
    result = run(str(portfolio), "--local", "--job-name", "same", "--output", str(out), *args)
    assert result.exit_code == 0, result.output
    return {f: (out / f).read_bytes() for f in FILES}


def test_greeks_and_scenarios_are_bit_for_bit_the_same_whatever_the_sharding_and_workers(
    tmp_path: Path, write_json: Any
) -> None:
    portfolio = write_json(small_portfolio())
    base = _run(tmp_path, portfolio, "a", *RISK, "--positions-per-job", "5", "--workers", "1")
    for i, args in enumerate([("--positions-per-job", "1", "--workers", "2"), ("--positions-per-job", "2")]):
        assert _run(tmp_path, portfolio, f"b{i}", *RISK, *args) == base
    doc = json.loads(base["results.json"])
    assert doc["totalGreeks"].keys() == doc["totalGreeksStderr"].keys() == {"delta", "gamma", "vega", "rho"}
    assert doc["greeksByStrike"].keys() == doc["aggregation"].keys() == doc["greeksByStrikeStderr"].keys()
    assert all(p["greeks"].keys() == p["greeksStderr"].keys() == {"delta", "gamma", "vega", "rho"}
               for p in doc["positions"])  # fmt: skip
    assert doc["scenarios"]["totalPv"][1][1] == doc["totalPv"]  # the unshifted scenario
    # another seed gives other greeks: they are computed, not copied
    other = json.loads(_run(tmp_path, portfolio, "c", *RISK, "--seed", "8")["results.json"])
    assert other["totalGreeks"]["delta"] != doc["totalGreeks"]["delta"]


def test_the_files_and_the_tables(tmp_path: Path, write_json: Any) -> None:
    out = tmp_path / "o"
    result = run(str(write_json(small_portfolio())), "--local", "--output", str(out), *RISK)
    assert result.exit_code == 0, result.output
    doc = json.loads((out / "results.json").read_text())
    with (out / "results.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert tuple(rows[0]) == RESULT_FIELDS + GREEK_FIELDS
    for row, position in zip(rows, doc["positions"], strict=True):
        assert float(row["delta"]) == position["greeks"]["delta"]
        assert float(row["rhoStderr"]) == position["greeksStderr"]["rho"]
    with (out / "scenarios.csv").open() as fh:
        ladder = list(csv.DictReader(fh))
    assert tuple(ladder[0]) == SCENARIO_FIELDS
    assert len(ladder) == 5 * 9  # one row per position and scenario
    unshifted = [r for r in ladder if float(r["spotShift"]) == 0 and float(r["volShift"]) == 0]
    assert [float(r["pv"]) for r in unshifted] == [p["pv"] for p in doc["positions"]]
    by_scenario: dict[tuple[float, float], float] = {}
    for r in ladder:
        key = (float(r["spotShift"]), float(r["volShift"]))
        by_scenario[key] = by_scenario.get(key, 0.0) + float(r["pv"])
    grid = doc["scenarios"]
    for i, s in enumerate(grid["spotShifts"]):
        for j, v in enumerate(grid["volShifts"]):
            assert grid["totalPv"][i][j] == pytest.approx(by_scenario[s, v], rel=1e-12)
    text = " ".join(result.stdout.split())
    assert "Greeks: delta per unit of spot" in text and "Scenarios: portfolio PV" in text
    assert f"{doc['totalGreeks']['vega']:,.2f}" in text
    assert "scenarios.csv" in " ".join(result.stderr.split())


def test_a_plain_run_has_no_greeks_and_no_scenarios(tmp_path: Path, write_json: Any) -> None:
    out = tmp_path / "o"
    assert run(str(write_json(small_portfolio())), "--local", "--output", str(out)).exit_code == 0
    doc = json.loads((out / "results.json").read_text())
    assert not {"totalGreeks", "greeksByStrike", "scenarios"} & doc.keys()
    assert "greeks" not in doc["positions"][0]
    assert (out / "results.csv").read_text().splitlines()[0] == ",".join(RESULT_FIELDS)
    assert not (out / "scenarios.csv").exists()
    assert "greeks" not in json.loads((out / "plan.json").read_text())


OPTION_ERRORS = [
    (("--greeks", "--spot-bump", "0"), "--spot-bump 0.0: Input should be greater than 0"),
    (("--greeks", "--spot-bump", "1.5"), "--spot-bump 1.5: Input should be less than 1"),
    (("--greeks", "--rate-bump", "-1e-4"), "--rate-bump -0.0001: Input should be greater than 0"),
    (("--spot-bump", "0.02",), "--spot-bump applies with --greeks"),
    (("--greeks", "--vol-bump", "0.2"), "--vol-bump 0.2: sqrt(v0) = 0.110254 moved by -0.2 is negative"),
    (("--scenarios", "spot=10%:-10%:5%"), "--scenarios 'spot=10%:-10%:5%': '10%:-10%:5%': STOP is below START"),
    (("--scenarios", "spot=-10%:10%:3%"), "STOP - START is not a whole number of steps"),
    (("--scenarios", "vol=-1%:1%:1%"), "vol shifts are in vol points, without %"),
    (("--scenarios", "colour=red"), "use spot=START:STOP:STEP and/or vol=START:STOP:STEP"),
    (("--scenarios", "spot=-100%"), "--scenarios 'spot=-100%': spot[0]: Input should be greater than -1"),
    (("--scenarios", "vol=-20:0:10"), "--scenarios: vol shift -20: sqrt(v0) = 0.110254 moved by -0.2 is negative"),
    (("--scenarios", "spot=-50%:50%:0.1%"), "'-50%:50%:0.1%': more than 1,000 shifts"),
    (("--scenarios", "spot=-50%:50%:1%,vol=-5:5:1"), "101 spot shifts x 11 vol shifts is more than 1,000 scenarios"),
]  # fmt: skip


@pytest.mark.parametrize(("args", "message"), OPTION_ERRORS)
def test_bad_options_are_one_line_exit_2_nothing_written(
    tmp_path: Path, write_json: Any, args: tuple[str, ...], message: str
) -> None:
    out = tmp_path / "out"
    result = run(str(write_json(small_portfolio())), "--local", "--output", str(out), *args)
    assert result.exit_code == 2, result.output
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("error: ") and message in line, line
    assert not out.exists()


FILE_ERRORS = [
    ({"greeks": {"spotBump": -1}}, "greeks.spotBump: Input should be greater than 0"),
    ({"greeks": {"gamma": True}}, "greeks.gamma: unknown field"),
    ({"greeks": True}, "greeks: Input should be an object"),
    ({"scenarios": {"spot": "1:0:1"}}, "scenarios.spot: '1:0:1': STOP is below START"),
    ({"scenarios": {"spot": [0.1, -0.1]}}, "scenarios.spot: shifts must be strictly increasing"),
    ({"scenarios": {"vol": []}}, "scenarios.vol: give at least one shift"),
    ({"scenarios": {"vol": [-20, 0]}}, "scenarios.vol: vol shift -20: sqrt(v0) = 0.110254 moved by -0.2 is negative"),
    ({"greeks": {"volBump": 0.5}}, "greeks.volBump 0.5: sqrt(v0) = 0.110254 moved by -0.5 is negative"),
]  # fmt: skip


@pytest.mark.parametrize(("block", "message"), FILE_ERRORS)
def test_bad_blocks_in_the_file_are_one_line_naming_the_field(
    tmp_path: Path, write_json: Any, block: dict[str, Any], message: str
) -> None:
    path = write_json(small_portfolio(**block))
    out = tmp_path / "out"
    result = run(str(path), "--local", "--output", str(out))
    assert result.exit_code == 2, result.output
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(f"error: {path}: ") and message in line, line
    assert not out.exists()


def test_the_files_blocks_price_greeks_and_scenarios_and_options_override_them(tmp_path: Path, write_json: Any) -> None:
    blocks = {"greeks": {"spotBump": 0.02}, "scenarios": {"spot": "-10%:10%:10%", "vol": [-1, 0, 1]}}
    in_file = write_json(small_portfolio(**blocks), "risk.json")
    from_file = _run(tmp_path, in_file, "file")
    plain = write_json(small_portfolio(), "plain.json")
    from_options = _run(tmp_path, plain, "options", "--greeks", "--spot-bump", "0.02", "--scenarios", LADDER)
    assert from_file == from_options
    overridden = _run(tmp_path, in_file, "override", "--spot-bump", "0.01")
    assert json.loads(overridden["results.json"])["totalGreeks"]["vega"] == json.loads(
        from_file["results.json"])["totalGreeks"]["vega"]  # fmt: skip
    assert json.loads(overridden["results.json"])["totalGreeks"]["delta"] != json.loads(
        from_file["results.json"])["totalGreeks"]["delta"]  # fmt: skip
    plan = json.loads((tmp_path / "override" / "plan.json").read_text())
    assert plan["greeks"] == {"spotBump": 0.01, "volBump": 0.01, "rateBump": 0.0001}


def test_resume_keeps_shards_only_for_the_same_greeks_and_scenarios(tmp_path: Path, write_json: Any) -> None:
    portfolio = write_json(small_portfolio())
    out = tmp_path / "out"

    def again(*args: str) -> Any:
        result = run(str(portfolio), "--local", "--job-name", "r", "--output", str(out), "--positions-per-job", "2",
                     "--workers", "1", *args)  # fmt: skip
        assert result.exit_code == 0, result.output
        return result

    assert "resuming" not in again().stderr
    assert "resuming" not in again("--greeks").stderr  # a plan without greeks: its shards have none
    assert "3 of 3 shards already priced" in again("--greeks").stderr
    assert "resuming" not in again("--greeks", "--rate-bump", "0.001").stderr
    assert "resuming" not in again("--greeks", "--rate-bump", "0.001", "--scenarios", "vol=0:1:1").stderr
    kept = again("--greeks", "--rate-bump", "0.001", "--scenarios", "vol=0:1:1")
    assert "3 of 3 shards already priced" in kept.stderr
    assert len(json.loads((out / "results.json").read_text())["scenarios"]["volShifts"]) == 2
    assert (out / "scenarios.csv").exists()
    again()  # without a ladder: the earlier run's scenarios.csv is not left beside the new results
    assert not (out / "scenarios.csv").exists()


def test_the_aws_upload_carries_the_options_into_the_same_plan(tmp_path: Path, write_json: Any) -> None:
    """On AWS the preprocess job reads the uploaded file: the options written into it give the plan (and hash) a
    local run with the options makes, and the pricer job's stages give the local engine's results."""
    path = write_json(small_portfolio(greeks={"volBump": 0.02}))
    options = mc.RiskOptions(greeks=True, rate_bump=0.0005, scenarios=LADDER)
    request = mc.risk_request(load_portfolio(path), options)
    upload = with_simulation_overrides(path, None, None, request.greeks, request.scenarios)
    assert upload is not None
    uploaded = json.loads(upload)
    assert uploaded["greeks"] == {"spotBump": 0.01, "volBump": 0.02, "rateBump": 0.0005}
    assert uploaded["scenarios"] == {"spot": [-0.1, 0.0, 0.1], "vol": [-1.0, 0.0, 1.0]}
    assert "simulation" in uploaded and uploaded["simulation"] == small_portfolio()["simulation"]
    local_plan = mc.PlanBuilder(load_portfolio(path), "j", 2, risk=options).plan()
    aws_plan = mc.PlanBuilder(parse_portfolio(upload.decode(), "s3://b/input.json"), "j", 2).plan()
    assert aws_plan == local_plan
    assert with_simulation_overrides(path, None, None) is None  # nothing to override: the file as it is

    file = tmp_path / "uploaded.json"
    file.write_bytes(upload)
    job = tmp_path / "job"
    pricer.main(["preprocess", "--input", str(file), "--output", str(job), "--job-name", "j",
                 "--positions-per-job", "2"])  # fmt: skip
    for shard in range(3):
        pricer.main(["price", "--output", str(job), "--shard", str(shard)])
    pricer.main(["collate", "--output", str(job)])
    local = tmp_path / "local"
    result = run(str(path), "--local", "--job-name", "j", "--output", str(local), "--positions-per-job", "2",
                 "--rate-bump", "0.0005", "--greeks", "--scenarios", LADDER)  # fmt: skip
    assert result.exit_code == 0, result.output
    for name in FILES:
        assert (job / name).read_bytes() == (local / name).read_bytes(), name
