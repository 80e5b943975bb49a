"""Heston paths by Andersen's quadratic-exponential (QE) scheme with martingale correction, vectorised over paths.

Reference: L. Andersen, "Efficient Simulation of the Heston Stochastic Volatility Model" (2008), sections 3.2.4
(variance step, psi_c = 1.5), 4.2 (log-price step with gamma1 = gamma2 = 1/2) and 4.3 (martingale correction), as
in QuantLib's HestonProcess::QuadraticExponentialMartingale, its default discretisation.

Random numbers come in blocks: block b draws from its own stream seeded by SeedSequence(seed, spawn_key=(b,)), and
every block holds antithetic pairs (path i and path i + half use opposite normals). A block's paths are therefore
the same however blocks are grouped into work items, which is what makes results independent of sharding.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.special import log_ndtr, ndtr

from batchpipe.pricing.heston import HestonParams

FloatArray = NDArray[np.float64]
PSI_CRITICAL = 1.5


@dataclass(frozen=True)
class TimeGrid:
    """Simulation times (starting at 0) and the indices of the observation times in it."""

    times: FloatArray
    observed: NDArray[np.intp]

    @property
    def steps(self) -> int:
        return int(self.times.size - 1)


# The longest step, in units of the mean-reversion time 1/kappa, that the log-price step may take.
#
# Andersen's log-price step approximates the integral of v over a step by the trapezoid rule and multiplies its
# error by (kappa rho / sigma - 1/2), so the variance of log S_T the paths carry is off by a relative error that
# grows with kappa dt: too small while kappa dt is small (the trapezoid misses the variance of the integral of v
# around its chord, about rho^2 (kappa dt)^2 / 13), far too large once kappa dt is large (v decorrelates within a
# step and the chord is all noise). Relative error of Var(log S_T), in percent, at kappa 50, sigma 0.3,
# v0 = theta = 0.04 and kappa T = 10, from the QE chain's exact second moments (the scheme matches every step's
# conditional mean and variance, so they are CIR's) plus a Monte Carlo estimate of the martingale correction's
# non-linear part, against the exact Var(log S_T) (the CIR moments, equal to the characteristic function's second
# cumulant to 1e-14); three entries confirmed on this module's paths at 2 million paths within one standard error:
#
#   kappa dt     0.05    0.1   0.125    0.2    0.5     1      2      5     20
#   rho -0.999  -0.020 -0.077 -0.117 -0.276  -1.25  -2.78  -1.94  +22.3  +79.8
#   rho -0.9    -0.016 -0.062 -0.094 -0.224  -1.01  -2.25  -1.56  +18.2  +64.8
#   rho -0.5    -0.005 -0.019 -0.029 -0.069  -0.31  -0.69  -0.45   +5.7  +20.1
#   rho  0       0.000  0.000  0.000  0.000   0.00   0.00   0.00   0.00   0.00
#
# Positive rho gives the same within a few percent of these figures. At kappa dt = 1/8 the worst case (rho near
# -1) is -0.12% to -0.13% for sigma/kappa up to 0.05 whatever theta (checked for kappa 2 to 400, sigma 0.1 to 10,
# theta 0.04 and 9), -0.19% at sigma/kappa = 0.2 and -0.21% at 0.25: at most half the 0.45% standard error with
# which 100,000 paths measure that variance (an ATM option's price moves by about half as much, against a
# standard error of ~0.5%). Larger sigma/kappa is a vol-of-vol regime whose error depends on sigma dt, which is
# what steps_per_year is for (kappa 1, sigma 10, v0 = theta = 9, rho 0.999 is off by 12% at 12 steps a year and
# by 1% at 48).
# The workshop's kappa 1.445 at the default 12 steps a year (kappa dt = 0.12) is already inside the limit.
KAPPA_DT_LIMIT = 0.125


def steps_per_year_needed(steps_per_year: int, kappa: float) -> float:
    """The step rate the grid uses: steps_per_year, or kappa / KAPPA_DT_LIMIT when mean reversion is faster."""
    if not steps_per_year >= 1:
        raise ValueError(f"steps_per_year must be at least 1, got {steps_per_year!r}")
    if not (math.isfinite(kappa) and kappa >= 0):
        raise ValueError(f"kappa must be finite and non-negative, got {kappa!r}")
    return max(float(steps_per_year), kappa / KAPPA_DT_LIMIT)


def build_grid(observation_times: FloatArray, steps_per_year: int, *, kappa: float) -> TimeGrid:
    """Equal sub-steps between consecutive observation times, at least one, each at most 1/steps_per_year long
    and with kappa * dt <= KAPPA_DT_LIMIT (kappa: the Heston mean-reversion speed; 0 imposes no such limit)."""
    rate = steps_per_year_needed(steps_per_year, kappa)
    obs = np.unique(np.asarray(observation_times, dtype=np.float64))
    if obs.size == 0 or obs[0] <= 0:
        raise ValueError("observation times must be positive")
    times = [0.0]
    observed = []
    for t in obs:
        start = times[-1]
        n = max(1, math.ceil((t - start) * rate - 1e-9))
        times.extend(start + (t - start) * (i / n) for i in range(1, n))
        times.append(float(t))
        observed.append(len(times) - 1)
    return TimeGrid(np.array(times), np.array(observed, dtype=np.intp))


def block_stream(seed: int, block: int) -> np.random.Generator:
    """Block `block`'s own random stream: what makes a block's paths the same however blocks are grouped."""
    return np.random.Generator(np.random.SFC64(np.random.SeedSequence(seed, spawn_key=(block,))))


def block_normals(seed: int, block: int, steps: int, half: int) -> FloatArray:
    """The standard normals of one block: shape (steps, 2, half); [:, 0] drives variance, [:, 1] the price."""
    return block_stream(seed, block).standard_normal((steps, 2, half))


def antithetic(normals: list[FloatArray]) -> FloatArray:
    """Paths of several blocks side by side, each block as [z, -z]: shape (steps, 2, paths)."""
    return np.concatenate([part for z in normals for part in (z, -z)], axis=2)


def chunk_normals(seed: int, blocks: range, steps: int, half: int) -> FloatArray:
    """The normals of consecutive blocks, shape (blocks, steps, 2, half), each block drawn as by `block_normals`."""
    out = np.empty((len(blocks), steps, 2, half))
    for i, b in enumerate(blocks):
        block_stream(seed, b).standard_normal(out=out[i])
    return out


STEP_SLAB = 128  # steps of normals drawn at a time by simulate_qe_blocks: memory follows the slab, not the grid


def simulate_qe_blocks(
    p: HestonParams, spot: float, rate: float, dividend: float, grid: TimeGrid, seed: int, blocks: range, half: int
) -> FloatArray:
    """`simulate_qe_antithetic(..., chunk_normals(seed, blocks, grid.steps, half))`, bit for bit, with the normals
    drawn STEP_SLAB steps at a time from each block's stream (a generator fills an array in order, so consecutive
    slabs are the numbers one draw of every step gives). A fine grid (fast mean reversion: 22,733 steps for a
    7-year note at kappa 400) would otherwise hold gigabytes of normals per chunk."""
    return simulate_qe_blocks_many([p], spot, rate, dividend, grid, seed, blocks, half)[0]


def simulate_qe(
    p: HestonParams, spot: float, rate: float, dividend: float, grid: TimeGrid, normals: FloatArray
) -> FloatArray:
    """Spot at the grid's observation times: shape (paths, observations).

    normals: shape (steps, 2, paths), e.g. from `antithetic`.
    """
    steps, _, n = normals.shape
    if steps != grid.steps:
        raise ValueError(f"normals have {steps} steps, the grid {grid.steps}")
    return _simulate(p, spot, rate, dividend, grid, n, lambda k: (normals[k, 0], normals[k, 1]))


def simulate_qe_antithetic(
    p: HestonParams, spot: float, rate: float, dividend: float, grid: TimeGrid, normals: FloatArray
) -> FloatArray:
    """Like `simulate_qe` for blocks of antithetic pairs, without materialising the negated normals.

    normals: shape (blocks, steps, 2, half), e.g. from `chunk_normals`. Returns (2 * blocks * half, observations)
    with the rows laid out as (sign, block, pair): row (0, b, i) used z and row (1, b, i) used -z, so
    `out.reshape(2, blocks, half, -1)` pairs them. The paths equal those of `simulate_qe` on `antithetic(...)`.
    """
    nb, steps, _, half = normals.shape
    if steps != grid.steps:
        raise ValueError(f"normals have {steps} steps, the grid {grid.steps}")
    return _simulate(p, spot, rate, dividend, grid, 2 * nb * half, _antithetic_steps(nb, half, lambda k: normals[:, k]))


def _antithetic_steps(
    nb: int, half: int, normals_at: Callable[[int], FloatArray]
) -> Callable[[int], tuple[FloatArray, FloatArray]]:
    """Step k's (variance, price) normals for rows laid out as (sign, block, pair), from the (nb, 2, half) normals
    of step k: z for sign 0, -z for sign 1, in one reused buffer."""
    m = nb * half
    buf = np.empty((2, 2, m))

    def step(k: int) -> tuple[FloatArray, FloatArray]:
        z = normals_at(k)
        for f in range(2):
            plus = buf[f, 0].reshape(nb, half)
            np.copyto(plus, z[:, f, :])
            np.negative(plus, out=buf[f, 1].reshape(nb, half))
        return buf[0].reshape(2 * m), buf[1].reshape(2 * m)

    return step


def _simulate(
    p: HestonParams,
    spot: float,
    rate: float,
    dividend: float,
    grid: TimeGrid,
    n: int,
    step_normals: Callable[[int], tuple[FloatArray, FloatArray]],
) -> FloatArray:
    return _simulate_many([p], spot, rate, dividend, grid, n, step_normals)[0]


def simulate_qe_blocks_many(
    params: Sequence[HestonParams],
    spot: float,
    rate: float,
    dividend: float,
    grid: TimeGrid,
    seed: int,
    blocks: range,
    half: int,
) -> list[FloatArray]:
    """`simulate_qe_blocks` for several parameter sets on the same random numbers, drawn once: each output is
    bit for bit what `simulate_qe_blocks` gives for its parameters (the scheme consumes one variance and one price
    normal per step and path whatever the parameters), which is what makes a vol bump a common-random-numbers
    difference."""
    nb, steps = len(blocks), grid.steps
    streams = [block_stream(seed, b) for b in blocks]
    slab = np.empty((nb, min(STEP_SLAB, steps), 2, half))

    def normals_at(k: int) -> FloatArray:
        j = k % STEP_SLAB
        if j == 0:
            m = min(STEP_SLAB, steps - k)
            for i, stream in enumerate(streams):
                stream.standard_normal(out=slab[i, :m])
        return slab[:, j]

    return _simulate_many(params, spot, rate, dividend, grid, 2 * nb * half, _antithetic_steps(nb, half, normals_at))


class _QEChain:
    """One parameter set's state along the grid: log S and v over the paths, and the spots at the observations."""

    def __init__(self, p: HestonParams, spot: float, n: int, observations: int) -> None:
        self.p = p
        self.log_s = np.full(n, math.log(spot))
        self.v = np.full(n, p.v0)
        self.out = np.empty((n, observations))

    def step(self, dt: float, drift_rate: float, zv: FloatArray, zx: FloatArray) -> None:
        p = self.p
        kappa, theta, sigma, rho = p.kappa, p.theta, p.sigma, p.rho
        v = self.v
        plain_k0_factor = -rho * kappa * theta / sigma
        ekd = math.exp(-kappa * dt)
        c1 = sigma * sigma * ekd * (1.0 - ekd) / kappa
        c2 = theta * sigma * sigma * (1.0 - ekd) ** 2 / (2.0 * kappa)
        k1 = 0.5 * dt * (kappa * rho / sigma - 0.5) - rho / sigma
        k2 = 0.5 * dt * (kappa * rho / sigma - 0.5) + rho / sigma
        k3 = 0.5 * dt * (1.0 - rho * rho)
        k4 = k3
        big_a = k2 + 0.5 * k4

        m = theta + (v - theta) * ekd
        psi = (v * c1 + c2) / (m * m)
        expo = np.flatnonzero(psi > PSI_CRITICAL)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            # quadratic branch (psi <= psi_c): v' = a (b + Z)^2; computed everywhere, replaced below where psi > psi_c
            inv = 2.0 / psi
            b2 = inv - 1.0 + np.sqrt(inv * (inv - 1.0))
            a = m / (1.0 + b2)
            v_new = a * (np.sqrt(b2) + zv) ** 2
            one_minus_2aa = 1.0 - 2.0 * big_a * a
            log_m = big_a * b2 * a / one_minus_2aa - 0.5 * np.log(one_minus_2aa)
            if expo.size:
                # exponential branch: v' = 0 with probability pp, else exponential with rate beta
                psi_e, m_e, z_e = psi[expo], m[expo], zv[expo]
                pp = (psi_e - 1.0) / (psi_e + 1.0)
                beta = (1.0 - pp) / m_e
                v_new[expo] = np.where(ndtr(z_e) <= pp, 0.0, (np.log1p(-pp) - log_ndtr(-z_e)) / beta)
                log_m[expo] = np.log(pp + beta * (1.0 - pp) / (beta - big_a))
            # martingale correction where it exists (A < 1/(2a), A < beta); Andersen's plain K0 otherwise
            k0 = -log_m - (k1 + 0.5 * k3) * v
            bad = ~np.isfinite(k0)
            if bad.any():
                k0[bad] = plain_k0_factor * dt
        self.log_s += drift_rate * dt + k0 + k1 * v + k2 * v_new + np.sqrt(k3 * v + k4 * v_new) * zx
        self.v = v_new


def _simulate_many(
    params: Sequence[HestonParams],
    spot: float,
    rate: float,
    dividend: float,
    grid: TimeGrid,
    n: int,
    step_normals: Callable[[int], tuple[FloatArray, FloatArray]],
) -> list[FloatArray]:
    chains = [_QEChain(p, spot, n, grid.observed.size) for p in params]
    observed = {int(k): j for j, k in enumerate(grid.observed)}
    drift_rate = rate - dividend
    for k in range(grid.steps):
        dt = float(grid.times[k + 1] - grid.times[k])
        zv, zx = step_normals(k)
        j = observed.get(k + 1)
        for chain in chains:
            chain.step(dt, drift_rate, zv, zx)
            if j is not None:
                chain.out[:, j] = np.exp(chain.log_s)
    return [chain.out for chain in chains]
