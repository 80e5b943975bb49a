"""The autocallable payoff (batchpipe.pricing.autocallable) and its closed forms through the whole pipeline.

References:
* explicit paths: cash flows worked out by hand from the payoff stated in the module docstring of
  batchpipe.pricing.autocallable; tolerance 1e-12 relative (pure arithmetic);
* unreachable autocall and coupon barriers with protection 0: a zero-coupon bond, PV = notional e^{-r t_last}
  with t_last the Actual/360 year fraction (QuantLib ``ql.Actual360``; the default schedule from
  ``ql.Schedule(..., ql.TARGET(), ql.ModifiedFollowing, ...)``); tolerance 1e-9 relative, standard error
  exactly 0;
* one observation date: the payoff is a sum of a bond, digitals and a put-like piece, valued with
  ``ql.AnalyticHestonEngine`` (call) and ``ql.HestonRNDCalculator`` (P(S_T > B)); tolerance 4 pipeline
  standard errors.
"""

from __future__ import annotations

import json
import math
from dataclasses import fields
from datetime import date
from typing import Any

import numpy as np
import pytest
import QuantLib as ql

from batchpipe.pipelines.montecarlo import price_shard
from batchpipe.pipelines.portfolio import parse_portfolio
from batchpipe.pricing.autocallable import NoteTerms, discounted_payoffs
from tests.montecarlo_memory import collate, preprocess, shard_slice

# --- explicit paths -----------------------------------------------------------------------------------------

N, K = 1000.0, 100.0
DISCOUNT = np.array([0.99, 0.98, 0.97, 0.96])


def terms(
    autocall: float = 1.0,
    coupon: float = 0.05,
    coupon_barrier: float = 0.8,
    protection: float = 0.6,
    memory: bool = True,
    notional: float = N,
    strike: float = K,
) -> NoteTerms:
    def one(x: float) -> np.ndarray:
        return np.array([x], dtype=float)

    return NoteTerms(
        notional=one(notional),
        strike=one(strike),
        autocall=one(autocall),
        coupon=one(coupon),
        coupon_barrier=one(coupon_barrier),
        protection_barrier=one(protection),
        memory=one(1.0 if memory else 0.0),
    )


def pv_of(path: list[float], note: NoteTerms) -> float:
    out = discounted_payoffs(np.array([path], dtype=float), note, DISCOUNT)
    assert out.shape == (1, 1)
    return float(out[0, 0])


# Each case: spot path (strike 100, autocall 100%, coupon 5%, coupon barrier 80%, protection 60%) and the PV
# by hand.
HAND_CASES: dict[str, tuple[list[float], dict[str, Any], float]] = {
    # called at the first date: 1000 * 1.05 * 0.99
    "autocall-at-date-1": ([105.0, 50.0, 50.0, 50.0], {}, 1000 * 1.05 * 0.99),
    # exactly at the autocall level counts (x >= autocall)
    "autocall-at-the-barrier": ([100.0, 50.0, 50.0, 50.0], {}, 1000 * 1.05 * 0.99),
    # coupon at date 1 (90 >= 80), called at date 2: 1000 * 0.05 * 0.99 + 1000 * 1.05 * 0.98
    "coupon-then-autocall": ([90.0, 101.0, 50.0, 50.0], {}, 50 * 0.99 + 1050 * 0.98),
    # exactly at the coupon barrier pays the coupon
    "coupon-at-the-barrier": ([80.0, 101.0, 50.0, 50.0], {}, 50 * 0.99 + 1050 * 0.98),
    # two missed coupons remembered, paid with the third at the call on date 3: 1000 * (1 + 3 * 0.05) * 0.97
    "memory-paid-at-autocall": ([70.0, 75.0, 110.0, 50.0], {}, 1150 * 0.97),
    # the same path without memory: only the current coupon
    "no-memory-at-autocall": ([70.0, 75.0, 110.0, 50.0], {"memory": False}, 1050 * 0.97),
    # miss, coupon with one remembered (2 * 50 at date 2), miss, final coupon with one remembered
    "final-coupon-with-memory": ([70.0, 85.0, 50.0, 90.0], {}, 100 * 0.98 + 1100 * 0.96),
    "final-coupon-without-memory": ([70.0, 85.0, 50.0, 90.0], {"memory": False}, 50 * 0.98 + 1050 * 0.96),
    # three misses, then above the autocall level at the last date: only the coupon barrier matters there,
    # with all three misses remembered: 1000 * (1 + 4 * 0.05) * 0.96
    "last-date-above-autocall": ([70.0, 70.0, 70.0, 120.0], {}, 1200 * 0.96),
    # below the coupon barrier at the end but at or above protection: notional back
    "protection-held": ([70.0, 70.0, 70.0, 65.0], {}, 1000 * 0.96),
    "protection-at-the-barrier": ([70.0, 70.0, 70.0, 60.0], {}, 1000 * 0.96),
    # below protection: notional * x
    "loss-below-protection": ([70.0, 70.0, 70.0, 50.0], {}, 500 * 0.96),
    "loss-with-earlier-coupons": ([90.0, 90.0, 70.0, 30.0], {}, 50 * 0.99 + 50 * 0.98 + 300 * 0.96),
    # a lower autocall level (90%) and a 150-strike note: x = S / 150
    "strike-scales-levels": ([140.0, 50.0, 50.0, 50.0], {"autocall": 0.9, "strike": 150.0}, 1050 * 0.99),
}


