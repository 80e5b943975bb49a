"""The control-variate estimate of a mean from its samples' sums, and the two guards on the controls it uses.

With N samples of y and of the controls c (d of them, each of known mean zero), the estimate is
mean(y) - beta . mean(c) with beta = Cov(c)^-1 Cov(c, y), the least-squares slope of y on c, and its variance
(Var(y) - Cov(y, c) beta) / N, the residual variance over N (with N - 1 - d degrees of freedom). It needs only the
sums of y, y^2, y c, c and c c^T, so samples are summed where they are drawn and never moved.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from batchpipe.pricing.heston import HestonParams, spot_kurtosis

# A date's discounted spot serves as a control only where a sample of the plan's paths can measure it: where the
# model's kurtosis of S_t is at most paths / CONTROL_KURTOSIS_PATHS, so that the sample variance of the control
# is known to 10% (its relative standard error is sqrt((kurtosis - 1) / paths)) and its sample mean is near
# normal. The control-variate estimate mean(y) - beta . mean(c) relies on both. With heavy tails (rho sigma >
# kappa, large sigma, or a large total variance: E[S_t^4] infinite or huge) a sample's mean spot is far from the
# forward (-96% of it at 7 years, 100,000 paths, v0 = theta = 1, kappa 2.43, sigma 5, rho 0.999) and beta times
# that mean swamped the note's PV: 2.7 to 8.5 M over 39 seeds at 20,000 paths, where the plain mean of the
# payoffs is 1.95 M on 10 M notional.
CONTROL_KURTOSIS_PATHS = 100
# And the estimate keeps its controls only while their correction beta . mean(c) is within this many standard
# errors of the plain mean: a larger one means the controls are not behaving as their known mean says (a sample
# that misses their tail, or a discretised forward off by more than the controls' own noise when the spot is
# nearly deterministic, where beta is rounding noise over rounding noise). Normal samples trigger it with
# probability below 1e-4; the plain mean is unbiased, so the estimate stays within this many standard errors
# of a mean of non-negative payoffs.
CONTROL_GUARD = 4.0


def measurable(params: HestonParams, times: NDArray[np.float64], paths: int) -> NDArray[np.bool_]:
    """Which observation times' spots a sample of `paths` paths can use as controls (see CONTROL_KURTOSIS_PATHS)."""
    return np.array([spot_kurtosis(params, t) <= paths / CONTROL_KURTOSIS_PATHS for t in times])


@dataclass(frozen=True)
class Estimate:
    """mean(y) less `correction` (beta . mean(c)), and its standard error (None from a single sample)."""

    mean: float  # the plain mean of y
    correction: float  # 0.0 where the controls were not used
    stderr: float | None  # not finite where the sums overflowed
    beta: NDArray[np.float64]  # (d,), zeros where the controls were not used

    @property
    def value(self) -> float:
        return self.mean - self.correction


def estimate(
    n: int,
    sy: float,
    syy: float,
    syc: NDArray[np.float64],
    sc: NDArray[np.float64],
    scc: NDArray[np.float64],
) -> Estimate:
    """The control-variate estimate from N samples' sums: of y, y^2, y c (d,), c (d,) and c c^T (d, d).

    The controls are used only with more than d + 2 samples, where y co-varies with them at all, and where their
    correction is within CONTROL_GUARD standard errors of the plain mean; otherwise the estimate is the plain
    mean(y), with the standard error sqrt(Var(y) / N).
    """
    y_bar, c_bar = sy / n, sc / n
    beta = np.zeros_like(c_bar)
    var = math.nan
    if n > 1:
        cov_c = (scc - n * np.outer(c_bar, c_bar)) / (n - 1)
        cov_yc = (syc - n * y_bar * c_bar) / (n - 1)
        var_y = (syy - n * y_bar * y_bar) / (n - 1)
        var = var_y
        if n > c_bar.size + 2 and np.any(cov_yc != 0):
            fitted = np.asarray(np.linalg.lstsq(cov_c, cov_yc, rcond=1e-12)[0], dtype=np.float64)
            # the controls' correction, within CONTROL_GUARD standard errors of the plain mean, or none
            if abs(float(fitted @ c_bar)) <= CONTROL_GUARD * math.sqrt(max(0.0, var_y) / n):
                beta = fitted
                var = (var_y - float(cov_yc @ beta)) * (n - 1) / (n - 1 - c_bar.size)
    stderr = math.sqrt(max(0.0, var) / n) if n > 1 else None
    return Estimate(y_bar, float(beta @ c_bar), stderr, beta)
