"""Semi-analytic Heston prices, digitals, Black inversion and calibration, with QuantLib 1.44 as the oracle.

References and tolerances (each test repeats the one it uses):

* European calls and puts: ``ql.AnalyticHestonEngine`` (QuantLib
  ``ql/pricingengines/vanilla/analytichestonengine.cpp``, adaptive Gauss-Lobatto, relative tolerance 1e-12) on
  a ``ql.HestonProcess`` with flat ``ql.FlatForward`` curves, Actual360 and evaluation date 2019-11-20, so
  that t = days / 360 exactly. Tolerance: 1e-6 * spot absolute.
* P(S_T > K): 1 - ``ql.HestonRNDCalculator.cdf(ln K, t)`` (QuantLib
  ``ql/methods/finitedifferences/utilities/hestonrndcalculator.cpp``, the cdf of x_t = ln S_t, integration
  tolerance 1e-9): ``ql.AnalyticHestonEngine`` rejects ``CashOrNothingPayoff`` ("non plain vanilla payoff
  given"). Tolerance 1e-8 absolute in
  probability.
* The same probability as -dC/dK * e^{rT} by a central difference of ``call_prices`` (h = 1e-5 K, truncation
  O(h^2)). Tolerance 2e-8 absolute.
* Black-Scholes limit: ``ql.blackFormula`` with the deterministic variance of the sigma -> 0 limit.
* Black prices: ``ql.blackFormula``.
"""

from __future__ import annotations

import json
import math
from datetime import date

import numpy as np
import pytest
import QuantLib as ql

from batchpipe.errors import InputError
from batchpipe.pipelines.portfolio import WORKSHOP_EXPIRIES, WORKSHOP_STRIKES, WORKSHOP_VOLS, parse_portfolio
from batchpipe.pricing import calibration
from batchpipe.pricing.black import black_price, implied_vol
from batchpipe.pricing.calibration import (
    LOWER,
    PARAMETERS,
    RMSE_WARNING,
    UPPER,
    VEGA_FLOOR,
    Calibration,
    UnfittableSurface,
    VolQuotes,
    calibrate,
    implied_vol_rmse,
    model_vols,
    relative_vegas,
)
from batchpipe.pricing.domain import HESTON, heston_problems
from batchpipe.pricing.heston import HestonParams, call_prices, probability_above, put_prices
from tests.montecarlo_memory import preprocess

SPOT = 3550.0
VALUATION = date(2019, 11, 20)
QL_TODAY = ql.Date(20, 11, 2019)
DAYS = [7, 30, 91, 182, 365, 730, 1825, 3650]  # one week to ten years, Actual/360 year fractions
MONEYNESS = np.array([0.5, 0.6, 0.75, 0.9, 1.0, 1.1, 1.25, 1.5, 2.0])

WORKSHOP = HestonParams(v0=0.01216, kappa=1.445, theta=0.0326, sigma=0.354, rho=-0.599)
PARAMETER_SETS = {
    "workshop": WORKSHOP,
    "positive-rho": HestonParams(v0=0.04, kappa=2.0, theta=0.05, sigma=0.4, rho=0.5),
    "high-vol-of-vol": HestonParams(v0=0.09, kappa=1.0, theta=0.06, sigma=1.5, rho=-0.8),
    "feller-violated": HestonParams(v0=0.04, kappa=0.5, theta=0.04, sigma=1.0, rho=-0.7),
}
Market = tuple[float, float]  # rate, dividend yield
MARKETS: dict[str, Market] = {"r1%-q0": (0.01, 0.0), "r3%-q2%": (0.03, 0.02)}


pytestmark = pytest.mark.usefixtures("ql_valuation_date")


def ql_process(p: HestonParams, rate: float, dividend: float, spot: float = SPOT) -> ql.HestonProcess:
    dc = ql.Actual360()
    r = ql.YieldTermStructureHandle(ql.FlatForward(QL_TODAY, rate, dc))
    q = ql.YieldTermStructureHandle(ql.FlatForward(QL_TODAY, dividend, dc))
    quote = ql.QuoteHandle(ql.SimpleQuote(spot))
    return ql.HestonProcess(r, q, quote, p.v0, p.kappa, p.theta, p.sigma, p.rho)


