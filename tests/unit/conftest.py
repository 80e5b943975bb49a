"""Fixtures the unit tests share."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import QuantLib as ql

QL_VALUATION = ql.Date(20, 11, 2019)  # the workshop's valuation date, the portfolio file's default


@pytest.fixture
def ql_valuation_date() -> Iterator[None]:
    """QuantLib's evaluation date set to the workshop's valuation date for one test, then restored."""
    settings = ql.Settings.instance()
    saved = settings.evaluationDate
    settings.evaluationDate = QL_VALUATION
    yield
    settings.evaluationDate = saved
