"""Greeks and scenario PVs (`--greeks`, `--scenarios`) against references that do not share their code.

* QuantLib: a note with one observation date is a sum of vanilla and digital pieces, each a closed form of
  Heston prices: E[min(1, S_T/K)] = 1 - Put(K) / (K DF) and P(S_T >= L). Puts from ``ql.AnalyticHestonEngine``
  (as in test_heston_analytic.py), P(S_T >= L) from ``ql.HestonRNDCalculator`` (1 - cdf(ln L)). Each greek's
  reference is the same finite difference (the README's definitions, the same bumps) of these analytic prices;
  the Monte Carlo greeks must agree within 4 of their standard errors. The zero-coupon piece's PV is notional x
  DF on every path, so its rho is exactly the difference of two discount factors, and its other greeks are 0.
* Bump and reprice: the same definitions from full re-simulations (the market's spot, the model's sqrt(v0) and
  sqrt(theta), the rate changed in the portfolio file, PVs only) at 4 times the paths on another seed, within 4
  standard errors of the difference (the reprices share their seed, so their difference's standard error comes
  from their 64 block totals as batch means).
* A spot-shifted scenario is the PV in the shifted market on the same paths: a plain run at that spot gives it to
  rounding; the unshifted scenario is the PV itself, bit for bit.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pytest
import QuantLib as ql

from batchpipe.errors import InputError
from batchpipe.pipelines import montecarlo as mc
from batchpipe.pipelines.portfolio import parse_portfolio
from batchpipe.pricing.greeks import BASIS_POINT, GREEKS, VOL_POINT, vol_shift_problem, vol_shifted
from batchpipe.pricing.heston import HestonParams
from batchpipe.pricing.paths import build_grid, simulate_qe_blocks, simulate_qe_blocks_many
from tests.montecarlo_memory import collate, preprocess

HESTON = {"v0": 0.012156, "kappa": 1.445046, "theta": 0.032599, "sigma": 0.353975, "rho": -0.598907}
PARAMS = HestonParams(**HESTON)
SPOT, RATE, K = 3550.0, 0.01, 3550.0
MATURITY = "2020-11-20"  # one observation date, 366 days after the valuation date (ACT/360)
T = 366 / 360
QL_TODAY = ql.Date(20, 11, 2019)
QL_MATURITY = ql.Date(20, 11, 2020)
H, DV, DR = 0.01, 0.01, 1e-4
NOTIONAL = 1e6
COUPON, PROTECTION = 0.05, 0.7
NEVER = 1e9  # a barrier no path reaches
# One-date notes: the payoff at the last date only (the autocall barrier plays no part).
ONE_DATE = {
    "put": {"couponBarrier": NEVER, "protectionBarrier": NEVER},  # min(1, x) = 1 - (1 - x)+
    "digital": {"couponBarrier": 1.0, "protectionBarrier": 0.0},  # 1 + coupon 1{x >= 1}
    "zero": {"couponBarrier": NEVER, "protectionBarrier": 0.0},  # 1
    "note": {"couponBarrier": 1.0, "protectionBarrier": PROTECTION},  # all three
}


def one_date_portfolio(paths: int, seed: int, **market: Any) -> dict[str, Any]:
    return {
        "name": "one-date",
        "market": {"spot": SPOT, "rate": RATE, "heston": HESTON} | market,
        "simulation": {"paths": paths, "seed": seed, "stepsPerYear": 24},
        "positions": [
            {"id": name, "notional": NOTIONAL, "strike": K, "barrier": 1.0, "coupon": COUPON,
             "observationDates": [MATURITY]} | terms
            for name, terms in ONE_DATE.items()
        ],
    }  # fmt: skip


def priced(doc: dict[str, Any], risk: mc.RiskOptions | None = None) -> tuple[mc.Plan, mc.ShardResult]:
    plan, positions = preprocess(parse_portfolio(json.dumps(doc), "greeks.json"), "greeks", risk=risk)
    assert plan.shards == 1
    return plan, mc.price_shard(plan, 0, positions)


def ql_pieces(spot: float, p: HestonParams, rate: float, strikes: list[float]) -> tuple[list[float], list[float]]:
    """QuantLib's put prices at `strikes` and P(S_T >= strike) (QuantLib's evaluation date: QL_TODAY)."""
    assert ql.Settings.instance().evaluationDate == QL_TODAY
    dc = ql.Actual360()
    r = ql.YieldTermStructureHandle(ql.FlatForward(QL_TODAY, rate, dc))
    q = ql.YieldTermStructureHandle(ql.FlatForward(QL_TODAY, 0.0, dc))
    process = ql.HestonProcess(r, q, ql.QuoteHandle(ql.SimpleQuote(spot)), p.v0, p.kappa, p.theta, p.sigma, p.rho)
    engine = ql.AnalyticHestonEngine(ql.HestonModel(process), 1e-12, 1_000_000)
    puts = []
    for strike in strikes:
        option = ql.VanillaOption(ql.PlainVanillaPayoff(ql.Option.Put, strike), ql.EuropeanExercise(QL_MATURITY))
        option.setPricingEngine(engine)
        puts.append(option.NPV())
    rnd = ql.HestonRNDCalculator(process, 1e-9, 100_000)
    return puts, [1.0 - rnd.cdf(math.log(strike), T) for strike in strikes]


def analytic_pvs(spot: float = SPOT, p: HestonParams = PARAMS, rate: float = RATE) -> dict[str, float]:
    """Each one-date note's PV from QuantLib's prices."""
    df = math.exp(-rate * T)
    (put_k, put_pk), (above_k, above_pk) = ql_pieces(spot, p, rate, [K, PROTECTION * K])
    return {
        "put": NOTIONAL * (df - put_k / K),
        "digital": NOTIONAL * df * (1.0 + COUPON * above_k),
        "zero": NOTIONAL * df,
        # coupon over K, notional above pK, x = S/K below it
        "note": NOTIONAL * (df * (COUPON * above_k + above_pk + PROTECTION * (1.0 - above_pk)) - put_pk / K),
    }


def analytic_greeks() -> dict[str, dict[str, float]]:
    """The README's finite differences of the analytic PVs."""
    base = analytic_pvs()
    up, down = analytic_pvs(spot=SPOT * (1 + H)), analytic_pvs(spot=SPOT * (1 - H))
    vol_up, vol_down = analytic_pvs(p=vol_shifted(PARAMS, DV)), analytic_pvs(p=vol_shifted(PARAMS, -DV))
    rate_up, rate_down = analytic_pvs(rate=RATE + DR), analytic_pvs(rate=RATE - DR)
    return {
        name: {
            "pv": base[name],
            "delta": (up[name] - down[name]) / (2 * H * SPOT),
            "gamma": (up[name] - 2 * base[name] + down[name]) / (H * SPOT) ** 2,
            "vega": (vol_up[name] - vol_down[name]) / 2 * (VOL_POINT / DV),
            "rho": (rate_up[name] - rate_down[name]) / 2 * (BASIS_POINT / DR),
        }
        for name in ONE_DATE
    }


