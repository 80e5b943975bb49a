"""Andersen QE paths (batchpipe.pricing.paths) against semi-analytic Heston values.

References: European calls and puts from ``batchpipe.pricing.heston.call_prices``/``put_prices`` and
cash-or-nothing digitals from ``probability_above``, which tests/unit/test_heston_analytic.py checks against
QuantLib's ``AnalyticHestonEngine`` and ``HestonRNDCalculator`` to ~1e-10. The forward E[S_t] = S0 e^{(r-q)t}
is exact.

Statistics: every Monte Carlo estimate uses 100,000 paths = 50,000 antithetic pairs (8 blocks of 6,250 pairs),
and its standard error is the sample standard deviation of the PAIR means over sqrt(50,000): the two paths of
a pair are dependent, the pairs are independent. Tolerance: 4 standard errors, fixed seeds (deterministic).

Discretisation: the workshop parameters are simulated at the pipeline's default 12 steps a year. The
Feller-violating set (2 kappa theta / sigma^2 = 0.04, so the variance lives near zero and QE's exponential
branch, psi > 1.5, is taken on most steps) is simulated at 96 steps a year: at 12 a year its 3-month
at-the-money digital is biased by ~0.024 in probability (~20 standard errors at this path count), a
discretisation error that vanishes as the step shrinks (~0.004 at 48, within noise at 200), not a defect of
the branch.
"""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest
from scipy.optimize import brentq

from batchpipe.pipelines.montecarlo import price
from batchpipe.pipelines.portfolio import parse_portfolio
from batchpipe.pricing.domain import HESTON
from batchpipe.pricing.heston import HestonParams, call_prices, probability_above, put_prices
from batchpipe.pricing.paths import (
    KAPPA_DT_LIMIT,
    STEP_SLAB,
    TimeGrid,
    antithetic,
    block_normals,
    build_grid,
    chunk_normals,
    simulate_qe,
    simulate_qe_antithetic,
    simulate_qe_blocks,
)
from tests.montecarlo_memory import preprocess

SPOT, RATE, DIVIDEND = 3550.0, 0.01, 0.02
WORKSHOP = HestonParams(v0=0.01216, kappa=1.445, theta=0.0326, sigma=0.354, rho=-0.599)
FELLER_VIOLATED = HestonParams(v0=0.04, kappa=0.5, theta=0.04, sigma=1.0, rho=-0.7)
POSITIVE_RHO = HestonParams(v0=0.04, kappa=2.0, theta=0.05, sigma=0.4, rho=0.5)
MATURITIES = np.array([0.25, 1.0, 2.0])
BLOCKS, PAIRS_PER_BLOCK = 8, 6_250  # 100,000 paths
SEED = 20191120
Z_TOLERANCE = 4.0

# strikes where the model's P(S_T > K) takes these values: at least ~2% of the paths on either side of every
# strike, so that the estimators are near-normal (a strike crossed by ~30 paths in 100,000 gives z-scores that
# are not normal at all, whatever the scheme)
PROBABILITY_LEVELS = np.array([0.98, 0.9, 0.7, 0.5, 0.3, 0.1, 0.02])


def simulate(p: HestonParams, obs: np.ndarray, steps_per_year: int, seed: int = SEED) -> np.ndarray:
    """Spots at `obs`, shaped (blocks, 2, pairs, observations): [:, 0] and [:, 1] are the antithetic
    partners."""
    grid = build_grid(obs, steps_per_year, kappa=p.kappa)
    normals = antithetic([block_normals(seed, b, grid.steps, PAIRS_PER_BLOCK) for b in range(BLOCKS)])
    spots = simulate_qe(p, SPOT, RATE, DIVIDEND, grid, normals)
    return spots.reshape(BLOCKS, 2, PAIRS_PER_BLOCK, obs.size)


def pair_estimate(payoff: np.ndarray) -> tuple[float, float]:
    """Mean and standard error from antithetic pair means; payoff shaped (blocks, 2, pairs)."""
    pairs = 0.5 * (payoff[:, 0] + payoff[:, 1]).ravel()
    return float(pairs.mean()), float(pairs.std(ddof=1) / math.sqrt(pairs.size))


def strikes_at_probabilities(p: HestonParams, t: float, levels: np.ndarray) -> np.ndarray:
    """The strikes K with probability_above(K) = level (brentq, default tolerance)."""
    return np.array(
        [
            brentq(
                lambda k, q=q: float(probability_above(SPOT, k, t, RATE, DIVIDEND, p)) - q,
                0.01 * SPOT,
                100 * SPOT,
            )
            for q in levels
        ]
    )


