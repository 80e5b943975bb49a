"""Calibrate Heston to a Black implied-volatility surface, once per run.

Residuals are model-minus-market prices divided by the market vega (a first-order implied-vol error), minimised
by a small bounded Levenberg-Marquardt (Marquardt-scaled damping, forward-difference Jacobian, steps projected onto
the bounds). Five parameters and a few dozen quotes need nothing bigger, and it spares the start-up cost of importing
scipy.optimize (about half a second). Further starting points are tried only if the first fit is poor. The
reported RMSE is exact: model prices are inverted back to implied vols. Out-of-the-money options (puts below the
forward, calls above) are used because their prices carry the smile without the intrinsic value drowning it.

The search box is the accepted domain (`batchpipe.pricing.domain.HESTON`, open bounds nudged inside), so a
calibrated model is always one the engine accepts and prices. Only quotes whose price determines their vol are
fitted: those whose Black vega is at least VEGA_FLOOR of the forward. Far from the forward (or at vols so high
that the price is the forward's) the vega vanishes, and with it the quote's information: a model price error of
1e-10 of the forward would move such a quote's vol by more than 1e-5, and its vega-weighted residual is 0/0. A
minority of such quotes is left out with a warning; when fewer than MIN_QUOTES remain, `UnfittableSurface` says
which quotes and why. A fit that succeeds badly says so in `Calibration.warnings`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from batchpipe.pricing.black import black_price, black_vega, implied_vol
from batchpipe.pricing.domain import HESTON
from batchpipe.pricing.heston import HestonParams, call_prices

FloatArray = NDArray[np.float64]

PARAMETERS = ("v0", "kappa", "theta", "sigma", "rho")  # HestonParams' field order, the order of x below
OPEN_BOUND_NUDGE = 1e-6  # an open bound is searched from this fraction of its parameter's range inside it


def _search_box() -> tuple[FloatArray, FloatArray]:
    lower, upper = [], []
    for name in PARAMETERS:
        bound = HESTON[name]
        nudge = OPEN_BOUND_NUDGE * (bound.high - bound.low)
        lower.append(bound.low + nudge if bound.low_open else bound.low)
        upper.append(bound.high - nudge if bound.high_open else bound.high)
    return np.array(lower), np.array(upper)


# v0, kappa, theta, sigma, rho: exactly the accepted domain, open bounds nudged inside
LOWER, UPPER = _search_box()

# Quotes whose undiscounted Black vega is below this fraction of the forward are not fitted: the analytic pricer
# agrees with QuantLib to ~1e-11 of spot, so a model price error ten times that moves such a quote's implied vol
# by at most 1e-5 (0.001 vol points). Roughly a strike more than 4.5 to 5 standard deviations (vol x sqrt(t))
# from the forward.
VEGA_FLOOR = 1e-5
MIN_QUOTES = 5  # one per parameter
# An implied-vol RMSE above one vol point is a fit that misses the surface by more than a liquid index option's
# bid-ask spread (about half a vol point to a vol point): the model's prices are not the market's. The workshop
# surface fits to 0.36 vol points.
RMSE_WARNING = 0.01
BOUND_TOLERANCE = 1e-6  # a parameter within this fraction of its range of a bound is reported as at the bound
IMPLIED_VOL_CEILING = 10.0  # model prices are inverted to Black vols up to 1000%


class UnfittableSurface(ValueError):
    """Too few quotes of the surface carry information to fit the five Heston parameters.

    `quotes` lists the unusable ones as (expiry row, strike column) of the surface's `vols`.
    """

    def __init__(self, message: str, quotes: tuple[tuple[int, int], ...]) -> None:
        super().__init__(message)
        self.quotes = quotes


@dataclass(frozen=True)
class VolQuotes:
    """Flattened implied-vol quotes: one entry per (expiry, strike) cell.

    cells: each quote's (expiry row, strike column) in its surface, shape (n, 2), for messages that name it as
    vols[i][j]; by default rows follow the distinct expiries in increasing order and columns the order of
    appearance within a row (what `from_grid` lays out).
    """

    t: FloatArray
    strikes: FloatArray
    vols: FloatArray
    cells: NDArray[np.intp] = field(default_factory=lambda: np.empty((0, 2), dtype=np.intp))

    def __post_init__(self) -> None:
        if self.cells.shape != (self.t.size, 2):
            rows = np.unique(self.t, return_inverse=True)[1].ravel()
            cols = np.zeros(rows.size, dtype=np.intp)
            seen: dict[int, int] = {}
            for k, r in enumerate(rows):
                cols[k] = seen.get(int(r), 0)
                seen[int(r)] = int(cols[k]) + 1
            object.__setattr__(self, "cells", np.stack([rows.astype(np.intp), cols], axis=1))

    @classmethod
    def from_grid(cls, expiry_times: FloatArray, strikes: FloatArray, vols: FloatArray) -> VolQuotes:
        tt, kk = np.meshgrid(np.asarray(expiry_times, float), np.asarray(strikes, float), indexing="ij")
        v = np.asarray(vols, float)
        if v.shape != tt.shape:
            raise ValueError(f"vols must be {tt.shape[0]} rows of {tt.shape[1]}, got shape {v.shape}")
        rows, cols = np.indices(tt.shape)
        return cls(tt.ravel(), kk.ravel(), v.ravel(), np.stack([rows.ravel(), cols.ravel()], axis=1))

    def name(self, k: int) -> str:
        i, j = self.cells[k]
        return f"vols[{i}][{j}]"

    def subset(self, keep: NDArray[np.bool_]) -> VolQuotes:
        return VolQuotes(self.t[keep], self.strikes[keep], self.vols[keep], self.cells[keep])


@dataclass(frozen=True)
class Calibration:
    params: HestonParams
    rmse: float | None  # implied-vol RMSE over the fitted quotes, in vol units; None if a model price has no vol
    evaluations: int
    warnings: tuple[str, ...] = ()  # parameters at a bound, a poor fit, quotes left out or not invertible


def model_prices(
    spot: float, rate: float, dividend: float, quotes: VolQuotes, p: HestonParams, calls: NDArray[np.bool_]
) -> FloatArray:
    c = call_prices(spot, quotes.strikes, quotes.t, rate, dividend, p)
    parity = spot * np.exp(-dividend * quotes.t) - quotes.strikes * np.exp(-rate * quotes.t)
    return np.where(calls, c, c - parity)


def model_vols(spot: float, rate: float, dividend: float, quotes: VolQuotes, p: HestonParams) -> FloatArray:
    """The model's Black implied vols at the quotes (out-of-the-money side); NaN where a price has none."""
    forward = spot * np.exp((rate - dividend) * quotes.t)
    discount = np.exp(-rate * quotes.t)
    calls = quotes.strikes >= forward
    prices = model_prices(spot, rate, dividend, quotes, p, calls)
    with np.errstate(all="ignore"):
        return implied_vol(prices, forward, quotes.strikes, quotes.t, discount, calls, hi=IMPLIED_VOL_CEILING)


