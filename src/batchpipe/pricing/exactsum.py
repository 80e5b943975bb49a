"""Exact sums of floats that can be added in pieces, in any order, and stored between processes.

A portfolio's total per sampling block is a sum over every position. Rounded partial sums would make the total
depend on how positions were split into shards; these sums are exact (Python integers in units of 2**-1127, below
the smallest subnormal's last bit), so the correctly rounded result is the same however the rows arrived, and it
equals `math.fsum` over all of them. A partial sum travels as a short list of floats whose exact sum it is.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np
from numpy.typing import ArrayLike

_EXP = 1074  # frexp's smallest exponent is -1073; m * 2**53 is an integer for every finite double
_SCALE = 2**53
_ONE = 1 << (_EXP + 53)  # 1.0 in our units


def _exact(x: float) -> int:
    m, e = math.frexp(x)
    return int(m * _SCALE) << (e + _EXP)


class ExactSums:
    """`width` exact running sums (one per column); non-finite input makes a column NaN."""

    def __init__(self, width: int) -> None:
        self.width = width
        self._acc = [0] * width
        self._bad = [False] * width

    def add(self, column: int, value: float) -> None:
        if math.isfinite(value):
            self._acc[column] += _exact(value)
        else:
            self._bad[column] = True

    def add_rows(self, rows: ArrayLike) -> None:
        """Add every row of an (n, width) array, column by column, exactly."""
        a = np.asarray(rows, dtype=np.float64).reshape(-1, self.width)
        if a.size == 0:
            return
        finite = np.isfinite(a)
        for j in np.flatnonzero(~finite.all(axis=0)):
            self._bad[int(j)] = True
        m, e = np.frexp(np.where(finite, a, 0.0))
        mant = (m * _SCALE).astype(np.int64)  # exact: |mant| < 2**53
        # group equal (column, exponent) pairs and sum their mantissas in two halves that cannot overflow
        key = (np.arange(self.width, dtype=np.int64) * 4096 + (e.astype(np.int64) + _EXP)).ravel()
        order = np.argsort(key, kind="stable")
        key, mant = key[order], mant.ravel()[order]
        starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
        hi = mant >> 26
        lo = mant - (hi << 26)
        hi_sums = np.add.reduceat(hi, starts)
        lo_sums = np.add.reduceat(lo, starts)
        for k, h, low in zip(key[starts].tolist(), hi_sums.tolist(), lo_sums.tolist(), strict=True):
            column, shift = divmod(k, 4096)
            self._acc[column] += ((h << 26) + low) << shift

    def add_parts(self, parts: Sequence[Iterable[float]]) -> None:
        """Add sums stored by `parts()` (one list of floats per column)."""
        if len(parts) != self.width:
            raise ValueError(f"expected {self.width} partial sums, got {len(parts)}")
        for j, components in enumerate(parts):
            for x in components:
                self.add(j, float(x))

    def values(self) -> list[float]:
        """Each column's exact sum, correctly rounded (NaN where a non-finite value was added)."""
        return [math.nan if bad else acc / _ONE for acc, bad in zip(self._acc, self._bad, strict=True)]

    def parts(self) -> list[list[float]]:
        """Each column's exact sum as a few floats that add up to it exactly (JSON keeps floats exactly)."""
        out = []
        for acc, bad in zip(self._acc, self._bad, strict=True):
            if bad:
                out.append([math.nan])
                continue
            components: list[float] = []
            while acc:
                x = acc / _ONE
                components.append(x)
                acc -= _exact(x)
            out.append(components)
        return out