@pytest.fixture(scope="module")
def one_date_run() -> tuple[mc.Plan, mc.ShardResult]:
    return priced(one_date_portfolio(2**17, 11), mc.RiskOptions(greeks=True))


def test_one_date_notes_greeks_agree_with_quantlib_within_4_standard_errors(
    one_date_run: tuple[mc.Plan, mc.ShardResult], ql_valuation_date: None
) -> None:
    """131,072 paths, 24 steps a year. Observed at seed 11: |z| <= 3.0 (the put's delta -2.8, the note's PV -3.0);
    over seeds 1 to 6 |z| <= 2.4."""
    plan, result = one_date_run
    assert plan.greeks == mc.documents.GreekBumps(spot_bump=H, vol_bump=DV, rate_bump=DR)  # the defaults
    reference = analytic_greeks()
    report, bad = [], []
    for position, name in zip(result.positions, ONE_DATE, strict=True):
        assert position.greeks is not None and position.greeks_stderr is not None
        got = {"pv": (position.pv, position.stderr)} | {
            g: (getattr(position.greeks, g), getattr(position.greeks_stderr, g)) for g in GREEKS
        }
        for what, (value, stderr) in got.items():
            assert value is not None and stderr is not None
            want = reference[name][what]
            if name == "zero":  # the same cash flow on every path
                exact = want if what in ("pv", "rho") else 0.0
                assert value == pytest.approx(exact, rel=1e-12, abs=1e-9), (name, what)
                continue
            z = (value - want) / stderr
            report.append(f"{name} {what}: MC {value:.6g} ± {stderr:.3g}, QuantLib {want:.6g}, z {z:+.2f}")
            if not abs(z) < 4:
                bad.append(report[-1])
    assert not bad, "\n".join(report)
    # the greeks are measured, not noise: every non-zero reference is many standard errors from zero
    for position, name in zip(result.positions, ONE_DATE, strict=True):
        assert position.greeks is not None and position.greeks_stderr is not None
        for g in ("delta", "vega"):
            if name != "zero":
                assert abs(reference[name][g]) > 10 * getattr(position.greeks_stderr, g), (name, g)


