"""Calibrate Heston to a Black implied-volatility surface, once per run.

Residuals are model-minus-market prices divided by the market vega (a first-order implied-vol error), minimised
by a small bounded Levenberg-Marquardt (Marquardt-scaled damping, forward-difference Jacobian, steps projected onto
the bounds). Five parameters and a few dozen quotes need nothing bigger, and it spares the start-up cost of importing
scipy.optimize (about half a second). Further starting points are tried only if the first fit is poor. The
reported RMSE is exact: model prices are inverted back to implied vols. Out-of-the-money options (puts below the
forward, calls above) are used because their prices carry the smile without the intrinsic value drowning it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from batchpipe.pricing.black import black_price, black_vega, implied_vol
from batchpipe.pricing.heston import HestonParams, call_prices

FloatArray = NDArray[np.float64]

# v0, kappa, theta, sigma, rho
LOWER = np.array([1e-4, 1e-3, 1e-4, 1e-2, -0.999])
UPPER = np.array([1.0, 20.0, 1.0, 5.0, 0.999])


@dataclass(frozen=True)
class VolQuotes:
    """Flattened implied-vol quotes: one entry per (expiry, strike) cell."""

    t: FloatArray
    strikes: FloatArray
    vols: FloatArray

    @classmethod
    def from_grid(cls, expiry_times: FloatArray, strikes: FloatArray, vols: FloatArray) -> VolQuotes:
        tt, kk = np.meshgrid(np.asarray(expiry_times, float), np.asarray(strikes, float), indexing="ij")
        v = np.asarray(vols, float)
        if v.shape != tt.shape:
            raise ValueError(f"vols must be {tt.shape[0]} rows of {tt.shape[1]}, got shape {v.shape}")
        return cls(tt.ravel(), kk.ravel(), v.ravel())


@dataclass(frozen=True)
class Calibration:
    params: HestonParams
    rmse: float  # implied-vol RMSE over all quotes, in vol units
    evaluations: int


def model_prices(
    spot: float, rate: float, dividend: float, quotes: VolQuotes, p: HestonParams, calls: NDArray[np.bool_]
) -> FloatArray:
    c = call_prices(spot, quotes.strikes, quotes.t, rate, dividend, p)
    parity = spot * np.exp(-dividend * quotes.t) - quotes.strikes * np.exp(-rate * quotes.t)
    return np.where(calls, c, c - parity)


def implied_vol_rmse(spot: float, rate: float, dividend: float, quotes: VolQuotes, p: HestonParams) -> float:
    forward = spot * np.exp((rate - dividend) * quotes.t)
    discount = np.exp(-rate * quotes.t)
    calls = quotes.strikes >= forward
    prices = model_prices(spot, rate, dividend, quotes, p, calls)
    vols = implied_vol(prices, forward, quotes.strikes, quotes.t, discount, calls)
    return float(np.sqrt(np.mean((vols - quotes.vols) ** 2)))


def levenberg_marquardt(
    residuals: Callable[[FloatArray], FloatArray],
    x0: FloatArray,
    lower: FloatArray,
    upper: FloatArray,
    max_iterations: int = 200,
    tolerance: float = 1e-12,
) -> tuple[FloatArray, float, int]:
    """Minimise |residuals(x)|^2 within [lower, upper]. Returns (x, cost, evaluations)."""
    x = np.clip(np.asarray(x0, dtype=float), lower, upper)
    r = residuals(x)
    cost = float(r @ r)
    evaluations = 1
    damping = 1e-3
    for _ in range(max_iterations):
        h = 1e-7 * np.maximum(np.abs(x), 1e-2)
        h = np.where(x + h > upper, -h, h)  # stay inside the box
        jac = np.empty((r.size, x.size))
        for i in range(x.size):
            xi = x.copy()
            xi[i] += h[i]
            jac[:, i] = (residuals(xi) - r) / h[i]
        evaluations += x.size
        grad = jac.T @ r
        hess = jac.T @ jac
        scale = np.maximum(np.diag(hess), 1e-12)
        improved = False
        while damping < 1e12:
            step = np.linalg.solve(hess + damping * np.diag(scale), -grad)
            x_new = np.clip(x + step, lower, upper)
            r_new = residuals(x_new)
            evaluations += 1
            cost_new = float(r_new @ r_new)
            if cost_new < cost:
                converged = cost - cost_new <= tolerance * cost or np.all(np.abs(x_new - x) <= 1e-10 * (1 + np.abs(x)))
                x, r, cost = x_new, r_new, cost_new
                damping = max(damping / 3.0, 1e-12)
                improved = True
                break
            damping *= 4.0
        if not improved or converged:
            break
    return x, cost, evaluations


GOOD_FIT = 0.005  # vega-weighted RMSE (about vol units) below which further starting points are not tried


def calibrate(spot: float, rate: float, dividend: float, quotes: VolQuotes) -> Calibration:
    """Least-squares fit of the five Heston parameters to the quotes."""
    forward = spot * np.exp((rate - dividend) * quotes.t)
    discount = np.exp(-rate * quotes.t)
    calls = quotes.strikes >= forward
    market = black_price(forward, quotes.strikes, quotes.vols, quotes.t, discount, calls)
    vega = black_vega(forward, quotes.strikes, quotes.vols, quotes.t, discount)

    def residuals(x: FloatArray) -> FloatArray:
        p = HestonParams(*(float(v) for v in x))
        return np.asarray((model_prices(spot, rate, dividend, quotes, p, calls) - market) / vega, dtype=float)

    short_var = float(np.mean(quotes.vols[quotes.t == quotes.t.min()] ** 2))
    long_var = float(np.mean(quotes.vols[quotes.t == quotes.t.max()] ** 2))
    starts = [
        np.array([short_var, 1.0, long_var, 0.5, -0.7]),
        np.array([short_var, 3.0, long_var, 1.0, -0.5]),
        np.array([long_var, 0.3, long_var, 0.3, -0.9]),
    ]
    best_x, best_cost, evaluations = None, math.inf, 0
    for x0 in starts:
        x, cost, n = levenberg_marquardt(residuals, x0, LOWER, UPPER)
        evaluations += n
        if cost < best_cost:
            best_x, best_cost = x, cost
        if math.sqrt(best_cost / quotes.vols.size) < GOOD_FIT:
            break
    assert best_x is not None
    params = HestonParams(*(float(v) for v in best_x))
    return Calibration(params, implied_vol_rmse(spot, rate, dividend, quotes, params), evaluations)