def ql_vanilla(engine: ql.PricingEngine, kind: int, strike: float, days: int) -> float:
    payoff = ql.PlainVanillaPayoff(kind, float(strike))
    option = ql.VanillaOption(payoff, ql.EuropeanExercise(QL_TODAY + days))
    option.setPricingEngine(engine)
    return float(option.NPV())


# --- European calls and puts ------------------------------------------------------------------------------


@pytest.mark.parametrize("market", MARKETS.values(), ids=MARKETS.keys())
@pytest.mark.parametrize("params", PARAMETER_SETS.values(), ids=PARAMETER_SETS.keys())
def test_calls_and_puts_match_quantlib_analytic_heston(params: HestonParams, market: Market) -> None:
    """Reference: ql.AnalyticHestonEngine (Gauss-Lobatto, rel. tol. 1e-12). Tolerance: 1e-6 * spot absolute.

    Observed agreement when written: about 2e-11 * spot.
    """
    rate, dividend = market
    engine = ql.AnalyticHestonEngine(ql.HestonModel(ql_process(params, rate, dividend)), 1e-12, 1_000_000)
    strikes = SPOT * MONEYNESS
    worst = 0.0
    for days in DAYS:
        t = days / 360.0
        calls = call_prices(SPOT, strikes, t, rate, dividend, params)
        puts = put_prices(SPOT, strikes, t, rate, dividend, params)
        ref_calls = np.array([ql_vanilla(engine, ql.Option.Call, k, days) for k in strikes])
        ref_puts = np.array([ql_vanilla(engine, ql.Option.Put, k, days) for k in strikes])
        np.testing.assert_allclose(calls, ref_calls, rtol=0, atol=1e-6 * SPOT, err_msg=f"calls, {days} days")
        np.testing.assert_allclose(puts, ref_puts, rtol=0, atol=1e-6 * SPOT, err_msg=f"puts, {days} days")
        worst = max(worst, float(np.max(np.abs(calls - ref_calls))), float(np.max(np.abs(puts - ref_puts))))
    assert worst < 1e-6 * SPOT


def test_prices_broadcast_over_strike_and_expiry_grids() -> None:
    """A (expiries x strikes) grid in one call equals the row-by-row results (the vectorisation groups
    expiries)."""
    t = (np.array(DAYS) / 360.0)[:, None]
    strikes = SPOT * MONEYNESS[None, :]
    grid = call_prices(SPOT, strikes, t, 0.01, 0.0, WORKSHOP)
    assert grid.shape == (len(DAYS), MONEYNESS.size)
    for i in range(len(DAYS)):
        row = call_prices(SPOT, strikes[0], t[i, 0], 0.01, 0.0, WORKSHOP)
        np.testing.assert_allclose(grid[i], row, rtol=1e-13)


# --- Black-Scholes limit ----------------------------------------------------------------------------------


@pytest.mark.parametrize("v0", [0.04, 0.09], ids=["v0=theta", "v0!=theta"])
def test_tiny_vol_of_vol_is_black_scholes(v0: float) -> None:
    """sigma -> 0 (rho = 0): the variance is deterministic, v(t) = theta + (v0 - theta) e^{-kappa t}, so
    prices are Black's with total variance theta t + (v0 - theta)(1 - e^{-kappa t}) / kappa.

    Reference: ql.blackFormula. Tolerance: 1e-4 relative plus 1e-9 * spot absolute (the absolute part only
    matters for deep out-of-the-money one-week options worth ~1e-100). The model's own distance from the limit
    at sigma = 1e-4 is O(sigma^2) ~ 1e-7 relative; observed error when written: ~2e-6 relative.
    """
    p = HestonParams(v0=v0, kappa=1.5, theta=0.04, sigma=1e-4, rho=0.0)
    rate, dividend = 0.01, 0.02
    strikes = SPOT * MONEYNESS
    for days in DAYS:
        t = days / 360.0
        total_var = p.theta * t + (p.v0 - p.theta) * (1.0 - math.exp(-p.kappa * t)) / p.kappa
        forward, df = SPOT * math.exp((rate - dividend) * t), math.exp(-rate * t)
        std = math.sqrt(total_var)
        ref_c = np.array([ql.blackFormula(ql.Option.Call, k, forward, std, df) for k in strikes])
        ref_p = np.array([ql.blackFormula(ql.Option.Put, k, forward, std, df) for k in strikes])
        calls = call_prices(SPOT, strikes, t, rate, dividend, p)
        puts = put_prices(SPOT, strikes, t, rate, dividend, p)
        np.testing.assert_allclose(calls, ref_c, rtol=1e-4, atol=1e-9 * SPOT, err_msg=f"calls, {days} days")
        np.testing.assert_allclose(puts, ref_p, rtol=1e-4, atol=1e-9 * SPOT, err_msg=f"puts, {days} days")