def test_the_zero_coupon_rho_is_the_discount_factors_difference(
    one_date_run: tuple[mc.Plan, mc.ShardResult],
) -> None:
    _, result = one_date_run
    zero = result.positions[list(ONE_DATE).index("zero")]
    assert zero.greeks is not None
    exact = NOTIONAL * (math.exp(-(RATE + DR) * T) - math.exp(-(RATE - DR) * T)) / 2
    assert zero.greeks.rho == pytest.approx(exact, rel=1e-9)
    assert exact == pytest.approx(-NOTIONAL * T * math.exp(-RATE * T) * BASIS_POINT, rel=1e-6)  # -T x PV per bp
    assert (zero.greeks.delta, zero.greeks.gamma, zero.greeks.vega) == (0.0, 0.0, 0.0)


# A 3-year annual note on the workshop's terms, and the same note with a 70% protection: multi-date notes with
# autocalls and memory coupons.
REPRICE_POSITIONS = [
    {"id": "a", "notional": 1e7, "strike": 3550, "barrier": 1.0, "maturityYears": 3},
    {"id": "b", "notional": 5e6, "strike": 3400, "barrier": 0.95, "maturityYears": 3, "protectionBarrier": 0.7},
]


def reprice_portfolio(paths: int, seed: int, spot: float = SPOT, rate: float = RATE,
                      params: HestonParams = PARAMS) -> dict[str, Any]:  # fmt: skip
    heston = HESTON | {"v0": params.v0, "theta": params.theta}
    return {
        "name": "reprice",
        "market": {"spot": spot, "rate": rate, "heston": heston},
        "simulation": {"paths": paths, "seed": seed},
        "positions": REPRICE_POSITIONS,
    }


def _reprice(paths: int, seed: int, **market: Any) -> tuple[np.ndarray, np.ndarray]:
    """Each position's PV and its block means (its shard's block totals, one position per shard)."""
    doc = reprice_portfolio(paths, seed, **market)
    plan, positions = preprocess(parse_portfolio(json.dumps(doc), "reprice.json"), "reprice", positions_per_job=1)
    pvs, blocks = [], []
    for shard in range(plan.shards):
        result = mc.price_shard(plan, shard, positions[shard : shard + 1])
        assert result.block_totals is not None and result.positions[0].pv is not None
        pvs.append(result.positions[0].pv)
        blocks.append([math.fsum(parts) for parts in result.block_totals])
    return np.array(pvs), np.array(blocks)


