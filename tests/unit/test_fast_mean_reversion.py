"""QE paths at fast mean reversion and at the corners of the accepted domain, against semi-analytic Heston values.

References: European calls from ``batchpipe.pricing.heston.call_prices`` (checked against QuantLib's
``AnalyticHestonEngine`` in test_heston_analytic.py to ~1e-11 of spot) or from ``ql.AnalyticHestonEngine``
directly, and the variance of x_T = ln S_T as the second cumulant of ``heston.log_cf`` (a Richardson-extrapolated
central difference at u = 1e-3; equal to the closed form from the CIR moments to 1e-14 relative).

Statistics: 20,000 paths = 10,000 antithetic pairs (2 blocks of 5,000) per case; standard errors from the pair
means (the two paths of a pair are dependent, the pairs are independent). Tolerance: 4 standard errors, fixed
seeds. Maturities are short where kappa is large (the grid takes kappa * 8 steps a year): at kappa = 400 a
quarter of a year is 800 steps, kappa T = 100 mean-reversion times.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import QuantLib as ql
from scipy.optimize import brentq

from batchpipe.pricing.domain import HESTON
from batchpipe.pricing.heston import HestonParams, call_prices, log_cf, probability_above
from batchpipe.pricing.paths import KAPPA_DT_LIMIT, antithetic, block_normals, build_grid, simulate_qe

SPOT, RATE, DIVIDEND = 3550.0, 0.01, 0.02
BLOCKS, PAIRS = 2, 5_000
SEED = 20240607
Z = 4.0
STEPS_PER_YEAR = 12  # the pipeline's default: the grid refines it where kappa needs
KAPPA_MAX = HESTON["kappa"].high
PROBABILITY_LEVELS = np.array([0.9, 0.7, 0.5, 0.3, 0.1])


def log_variance(p: HestonParams, t: float) -> float:
    """Var(ln S_t): minus the second derivative of log E[exp(iu x_t)] at u = 0, by Richardson-extrapolated central
    differences (Re log_cf(h) = -c2 h^2 / 2 + c4 h^4 / 24 - ...)."""

    def second(h: float) -> float:
        return float(-2.0 * np.real(log_cf(h, t, p)) / h**2)

    h = 1e-3
    return (4.0 * second(h) - second(2.0 * h)) / 3.0


def simulate(p: HestonParams, obs: np.ndarray, kappa_for_grid: float, seed: int = SEED) -> np.ndarray:
    """Spots at `obs`, shaped (2, pairs, observations): [0] and [1] are the antithetic partners."""
    grid = build_grid(obs, STEPS_PER_YEAR, kappa=kappa_for_grid)
    normals = antithetic([block_normals(seed, b, grid.steps, PAIRS) for b in range(BLOCKS)])
    spots = simulate_qe(p, SPOT, RATE, DIVIDEND, grid, normals).reshape(BLOCKS, 2, PAIRS, obs.size)
    return np.asarray(spots.transpose(1, 0, 2, 3).reshape(2, BLOCKS * PAIRS, obs.size))


def pair_estimate(values: np.ndarray) -> tuple[float, float]:
    """Mean and standard error from antithetic pair means; values shaped (2, pairs)."""
    pairs = 0.5 * (values[0] + values[1])
    return float(pairs.mean()), float(pairs.std(ddof=1) / math.sqrt(pairs.size))


def variance_estimate(x: np.ndarray) -> tuple[float, float]:
    """Var(x) and its standard error from pair means of the squared deviations; x shaped (2, pairs)."""
    mean, se = pair_estimate((x - x.mean()) ** 2)
    n = x.size
    return mean * n / (n - 1), se


def strikes_at(p: HestonParams, t: float) -> np.ndarray:
    """Strikes where the model's P(S_t > K) takes PROBABILITY_LEVELS."""
    return np.array(
        [
            brentq(lambda k, q=q: float(probability_above(SPOT, k, t, RATE, DIVIDEND, p)) - q, 1e-4 * SPOT, 1e4 * SPOT)
            for q in PROBABILITY_LEVELS
        ]
    )


def call_failures(p: HestonParams, spots: np.ndarray, obs: np.ndarray, reference: dict[float, np.ndarray]) -> list[str]:
    """Calls at strikes_at(p, t) against `reference[t]`, beyond Z standard errors."""
    failures = []
    for j, t in enumerate(obs):
        df = math.exp(-RATE * t)
        for k, ref in zip(strikes_at(p, t), reference[t], strict=True):
            mean, se = pair_estimate(df * np.maximum(spots[..., j] - k, 0.0))
            if abs(mean - ref) >= Z * se:
                failures.append(f"t={t} K={k:.1f}: MC {mean:.6g} analytic {ref:.6g} z={(mean - ref) / se:.2f}")
    return failures


# --- the Black-Scholes limit ----------------------------------------------------------------------------------

BS_LIMIT_CASES = {
    "kappa=50": (50.0, np.array([0.25, 1.0])),
    "kappa=max": (KAPPA_MAX, np.array([0.1, 0.25])),
}