def implied_vol_rmse(spot: float, rate: float, dividend: float, quotes: VolQuotes, p: HestonParams) -> float | None:
    """The implied-vol RMSE over the quotes; None if a model price cannot be inverted to a vol."""
    vols = model_vols(spot, rate, dividend, quotes, p)
    if not np.all(np.isfinite(vols)):
        return None
    return float(np.sqrt(np.mean((vols - quotes.vols) ** 2)))


def relative_vegas(spot: float, rate: float, dividend: float, quotes: VolQuotes) -> FloatArray:
    """Each quote's undiscounted Black vega per unit of forward, sqrt(t) phi(d1); 0 where it is not a number."""
    forward = spot * np.exp((rate - dividend) * quotes.t)
    with np.errstate(all="ignore"):
        sd = quotes.vols * np.sqrt(quotes.t)
        d1 = np.log(forward / quotes.strikes) / sd + 0.5 * sd
        vega = np.sqrt(quotes.t) * np.exp(-0.5 * d1 * d1) / math.sqrt(2.0 * math.pi)
    return np.where(np.isfinite(vega), vega, 0.0)


def _number(x: float, digits: int) -> str:
    """x to `digits` significant digits, but never in exponent form above 1 (strikes and forwards)."""
    return f"{x:.0f}" if abs(x) >= 10**digits else f"{x:.{digits}g}"