def test_greeks_agree_with_an_independent_bump_and_reprice_within_4_standard_errors() -> None:
    plan, result = priced(reprice_portfolio(16_384, 5), mc.RiskOptions(greeks=True))
    paths, seed = 4 * 16_384, 77
    base = _reprice(paths, seed)
    up, down = _reprice(paths, seed, spot=SPOT * (1 + H)), _reprice(paths, seed, spot=SPOT * (1 - H))
    vol_up = _reprice(paths, seed, params=vol_shifted(PARAMS, DV))
    vol_down = _reprice(paths, seed, params=vol_shifted(PARAMS, -DV))
    rate_up, rate_down = _reprice(paths, seed, rate=RATE + DR), _reprice(paths, seed, rate=RATE - DR)

    def combination(weights: list[tuple[float, tuple[np.ndarray, np.ndarray]]]) -> tuple[np.ndarray, np.ndarray]:
        value = sum(w * run[0] for w, run in weights)
        blocks = sum(w * run[1] for w, run in weights)
        assert isinstance(blocks, np.ndarray)
        return np.asarray(value), np.std(blocks, axis=1, ddof=1) / math.sqrt(blocks.shape[1])

    reference = {
        "delta": combination([(1 / (2 * H * SPOT), up), (-1 / (2 * H * SPOT), down)]),
        "gamma": combination([(1 / (H * SPOT) ** 2, up), (-2 / (H * SPOT) ** 2, base), (1 / (H * SPOT) ** 2, down)]),
        "vega": combination([(0.5, vol_up), (-0.5, vol_down)]),
        "rho": combination([(0.5, rate_up), (-0.5, rate_down)]),
    }
    report, bad = [], []
    for i, position in enumerate(result.positions):
        assert position.greeks is not None and position.greeks_stderr is not None
        for g in GREEKS:
            value, stderr = getattr(position.greeks, g), getattr(position.greeks_stderr, g)
            want, want_stderr = reference[g][0][i], reference[g][1][i]
            z = (value - want) / math.hypot(stderr, want_stderr)
            report.append(f"{position.index} {g}: {value:.6g} ± {stderr:.3g}, reprice {want:.6g} ± "
                          f"{want_stderr:.3g}, z {z:+.2f}")  # fmt: skip
            if not abs(z) < 4:
                bad.append(report[-1])
    assert not bad, "\n".join(report)
    # the common random numbers are what make the greeks precise: delta's standard error is a fraction of what
    # the difference of two independent PVs would have (observed: 0.23 of it)
    for position in result.positions:
        assert position.greeks_stderr is not None and position.stderr is not None
        delta_stderr = position.greeks_stderr.delta
        assert delta_stderr is not None
        assert delta_stderr < 0.4 * math.sqrt(2) * position.stderr / (2 * H * SPOT)
    assert plan.simulation.paths == 16_384


def test_scenarios_are_the_pv_in_the_shocked_market_on_the_same_paths() -> None:
    grid = "spot=-20%:10%:10%,vol=-2:1:1"
    plan, result = priced(reprice_portfolio(4096, 3), mc.RiskOptions(scenarios=grid))
    assert plan.scenarios is not None
    assert plan.scenarios.spot_shifts == [-0.2, -0.1, 0.0, 0.1] and plan.scenarios.vol_shifts == [-2, -1, 0, 1]
    _, plain = priced(reprice_portfolio(4096, 3))
    vols = plan.scenarios.vol_shifts
    for s, spot_shift in enumerate(plan.scenarios.spot_shifts):
        _, shifted = priced(reprice_portfolio(4096, 3, spot=SPOT * (1 + spot_shift)))
        for got, want, base in zip(result.positions, shifted.positions, plain.positions, strict=True):
            assert got.scenario_pvs is not None and len(got.scenario_pvs) == 16
            scenario = got.scenario_pvs[s * len(vols) + vols.index(0)]
            if spot_shift == 0:
                assert scenario == base.pv  # the PV itself, bit for bit
            # paths scaled by 1 + shift, or simulated from the shifted spot: the same paths but for rounding
            assert scenario == pytest.approx(want.pv, rel=1e-9)
    # vol shifts move the PV the way vega says: down with more vol, for these notes
    for got in result.positions:
        assert got.scenario_pvs is not None
        ladder = got.scenario_pvs[2 * len(vols) : 3 * len(vols)]
        assert ladder == sorted(ladder, reverse=True)


def test_portfolio_totals_are_the_exact_sums_with_batch_means_standard_errors() -> None:
    doc = reprice_portfolio(4096, 3)
    portfolio = parse_portfolio(json.dumps(doc), "p.json")
    risk = mc.RiskOptions(greeks=True, scenarios="spot=-10%:10%:10%,vol=-1:1:1")
    plan, positions = preprocess(portfolio, "t", positions_per_job=1, risk=risk)
    results = collate(plan, positions, [mc.price_shard(plan, s, positions[s : s + 1]) for s in range(plan.shards)])
    assert results.total_greeks is not None and results.total_greeks_stderr is not None
    assert results.greeks_by_strike is not None and results.greeks_by_strike_stderr is not None
    for g in GREEKS:
        values = [getattr(row.greeks, g) for row in results.positions]
        assert getattr(results.total_greeks, g) == math.fsum(values)
        by_strike = {k: getattr(v, g) for k, v in results.greeks_by_strike.items()}
        assert by_strike == {"3400": values[1], "3550": values[0]}
        # two positions on the same paths: the portfolio's error is not the root sum of squares, but near it and
        # at most their sum
        errors = [getattr(row.greeks_stderr, g) for row in results.positions]
        total_error = getattr(results.total_greeks_stderr, g)
        assert 0.5 * math.hypot(*errors) < total_error < 1.5 * sum(errors)
    ladder = results.scenarios
    assert ladder is not None and ladder.total_pv is not None and ladder.total_stderr is not None
    assert ladder.total_pv[1][1] == results.total_pv and ladder.total_stderr[1][1] == results.total_stderr
    assert set(ladder.by_strike) == {"3400", "3550"}


