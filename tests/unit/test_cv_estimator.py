"""The control-variate estimator (batchpipe.pricing.control_variates) on small samples, and its guards.

Reference: with controls used, the estimate is the intercept of the ordinary least-squares fit of y on [1, c]
(numpy's lstsq on the samples themselves, not on their sums), beta its slope, and the standard error
sqrt(RSS / (N - 1 - d) / N); tolerance 1e-9 relative (the estimator works from sums: Var(y) as
(sum y^2 - N mean^2) / (N - 1) loses a few digits). Without them: the plain mean and sqrt(Var(y) / N), exactly.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from batchpipe.pricing.control_variates import CONTROL_GUARD, CONTROL_KURTOSIS_PATHS, estimate, measurable
from batchpipe.pricing.heston import HestonParams, spot_kurtosis

Sums = tuple[int, float, float, np.ndarray, np.ndarray, np.ndarray]


def sums(y: np.ndarray, c: np.ndarray) -> Sums:
    """What the pipeline hands the estimator: N, and the sums of y, y^2, y c, c and c c^T over the samples."""
    return len(y), float(y.sum()), float((y * y).sum()), (y[:, None] * c).sum(axis=0), c.sum(axis=0), c.T @ c


def least_squares(y: np.ndarray, c: np.ndarray) -> tuple[float, np.ndarray, float]:
    """(intercept, slope, sqrt(RSS / (N - 1 - d) / N)) of y on [1, c]."""
    n, d = c.shape
    x = np.column_stack([np.ones(n), c])
    coef = np.linalg.lstsq(x, y, rcond=None)[0]
    rss = float(((y - x @ coef) ** 2).sum())
    return float(coef[0]), coef[1:], math.sqrt(rss / (n - 1 - d) / n)


def plain(y: np.ndarray) -> tuple[float, float]:
    """The plain mean and sqrt(Var(y) / N), from the same sums in the same order."""
    n, sy, syy, *_ = sums(y, np.zeros((len(y), 0)))
    mean = sy / n
    return mean, math.sqrt(max(0.0, (syy - n * mean * mean) / (n - 1)) / n)


def correlated_sample(n: int, d: int, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """y = 0.3 + c b + noise, with c of mean zero and correlated columns."""
    rng = np.random.default_rng(seed)
    c = rng.standard_normal((n, d)) @ (np.eye(d) + 0.5 * np.tri(d, d, -1))
    y = 0.3 + c @ np.linspace(0.5, -1.0, d) + 0.2 * rng.standard_normal(n)
    return y, c


@pytest.mark.parametrize(("n", "d"), [(500, 1), (500, 3), (40, 7)])
def test_the_estimate_is_the_least_squares_intercept(n: int, d: int) -> None:
    y, c = correlated_sample(n, d)
    est = estimate(*sums(y, c))
    intercept, slope, stderr = least_squares(y, c)
    assert est.correction != 0.0  # the controls were used
    assert est.value == pytest.approx(intercept, rel=1e-9)
    np.testing.assert_allclose(est.beta, slope, rtol=1e-9)
    assert est.stderr == pytest.approx(stderr, rel=1e-9)
    assert est.mean == float(y.sum()) / n
    assert est.value == est.mean - est.correction
    assert est.stderr < 0.5 * plain(y)[1]  # what the controls are for


def guarded(y: np.ndarray, c: np.ndarray) -> None:
    """The estimate is the plain mean and its standard error, bit for bit, and beta is zero."""
    est = estimate(*sums(y, c))
    mean, stderr = plain(y)
    assert est.value == est.mean == mean
    assert est.correction == 0.0
    assert est.stderr == stderr
    assert est.beta.shape == (c.shape[1],) and not np.any(est.beta)


@pytest.mark.parametrize("ratio", [3.9, 4.1])
def test_a_correction_beyond_control_guard_standard_errors_drops_the_controls(ratio: float) -> None:
    """Shifting one control by a constant moves its sample mean, not the fit's slope: beta . mean(c) is put at
    `ratio` standard errors of the plain mean, just inside and just outside CONTROL_GUARD = 4."""
    assert CONTROL_GUARD == 4.0
    y, c = correlated_sample(500, 1)
    _, slope, _ = least_squares(y, c)
    shift = ratio * plain(y)[1] / float(slope[0]) - float(c.mean())
    shifted = c + shift
    if ratio < CONTROL_GUARD:
        est = estimate(*sums(y, shifted))
        assert est.correction == pytest.approx(ratio * plain(y)[1], rel=1e-6)
        assert est.value == pytest.approx(least_squares(y, shifted)[0], rel=1e-9)
    else:
        guarded(y, shifted)


def test_controls_far_from_their_known_mean_are_not_used() -> None:
    """A control whose sample sits at 1 where its mean should be 0 (a heavy tail the sample missed): beta . mean(c)
    is about 1, hundreds of standard errors of the plain mean."""
    rng = np.random.default_rng(2)
    c = 1.0 + 0.01 * rng.standard_normal((1000, 2))
    y = c.sum(axis=1) + 0.01 * rng.standard_normal(1000)
    guarded(y, c)


@pytest.mark.parametrize(("n", "d"), [(3, 1), (4, 2), (9, 7)])
def test_too_few_samples_for_the_controls_give_the_plain_mean(n: int, d: int) -> None:
    """N <= d + 2: the residual variance would have N - 1 - d <= 1 degree of freedom."""
    guarded(*correlated_sample(n, d))
    y, c = correlated_sample(n + 1, d)
    assert estimate(*sums(y, c)).correction != 0.0  # one sample more and they are used


def test_a_riskless_note_has_the_plain_mean_and_an_exact_zero_standard_error() -> None:
    """y = 0 on every pair (a note worth its shift whatever the paths): Cov(y, c) is exactly zero."""
    y, c = np.zeros(64), correlated_sample(64, 3)[1]
    guarded(y, c)
    est = estimate(*sums(y, c))
    assert est.value == 0.0 and est.stderr == 0.0


def test_no_controls() -> None:
    """d = 0 (no date measurable): the plain mean."""
    y, _ = correlated_sample(100, 1)
    guarded(y, np.zeros((100, 0)))


def test_a_single_sample_has_no_standard_error() -> None:
    y, c = correlated_sample(1, 2)
    est = estimate(*sums(y, c))
    assert est.value == float(y[0]) and est.stderr is None and not np.any(est.beta)


def test_measurable_dates_are_those_whose_spot_kurtosis_the_paths_can_measure() -> None:
    """kurtosis(S_t) <= paths / CONTROL_KURTOSIS_PATHS: every date of the workshop's model at 100,000 paths; a
    model whose kurtosis grows to 21,501 at 7.2 years (positive rho) loses its late dates first, then all; an
    infinite kurtosis (the fourth moment exploded) is never measurable."""
    workshop = HestonParams(v0=0.01216, kappa=1.445, theta=0.0326, sigma=0.354, rho=-0.599)
    times = np.array([0.5, 1.0, 3.0, 7.2])
    assert measurable(workshop, times, 100_000).tolist() == [True] * 4
    heavy = HestonParams(v0=0.04, kappa=2.0, theta=0.05, sigma=0.4, rho=0.5)
    kurtosis = [spot_kurtosis(heavy, t) for t in times]
    assert kurtosis == sorted(kurtosis) and math.isfinite(kurtosis[-1])
    assert measurable(heavy, times, 100_000).tolist() == [True, True, True, False]
    paths = math.ceil(CONTROL_KURTOSIS_PATHS * kurtosis[0]) + 1
    assert paths < CONTROL_KURTOSIS_PATHS * kurtosis[1]
    assert measurable(heavy, times, paths).tolist() == [True, False, False, False]
    assert measurable(heavy, times, paths - 2).tolist() == [False] * 4
    exploded = HestonParams(v0=0.04, kappa=1.0, theta=0.04, sigma=1.0, rho=0.0)
    assert math.isinf(spot_kurtosis(exploded, 3.0))
    assert measurable(exploded, times, 10**9).tolist() == [True, True, False, False]