@pytest.mark.parametrize("sigma", [1e-5, 1e-6])
@pytest.mark.parametrize("rho", [0.0, -0.5])
def test_very_small_vol_of_vol_matches_quantlib(sigma: float, rho: float) -> None:
    """sigma down to 1e-6 is a valid parameter (HestonParams.validate only needs sigma > 0) and must not lose
    precision to cancellation in (beta - d) / sigma^2 (an earlier log_cf was ~1e-5 * spot off at sigma =
    1e-6). Reference: ql.AnalyticHestonEngine (default Gauss-Laguerre, which handles small sigma; its adaptive
    Gauss-Lobatto variant does not converge here). Tolerance: 1e-6 * spot absolute (observed ~6e-12 *
    spot)."""
    p = HestonParams(v0=0.04, kappa=1.5, theta=0.04, sigma=sigma, rho=rho)
    engine = ql.AnalyticHestonEngine(ql.HestonModel(ql_process(p, 0.01, 0.02)))
    strikes = SPOT * MONEYNESS
    for days in DAYS:
        calls = call_prices(SPOT, strikes, days / 360.0, 0.01, 0.02, p)
        ref = np.array([ql_vanilla(engine, ql.Option.Call, k, days) for k in strikes])
        np.testing.assert_allclose(calls, ref, rtol=0, atol=1e-6 * SPOT, err_msg=f"{days} days")


# --- digitals -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("params", PARAMETER_SETS.values(), ids=PARAMETER_SETS.keys())
def test_probability_above_matches_quantlib_density(params: HestonParams) -> None:
    """Reference: 1 - ql.HestonRNDCalculator(process, 1e-9).cdf(ln K, t). Tolerance: 1e-8 absolute.

    Observed when written: below 1e-9.
    """
    rate, dividend = 0.01, 0.02
    calc = ql.HestonRNDCalculator(ql_process(params, rate, dividend), 1e-9, 100_000)
    strikes = SPOT * MONEYNESS
    for days in DAYS:
        t = days / 360.0
        ours = probability_above(SPOT, strikes, t, rate, dividend, params)
        ref = np.array([1.0 - calc.cdf(math.log(k), t) for k in strikes])
        np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-8, err_msg=f"{days} days")


@pytest.mark.parametrize("params", PARAMETER_SETS.values(), ids=PARAMETER_SETS.keys())
def test_probability_above_is_minus_call_strike_derivative(params: HestonParams) -> None:
    """P(S_T > K) = -dC/dK e^{rT} (Breeden-Litzenberger), by central differences with h = 1e-5 K.

    Tolerance: 2e-8 absolute (truncation ~h^2 C''' and rounding ~1e-11 spot / h; observed ~5e-9 worst, at one
    week ATM for the workshop parameters).
    """
    rate, dividend = 0.01, 0.02
    t = (np.array(DAYS) / 360.0)[:, None]
    strikes = SPOT * MONEYNESS[None, :]
    h = 1e-5 * strikes
    up = call_prices(SPOT, strikes + h, t, rate, dividend, params)
    down = call_prices(SPOT, strikes - h, t, rate, dividend, params)
    fd = -(up - down) / (2.0 * h) * np.exp(rate * t)
    ours = probability_above(SPOT, strikes, t, rate, dividend, params)
    np.testing.assert_allclose(ours, fd, rtol=0, atol=2e-8)