Simulated = tuple[HestonParams, np.ndarray]  # parameters, spots from `simulate`
CASES = {
    "workshop-12-steps-a-year": (WORKSHOP, 12),
    "feller-violated-96-steps-a-year": (FELLER_VIOLATED, 96),
}


@pytest.fixture(scope="module", params=list(CASES), ids=list(CASES))
def simulation(request: pytest.FixtureRequest) -> Simulated:
    p, steps_per_year = CASES[request.param]
    return p, simulate(p, MATURITIES, steps_per_year)


@pytest.mark.parametrize("j", range(MATURITIES.size), ids=[f"T={t}" for t in MATURITIES])
def test_european_calls_puts_and_digitals_match_analytic(simulation: Simulated, j: int) -> None:
    """Discounted max(S-K, 0), max(K-S, 0) and 1{S > K} against call_prices, put_prices and e^{-rT}
    probability_above at the 7 strikes where P(S_T > K) is 0.98 ... 0.02: all within 4 standard errors."""
    p, spots = simulation
    t = float(MATURITIES[j])
    s_t = spots[..., j]
    df = math.exp(-RATE * t)
    strikes = strikes_at_probabilities(p, t, PROBABILITY_LEVELS)
    analytic = {
        "call": call_prices(SPOT, strikes, t, RATE, DIVIDEND, p),
        "put": put_prices(SPOT, strikes, t, RATE, DIVIDEND, p),
        "digital": df * probability_above(SPOT, strikes, t, RATE, DIVIDEND, p),
    }
    failures = []
    for i, k in enumerate(strikes):
        payoffs = {
            "call": df * np.maximum(s_t - k, 0.0),
            "put": df * np.maximum(k - s_t, 0.0),
            "digital": df * (s_t > k),
        }
        for kind, payoff in payoffs.items():
            mean, se = pair_estimate(payoff)
            assert se > 0, f"{kind} K={k:.1f}: no dispersion, the strike is out of reach"
            z = (mean - analytic[kind][i]) / se
            if abs(z) >= Z_TOLERANCE:
                failures.append(f"{kind} K={k:.1f}: MC {mean:.6g} analytic {analytic[kind][i]:.6g} z={z:.2f}")
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("steps_per_year", [1, 12])
@pytest.mark.parametrize(
    "p",
    [WORKSHOP, FELLER_VIOLATED, POSITIVE_RHO],
    ids=["workshop", "feller-violated", "positive-rho"],
)
def test_discounted_spot_is_a_martingale(p: HestonParams, steps_per_year: int) -> None:
    """E[S_t e^{-(r-q)t}] = S0 at every observation time, within 4 standard errors, even with one step a year:
    Andersen's martingale correction makes the scheme's forward exact whatever the step (observed |z| <= 3
    when written). Positive rho with a large sigma is left out: there the second moment of S_t explodes, the
    sample standard error means nothing, and Andersen's correction may not exist."""
    obs = np.array([0.25, 1.0, 2.0, 5.0])
    spots = simulate(p, obs, steps_per_year, seed=SEED + 1)
    for j, t in enumerate(obs):
        mean, se = pair_estimate(spots[..., j] * math.exp(-(RATE - DIVIDEND) * t))
        assert abs(mean - SPOT) < Z_TOLERANCE * se, f"t={t}: mean {mean:.4f}, z={(mean - SPOT) / se:.2f}"


def test_qe_paths_depend_only_on_their_own_normals() -> None:
    """A block's paths do not depend on which other blocks are simulated with it (what makes sharding
    exact)."""
    grid = build_grid(np.array([0.5, 1.0]), 12, kappa=FELLER_VIOLATED.kappa)
    n0, n1 = (block_normals(7, b, grid.steps, 500) for b in (0, 1))
    together = simulate_qe(FELLER_VIOLATED, SPOT, RATE, DIVIDEND, grid, antithetic([n0, n1]))
    alone = simulate_qe(FELLER_VIOLATED, SPOT, RATE, DIVIDEND, grid, antithetic([n1]))
    np.testing.assert_array_equal(together[1000:], alone)


def test_chunk_normals_stack_the_blocks_normals() -> None:
    """chunk_normals (what the pipeline draws) is block_normals of each block, stacked."""
    out = chunk_normals(2019, range(3, 6), 7, 11)
    assert out.shape == (3, 7, 2, 11)
    for i, b in enumerate(range(3, 6)):
        np.testing.assert_array_equal(out[i], block_normals(2019, b, 7, 11))


