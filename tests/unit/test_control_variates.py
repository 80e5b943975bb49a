"""The pipeline's control-variate estimate stays consistent with the plain mean of the (non-negative, bounded)
note payoffs everywhere in the accepted domain, and the moments that decide which controls it may use.

Claim: a note's PV from montecarlo.shard_result is within 4 of its standard errors of the plain mean of its
discounted payoffs on the same paths (that mean lies in [0, maximum payoff] by construction), and within
[-4 SE, maximum + 4 SE]. The plain mean and its standard error are computed here from the same per-block sums
price_chunk hands shard_result (sums of y and y^2 over pairs, y the pair-mean PV less the riskless shift).

The moment references: E[S_t^w] from the Riccati ODE B' = sigma^2 B^2 / 2 + (rho sigma w - kappa) B + w (w - 1)
/ 2, A' = kappa theta B (scipy's solve_ivp, LSODA, rtol 1e-12), its blow-up time found by integrating until B
exceeds 1e9, and the lognormal limit sigma -> 0.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pytest
from scipy.integrate import solve_ivp

from batchpipe.pipelines import montecarlo
from batchpipe.pipelines.portfolio import parse_portfolio
from batchpipe.pricing.heston import HestonParams, moment_explosion_time, spot_kurtosis
from tests.montecarlo_memory import preprocess

Z = 4.0
RATE = 0.01  # the portfolio file's default


def estimates(heston: dict[str, float], paths: int, years: int = 7, seed: int = 2019) -> list[dict[str, Any]]:
    """Per position: the pipeline's PV and standard error, and the plain mean and its standard error, per unit of
    notional; two workshop-like positions on the default product (5% memory coupon)."""
    doc = {
        "name": "cv",
        "market": {"heston": heston},
        "product": {"maturityYears": years},
        "simulation": {"paths": paths, "seed": seed},
        "positions": [
            {"notional": 1.0, "strike": 3550.0, "barrier": 1.0},
            {"notional": 1.0, "strike": 3000.0, "barrier": 0.9},
        ],
    }
    plan, positions = preprocess(parse_portfolio(json.dumps(doc), "cv.json"), "cv")
    layout = montecarlo.SamplingLayout.of(plan.simulation)
    parts = [montecarlo.price_chunk(plan, 0, positions, c) for c in range(layout.chunks)]
    result = montecarlo.shard_result(plan, 0, positions, parts).stored()
    n = layout.blocks * layout.pairs_per_block
    shift = math.exp(-RATE * plan.observation_times[-1])
    out = []
    for key, position in zip(parts[0].notes, result["positions"], strict=True):
        sy = sum(float(part.notes[key].sum_y.sum()) for part in parts)
        syy = sum(float(part.notes[key].sum_yy.sum()) for part in parts)
        var = (syy - sy * sy / n) / (n - 1)
        out.append(
            {
                "pv": position["pv"],
                "stderr": position["stderr"],
                "plain": shift + sy / n,
                "plain_stderr": math.sqrt(max(var, 0.0) / n),
                "controls": next(iter(parts[0].controls.values())).sum_c.shape[1],
                "max": 1.0 + 0.05 * years,  # every coupon (with memory) and the notional, undiscounted
            }
        )
    return out


def inconsistencies(heston: dict[str, float], results: list[dict[str, Any]]) -> list[str]:
    bad = []
    for i, r in enumerate(results):
        pv, se, plain, plain_se = r["pv"], r["stderr"], r["plain"], r["plain_stderr"]
        if not (math.isfinite(pv) and -Z * se <= pv <= r["max"] + Z * se):
            bad.append(f"{heston} position {i}: PV {pv:.6g} +- {se:.2g} outside [0, {r['max']}]")
        if abs(pv - plain) > Z * plain_se:
            bad.append(f"{heston} position {i}: PV {pv:.6g} but the plain mean is {plain:.6g} +- {plain_se:.2g}")
    return bad


def test_the_bad_calibration_of_a_flat_200_percent_surface_prices_consistently() -> None:
    """v0 = theta = 1, kappa 2.43, sigma 5, rho 0.999 (what the old calibration box made of a flat 200% surface),
    20,000 paths, the 7-year note: the control-variate estimate used to be 0.65 per unit of notional (2.7 to 8.5
    M on 10 M over 39 seeds) where the plain mean is 0.195 +- 0.0026: the spot's fourth moment is infinite after
    0.11 years, a sample's mean spot is 4% of the forward at 7 years, and beta times that swamped the PV. Now no
    date has a control and the PV is the plain mean."""
    heston = {"v0": 1.0, "kappa": 2.43, "theta": 1.0, "sigma": 5.0, "rho": 0.999}
    results = estimates(heston, 20_000)
    assert not inconsistencies(heston, results)
    assert all(r["controls"] == 0 for r in results)
    assert results[0]["pv"] == pytest.approx(results[0]["plain"], rel=1e-12)


# corners of the accepted domain (heston_problems is empty for each), a 3-year note, 4,096 paths
CORNERS = {
    "deterministic-spot-sigma-10": {"v0": 0.0, "kappa": 1.0, "theta": 1e-6, "sigma": 10.0, "rho": -0.999},
    "lognormal-300%": {"v0": 9.0, "kappa": 1.0, "theta": 9.0, "sigma": 1e-5, "rho": 0.999},
    "slow-reversion-300%": {"v0": 9.0, "kappa": 1e-3, "theta": 9.0, "sigma": 1e-5, "rho": -0.999},
    "vol-of-vol-10-rho+": {"v0": 9.0, "kappa": 1e-3, "theta": 1e-6, "sigma": 10.0, "rho": 0.999},
    "vol-of-vol-10-rho-": {"v0": 9.0, "kappa": 20.0, "theta": 9.0, "sigma": 10.0, "rho": -0.999},
    "zero-variance-high-theta": {"v0": 0.0, "kappa": 20.0, "theta": 9.0, "sigma": 1e-5, "rho": 0.999},
    "moderate-rho+": {"v0": 0.25, "kappa": 1.0, "theta": 0.25, "sigma": 3.0, "rho": 0.9},
}


@pytest.mark.parametrize("heston", CORNERS.values(), ids=CORNERS.keys())
def test_domain_corners_price_consistently_with_a_non_negative_payoff(heston: dict[str, float]) -> None:
    """Each corner: both positions' PVs within 4 standard errors of the plain mean and of [0, maximum payoff].
    Before the controls were restricted and guarded, all but the two with kappa 20 failed (e.g. the
    deterministic spot: PV 1.0370 with a standard error of 0 against a plain mean of 1.0394, beta being rounding
    noise over rounding noise; the 300% lognormal: 0.133 against 0.096; sigma 10 with rho 0.999: 1.19 against
    0.19)."""
    assert not inconsistencies(heston, estimates(heston, 4_096, years=3))


def test_the_workshop_note_keeps_every_control() -> None:
    """The workshop's parameters: the spot's kurtosis stays below 5 over 7 years, far under 100,000 / 100, so
    every date keeps its control (the variance reduction the pipeline had)."""
    workshop = HestonParams(v0=0.01216, kappa=1.445, theta=0.0326, sigma=0.354, rho=-0.599)
    assert all(spot_kurtosis(workshop, t) < 5 for t in (0.5, 1.0, 3.0, 7.2))
    assert math.isinf(moment_explosion_time(workshop, 4.0))


# --- the moments ------------------------------------------------------------------------------------------------

MOMENT_CASES = {
    "flat-200%-fit": HestonParams(v0=1.0, kappa=2.43, theta=1.0, sigma=5.0, rho=0.999),
    "positive-rho": HestonParams(v0=0.04, kappa=2.0, theta=0.05, sigma=0.4, rho=0.5),
    "zero-rho-vol-of-vol-1": HestonParams(v0=0.04, kappa=1.0, theta=0.04, sigma=1.0, rho=0.0),
    "workshop": HestonParams(v0=0.01216, kappa=1.445, theta=0.0326, sigma=0.354, rho=-0.599),
    "corner": HestonParams(v0=9.0, kappa=20.0, theta=9.0, sigma=10.0, rho=-0.999),
}


def riccati(p: HestonParams, order: float, t_end: float) -> tuple[float, float]:
    """(log E[(S_t/F_t)^order] at t_end or nan, the time B exceeds 1e9 or inf), by the ODE."""

    def rhs(_: float, y: np.ndarray) -> list[float]:
        b = y[0]
        return [0.5 * p.sigma**2 * b * b + (p.rho * p.sigma * order - p.kappa) * b + 0.5 * order * (order - 1), b]

    def blow_up(_: float, y: np.ndarray) -> float:
        return float(y[0] - 1e9)

    blow_up.terminal = True  # type: ignore[attr-defined]
    sol = solve_ivp(rhs, [0.0, t_end], [0.0, 0.0], method="LSODA", rtol=1e-12, atol=1e-14, events=blow_up)
    if sol.t_events[0].size:
        return math.nan, float(sol.t_events[0][0])
    return float(sol.y[1, -1] * p.kappa * p.theta + sol.y[0, -1] * p.v0), math.inf


@pytest.mark.parametrize("order", [2.0, 4.0])
@pytest.mark.parametrize("p", MOMENT_CASES.values(), ids=MOMENT_CASES.keys())
def test_moment_explosion_time_matches_the_riccati_ode(p: HestonParams, order: float) -> None:
    """Andersen-Piterbarg's closed form against the ODE's blow-up (to 1e-6 relative: B reaches 1e9 within
    ~1/(sigma^2 1e9 / 2) of the pole), or both infinite (the ODE integrated to 200 years)."""
    closed = moment_explosion_time(p, order)
    _, ode = riccati(p, order, 200.0)
    if math.isinf(ode):
        assert math.isinf(closed)
    else:
        assert closed == pytest.approx(ode, rel=1e-6)


@pytest.mark.parametrize("p", MOMENT_CASES.values(), ids=MOMENT_CASES.keys())
def test_spot_kurtosis_matches_moments_from_the_ode(p: HestonParams) -> None:
    """Kurtosis from the ODE's E[(S/F)^k], k = 2, 3, 4, at times before the fourth moment explodes: to 1e-6
    relative; infinite from the explosion on."""
    horizon = moment_explosion_time(p, 4.0)
    for t in (0.05, 0.5, 2.0, 7.0):
        if t >= horizon:
            assert math.isinf(spot_kurtosis(p, t))
            continue
        e2, e3, e4 = (math.expm1(riccati(p, k, t)[0]) for k in (2.0, 3.0, 4.0))
        assert spot_kurtosis(p, t) == pytest.approx((e4 - 4 * e3 + 6 * e2) / e2**2, rel=1e-6), t


def test_spot_kurtosis_tends_to_the_lognormal_one() -> None:
    """sigma -> 0, v0 = theta: S_t is lognormal with log-variance s^2 = theta t, whose kurtosis is
    e^{4 s^2} + 2 e^{3 s^2} + 3 e^{2 s^2} - 3 (to 1e-5 relative, down to s^2 = 4e-4)."""
    p = HestonParams(v0=0.04, kappa=1.0, theta=0.04, sigma=1e-5, rho=0.0)
    for t in (0.01, 1.0, 7.0):
        s2 = p.theta * t
        lognormal = math.exp(4 * s2) + 2 * math.exp(3 * s2) + 3 * math.exp(2 * s2) - 3
        assert spot_kurtosis(p, t) == pytest.approx(lognormal, rel=1e-5), t


def test_moments_of_order_up_to_one_never_explode() -> None:
    p = HestonParams(v0=1.0, kappa=2.43, theta=1.0, sigma=5.0, rho=0.999)
    assert moment_explosion_time(p, 1.0) == moment_explosion_time(p, 0.5) == math.inf
    with pytest.raises(ValueError, match="order"):
        moment_explosion_time(p, -1.0)