# --- Black prices and implied volatility --------------------------------------------------------------------


def _black_cases() -> tuple[np.ndarray, ...]:
    forward = SPOT * 1.003
    k, t, v, c = np.meshgrid(
        forward * np.array([0.5, 0.7, 0.9, 1.0, 1.1, 1.3, 1.6, 2.0]),
        np.array([7 / 360, 0.25, 1.0, 5.0, 10.0]),
        np.array([0.05, 0.15, 0.3, 0.6, 1.2]),
        np.array([True, False]),
        indexing="ij",
    )
    return np.full(k.shape, forward), k, t, v, c, np.exp(-0.01 * t)


def test_black_price_matches_quantlib() -> None:
    """Reference: ql.blackFormula. Tolerance: 1e-12 * forward absolute (observed ~1e-15)."""
    f, k, t, v, c, df = _black_cases()
    ours = black_price(f, k, v, t, df, c)
    ref = np.array(
        [
            ql.blackFormula(ql.Option.Call if ci else ql.Option.Put, ki, fi, vi * math.sqrt(ti), di)
            for fi, ki, ti, vi, ci, di in zip(*(a.ravel() for a in (f, k, t, v, c, df)), strict=True)
        ]
    ).reshape(ours.shape)
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-12 * f[0, 0, 0, 0])


def test_implied_vol_round_trips_black_price() -> None:
    """implied_vol(black_price(vol)) = vol wherever the price identifies the vol: out-of-the-money options
    worth more than 1e-10 * forward, and in-the-money ones with time value above 1e-6 * forward (deep
    in-the-money one-week calls equal intrinsic to machine precision, where any vol fits). Tolerance: 1e-10
    absolute in vol."""
    f, k, t, v, c, df = _black_cases()
    prices = black_price(f, k, v, t, df, c)
    vols = implied_vol(prices, f, k, t, df, c)
    otm = np.where(c, k >= f, k <= f)
    time_value = prices - df * np.maximum(np.where(c, f - k, k - f), 0.0)
    identified = np.where(otm, prices > 1e-10 * f, time_value > 1e-6 * f)
    assert identified.sum() > 250
    np.testing.assert_allclose(vols[identified], v[identified], rtol=0, atol=1e-10)


def test_implied_vol_is_nan_outside_no_arbitrage_bounds() -> None:
    forward = SPOT
    # a call above the discounted forward, a call below intrinsic, a put above the discounted strike, and a
    # price below the value at the lowest vol (1e-4)
    prices = np.array([forward * 1.01, 10.0, forward * 1.01, 1e-9])
    strikes = np.array([forward, 0.5 * forward, forward, forward])
    calls = np.array([True, True, False, True])
    assert np.all(np.isnan(implied_vol(prices, forward, strikes, 1.0, 1.0, calls)))


# --- calibration --------------------------------------------------------------------------------------------


def workshop_quotes() -> VolQuotes:
    """The workshop surface (defaults in batchpipe.pipelines.portfolio), Actual/360 times from 2019-11-20."""
    times = np.array([(date.fromisoformat(e) - VALUATION).days / 360.0 for e in WORKSHOP_EXPIRIES])
    return VolQuotes.from_grid(times, np.array(WORKSHOP_STRIKES), np.array(WORKSHOP_VOLS))


@pytest.fixture(scope="module")
def workshop_calibration() -> tuple[VolQuotes, Calibration]:
    quotes = workshop_quotes()
    return quotes, calibrate(SPOT, 0.01, 0.0, quotes)


