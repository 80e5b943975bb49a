"""Exact sums: the portfolio's per-block totals must not depend on how positions were split into shards."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np

from batchpipe.pricing.exactsum import ExactSums


def wide_values(rows: int, width: int, seed: int = 7) -> np.ndarray:
    """Values over 600 binades with both signs, subnormals, zeros and cancelling giants."""
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(rows, width)) * 10.0 ** rng.integers(-300, 300, size=(rows, width))
    a[0, 0], a[1, 0], a[2, 0] = 5e-324, 1e308, -1e308
    a[3, :] = 0.0
    return a


def test_equals_fsum_of_every_column_whatever_the_split_and_order() -> None:
    a = wide_values(3000, 5)
    expected = [math.fsum(a[:, j]) for j in range(5)]
    whole = ExactSums(5)
    whole.add_rows(a)
    assert whole.values() == expected
    rng = np.random.default_rng(1)
    for _ in range(3):
        order = rng.permutation(len(a))
        cuts = np.sort(rng.choice(np.arange(1, len(a)), size=20, replace=False))
        pieces = ExactSums(5)
        for piece in np.split(a[order], cuts):
            part = ExactSums(5)
            part.add_rows(piece)
            # partial sums travel as JSON between processes
            pieces.add_parts(json.loads(json.dumps(part.parts())))
        assert pieces.values() == expected


def test_naive_sums_would_differ() -> None:
    """The property the class exists for: rounded partial sums depend on the split."""
    a = np.array([[1e16], [1.0], [-1e16], [1.0]])
    assert float(a[:2].sum() + a[2:].sum()) != math.fsum(a[:, 0])
    s = ExactSums(1)
    s.add_rows(a[:2])
    s.add_rows(a[2:])
    assert s.values() == [2.0]


def test_parts_add_up_exactly_and_scalars_agree_with_rows() -> None:
    a = wide_values(200, 3, seed=3)
    rows, scalars = ExactSums(3), ExactSums(3)
    rows.add_rows(a)
    for r in a:
        for j, x in enumerate(r):
            scalars.add(j, float(x))
    assert rows.values() == scalars.values()
    for column, parts in enumerate(rows.parts()):
        assert math.fsum(parts) == rows.values()[column]
        assert all(abs(later) < abs(earlier) for earlier, later in itertools.pairwise(parts))


def test_non_finite_values_poison_only_their_column() -> None:
    s = ExactSums(2)
    s.add_rows(np.array([[1.0, np.inf], [2.0, 1.0]]))
    values = s.values()
    assert values[0] == 3.0 and math.isnan(values[1])
    assert s.parts()[0] == [3.0]
