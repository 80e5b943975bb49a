"""The parameter domain the engine prices accurately: the portfolio file accepts exactly this, calibration searches
within it, and every figure here is in the README.

Outside it the schemes break down (variance paths that die out, exponentials that overflow, a time grid that would
need millions of steps), so such inputs are refused when the file is read, naming the field, instead of ending in
NaN prices or a linear-algebra error.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Bound:
    low: float
    high: float
    low_open: bool = False  # low itself is excluded
    high_open: bool = False

    def contains(self, x: float) -> bool:
        if not math.isfinite(x):
            return False
        above = x > self.low if self.low_open else x >= self.low
        below = x < self.high if self.high_open else x <= self.high
        return above and below

    def text(self) -> str:
        return f"{'(' if self.low_open else '['}{self.low:g}, {self.high:g}{')' if self.high_open else ']'}"


# Heston: dv = kappa (theta - v) dt + sigma sqrt(v) dW2. Variances up to 9 are vols up to 300%.
#
# kappa: the time grid keeps kappa * dt <= 1/8 (batchpipe.pricing.paths.KAPPA_DT_LIMIT: beyond it the log-price
# step's trapezoid rule distorts the variance of log S by more than Monte Carlo noise), so it takes kappa * 8
# steps a year once that exceeds stepsPerYear. 400 needs 3,200 steps a year, under the 3,650 a portfolio file
# may ask for, with room for the one step per observation interval that rounding up adds; the workshop's 7-year
# note then has 22,733 steps, 250 times the default grid's 91 (and as many times the time and the memory for
# random numbers). Above 400 the model is within O(1/kappa) of Black-Scholes at vol sqrt(theta) anyway.
HESTON = {
    "v0": Bound(0.0, 9.0),
    "kappa": Bound(0.0, 400.0, low_open=True),
    "theta": Bound(1e-6, 9.0),
    "sigma": Bound(0.0, 10.0, low_open=True),
    "rho": Bound(-0.999, 0.999),
}
# continuously compounded, per year
RATE = Bound(-1.0, 1.0)
DIVIDEND_YIELD = Bound(-1.0, 1.0)


def heston_problems(v0: float, kappa: float, theta: float, sigma: float, rho: float) -> list[tuple[str, str]]:
    """(field, message) for every Heston parameter outside the domain; empty when all are inside."""
    values = {"v0": v0, "kappa": kappa, "theta": theta, "sigma": sigma, "rho": rho}
    return [
        (name, f"{values[name]!r} is outside the accepted range {bound.text()}")
        for name, bound in HESTON.items()
        if not bound.contains(values[name])
    ]


# Monte Carlo paths, from the file's simulation.paths or --paths: one rule for every backend
MIN_PATHS = 2
MAX_PATHS = 100_000_000