def test_vol_bumps_resimulate_from_the_same_normals() -> None:
    grid = build_grid(np.array([0.5, 1.0, 3.0]), 12, kappa=PARAMS.kappa)
    models = [PARAMS, vol_shifted(PARAMS, DV), vol_shifted(PARAMS, -DV)]
    together = simulate_qe_blocks_many(models, SPOT, RATE, 0.0, grid, 9, range(2, 5), 64)
    for p, paths in zip(models, together, strict=True):
        np.testing.assert_array_equal(paths, simulate_qe_blocks(p, SPOT, RATE, 0.0, grid, 9, range(2, 5), 64))
    assert vol_shifted(PARAMS, 0.0) is PARAMS
    up = vol_shifted(PARAMS, DV)
    assert math.sqrt(up.v0) == pytest.approx(math.sqrt(PARAMS.v0) + DV)
    assert math.sqrt(up.theta) == pytest.approx(math.sqrt(PARAMS.theta) + DV)
    assert (up.kappa, up.sigma, up.rho) == (PARAMS.kappa, PARAMS.sigma, PARAMS.rho)


def test_a_bump_that_makes_a_square_root_negative_is_refused() -> None:
    assert vol_shift_problem(PARAMS, -0.05) is None
    problem = vol_shift_problem(PARAMS, -0.2)  # sqrt(v0) = 0.11
    assert problem is not None and "sqrt(v0)" in problem and "negative" in problem
    with pytest.raises(InputError, match=r"^--vol-bump 0.2: sqrt\(v0\) = 0.110254 moved by -0.2 is negative"):
        preprocess(parse_portfolio(json.dumps(reprice_portfolio(256, 1)), "p.json"), "t",
                   risk=mc.RiskOptions(greeks=True, vol_bump=0.2))  # fmt: skip
    doc = reprice_portfolio(256, 1) | {"scenarios": {"vol": [-20, 0]}}
    with pytest.raises(InputError, match=r"^p.json: scenarios.vol: vol shift -20: sqrt\(v0\)"):
        preprocess(parse_portfolio(json.dumps(doc), "p.json"), "t")
    doc = reprice_portfolio(256, 1, rate=0.99999) | {"greeks": {}}
    with pytest.raises(InputError, match=r"^p.json: greeks.rateBump 0.0001: the rate moved to 1.00009 is outside"):
        preprocess(parse_portfolio(json.dumps(doc), "p.json"), "t")


def test_a_plan_records_its_greeks_and_scenarios_and_its_hash_covers_them() -> None:
    portfolio = parse_portfolio(json.dumps(reprice_portfolio(256, 1)), "p.json")
    plain, _ = preprocess(portfolio, "t")
    assert "greeks" not in plain.stored() and "scenarios" not in plain.stored()
    hashes = {plain.plan_hash}
    for risk in [mc.RiskOptions(greeks=True), mc.RiskOptions(greeks=True, spot_bump=0.02),
                 mc.RiskOptions(greeks=True, vol_bump=0.02), mc.RiskOptions(greeks=True, rate_bump=0.001),
                 mc.RiskOptions(scenarios="spot=-5%:5%:5%"), mc.RiskOptions(scenarios="vol=-1:1:1")]:  # fmt: skip
        plan, _ = preprocess(portfolio, "t", risk=risk)
        hashes.add(plan.plan_hash)
        assert mc.Plan.read(plan.stored()) == plan
    assert len(hashes) == 7
    # the file's blocks and the command line's options are the same plan
    in_file = json.dumps(reprice_portfolio(256, 1) | {"greeks": {"spotBump": 0.02}, "scenarios": {"spot": "-5%:5%:5%"}})
    from_file, _ = preprocess(parse_portfolio(in_file, "p.json"), "t")
    options = mc.RiskOptions(greeks=True, spot_bump=0.02, scenarios="spot=-5%:5%:5%")
    assert from_file.plan_hash == preprocess(portfolio, "t", risk=options)[0].plan_hash