@pytest.mark.parametrize("rho", [-0.5, -0.9])
@pytest.mark.parametrize("case", BS_LIMIT_CASES.values(), ids=BS_LIMIT_CASES.keys())
def test_fast_mean_reversion_tends_to_black_scholes(case: tuple[float, np.ndarray], rho: float) -> None:
    """v0 = theta = 0.04, sigma 0.3: as kappa grows Heston tends to Black-Scholes at vol sqrt(theta) = 20% with
    corrections of order sigma / kappa. The analytic variance of ln S_t is within 2% of theta t (the limit), and
    the paths carry it, and the analytic call prices at five strikes, within 4 standard errors. (At 12 steps a
    year without the kappa limit the variance is 90% too large at kappa 400: see the next test.)"""
    kappa, obs = case
    p = HestonParams(v0=0.04, kappa=kappa, theta=0.04, sigma=0.3, rho=rho)
    spots = simulate(p, obs, p.kappa)
    failures = []
    for j, t in enumerate(obs):
        exact = log_variance(p, t)
        assert exact == pytest.approx(p.theta * t, rel=0.02)
        got, se = variance_estimate(np.log(spots[..., j]))
        if abs(got - exact) >= Z * se:
            failures.append(f"t={t} Var(ln S): MC {got:.6g} analytic {exact:.6g} z={(got - exact) / se:.2f}")
    reference = {t: call_prices(SPOT, strikes_at(p, t), t, RATE, DIVIDEND, p) for t in obs}
    failures += call_failures(p, spots, obs, reference)
    assert not failures, "\n".join(failures)


def test_a_grid_blind_to_kappa_inflates_the_variance_and_the_kappa_limit_removes_it() -> None:
    """kappa 400 (the domain's maximum), rho -0.5, sigma 0.3, v0 = theta = 0.04, one quarter: on the grid of 12
    steps a year alone (3 steps, kappa dt = 33) the paths' Var(ln S_T) is 90% too large (observed; a vol of 28%
    instead of 20%, over 30 standard errors); on the grid that keeps kappa dt <= 1/8 it is within 4 standard
    errors."""
    p = HestonParams(v0=0.04, kappa=KAPPA_MAX, theta=0.04, sigma=0.3, rho=-0.5)
    obs = np.array([0.25])
    exact = log_variance(p, 0.25)
    blind, blind_se = variance_estimate(np.log(simulate(p, obs, kappa_for_grid=0.0)[..., 0]))
    assert blind / exact - 1 > 0.5 and (blind - exact) / blind_se > 20, f"blind grid: {blind / exact - 1:+.1%}"
    got, se = variance_estimate(np.log(simulate(p, obs, kappa_for_grid=p.kappa)[..., 0]))
    assert abs(got - exact) < Z * se, f"Var(ln S_T): MC {got:.6g} analytic {exact:.6g} z={(got - exact) / se:.2f}"


# --- extreme but valid parameters against QuantLib -------------------------------------------------------------

QL_TODAY = ql.Date(20, 11, 2019)


def quantlib_calls(p: HestonParams, days: int, strikes: np.ndarray) -> np.ndarray:
    """ql.AnalyticHestonEngine (Gauss-Lobatto, relative tolerance 1e-12) on flat Actual/360 curves: t = days/360."""
    dc = ql.Actual360()
    r = ql.YieldTermStructureHandle(ql.FlatForward(QL_TODAY, RATE, dc))
    q = ql.YieldTermStructureHandle(ql.FlatForward(QL_TODAY, DIVIDEND, dc))
    process = ql.HestonProcess(r, q, ql.QuoteHandle(ql.SimpleQuote(SPOT)), p.v0, p.kappa, p.theta, p.sigma, p.rho)
    engine = ql.AnalyticHestonEngine(ql.HestonModel(process), 1e-12, 1_000_000)
    out = []
    for k in strikes:
        option = ql.VanillaOption(ql.PlainVanillaPayoff(ql.Option.Call, float(k)), ql.EuropeanExercise(QL_TODAY + days))
        option.setPricingEngine(engine)
        out.append(option.NPV())
    return np.array(out)


@pytest.mark.usefixtures("ql_valuation_date")
@pytest.mark.parametrize("rho", [-0.999, 0.999])
def test_domain_corner_fast_reversion_high_vol_matches_quantlib(rho: float) -> None:
    """kappa 400 and sigma 10 (the domain's maxima), v0 = theta = 9 (300% vol), rho -0.999 or 0.999, at 36 and
    90 days: MC calls at the five strikes where P(S > K) is 0.9 ... 0.1 against ql.AnalyticHestonEngine, within
    4 standard errors."""
    p = HestonParams(v0=9.0, kappa=KAPPA_MAX, theta=9.0, sigma=HESTON["sigma"].high, rho=rho)
    days = [36, 90]
    obs = np.array(days) / 360.0
    spots = simulate(p, obs, p.kappa, seed=SEED + 1)
    reference = {t: quantlib_calls(p, d, strikes_at(p, t)) for d, t in zip(days, obs, strict=True)}
    failures = call_failures(p, spots, obs, reference)
    assert not failures, "\n".join(failures)


def test_the_domain_kappa_bound_keeps_the_grid_within_the_files_step_cap() -> None:
    """kappa at its maximum needs kappa / KAPPA_DT_LIMIT steps a year: at most 3,650 (the most stepsPerYear a
    portfolio file may ask for), with room for the step per observation interval that rounding up adds."""
    assert KAPPA_MAX / KAPPA_DT_LIMIT <= 3650 - 365
    grid = build_grid(np.array([1.0]), STEPS_PER_YEAR, kappa=KAPPA_MAX)
    assert grid.steps <= 3650