def test_calibration_fits_the_workshop_surface(workshop_calibration: tuple[VolQuotes, Calibration]) -> None:
    """RMSE below 0.006 in vol (observed 0.0036 when written), and parameters within 2% of the workshop's
    published calibration (v0=0.01216, kappa=1.445, theta=0.0326, sigma=0.354, rho=-0.599; source: the
    workshop brief)."""
    quotes, fit = workshop_calibration
    assert fit.rmse is not None and fit.rmse < 0.006
    assert fit.warnings == ()
    got = fit.params.as_dict()
    for name, ref in WORKSHOP.as_dict().items():
        assert got[name] == pytest.approx(ref, rel=0.02), name
    # the reported RMSE is the exact one, and no worse than the published parameters'
    published = implied_vol_rmse(SPOT, 0.01, 0.0, quotes, WORKSHOP)
    assert published is not None
    assert fit.rmse == pytest.approx(implied_vol_rmse(SPOT, 0.01, 0.0, quotes, fit.params), rel=1e-12)
    assert fit.rmse <= published + 1e-6


def test_workshop_calibration_is_the_same_in_the_wider_search_box(
    workshop_calibration: tuple[VolQuotes, Calibration],
) -> None:
    """The search box grew to the accepted domain (v0 up to 9, kappa up to 400, sigma up to 10): the workshop fit
    never touched the old box's bounds, so it is the one the old box [1e-4, 1] x [1e-3, 20] x [1e-4, 1] x
    [1e-2, 5] x [-0.999, 0.999] gave (recorded from it, under numpy 2), to 1e-6 relative: numpy 1.26 (which the
    render extra's bpy pins) rounds the objective's last bits otherwise, and the fit lands 3e-8 away after 118
    evaluations instead of 119."""
    _, fit = workshop_calibration
    before = {
        "v0": 0.012156138412792067,
        "kappa": 1.4451121492702093,
        "theta": 0.03259843640894244,
        "sigma": 0.3539908568320387,
        "rho": -0.5988989299358406,
    }
    got = fit.params.as_dict()
    for name, ref in before.items():
        assert got[name] == pytest.approx(ref, rel=1e-6), name
    assert fit.rmse == pytest.approx(0.003599603606871811, rel=1e-7)
    assert abs(fit.evaluations - 119) <= 2


@pytest.mark.parametrize(
    "true",
    [HestonParams(v0=0.02, kappa=2.5, theta=0.04, sigma=0.6, rho=-0.7), WORKSHOP],
    ids=["synthetic", "workshop-params"],
)
def test_calibration_recovers_parameters_of_a_model_surface(true: HestonParams) -> None:
    """Prices from call_prices/put_prices (out-of-the-money side) -> implied vols -> calibrate: RMSE < 1e-4
    and every parameter within 1e-3 relative of the truth (observed ~1e-10 when written)."""
    base = workshop_quotes()
    rate, dividend = 0.01, 0.0
    forward = SPOT * np.exp((rate - dividend) * base.t)
    calls = base.strikes >= forward
    prices = np.where(
        calls,
        call_prices(SPOT, base.strikes, base.t, rate, dividend, true),
        put_prices(SPOT, base.strikes, base.t, rate, dividend, true),
    )
    vols = implied_vol(prices, forward, base.strikes, base.t, np.exp(-rate * base.t), calls)
    assert np.all(np.isfinite(vols))
    fit = calibrate(SPOT, rate, dividend, VolQuotes(base.t, base.strikes, vols))
    assert fit.rmse is not None and fit.rmse < 1e-4
    assert fit.warnings == ()
    got = fit.params.as_dict()
    for name, ref in true.as_dict().items():
        assert got[name] == pytest.approx(ref, rel=1e-3), name


def test_the_search_box_is_the_accepted_domain() -> None:
    """LOWER/UPPER are batchpipe.pricing.domain.HESTON: closed bounds exactly, open ones (kappa > 0, sigma > 0)
    nudged inside by 1e-6 of the range, so both corners of the box are accepted parameter sets."""
    for i, name in enumerate(PARAMETERS):
        bound = HESTON[name]
        nudge = 1e-6 * (bound.high - bound.low)
        assert LOWER[i] == (bound.low + nudge if bound.low_open else bound.low), name
        assert UPPER[i] == (bound.high - nudge if bound.high_open else bound.high), name
    assert heston_problems(*LOWER) == []
    assert heston_problems(*UPPER) == []