def _span(values: FloatArray, digits: int) -> str:
    lo, hi = _number(float(values.min()), digits), _number(float(values.max()), digits)
    return lo if lo == hi else f"{lo}-{hi}"


def describe_quotes(spot: float, rate: float, dividend: float, quotes: VolQuotes, which: NDArray[np.intp]) -> str:
    """Name quotes as vols[i][j] with their expiry, strike and forward, compactly: each one when there are three or
    fewer, else the first three (or all of them) and the ranges."""
    forward = spot * np.exp((rate - dividend) * quotes.t)
    with np.errstate(all="ignore"):
        distance = np.abs(np.log(quotes.strikes / forward)) / (quotes.vols * np.sqrt(quotes.t))
    if which.size <= 3:
        return ", ".join(
            f"{quotes.name(k)} (expiry {quotes.t[k]:.3g} years, strike {_number(quotes.strikes[k], 4)}, forward "
            f"{_number(forward[k], 4)}, vol {quotes.vols[k]:.3g}: {distance[k]:.2g} standard deviations away)"
            for k in which
        )
    if which.size == quotes.t.size:
        head = f"all {which.size} quotes ({quotes.name(which[0])} to {quotes.name(which[-1])})"
    else:
        head = ", ".join(quotes.name(k) for k in which[:3]) + f" and {which.size - 3} more"
    t, k, f = quotes.t[which], quotes.strikes[which], forward[which]
    return (
        f"{head}: strikes {_span(k, 4)} are {_span(k / f, 2)}x the forward {_span(f, 3)}, "
        f"{_span(distance[which], 2)} standard deviations (vol x sqrt(t)) away, at expiries {_span(t, 3)} years "
        f"and vols {_span(quotes.vols[which], 3)}"
    )


def levenberg_marquardt(
    residuals: Callable[[FloatArray], FloatArray],
    x0: FloatArray,
    lower: FloatArray,
    upper: FloatArray,
    max_iterations: int = 200,
    tolerance: float = 1e-12,
    cost_floor: float = 0.0,
    stall: tuple[int, float] = (20, 1e-5),
) -> tuple[FloatArray, float, int]:
    """Minimise |residuals(x)|^2 within [lower, upper]. Returns (x, cost, evaluations).

    Stops when an iteration improves the cost by less than `tolerance` relative, when the cost is at most
    `cost_floor` (a fit that cannot usefully get better: a degenerate direction such as sigma -> 0 for a flat
    surface otherwise creeps on for every iteration allowed), or when the last stall[0] iterations together
    improved it by less than stall[1] relative (a poor fit creeping along a valley: its RMSE would move by less
    than half that, relative)."""
    x = np.clip(np.asarray(x0, dtype=float), lower, upper)
    r = residuals(x)
    cost = float(r @ r)
    evaluations = 1
    damping = 1e-3
    history = [cost]
    for _ in range(max_iterations):
        if cost <= cost_floor or (len(history) > stall[0] and history[-1 - stall[0]] - cost <= stall[1] * cost):
            break
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
            x_new = np.asarray(np.clip(x + step, lower, upper), dtype=np.float64)  # numpy 1.26's stubs lose the dtype
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
        history.append(cost)
    return x, cost, evaluations


GOOD_FIT = 0.005  # vega-weighted RMSE (about vol units) below which further starting points are not tried
EXACT_FIT = 1e-9  # vega-weighted RMSE at which a fit stops improving (1e-7 vol points)


