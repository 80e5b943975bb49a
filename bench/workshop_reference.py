"""The AWS workshop's way of pricing one autocallable memory-coupon note, kept as a benchmark reference.

This reproduces, for ONE position, what the workshop's ``Autocallable.Note.py`` does inside each AWS Batch
job: build a QuantLib market, calibrate a Heston model to the Euro Stoxx 50 implied-vol surface with
differential evolution, then simulate paths one at a time with a QuantLib path generator and evaluate the
payoff in a plain Python loop (per path: copy the QuantLib path into numpy, divide by the strike, walk the
observation dates, discount every visited date on the curve). It is deliberately slow: our vectorised
engine is timed against it.

Deliberate deviations from the workshop:

* Calibration. The workshop runs ``scipy.optimize.differential_evolution`` over a cost function that calls
  ``model.setParams`` and throws the optimiser's result away, so it prices with whatever parameters were
  evaluated last (the "setParams pitfall"). Here the model is calibrated with ``HestonModel.calibrate`` and
  QuantLib's ``DifferentialEvolution``, and the paths come from a process built on the calibrated parameters.
  QuantLib's DE cannot be configured (nor seeded) from Python; it is seeded from QuantLib's clock-based
  SeedGenerator and, with its default configuration, stalls in different local minima from run to run
  (relative-price root-SSE 1.1 to 2.3, against 0.30 at the optimum; PVs of the second position from
  10.14M to 10.34M). So, like scipy's DE (``polish=True`` by default), the DE result is polished with
  Levenberg-Marquardt, and a second Levenberg-Marquardt run from a fixed start read off the surface guards
  against the DE basin being a local one; the better of the two is kept. In practice this makes the
  calibrated parameters the same on every run.
* Random numbers are seeded (``seed``); the workshop's ``UniformRandomGenerator()`` is clock-seeded.
* The simulation grid has ``STEPS_PER_YEAR`` (2) variance steps per year with the observation times on it.
  The workshop passes just the observation times to the path generator (7 annual steps; its sequence
  dimension of 14 is 2 factors x 7 steps). ``STEPS_PER_YEAR = 1`` gives the workshop's grid; the pricing
  time is about the same either way.

Market data and product terms come from the workshop's ``workshop-market.json`` (copied below as
constants, so the module runs with no file access).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import QuantLib as ql

# --- market (workshop-market.json) -------------------------------------------------------------------
VALUATION_DATE = ql.Date(20, 11, 2019)
SPOT = 3550.0
RATE = 0.01  # continuously compounded (QuantLib FlatForward default)
DIVIDEND_YIELD = 0.0
VOL_EXPIRIES = (
    ql.Date(19, 6, 2020),
    ql.Date(18, 12, 2020),
    ql.Date(18, 6, 2021),
    ql.Date(17, 12, 2021),
    ql.Date(17, 6, 2022),
    ql.Date(16, 12, 2022),
    ql.Date(15, 12, 2023),
    ql.Date(20, 12, 2024),
    ql.Date(19, 12, 2025),
    ql.Date(18, 12, 2026),
)
VOL_STRIKES = (3075.0, 3200.0, 3350.0, 3550.0, 3775.0, 3950.0, 4050.0)
VOLS = (
    (0.1753, 0.1631, 0.1493, 0.132, 0.116, 0.108, 0.1052),
    (0.1683, 0.1583, 0.147, 0.1334, 0.1212, 0.1145, 0.1117),
    (0.1673, 0.1597, 0.1517, 0.1428, 0.1346, 0.129, 0.1262),
    (0.1659, 0.1601, 0.1541, 0.1474, 0.1417, 0.1381, 0.1363),
    (0.1678, 0.1634, 0.1588, 0.1537, 0.1493, 0.1467, 0.1455),
    (0.1678, 0.1644, 0.1609, 0.1572, 0.1541, 0.1522, 0.1513),
    (0.1694, 0.1666, 0.1638, 0.1608, 0.1584, 0.1569, 0.1562),
    (0.1701, 0.168, 0.166, 0.164, 0.1623, 0.1614, 0.161),
    (0.1715, 0.1698, 0.1682, 0.1667, 0.1654, 0.1648, 0.1645),
    (0.1724, 0.171, 0.1697, 0.1684, 0.1675, 0.1671, 0.1669),
)

# --- product terms ----------------------------------------------------------------------------------
COUPON = 0.05
COUPON_BARRIER = 0.8
PROTECTION_BARRIER = 0.6
MATURITY_YEARS = 7

# --- Heston calibration -----------------------------------------------------------------------------
# Workshop bounds, in the workshop's (= QuantLib HestonModel.params()) order: theta, kappa, sigma, rho, v0.
HESTON_BOUNDS = ((0.01, 1.0), (0.01, 10.0), (0.01, 1.0), (-1.0, 1.0), (0.01, 1.0))
# Workshop's initial guess (all parameters 0.01).
HESTON_INITIAL = {"v0": 0.01, "kappa": 0.01, "theta": 0.01, "sigma": 0.01, "rho": 0.01}
# maxIterations, maxStationaryStateIterations, rootEpsilon, functionEpsilon, gradientNormEpsilon.
DE_END_CRITERIA = (100, 10, 1e-8, 1e-8, 1e-8)
POLISH_END_CRITERIA = (1000, 100, 1e-8, 1e-8, 1e-8)
# Fixed start of the guard polish: short and long ATM variances, moderate mean reversion, vol of vol, skew.
POLISH_START = {"v0": VOLS[0][3] ** 2, "kappa": 1.0, "theta": VOLS[-1][3] ** 2, "sigma": 0.5, "rho": -0.5}

# --- simulation -------------------------------------------------------------------------------------
# Variance-process steps per year of the simulation grid (observation times are always on the grid).
STEPS_PER_YEAR = 2


@dataclass
class ReferenceResult:
    pv: float
    stderr: float
    paths: int
    calibration_seconds: float
    pricing_seconds: float
    heston: dict[str, float]  # keys v0, kappa, theta, sigma, rho


def _market() -> tuple[ql.YieldTermStructureHandle, ql.YieldTermStructureHandle, ql.QuoteHandle]:
    ql.Settings.instance().evaluationDate = VALUATION_DATE
    day_count = ql.Actual360()
    curve = ql.YieldTermStructureHandle(ql.FlatForward(VALUATION_DATE, RATE, day_count))
    dividend = ql.YieldTermStructureHandle(ql.FlatForward(VALUATION_DATE, DIVIDEND_YIELD, day_count))
    spot = ql.QuoteHandle(ql.SimpleQuote(SPOT))
    return curve, dividend, spot


def _process(
    curve: ql.YieldTermStructureHandle,
    dividend: ql.YieldTermStructureHandle,
    spot: ql.QuoteHandle,
    p: dict[str, float],
) -> ql.HestonProcess:
    return ql.HestonProcess(curve, dividend, spot, p["v0"], p["kappa"], p["theta"], p["sigma"], p["rho"])


def _as_array(p: dict[str, float]) -> ql.Array:
    return ql.Array([p["theta"], p["kappa"], p["sigma"], p["rho"], p["v0"]])


def _as_dict(params: ql.Array) -> dict[str, float]:
    theta, kappa, sigma, rho, v0 = list(params)
    return {"v0": v0, "kappa": kappa, "theta": theta, "sigma": sigma, "rho": rho}


def _calibrate(
    curve: ql.YieldTermStructureHandle, dividend: ql.YieldTermStructureHandle, spot: ql.QuoteHandle
) -> dict[str, float]:
    """Calibrate Heston to the whole surface (one helper per expiry x strike) with QuantLib's DE.

    The DE result is polished with Levenberg-Marquardt, and a second Levenberg-Marquardt run from
    ``POLISH_START`` guards against a local minimum; the parameters with the lower error are returned.
    """
    model = ql.HestonModel(_process(curve, dividend, spot, HESTON_INITIAL))
    engine = ql.AnalyticHestonEngine(model)
    calendar = ql.TARGET()
    helpers = []
    for expiry, row in zip(VOL_EXPIRIES, VOLS, strict=True):
        period = ql.Period(expiry - VALUATION_DATE, ql.Days)
        for strike, vol in zip(VOL_STRIKES, row, strict=True):
            helper = ql.HestonModelHelper(
                period, calendar, SPOT, strike, ql.QuoteHandle(ql.SimpleQuote(vol)), curve, dividend
            )
            helper.setPricingEngine(engine)
            helpers.append(helper)
    bounds = ql.NonhomogeneousBoundaryConstraint(
        ql.Array([lo for lo, _ in HESTON_BOUNDS]), ql.Array([hi for _, hi in HESTON_BOUNDS])
    )

    # The workshop's global search (its ~20 s): QuantLib's DE, default configuration, clock-seeded.
    model.calibrate(helpers, ql.DifferentialEvolution(), ql.EndCriteria(*DE_END_CRITERIA), bounds)
    # Polish the DE result (as scipy's DE does by default).
    model.calibrate(helpers, ql.LevenbergMarquardt(), ql.EndCriteria(*POLISH_END_CRITERIA), bounds)
    candidates = [ql.Array(model.params())]
    # Guard: the same local search from a fixed start.
    model.setParams(_as_array(POLISH_START))
    model.calibrate(helpers, ql.LevenbergMarquardt(), ql.EndCriteria(*POLISH_END_CRITERIA), bounds)
    candidates.append(ql.Array(model.params()))

    best = min(candidates, key=lambda params: model.value(params, helpers))
    return _as_dict(best)


def _observation_dates() -> list[ql.Date]:
    schedule = ql.Schedule(
        VALUATION_DATE,
        VALUATION_DATE + ql.Period(MATURITY_YEARS, ql.Years),
        ql.Period(ql.Annual),
        ql.TARGET(),
        ql.ModifiedFollowing,
        ql.ModifiedFollowing,
        ql.DateGeneration.Forward,
        False,
    )
    return list(schedule)[1:]


def price_position_workshop_way(
    notional: float,
    strike: float,
    barrier: float,
    paths: int = 10_000,
    seed: int = 42,
    calibrate: bool = True,
    heston: dict[str, float] | None = None,
) -> ReferenceResult:
    """Price one autocallable memory-coupon note the workshop's way (QuantLib paths, Python payoff loop).

    ``barrier`` is the autocall barrier as a fraction of ``strike``. With ``calibrate=False`` the Heston
    parameters must be given in ``heston`` (keys v0, kappa, theta, sigma, rho) and no calibration is run.
    """
    if not calibrate and heston is None:
        raise ValueError("calibrate=False needs heston parameters")
    curve, dividend, spot = _market()

    calibration_seconds = 0.0
    if calibrate:
        start = time.perf_counter()
        params = _calibrate(curve, dividend, spot)
        calibration_seconds = time.perf_counter() - start
    else:
        assert heston is not None
        params = {k: float(heston[k]) for k in ("v0", "kappa", "theta", "sigma", "rho")}

    start = time.perf_counter()
    process = _process(curve, dividend, spot, params)
    day_count = ql.Actual360()
    dates = _observation_dates()
    times = [day_count.yearFraction(VALUATION_DATE, d) for d in dates]
    grid = ql.TimeGrid(times, STEPS_PER_YEAR * MATURITY_YEARS)
    grid_times = np.asarray(list(grid))
    obs_index = np.array([int(np.abs(grid_times - t).argmin()) for t in times])  # TimeGrid.index isn't bound
    dim = process.factors() * (len(grid) - 1)
    generator = ql.GaussianMultiPathGenerator(
        process,
        grid,
        ql.GaussianRandomSequenceGenerator(ql.UniformRandomSequenceGenerator(dim, ql.UniformRandomGenerator(seed))),
        False,
    )

    expiration = dates[-1]
    pvs = []
    for _ in range(paths):
        spot_path = np.array(list(generator.next().value()[0]))
        pv = 0.0
        unpaid = 0
        for date, x in zip(dates, spot_path[obs_index] / strike, strict=True):
            called = False
            if date == expiration:
                if x >= COUPON_BARRIER:
                    payoff = notional * (1.0 + COUPON * (1 + unpaid))
                elif x >= PROTECTION_BARRIER:
                    payoff = notional
                else:
                    payoff = notional * min(1.0, x)
            elif x >= barrier:
                payoff = notional * (1.0 + COUPON * (1 + unpaid))
                called = True
            elif x >= COUPON_BARRIER:
                payoff = notional * COUPON * (1 + unpaid)
                unpaid = 0
            else:
                payoff = 0.0
                unpaid += 1
            pv += payoff * curve.discount(date)
            if called:
                break
        pvs.append(pv)

    values = np.asarray(pvs)
    pv_mean = float(values.mean())
    stderr = float(values.std(ddof=1) / math.sqrt(paths)) if paths > 1 else 0.0
    pricing_seconds = time.perf_counter() - start
    return ReferenceResult(
        pv=pv_mean,
        stderr=stderr,
        paths=paths,
        calibration_seconds=calibration_seconds,
        pricing_seconds=pricing_seconds,
        heston=params,
    )


if __name__ == "__main__":
    NOTIONAL, STRIKE, BARRIER = 1e7, 3550.0, 0.95  # second workshop position
    result = price_position_workshop_way(NOTIONAL, STRIKE, BARRIER, paths=10_000)
    print(f"position: notional {NOTIONAL:,.0f}, strike {STRIKE:g}, autocall barrier {BARRIER:g}")
    print(f"PV                  {result.pv:,.2f}")
    print(f"stderr              {result.stderr:,.2f} ({100.0 * result.stderr / NOTIONAL:.3f}% of notional)")
    print(f"paths               {result.paths}")
    print(f"calibration seconds {result.calibration_seconds:.2f}")
    print(f"pricing seconds     {result.pricing_seconds:.2f}")
    print("heston              " + ", ".join(f"{k}={v:.6g}" for k, v in result.heston.items()))