@pytest.mark.parametrize("case", HAND_CASES.values(), ids=HAND_CASES.keys())
def test_payoff_on_explicit_paths(case: tuple[list[float], dict[str, Any], float]) -> None:
    path, overrides, expected = case
    assert pv_of(path, terms(**overrides)) == pytest.approx(expected, rel=1e-12)


def test_several_notes_and_paths_at_once() -> None:
    """Notes are columns, paths rows: the vectorised result equals the one-note-one-path results."""
    paths = np.array([case[0] for case in HAND_CASES.values()])
    notes = [
        {},
        {"memory": False},
        {"autocall": 1.1, "coupon": 0.08, "coupon_barrier": 0.7, "protection": 0.5, "notional": 250.0},
        {"strike": 80.0, "autocall": 0.95},
    ]
    parts = [terms(**n) for n in notes]
    columns = {f.name: np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(NoteTerms)}
    together = NoteTerms(**columns)
    out = discounted_payoffs(paths, together, DISCOUNT)
    assert out.shape == (len(paths), len(notes))
    for i, path in enumerate(paths):
        for j, note in enumerate(parts):
            assert out[i, j] == pytest.approx(pv_of(list(path), note), rel=1e-15)


def test_discount_factors_must_match_dates() -> None:
    with pytest.raises(ValueError, match="discount"):
        discounted_payoffs(np.full((2, 4), 100.0), terms(), DISCOUNT[:3])


# --- through the pipeline -----------------------------------------------------------------------------------

VALUATION = date(2019, 11, 20)
QL_VALUATION = ql.Date(20, 11, 2019)
WORKSHOP_HESTON = {"v0": 0.01216, "kappa": 1.445, "theta": 0.0326, "sigma": 0.354, "rho": -0.599}


pytestmark = pytest.mark.usefixtures("ql_valuation_date")