def test_a_flat_200_percent_surface_fits() -> None:
    """Every vol 2.0 (above the old box's v0 <= 1): Black-Scholes at 200% is the model v0 = theta = 4 with sigma
    -> 0, inside the domain. RMSE below RMSE_WARNING (observed 3e-10), v0 and theta 4 within 1e-6, no warning."""
    base = workshop_quotes()
    fit = calibrate(SPOT, 0.01, 0.0, VolQuotes(base.t, base.strikes, np.full(base.t.shape, 2.0), base.cells))
    assert fit.rmse is not None and fit.rmse < RMSE_WARNING
    assert fit.params.v0 == pytest.approx(4.0, rel=1e-6)
    assert fit.params.theta == pytest.approx(4.0, rel=1e-6)
    assert fit.warnings == ()


# a surface spanning the model's distribution at vols of 70-220%: strikes from 0.3x to 3.3x spot
WIDE_TIMES = np.array([0.25, 0.5, 1.0, 2.0, 3.0, 5.0])
WIDE_STRIKES = SPOT * np.exp(np.linspace(-1.2, 1.2, 9))
EXTREME = {
    "150%-vol": HestonParams(v0=2.25, kappa=3.0, theta=2.0, sigma=2.0, rho=-0.7),
    "fast-reversion-sigma-5": HestonParams(v0=2.25, kappa=20.0, theta=2.25, sigma=5.0, rho=0.3),
    "rho-0.9": HestonParams(v0=2.25, kappa=2.0, theta=2.25, sigma=3.0, rho=0.9),
}


@pytest.mark.parametrize("true", EXTREME.values(), ids=EXTREME.keys())
def test_calibration_recovers_a_model_surface_at_extreme_parameters(true: HestonParams) -> None:
    """Vols from the model (call_prices -> model_vols) at 70% to 220%, on strikes that span the distribution
    (the workshop's 3075-4050, +-13% around the forward, are a fraction of a standard deviation at such vols and
    do not identify sigma and rho): every parameter within 1e-6 relative (observed ~1e-9), RMSE below 1e-8, no
    warning."""
    grid = VolQuotes.from_grid(WIDE_TIMES, WIDE_STRIKES, np.ones((WIDE_TIMES.size, WIDE_STRIKES.size)))
    vols = model_vols(SPOT, 0.01, 0.0, grid, true)
    assert np.all(np.isfinite(vols)) and vols.max() > 1.4
    fit = calibrate(SPOT, 0.01, 0.0, VolQuotes(grid.t, grid.strikes, vols, grid.cells))
    assert fit.rmse is not None and fit.rmse < 1e-8
    assert fit.warnings == ()
    got = fit.params.as_dict()
    for name, ref in true.as_dict().items():
        assert got[name] == pytest.approx(ref, rel=1e-6), name


def test_a_parameter_that_ends_on_a_bound_is_reported() -> None:
    """A model surface made with rho = -0.999 (the domain's bound) fits exactly and says rho is at its bound."""
    true = HestonParams(v0=1.0, kappa=2.0, theta=1.5, sigma=1.0, rho=-0.999)
    grid = VolQuotes.from_grid(WIDE_TIMES, WIDE_STRIKES, np.ones((WIDE_TIMES.size, WIDE_STRIKES.size)))
    fit = calibrate(SPOT, 0.01, 0.0, VolQuotes(grid.t, grid.strikes, model_vols(SPOT, 0.01, 0.0, grid, true)))
    assert fit.rmse is not None and fit.rmse < 1e-8
    assert fit.warnings == ("rho at its lower bound -0.999",)


