"""TARGET business days, date rolling, annual schedules and day counts, in pure Python.

The rules reproduce QuantLib (checked against QuantLib 1.44, which is the test oracle):

* ``is_target_business_day`` is ``ql.TARGET().isBusinessDay``: weekends, 1 January, Good Friday and
  Easter Monday (from 2000), 1 May (from 2000), 25 December, 26 December (from 2000) and 31 December
  in 1998, 1999 and 2001 are holidays (QuantLib ``ql/time/calendars/target.cpp``).  Easter Sunday is
  computed with the Gregorian Anonymous (Meeus/Jones/Butcher) algorithm.
* ``adjust`` follows ``ql.Calendar.adjust`` for the Following, ModifiedFollowing, Preceding and
  Unadjusted business-day conventions.
* ``add_months`` is ``Date + Period(n, Months)``: the day of month is clipped to the target month's
  length, without end-of-month rolling.
* ``annual_schedule`` is ``ql.Schedule(start, start + Period(years, Years), Period(Annual), TARGET(),
  conv, conv, DateGeneration.Forward, False)`` without its first date: the i-th date is
  ``adjust(start + 12*i months)``, each computed from the start date (not iteratively).
* ``year_fraction`` is ``ql.Actual360`` / ``ql.Actual365Fixed``.
"""

from __future__ import annotations

from datetime import date, timedelta

__all__ = [
    "add_months",
    "adjust",
    "annual_schedule",
    "easter_sunday",
    "is_target_business_day",
    "year_fraction",
]

_CONVENTIONS = ("Following", "ModifiedFollowing", "Preceding", "Unadjusted")
_ONE_DAY = timedelta(days=1)


def easter_sunday(year: int) -> date:
    """Gregorian Easter Sunday (Anonymous / Meeus-Jones-Butcher algorithm)."""
    a = year % 19
    b, c = divmod(year, 100)
    d, e = divmod(b, 4)
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    el = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * el) // 451
    month, day = divmod(h + el - 7 * m + 114, 31)
    return date(year, month, day + 1)


def is_target_business_day(d: date) -> bool:
    """True when ``d`` is a business day of the TARGET calendar (as ``ql.TARGET().isBusinessDay``)."""
    if d.weekday() >= 5:
        return False
    y, m, day = d.year, d.month, d.day
    if m == 1 and day == 1:
        return False
    if m == 12 and (day == 25 or (day == 26 and y >= 2000) or (day == 31 and y in (1998, 1999, 2001))):
        return False
    if y >= 2000:
        if m == 5 and day == 1:
            return False
        if m in (3, 4):
            easter = easter_sunday(y)
            if d in (easter - timedelta(days=2), easter + _ONE_DAY):
                return False
    return True


def adjust(d: date, convention: str = "ModifiedFollowing") -> date:
    """Roll ``d`` onto a TARGET business day with the given business-day convention."""
    if convention not in _CONVENTIONS:
        raise ValueError(f"unsupported business-day convention {convention!r}; expected one of {_CONVENTIONS}")
    if convention == "Unadjusted":
        return d
    if convention == "Preceding":
        return _preceding(d)
    out = d
    while not is_target_business_day(out):
        out += _ONE_DAY
    if convention == "ModifiedFollowing" and out.month != d.month:
        return _preceding(d)
    return out


def _preceding(d: date) -> date:
    while not is_target_business_day(d):
        d -= _ONE_DAY
    return d


_MONTH_LENGTHS = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def _month_length(year: int, month: int) -> int:
    if month == 2 and year % 4 == 0 and (year % 100 != 0 or year % 400 == 0):
        return 29
    return _MONTH_LENGTHS[month - 1]


def add_months(d: date, months: int) -> date:
    """``d`` plus ``months`` calendar months, clipping the day to the month's end (QuantLib style)."""
    year, month0 = divmod(d.year * 12 + (d.month - 1) + months, 12)
    month = month0 + 1
    return date(year, month, min(d.day, _month_length(year, month)))


def annual_schedule(start: date, years: int, convention: str = "ModifiedFollowing") -> list[date]:
    """The ``years`` annual observation dates after ``start``: ``adjust(start + 12*i months)``, i = 1..years.

    Equal to the dates of the QuantLib forward annual TARGET schedule from ``start`` to
    ``start + years`` with ``convention`` for both regular and termination dates, start date excluded.
    """
    if years < 1:
        raise ValueError(f"years must be >= 1, got {years}")
    if convention not in _CONVENTIONS:
        raise ValueError(f"unsupported business-day convention {convention!r}; expected one of {_CONVENTIONS}")
    return [adjust(add_months(start, 12 * i), convention) for i in range(1, years + 1)]


def year_fraction(start: date, end: date, day_count: str = "ACT/360") -> float:
    """Year fraction from ``start`` to ``end`` (negative when ``end < start``): ACT/360 or ACT/365F."""
    key = day_count.strip().upper()
    days = (end - start).days
    if key == "ACT/360":
        return days / 360.0
    if key in ("ACT/365F", "ACT/365FIXED"):
        return days / 365.0
    raise ValueError(f"unsupported day count {day_count!r}; expected 'ACT/360' or 'ACT/365F'")