@pytest.mark.parametrize("p", [WORKSHOP, FELLER_VIOLATED], ids=["workshop", "feller-violated"])
def test_antithetic_simulation_equals_simulate_qe_on_antithetic_normals(p: HestonParams) -> None:
    """simulate_qe_antithetic (the pipeline's) gives the paths of simulate_qe on antithetic(...), rows laid
    out as (sign, block, pair), to 1e-12 relative."""
    grid = build_grid(np.array([0.3, 1.0, 2.5]), 12, kappa=p.kappa)
    blocks, half = 3, 200
    normals = chunk_normals(5, range(blocks), grid.steps, half)
    fast = simulate_qe_antithetic(p, SPOT, RATE, DIVIDEND, grid, normals).reshape(2, blocks, half, 3)
    plain = simulate_qe(p, SPOT, RATE, DIVIDEND, grid, antithetic(list(normals))).reshape(blocks, 2, half, 3)
    np.testing.assert_allclose(fast, plain.transpose(1, 0, 2, 3), rtol=1e-12)


@pytest.mark.parametrize("steps_per_year", [12, 400])  # 31 steps (one slab), 1,000 (eight slabs, the last short)
def test_streamed_normals_give_the_same_paths_bit_for_bit(steps_per_year: int) -> None:
    """simulate_qe_blocks (the pipeline's: normals drawn a slab of steps at a time, memory independent of the grid)
    equals simulate_qe_antithetic on every step's normals drawn at once."""
    grid = build_grid(np.array([0.3, 1.0, 2.5]), steps_per_year, kappa=WORKSHOP.kappa)
    assert grid.steps > STEP_SLAB or steps_per_year == 12
    blocks, half = range(2, 5), 50
    normals = chunk_normals(11, blocks, grid.steps, half)
    whole = simulate_qe_antithetic(WORKSHOP, SPOT, RATE, DIVIDEND, grid, normals)
    streamed = simulate_qe_blocks(WORKSHOP, SPOT, RATE, DIVIDEND, grid, 11, blocks, half)
    assert np.array_equal(whole, streamed)


def test_simulate_rejects_normals_for_another_grid() -> None:
    grid = build_grid(np.array([1.0]), 12, kappa=WORKSHOP.kappa)
    with pytest.raises(ValueError, match="steps"):
        normals = antithetic([block_normals(1, 0, grid.steps + 1, 4)])
        simulate_qe(WORKSHOP, SPOT, RATE, DIVIDEND, grid, normals)


# --- time grid ----------------------------------------------------------------------------------------------

# Actual/360 year fractions of the 7-year annual TARGET schedule from 2019-11-20 (the workshop note's dates),
# an irregular set, and a set with exact multiples of the step
GRID_CASES = {
    "workshop-schedule": np.array([366, 733, 1097, 1461, 1827, 2192, 2557]) / 360.0,
    "irregular": np.array([0.013, 0.2, 0.2001, 0.75, 1.9, 3.33333, 10.0]),
    "exact-multiples": np.array([0.5, 1.0, 1.5, 2.0]),
}


@pytest.mark.parametrize("kappa", [0.0, 1.445, 40.0, HESTON["kappa"].high], ids=lambda k: f"kappa={k}")
@pytest.mark.parametrize("steps_per_year", [1, 4, 12, 24, 365])
@pytest.mark.parametrize("obs", GRID_CASES.values(), ids=GRID_CASES.keys())
def test_grid_hits_observation_times_with_short_equal_steps(obs: np.ndarray, steps_per_year: int, kappa: float) -> None:
    """Grid from 0, strictly increasing; observation times appear exactly (bitwise); between consecutive
    observations the sub-steps are equal (to 1e-12 relative, or to the rounding of the times they are differences
    of: 4 ulp of the interval's end), at most h = min(1/steps_per_year,
    KAPPA_DT_LIMIT/kappa) long, so kappa * dt <= KAPPA_DT_LIMIT (1e-9 relative slack, the implementation's rounding
    guard), and no more numerous than needed (one fewer would be too long)."""
    grid = build_grid(obs, steps_per_year, kappa=kappa)
    assert isinstance(grid, TimeGrid)
    assert grid.times[0] == 0.0
    assert grid.steps == grid.times.size - 1
    assert np.all(np.diff(grid.times) > 0)
    np.testing.assert_array_equal(grid.times[grid.observed], np.unique(obs))
    h = 1.0 / steps_per_year if kappa == 0 else min(1.0 / steps_per_year, KAPPA_DT_LIMIT / kappa)
    assert np.max(np.diff(grid.times)) <= h * (1 + 1e-9)
    assert kappa * np.max(np.diff(grid.times)) <= KAPPA_DT_LIMIT * (1 + 1e-9)
    bounds = np.concatenate([[0], grid.observed])
    for start, end in itertools.pairwise(bounds):
        steps = np.diff(grid.times[start : end + 1])
        np.testing.assert_allclose(steps, steps[0], rtol=1e-12, atol=4 * np.finfo(float).eps * grid.times[end])
        n, length = steps.size, grid.times[end] - grid.times[start]
        assert n >= 1
        if n > 1:
            assert length / (n - 1) > h * (1 - 1e-9)