def test_a_surface_the_model_cannot_fit_says_so() -> None:
    """The workshop surface's first three expiries with +-3 vol points alternating across strikes (a zig-zag no
    smooth smile follows): the fit ends with an RMSE above RMSE_WARNING (observed 3.1 vol points) and a warning
    that says it."""
    base = workshop_quotes().subset(workshop_quotes().cells[:, 0] < 3)
    zigzag = base.vols + 0.03 * (-1.0) ** base.cells[:, 1]
    fit = calibrate(SPOT, 0.01, 0.0, VolQuotes(base.t, base.strikes, zigzag, base.cells))
    assert fit.rmse is not None and fit.rmse > RMSE_WARNING
    assert any("RMSE" in w and "does not fit" in w for w in fit.warnings), fit.warnings


def test_a_surface_no_quote_of_which_can_be_fitted_is_refused_naming_the_quotes() -> None:
    """Spot 100 with the workshop's strikes 3075-4050: every quote is 7 to 46 standard deviations out of the
    money, its price ~0 and its vega below VEGA_FLOOR (the fit used to end in NaN residuals and an
    AssertionError). UnfittableSurface (a ValueError) names them and says why."""
    with pytest.raises(UnfittableSurface) as info:
        calibrate(100.0, 0.01, 0.0, workshop_quotes())
    message = str(info.value)
    assert isinstance(info.value, ValueError)
    assert "none of the 70 quotes can be fitted" in message
    assert "all 70 quotes (vols[0][0] to vols[9][6])" in message
    assert "strikes 3075-4050 are 29-40x the forward 101-107" in message
    assert len(info.value.quotes) == 70 and info.value.quotes[-1] == (9, 6)


def test_the_pipeline_refuses_an_unfittable_surface_as_an_input_error() -> None:
    """Preprocess turns UnfittableSurface into one InputError line: the file, market.volSurface, the reason."""
    text = json.dumps(
        {"name": "x", "market": {"spot": 100}, "positions": [{"notional": 1, "strike": 100, "barrier": 1}]}
    )
    with pytest.raises(InputError) as info:
        preprocess(parse_portfolio(text, "book.json"), "x")
    assert str(info.value).startswith("book.json: market.volSurface: none of the 70 quotes can be fitted")
    assert "\n" not in str(info.value)


def test_too_few_informative_quotes_are_refused() -> None:
    """Spot 300: only two quotes (the longest expiry's two lowest strikes) keep a vega above VEGA_FLOOR."""
    with pytest.raises(UnfittableSurface, match=r"^68 of 70 quotes cannot be fitted .*, leaving 2, and five para"):
        calibrate(300.0, 0.01, 0.0, workshop_quotes())


def test_a_minority_of_uninformative_quotes_is_left_out_with_a_warning() -> None:
    """Spot 2000: the 7 short-dated quotes at strikes 1.8-2x the forward have vegas below VEGA_FLOOR. They are
    left out (named in a warning), the rest are fitted, and the RMSE is over the fitted quotes only."""
    quotes = workshop_quotes()
    fit = calibrate(2000.0, 0.01, 0.0, quotes)
    vega = relative_vegas(2000.0, 0.01, 0.0, quotes)
    left_out = vega < VEGA_FLOOR
    assert left_out.sum() == 7
    assert len(fit.warnings) == 1
    assert fit.warnings[0].startswith("7 of 70 quotes left out of the fit")
    assert "vols[0][3], vols[0][4], vols[0][5] and 4 more" in fit.warnings[0]
    assert fit.rmse == pytest.approx(implied_vol_rmse(2000.0, 0.01, 0.0, quotes.subset(~left_out), fit.params))


def test_no_rmse_when_a_model_price_has_no_implied_vol(monkeypatch: pytest.MonkeyPatch) -> None:
    """If a fitted quote's model price cannot be inverted to a Black vol, the RMSE is None (never NaN) and a
    warning names the quote."""
    real = calibration.model_vols

    def one_lost(*args: object) -> np.ndarray:
        vols = real(*args)  # type: ignore[arg-type]
        vols[3] = np.nan
        return vols

    monkeypatch.setattr(calibration, "model_vols", one_lost)
    fit = calibrate(SPOT, 0.01, 0.0, workshop_quotes())
    assert fit.rmse is None
    assert len(fit.warnings) == 1 and "no implied-vol RMSE" in fit.warnings[0] and "vols[0][3]" in fit.warnings[0]