def calibrate(spot: float, rate: float, dividend: float, quotes: VolQuotes) -> Calibration:
    """Least-squares fit of the five Heston parameters to the quotes that carry information (see the module).

    Raises UnfittableSurface when fewer than MIN_QUOTES do.
    """
    if np.any(quotes.t <= 0):
        raise ValueError("expiries must be after the valuation date")
    informative = relative_vegas(spot, rate, dividend, quotes) >= VEGA_FLOOR
    left_out = np.flatnonzero(~informative)
    why = f"their Black vegas are below {VEGA_FLOOR:g} of the forward, so their prices do not determine their vols"
    if informative.sum() < MIN_QUOTES:
        if informative.sum() == 0:
            head = f"none of the {quotes.t.size} quotes can be fitted ({why})"
        else:
            head = f"{left_out.size} of {quotes.t.size} quotes cannot be fitted ({why}), leaving {informative.sum()}"
        raise UnfittableSurface(
            f"{head}, and five parameters need at least {MIN_QUOTES}: "
            + describe_quotes(spot, rate, dividend, quotes, left_out),
            tuple((int(quotes.cells[k][0]), int(quotes.cells[k][1])) for k in left_out),
        )
    warnings = []
    if left_out.size:
        warnings.append(
            f"{left_out.size} of {quotes.t.size} quotes left out of the fit ({why}): "
            + describe_quotes(spot, rate, dividend, quotes, left_out)
        )
        quotes = quotes.subset(informative)

    forward = spot * np.exp((rate - dividend) * quotes.t)
    discount = np.exp(-rate * quotes.t)
    calls = quotes.strikes >= forward
    market = black_price(forward, quotes.strikes, quotes.vols, quotes.t, discount, calls)
    vega = black_vega(forward, quotes.strikes, quotes.vols, quotes.t, discount)

    def residuals(x: FloatArray) -> FloatArray:
        p = HestonParams(*(float(v) for v in x))
        with np.errstate(all="ignore"):
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
        with np.errstate(all="ignore"):
            x, cost, n = levenberg_marquardt(residuals, x0, LOWER, UPPER, cost_floor=quotes.t.size * EXACT_FIT**2)
        evaluations += n
        if cost < best_cost:
            best_x, best_cost = x, cost
        if math.sqrt(best_cost / quotes.vols.size) < GOOD_FIT:
            break
    if best_x is None:  # no starting point gave finite model prices
        raise UnfittableSurface(
            "the model's prices are not finite numbers at any starting point for the quotes "
            + describe_quotes(spot, rate, dividend, quotes, np.arange(quotes.t.size)),
            (),
        )
    params = HestonParams(*(float(v) for v in best_x))
    warnings += bound_warnings(best_x)
    vols = model_vols(spot, rate, dividend, quotes, params)
    rmse = None
    if np.all(np.isfinite(vols)):
        rmse = float(np.sqrt(np.mean((vols - quotes.vols) ** 2)))
        if rmse > RMSE_WARNING:
            warnings.append(
                f"implied-vol RMSE {100 * rmse:.2f} vol points is above {100 * RMSE_WARNING:g}: the model does not "
                "fit the surface"
            )
    else:
        bad = np.flatnonzero(~np.isfinite(vols))
        warnings.append(
            f"no implied-vol RMSE: the model prices of {bad.size} of {quotes.t.size} fitted quotes have no Black vol "
            f"between 1e-4 and {IMPLIED_VOL_CEILING:g}: " + describe_quotes(spot, rate, dividend, quotes, bad)
        )
    return Calibration(params, rmse, evaluations, tuple(warnings))


def bound_warnings(x: FloatArray) -> list[str]:
    """One line per parameter at (within BOUND_TOLERANCE of its range) a bound of the search box."""
    out = []
    for name, value, lo, hi in zip(PARAMETERS, x, LOWER, UPPER, strict=True):
        tolerance = BOUND_TOLERANCE * (hi - lo)
        if value <= lo + tolerance:
            out.append(f"{name} at its lower bound {lo:g}")
        elif value >= hi - tolerance:
            out.append(f"{name} at its upper bound {hi:g}")
    return out
