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
    """
    n_paths, n_dates = spots.shape
    if discount.shape != (n_dates,):
        raise ValueError(f"{n_dates} observation dates but {discount.shape} discount factors")
    n_notes = terms.notional.size
    pv = np.zeros((n_paths, n_notes))
    alive = np.ones((n_paths, n_notes), dtype=bool)
    unpaid = np.zeros((n_paths, n_notes))
    inv_strike = 1.0 / terms.strike
    for j in range(n_dates - 1):
        x = spots[:, j, None] * inv_strike
        coupon_due = terms.coupon * (1.0 + unpaid * terms.memory)
        called = alive & (x >= terms.autocall)
        paid = alive & ~called & (x >= terms.coupon_barrier)
        pv += discount[j] * terms.notional * (called * (1.0 + coupon_due) + paid * coupon_due)
        unpaid = np.where(paid, 0.0, unpaid + (alive & ~called & ~paid))
        alive &= ~called
    x = spots[:, -1, None] * inv_strike
    coupon_due = terms.coupon * (1.0 + unpaid * terms.memory)
    final = np.where(
        x >= terms.coupon_barrier,
        1.0 + coupon_due,
        np.where(x >= terms.protection_barrier, 1.0, np.minimum(1.0, x)),
    )
    pv += alive * (discount[-1] * terms.notional * final)
    return pv
