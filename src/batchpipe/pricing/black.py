"""Black (forward) prices, vegas and implied volatilities, vectorised."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import ndtr

FloatArray = NDArray[np.float64]


def black_price(
    forward: ArrayLike, strike: ArrayLike, vol: ArrayLike, t: ArrayLike, discount: ArrayLike, call: ArrayLike
) -> FloatArray:
    """Discounted Black price of a call (call=True) or put on a forward."""
    f, k, s, tt, df = (np.asarray(a, dtype=np.float64) for a in (forward, strike, vol, t, discount))
    is_call = np.asarray(call, dtype=bool)
    sd = s * np.sqrt(tt)
    with np.errstate(divide="ignore", invalid="ignore"):
        d1 = np.log(f / k) / sd + 0.5 * sd
    d2 = d1 - sd
    callp = f * ndtr(d1) - k * ndtr(d2)
    putp = k * ndtr(-d2) - f * ndtr(-d1)
    return np.asarray(df * np.where(is_call, callp, putp), dtype=np.float64)


def black_vega(forward: ArrayLike, strike: ArrayLike, vol: ArrayLike, t: ArrayLike, discount: ArrayLike) -> FloatArray:
    """Derivative of the discounted Black price with respect to the volatility."""
    f, k, s, tt, df = (np.asarray(a, dtype=np.float64) for a in (forward, strike, vol, t, discount))
    sd = s * np.sqrt(tt)
    d1 = np.log(f / k) / sd + 0.5 * sd
    return np.asarray(df * f * np.sqrt(tt) * np.exp(-0.5 * d1 * d1) / np.sqrt(2.0 * np.pi), dtype=np.float64)


def implied_vol(
    price: ArrayLike,
    forward: ArrayLike,
    strike: ArrayLike,
    t: ArrayLike,
    discount: ArrayLike,
    call: ArrayLike,
    lo: float = 1e-4,
    hi: float = 5.0,
    iterations: int = 100,
) -> FloatArray:
    """Black implied volatility by vectorised bisection-safeguarded Newton iterations.

    Prices outside the no-arbitrage bounds, or on them, give NaN.
    """
    p, f, k, tt, df = np.broadcast_arrays(
        *(np.asarray(a, dtype=np.float64) for a in (price, forward, strike, t, discount))
    )
    is_call = np.broadcast_to(np.asarray(call, dtype=bool), p.shape)
    a = np.full(p.shape, lo)
    b = np.full(p.shape, hi)
    lower = black_price(f, k, a, tt, df, is_call)
    upper = black_price(f, k, b, tt, df, is_call)
    valid = (p > lower) & (p < upper)  # on a bound the vol is not determined
    x = np.full(p.shape, 0.2)
    for _ in range(iterations):
        value = black_price(f, k, x, tt, df, is_call) - p
        too_high = value > 0
        b = np.where(too_high, x, b)
        a = np.where(too_high, a, x)
        vega = black_vega(f, k, x, tt, df)
        with np.errstate(divide="ignore", invalid="ignore"):
            newton = x - value / vega
        inside = (newton > a) & (newton < b) & np.isfinite(newton)
        x_new = np.where(inside, newton, 0.5 * (a + b))
        if np.all(np.abs(x_new - x) < 1e-14):
            x = x_new
            break
        x = x_new
    return np.where(valid, x, np.nan)
