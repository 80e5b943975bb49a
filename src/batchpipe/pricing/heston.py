"""Heston model: parameters, characteristic function, and semi-analytic European prices.

The characteristic function is the "little Heston trap" form (Albrecher, Mayer, Schoutens, Tistaert 2007), which
is continuous in the maturity. Calls use Lewis's single-integral formula (Lewis 2000; Gatheral, "The Volatility
Surface", ch. 2) and digitals the Gil-Pelaez inversion, both integrated by Gauss-Legendre quadrature on a range
chosen from where the characteristic function has decayed. Everything is vectorised over expiries and strikes.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

FloatArray = NDArray[np.float64]
ComplexArray = NDArray[np.complex128]

QUADRATURE_NODES = 400
_DECAY_TOLERANCE = 1e-15


@dataclass(frozen=True)
class HestonParams:
    """Risk-neutral Heston parameters: dv = kappa (theta - v) dt + sigma sqrt(v) dW2, d<W1, W2> = rho dt."""

    v0: float
    kappa: float
    theta: float
    sigma: float
    rho: float

    def as_dict(self) -> dict[str, float]:
        return {k: float(v) for k, v in asdict(self).items()}

    def validate(self) -> None:
        if not (self.v0 >= 0 and self.theta >= 0 and self.kappa > 0 and self.sigma > 0 and -1 < self.rho < 1):
            raise ValueError(
                "Heston parameters need v0 >= 0, theta >= 0, kappa > 0, sigma > 0 and -1 < rho < 1, got "
                f"{self.as_dict()}"
            )


def log_cf(u: ArrayLike, t: ArrayLike, p: HestonParams) -> ComplexArray:
    """log E[exp(i u X_t)] for X_t = ln(S_t / F_t), broadcasting u against t."""
    uu = np.asarray(u, dtype=np.complex128)
    tt = np.asarray(t, dtype=np.float64)
    iu = 1j * uu
    beta = p.kappa - p.rho * p.sigma * iu
    q = iu + uu * uu
    d = np.sqrt(beta * beta + p.sigma**2 * q)
    bd = beta + d
    # (beta - d) / sigma^2 = -q / (beta + d) exactly; written so, nothing cancels as sigma -> 0
    b = -q / bd
    g = p.sigma**2 * b / bd  # (beta - d) / (beta + d)
    e = np.exp(-d * tt)
    one_minus_e = -np.expm1(-d * tt)
    dterm = b * one_minus_e / (1.0 - g * e)
    # ln((1 - g e) / (1 - g)) = log1p(g (1 - e) / (1 - g)), and g carries the factor sigma^2
    cterm = p.kappa * p.theta * (b * tt - 2.0 * _log1p(g * one_minus_e / (1.0 - g)) / p.sigma**2)
    return np.asarray(cterm + dterm * p.v0, dtype=np.complex128)


def _log1p(z: ComplexArray) -> ComplexArray:
    """log(1 + z) accurate for tiny complex z too (numpy's complex log1p is not)."""
    small = np.abs(z) < 1e-4
    series = z * (1.0 - z * (0.5 - z * (1.0 / 3.0 - 0.25 * z)))  # error below |z|^5 / 5
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.asarray(np.where(small, series, np.log(1.0 + z)), dtype=np.complex128)


@lru_cache(maxsize=4)
def _gauss_legendre(n: int) -> tuple[FloatArray, FloatArray]:
    leggauss: Any = np.polynomial.legendre.leggauss  # untyped in numpy 1.26's stubs (the render extra pins it)
    x, w = leggauss(n)
    return 0.5 * (x + 1.0), 0.5 * w  # nodes and weights on [0, 1]


def _upper_limits(t: FloatArray, p: HestonParams, shift: complex) -> FloatArray:
    """Per expiry, a u beyond which |phi(u + shift)| / (1 + u^2) is below the tolerance."""
    grid = np.geomspace(0.5, 1e5, 120)
    mag = np.exp(log_cf(grid[None, :] + shift, t[:, None], p).real) / (1.0 + grid[None, :] ** 2)
    small = mag < _DECAY_TOLERANCE
    first = np.where(small.any(axis=1), small.argmax(axis=1), grid.size - 1)
    return np.asarray(grid[first], dtype=np.float64)


def _expiry_groups(t: FloatArray) -> tuple[FloatArray, NDArray[np.intp]]:
    unique, inverse = np.unique(t, return_inverse=True)
    return unique, inverse


def call_prices(
    spot: float, strikes: ArrayLike, t: ArrayLike, rate: float, dividend: float, p: HestonParams
) -> FloatArray:
    """Discounted European call prices for arrays of strikes and expiries (broadcast together)."""
    k_arr, t_arr = np.broadcast_arrays(np.asarray(strikes, dtype=np.float64), np.asarray(t, dtype=np.float64))
    flat_k, flat_t = k_arr.ravel(), t_arr.ravel()
    if np.any(flat_t <= 0):
        raise ValueError("expiries must be after the valuation date")
    unique_t, inverse = _expiry_groups(flat_t)
    forward = spot * np.exp((rate - dividend) * flat_t)
    discount = np.exp(-rate * flat_t)
    x, w = _gauss_legendre(QUADRATURE_NODES)
    umax = _upper_limits(unique_t, p, -0.5j)
    nodes = umax[:, None] * x[None, :]  # (nT, n)
    weights = umax[:, None] * w[None, :]
    phi = np.exp(log_cf(nodes - 0.5j, unique_t[:, None], p))  # (nT, n)
    kk = np.log(forward / flat_k)  # (m,)
    integrand = (np.exp(1j * kk[:, None] * nodes[inverse]) * phi[inverse]).real / (nodes[inverse] ** 2 + 0.25)
    integral = np.sum(integrand * weights[inverse], axis=1)
    price = discount * (forward - np.sqrt(forward * flat_k) / np.pi * integral)
    return np.asarray(price.reshape(k_arr.shape), dtype=np.float64)


def put_prices(
    spot: float, strikes: ArrayLike, t: ArrayLike, rate: float, dividend: float, p: HestonParams
) -> FloatArray:
    """Discounted European put prices by put-call parity."""
    k_arr, t_arr = np.broadcast_arrays(np.asarray(strikes, dtype=np.float64), np.asarray(t, dtype=np.float64))
    calls = call_prices(spot, k_arr, t_arr, rate, dividend, p)
    return np.asarray(calls - spot * np.exp(-dividend * t_arr) + k_arr * np.exp(-rate * t_arr), dtype=np.float64)


def probability_above(
    spot: float, strikes: ArrayLike, t: ArrayLike, rate: float, dividend: float, p: HestonParams
) -> FloatArray:
    """Risk-neutral probability P(S_t > K) by Gil-Pelaez inversion (the undiscounted cash-or-nothing digital)."""
    k_arr, t_arr = np.broadcast_arrays(np.asarray(strikes, dtype=np.float64), np.asarray(t, dtype=np.float64))
    flat_k, flat_t = k_arr.ravel(), t_arr.ravel()
    if np.any(flat_t <= 0):
        raise ValueError("expiries must be after the valuation date")
    unique_t, inverse = _expiry_groups(flat_t)
    forward = spot * np.exp((rate - dividend) * flat_t)
    x, w = _gauss_legendre(QUADRATURE_NODES)
    umax = _upper_limits(unique_t, p, 0j)
    nodes = umax[:, None] * x[None, :]
    weights = umax[:, None] * w[None, :]
    phi = np.exp(log_cf(nodes, unique_t[:, None], p))
    kk = np.log(flat_k / forward)
    n_sel = nodes[inverse]
    integrand = (np.exp(-1j * kk[:, None] * n_sel) * phi[inverse] / (1j * n_sel)).real
    prob = 0.5 + np.sum(integrand * weights[inverse], axis=1) / np.pi
    return np.asarray(prob.reshape(k_arr.shape), dtype=np.float64)


def moment_explosion_time(p: HestonParams, order: float) -> float:
    """The time T* from which E[S_t^order] is infinite (math.inf if it never is), for order >= 0.

    E[S_t^w] = exp(A(t) + B(t) v0) with B' = sigma^2 B^2 / 2 + (rho sigma w - kappa) B + w (w - 1) / 2, B(0) = 0;
    the moment is finite until B blows up (Andersen and Piterbarg, "Moment explosions in stochastic volatility
    models", Finance and Stochastics 11, 2007, proposition 3.1; A = kappa theta times the integral of B blows up
    with it). Moments of order 0 to 1 never explode (S is a positive martingale).
    """
    if not order >= 0:
        raise ValueError(f"order must be non-negative, got {order!r}")
    if order <= 1:
        return math.inf
    chi = p.rho * p.sigma * order - p.kappa
    disc = chi * chi - p.sigma**2 * order * (order - 1.0)
    if disc < 0:  # B = tan-like: blows up when its phase reaches pi/2
        root = math.sqrt(-disc)
        return 2.0 / root * (0.5 * math.pi - math.atan(chi / root))
    if chi < 0:  # B climbs to the smaller root of the quadratic and stays there
        return math.inf
    root = math.sqrt(disc)
    if root == 0.0:
        return 2.0 / chi
    return math.log((chi + root) / (chi - root)) / root


def spot_kurtosis(p: HestonParams, t: float) -> float:
    """The kurtosis E[(S_t - F_t)^4] / Var(S_t)^2 of the spot at time t > 0; math.inf from the time E[S_t^4] is
    infinite, or where the moments overflow.

    The moments E[(S_t/F_t)^k] = exp(log_cf(-ik, t)) for k = 2, 3, 4 (the characteristic function continued to
    the imaginary axis, exact while the moment is finite); their expm1 keeps the central moments accurate when
    S_t is nearly deterministic.
    """
    if t >= moment_explosion_time(p, 4.0):
        return math.inf
    with np.errstate(all="ignore"):
        logs = np.real(log_cf(-1j * np.array([2.0, 3.0, 4.0]), t, p))
        e2, e3, e4 = np.expm1(logs)
        variance = e2
        central4 = e4 - 4.0 * e3 + 6.0 * e2
        kurtosis = float(central4 / (variance * variance))
    return kurtosis if math.isfinite(kurtosis) and kurtosis > 0 else math.inf
