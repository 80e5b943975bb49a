"""Calibrate Heston to a Black implied-volatility surface, once per run.

Residuals are model-minus-market prices divided by the market vega (a first-order implied-vol error), minimised
with scipy's trust-region least squares from a few starting points. The reported RMSE is exact: model prices are
inverted back to implied vols. Out-of-the-money options (puts below the forward, calls above) are used because their
prices carry the smile without the intrinsic value drowning it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import least_squares

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
    best = None
    evaluations = 0
    for x0 in starts:
        fit = least_squares(residuals, np.clip(x0, LOWER, UPPER), bounds=(LOWER, UPPER), method="trf", x_scale="jac")
        evaluations += int(fit.nfev)
        if best is None or fit.cost < best.cost:
            best = fit
    assert best is not None
    params = HestonParams(*(float(v) for v in best.x))
    return Calibration(params, implied_vol_rmse(spot, rate, dividend, quotes, params), evaluations)