def run_pipeline(doc: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    plan, positions = preprocess(parse_portfolio(json.dumps(doc), "test.json"), "test-job", **kwargs)
    shards = range(plan.shards)
    return collate(plan, positions, [price_shard(plan, s, shard_slice(plan, positions, s)) for s in shards]).stored()


def ql_date(iso: str) -> ql.Date:
    d = date.fromisoformat(iso)
    return ql.Date(d.day, d.month, d.year)


def test_unreachable_barriers_without_protection_are_a_zero_coupon_bond() -> None:
    """Autocall and coupon barriers at 1e9 never trigger and protection 0 always holds: every path pays the
    notional at the last date, so PV = notional * exp(-r t_last) to 1e-9 relative with a standard error of
    exactly 0."""
    rate = 0.03
    explicit = ["2020-05-20", "2021-11-22", "2022-11-21"]
    unreachable = {"barrier": 1e9, "couponBarrier": 1e9, "protectionBarrier": 0.0, "coupon": 0.07}
    doc = {
        "name": "zcb",
        "market": {"spot": 3550.0, "rate": rate, "dividendYield": 0.02, "heston": WORKSHOP_HESTON},
        "simulation": {"paths": 2_000, "seed": 5},
        "positions": [
            {
                "id": "explicit",
                "notional": 1e6,
                "strike": 3550.0,
                "observationDates": explicit,
                **unreachable,
            },
            {"id": "schedule", "notional": 2.5e6, "strike": 3000.0, "maturityYears": 5, **unreachable},
            {"id": "memoryless", "notional": 7e5, "strike": 4000.0, "memory": False, **unreachable},
        ],
    }
    results = run_pipeline(doc)
    assert results["status"] == "SUCCEEDED"
    day_count = ql.Actual360()

    def last_date_of_schedule(years: int) -> ql.Date:
        # the product's default annual TARGET schedule (tested against QuantLib in test_calendar.py)
        end = QL_VALUATION + ql.Period(years, ql.Years)
        schedule = ql.Schedule(
            QL_VALUATION,
            end,
            ql.Period(ql.Annual),
            ql.TARGET(),
            ql.ModifiedFollowing,
            ql.ModifiedFollowing,
            ql.DateGeneration.Forward,
            False,
        )
        return schedule[len(schedule) - 1]

    last = {
        "explicit": ql_date(explicit[-1]),
        "schedule": last_date_of_schedule(5),
        "memoryless": last_date_of_schedule(7),  # the product default, maturityYears = 7
    }
    for pos in results["positions"]:
        t = day_count.yearFraction(QL_VALUATION, last[pos["id"]])
        assert pos["pv"] == pytest.approx(pos["notional"] * math.exp(-rate * t), rel=1e-9), pos["id"]
        assert pos["stderr"] == 0.0, pos["id"]
    # The portfolio's batch-means standard error is np.std of 64 identical block totals, which rounding leaves
    # at ~1e-17 of the total rather than exactly 0 (np.mean of equal floats need not return that float).
    assert results["totalStderr"] == 0.0


# one observation date: 2020-11-20, Actual/360 t = 366/360
ONE_DATE = "2020-11-20"
SPOT, RATE, DIVIDEND = 3550.0, 0.02, 0.01
ONE_DATE_NOTES = [
    {
        "notional": 1e6,
        "strike": 3550.0,
        "barrier": 1.0,
        "coupon": 0.08,
        "couponBarrier": 1.0,
        "protectionBarrier": 0.7,
    },
    {
        "notional": 2e6,
        "strike": 3350.0,
        "barrier": 1.05,
        "coupon": 0.05,
        "couponBarrier": 0.9,
        "protectionBarrier": 0.6,
    },
    {
        "notional": 5e5,
        "strike": 3800.0,
        "barrier": 0.9,
        "coupon": 0.1,
        "couponBarrier": 1.1,
        "protectionBarrier": 0.8,
    },
]


def one_date_reference(note: dict[str, Any]) -> float:
    """PV of a one-date note from QuantLib's Heston call price and distribution.

    With x = S_T / K, cb = couponBarrier * K, pb = protectionBarrier * K and N the notional, the payoff is
    N (1 + c) if S_T >= cb, N if pb <= S_T < cb, N S_T / K if S_T < pb (no earlier date: no call, nothing
    remembered). So with P(B) = P(S_T > B) and C(B) the discounted call,
        PV = N e^{-rT} [(1 + c) P(cb) + P(pb) - P(cb)] + (N / K) e^{-rT} E[S_T 1{S_T < pb}],
    and since e^{-rT} E[S_T 1{S_T > B}] = C(B) + B e^{-rT} P(B) and e^{-rT} E[S_T] = S0 e^{-qT},
        e^{-rT} E[S_T 1{S_T < pb}] = S0 e^{-qT} - C(pb) - pb e^{-rT} P(pb).
    """
    dc = ql.Actual360()
    expiry = ql_date(ONE_DATE)
    t = dc.yearFraction(QL_VALUATION, expiry)
    h = WORKSHOP_HESTON
    process = ql.HestonProcess(
        ql.YieldTermStructureHandle(ql.FlatForward(QL_VALUATION, RATE, dc)),
        ql.YieldTermStructureHandle(ql.FlatForward(QL_VALUATION, DIVIDEND, dc)),
        ql.QuoteHandle(ql.SimpleQuote(SPOT)),
        h["v0"],
        h["kappa"],
        h["theta"],
        h["sigma"],
        h["rho"],
    )
    engine = ql.AnalyticHestonEngine(ql.HestonModel(process), 1e-12, 1_000_000)
    density = ql.HestonRNDCalculator(process, 1e-9, 100_000)

    def prob_above(b: float) -> float:
        return 1.0 - density.cdf(math.log(b), t)

    def call(b: float) -> float:
        option = ql.VanillaOption(ql.PlainVanillaPayoff(ql.Option.Call, b), ql.EuropeanExercise(expiry))
        option.setPricingEngine(engine)
        return float(option.NPV())

    n, k, c = note["notional"], note["strike"], note["coupon"]
    cb, pb = note["couponBarrier"] * k, note["protectionBarrier"] * k
    df = math.exp(-RATE * t)
    below = SPOT * math.exp(-DIVIDEND * t) - call(pb) - pb * df * prob_above(pb)
    return n * df * ((1.0 + c) * prob_above(cb) + prob_above(pb) - prob_above(cb)) + n / k * below


def test_one_observation_date_note_matches_closed_form() -> None:
    """Pipeline PV within 4 of its own standard errors of the closed form (200,000 paths, default 12 steps a
    year, the workshop parameters given in market.heston so nothing is calibrated). Observed |z| < 1 when
    written."""
    doc = {
        "name": "one-date",
        "market": {"spot": SPOT, "rate": RATE, "dividendYield": DIVIDEND, "heston": WORKSHOP_HESTON},
        "simulation": {"paths": 200_000, "seed": 2019},
        "positions": [{**n, "observationDates": [ONE_DATE]} for n in ONE_DATE_NOTES],
    }
    results = run_pipeline(doc)
    assert results["status"] == "SUCCEEDED"
    failures = []
    for note, pos in zip(ONE_DATE_NOTES, results["positions"], strict=True):
        ref = one_date_reference(note)
        assert pos["stderr"] > 0
        z = (pos["pv"] - ref) / pos["stderr"]
        if abs(z) >= 4.0:
            failures.append(f"K={note['strike']}: {pos['pv']:.2f} +- {pos['stderr']:.2f} vs {ref:.2f}")
    assert not failures, "\n".join(failures)