def test_bumps_other_than_the_defaults_keep_the_units() -> None:
    """A greek is a derivative in fixed units (per unit of spot, per vol point, per basis point): halving the
    bump changes it only by the finite difference's curvature, far less than its value."""
    _, default = priced(reprice_portfolio(4096, 3), mc.RiskOptions(greeks=True))
    _, halved = priced(reprice_portfolio(4096, 3),
                       mc.RiskOptions(greeks=True, spot_bump=H / 2, vol_bump=DV / 2, rate_bump=DR / 2))  # fmt: skip
    for a, b in zip(default.positions, halved.positions, strict=True):
        assert a.greeks is not None and b.greeks is not None and a.greeks_stderr is not None
        for g in ("delta", "vega", "rho"):
            x, y = getattr(a.greeks, g), getattr(b.greeks, g)
            assert abs(x - y) < 0.25 * abs(x) + 4 * getattr(a.greeks_stderr, g), g


def test_the_shard_result_stays_small() -> None:
    """Per position: its greeks, their errors and its scenario PVs; per block: one total per greek (and strike)
    and per scenario; never per-path data."""
    plan, result = priced(reprice_portfolio(4096, 3), mc.RiskOptions(greeks=True, scenarios="vol=-1:1:1"))
    stored = json.dumps(result.stored())
    assert len(stored) < 40_000
    assert result.greek_block_totals is not None and result.scenario_block_totals is not None
    assert {len(v) for v in result.greek_block_totals.values()} == {plan.simulation.blocks}
    assert len(result.scenario_block_totals) == 3
    assert mc.fits(plan, 0, [], result) is False  # not the shard's positions
    incomplete = result.model_copy(update={"scenario_block_totals": None})
    positions = preprocess(parse_portfolio(json.dumps(reprice_portfolio(4096, 3)), "p.json"), "t")[1]
    assert mc.fits(plan, 0, positions, result) and not mc.fits(plan, 0, positions, incomplete)
    no_greeks = result.model_copy(update={"positions": [replace_greeks(p) for p in result.positions]})
    assert not mc.fits(plan, 0, positions, no_greeks)


def replace_greeks(position: mc.PositionResult) -> mc.PositionResult:
    return position.model_copy(update={"greeks": None})


def test_greeks_and_scenarios_leave_the_pvs_of_the_golden_run_unchanged() -> None:
    """The golden Monte Carlo run's plan, with greeks and a ladder added: every PV, standard error and block total
    is bit for bit the plain plan's (and the golden files themselves are checked in test_documents_golden.py)."""
    from pathlib import Path

    from batchpipe.layout import RunLayout
    from batchpipe.pipelines.montecarlo import streaming

    golden = RunLayout.at(str(Path(__file__).resolve().parents[1] / "data" / "golden" / "montecarlo"))
    plain = streaming.read_plan(golden)
    bumps = mc.documents.GreekBumps(spot_bump=H, vol_bump=DV, rate_bump=DR)
    ladder = mc.documents.ScenarioGrid(spot_shifts=[-0.1, 0.0], vol_shifts=[0.0, 2.0])
    risky = plain.model_copy(update={"greeks": bumps, "scenarios": ladder, "plan_hash": "with-risk"})
    for shard in range(plain.shards):
        positions = streaming.read_shard_positions(golden, plain, shard)
        a, b = mc.price_shard(plain, shard, positions), mc.price_shard(risky, shard, positions)
        assert b.block_totals == a.block_totals
        for x, y in zip(a.positions, b.positions, strict=True):
            assert (y.pv, y.stderr, y.error) == (x.pv, x.stderr, x.error)
            if y.error is None:
                assert y.greeks is not None and y.scenario_pvs is not None
                assert y.scenario_pvs[2] == x.pv  # spot shift 0 (the second), vol shift 0 (the first)
            else:
                assert y.greeks is None and y.scenario_pvs is None