def test_pipeline_grid_follows_the_plans_kappa() -> None:
    """montecarlo's grid takes the plan's Heston kappa: at kappa 400 and the default 12 steps a year, the 7-year
    workshop schedule gets 3,200 steps a year (kappa dt <= 1/8), not 12."""
    doc = {
        "name": "grid",
        "market": {"heston": {"v0": 0.04, "kappa": 400.0, "theta": 0.04, "sigma": 0.3, "rho": -0.5}},
        "positions": [{"notional": 1.0, "strike": SPOT, "barrier": 1.0}],
    }
    plan, _ = preprocess(parse_portfolio(json.dumps(doc), "grid.json"), "grid")
    grid = price._grid(plan)
    assert plan.simulation.steps_per_year == 12
    assert 400.0 * np.max(np.diff(grid.times)) <= KAPPA_DT_LIMIT * (1 + 1e-9)
    assert grid.steps >= plan.observation_times[-1] * 400.0 / KAPPA_DT_LIMIT


@pytest.mark.parametrize("kappa", [-1.0, math.inf, math.nan])
def test_grid_rejects_a_kappa_that_is_not_a_finite_non_negative_number(kappa: float) -> None:
    with pytest.raises(ValueError, match="kappa"):
        build_grid(np.array([1.0]), 12, kappa=kappa)


def test_grid_sorts_and_deduplicates_observation_times() -> None:
    grid = build_grid(np.array([1.0, 0.25, 1.0, 0.5]), 4, kappa=0.0)
    np.testing.assert_array_equal(grid.times, [0.0, 0.25, 0.5, 0.75, 1.0])
    np.testing.assert_array_equal(grid.observed, [1, 2, 4])


@pytest.mark.parametrize("obs", [np.array([]), np.array([0.0, 1.0]), np.array([-0.5, 1.0])])
def test_grid_rejects_non_positive_or_missing_observation_times(obs: np.ndarray) -> None:
    with pytest.raises(ValueError, match="positive"):
        build_grid(obs, 12, kappa=0.0)


# --- random numbers -----------------------------------------------------------------------------------------


def test_block_normals_are_reproducible() -> None:
    a = block_normals(2019, 3, 10, 64)
    assert a.shape == (10, 2, 64)
    assert a.dtype == np.float64
    np.testing.assert_array_equal(a, block_normals(2019, 3, 10, 64))


def test_different_blocks_and_seeds_draw_different_normals() -> None:
    base = block_normals(2019, 0, 10, 1000)
    for other in (block_normals(2019, 1, 10, 1000), block_normals(2020, 0, 10, 1000)):
        assert not np.any(base == other)
        # and they are uncorrelated: |corr| < 4 / sqrt(n)
        assert abs(np.corrcoef(base.ravel(), other.ravel())[0, 1]) < 4.0 / math.sqrt(base.size)


def test_block_normals_are_standard_normal() -> None:
    """Mean 0 and variance 1 within 4 standard errors (sqrt(1/n) and sqrt(2/n))."""
    z = block_normals(11, 5, 50, 10_000).ravel()
    assert abs(z.mean()) < 4.0 / math.sqrt(z.size)
    assert abs(z.var() - 1.0) < 4.0 * math.sqrt(2.0 / z.size)


def test_antithetic_lays_blocks_out_as_z_then_minus_z() -> None:
    z0, z1 = block_normals(1, 0, 3, 5), block_normals(1, 1, 3, 5)
    out = antithetic([z0, z1])
    assert out.shape == (3, 2, 20)
    np.testing.assert_array_equal(out[:, :, 0:5], z0)
    np.testing.assert_array_equal(out[:, :, 5:10], -z0)
    np.testing.assert_array_equal(out[:, :, 10:15], z1)
    np.testing.assert_array_equal(out[:, :, 15:20], -z1)
