"""Autocallable memory-coupon note: terms and the vectorised path payoff.

With x = S / strike at each observation date: before the last date, x >= autocall pays
notional * (1 + coupon * (1 + unpaid * memory)) and the note ends; else x >= couponBarrier pays
notional * coupon * (1 + unpaid * memory) and resets unpaid; else unpaid += 1. At the last date: x >= couponBarrier
pays notional * (1 + coupon * (1 + unpaid * memory)); else x >= protectionBarrier pays notional; else
notional * min(1, x). Every cash flow is discounted at its own date.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class NoteTerms:
    """Terms of several notes observed on the same dates, one entry per note."""

    notional: FloatArray
    strike: FloatArray
    autocall: FloatArray
    coupon: FloatArray
    coupon_barrier: FloatArray
    protection_barrier: FloatArray
    memory: FloatArray  # 1.0 with memory, 0.0 without


def discounted_payoffs(spots: FloatArray, terms: NoteTerms, discount: FloatArray) -> FloatArray:
    """Present value of each note on each path: shape (paths, notes).

    spots: (paths, dates) spot at the notes' observation dates; discount: (dates,) discount factors.
    The state per path and note is whether the note is alive and the coupon due if paid now,
    coupon * (1 + unpaid * memory); a date pays that coupon when x >= min(autocall, couponBarrier).
    """
    n_paths, n_dates = spots.shape
    if discount.shape != (n_dates,):
        raise ValueError(f"{n_dates} observation dates but {discount.shape} discount factors")
    n_notes = terms.notional.size
    pay_level = np.minimum(terms.autocall, terms.coupon_barrier)
    memory_step = terms.coupon * terms.memory
    pv = np.zeros((n_paths, n_notes))
    alive = np.ones((n_paths, n_notes), dtype=bool)
    due = np.repeat(terms.coupon[None, :], n_paths, axis=0)
    for j in range(n_dates - 1):
        x = spots[:, j, None] / terms.strike
        pays = x >= pay_level
        pays &= alive
        called = x >= terms.autocall
        called &= alive
        cash = due * pays
        cash += called
        cash *= discount[j]
        pv += cash
        missed = alive & ~pays
        due = np.where(pays, terms.coupon, due + missed * memory_step)
        alive &= ~called
    x = spots[:, -1, None] / terms.strike
    final = np.where(
        x >= terms.coupon_barrier,
        1.0 + due,
        np.where(x >= terms.protection_barrier, 1.0, np.minimum(1.0, x)),
    )
    final *= alive
    final *= discount[-1]
    pv += final
    pv *= terms.notional
    return pv
