"""batchpipe.pricing.calendar against QuantLib as the oracle."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
import QuantLib as ql

from batchpipe.pricing.calendar import (
    add_months,
    adjust,
    annual_schedule,
    easter_sunday,
    is_target_business_day,
    year_fraction,
)

TARGET = ql.TARGET()
CONVENTIONS = {
    "Following": ql.Following,
    "ModifiedFollowing": ql.ModifiedFollowing,
    "Preceding": ql.Preceding,
    "Unadjusted": ql.Unadjusted,
}


def to_ql(d: date) -> ql.Date:
    return ql.Date(d.day, d.month, d.year)


def from_ql(d: ql.Date) -> date:
    return date(d.year(), d.month(), d.dayOfMonth())


def days(first: date, last: date, step: int = 1) -> list[date]:
    return [first + timedelta(days=i) for i in range(0, (last - first).days + 1, step)]


def ql_annual_schedule(start: date, years: int, convention: str) -> list[date]:
    conv = CONVENTIONS[convention]
    qs = to_ql(start)
    schedule = ql.Schedule(
        qs,
        qs + ql.Period(years, ql.Years),
        ql.Period(ql.Annual),
        TARGET,
        conv,
        conv,
        ql.DateGeneration.Forward,
        False,
    )
    return [from_ql(d) for d in list(schedule)[1:]]


# Start dates that stress the schedule: leap days, weekends and holidays, year ends, Good Fridays and
# Easter Mondays, and month ends where ModifiedFollowing rolls back within the month.
EDGE_STARTS = [
    date(2016, 2, 29),
    date(2020, 2, 29),
    date(2024, 2, 29),
    date(2028, 2, 29),
    date(2019, 2, 28),
    date(2023, 2, 28),
    date(2021, 1, 1),
    date(2022, 1, 1),  # Saturday and a holiday
    date(2022, 1, 2),  # Sunday
    date(2020, 12, 25),
    date(2021, 12, 26),  # Sunday, holiday
    date(2019, 12, 31),
    date(2021, 12, 31),  # Friday; 31 Dec 2022 is Saturday -> ModifiedFollowing rolls back to 30 Dec
    date(2022, 12, 31),
    date(2001, 12, 31),  # holiday in 2001 only
    date(1999, 12, 31),
    date(2020, 4, 10),  # Good Friday
    date(2020, 4, 13),  # Easter Monday
    date(2024, 3, 29),  # Good Friday
    date(2024, 4, 1),  # Easter Monday
    date(2021, 5, 1),  # Labour Day, Saturday
    date(2022, 4, 30),  # Saturday at month end -> ModifiedFollowing goes back to 29 Apr
    date(2021, 10, 31),  # Sunday at month end
    date(2020, 5, 31),  # Sunday at month end
    date(2025, 8, 30),
    date(2025, 8, 31),
]
SCHEDULE_STARTS = days(date(2015, 1, 1), date(2030, 12, 31), step=7) + EDGE_STARTS


def test_easter_known_dates() -> None:
    assert easter_sunday(2000) == date(2000, 4, 23)
    assert easter_sunday(2024) == date(2024, 3, 31)
    assert easter_sunday(2025) == date(2025, 4, 20)
    assert easter_sunday(2038) == date(2038, 4, 25)  # latest possible
    assert easter_sunday(2285) == date(2285, 3, 22)  # earliest possible


def test_business_days_match_quantlib_target_1995_2080() -> None:
    mismatches = [
        d
        for d in days(date(1995, 1, 1), date(2080, 12, 31))
        if is_target_business_day(d) != TARGET.isBusinessDay(to_ql(d))
    ]
    assert mismatches == []


@pytest.mark.parametrize(
    ("d", "expected"),
    [
        (date(1999, 4, 2), True),  # Good Friday before 2000 is a business day
        (date(2000, 4, 21), False),  # Good Friday 2000
        (date(2000, 4, 24), False),  # Easter Monday 2000
        (date(1999, 5, 3), True),
        (date(2001, 5, 1), False),
        (date(1998, 12, 31), False),
        (date(2001, 12, 31), False),
        (date(2002, 12, 31), True),
        (date(1999, 12, 27), True),  # 26 Dec 1999 is a Sunday; no substitute day
        (date(2024, 12, 26), False),
        (date(2025, 1, 1), False),
        (date(2025, 1, 4), False),  # Saturday
        (date(2025, 1, 6), True),
    ],
)
def test_business_day_spot_checks(d: date, expected: bool) -> None:
    assert is_target_business_day(d) is expected
    assert TARGET.isBusinessDay(to_ql(d)) is expected


def test_adjust_matches_quantlib() -> None:
    for d in days(date(2018, 1, 1), date(2027, 12, 31)):
        for name, conv in CONVENTIONS.items():
            assert adjust(d, name) == from_ql(TARGET.adjust(to_ql(d), conv)), (d, name)


def test_adjust_examples() -> None:
    sat = date(2022, 4, 30)
    assert adjust(sat) == date(2022, 4, 29)  # ModifiedFollowing rolls back within the month
    assert adjust(sat, "Following") == date(2022, 5, 2)
    assert adjust(sat, "Preceding") == date(2022, 4, 29)
    assert adjust(sat, "Unadjusted") == sat
    assert adjust(date(2024, 3, 29), "Following") == date(2024, 4, 2)  # Good Friday + Easter Monday


def test_add_months_matches_quantlib() -> None:
    for d in [*days(date(2015, 1, 1), date(2030, 12, 31), step=3), date(2016, 2, 29), date(2024, 1, 31)]:
        qd = to_ql(d)
        for n in (-25, -12, -1, 0, 1, 2, 6, 11, 12, 13, 24, 48, 120):
            assert add_months(d, n) == from_ql(qd + ql.Period(n, ql.Months)), (d, n)


def test_add_months_clips_without_rolling() -> None:
    assert add_months(date(2023, 1, 31), 1) == date(2023, 2, 28)
    assert add_months(date(2024, 1, 31), 1) == date(2024, 2, 29)
    assert add_months(date(2024, 2, 29), 1) == date(2024, 3, 29)  # no end-of-month rolling
    assert add_months(date(2024, 2, 29), 12) == date(2025, 2, 28)
    assert add_months(date(2024, 2, 29), 48) == date(2028, 2, 29)
    assert add_months(date(2024, 3, 31), -1) == date(2024, 2, 29)
    assert add_months(date(2024, 1, 15), -13) == date(2022, 12, 15)


@pytest.mark.parametrize("convention", ["ModifiedFollowing", "Following"])
def test_annual_schedule_matches_quantlib(convention: str) -> None:
    for start in SCHEDULE_STARTS:
        for years in range(1, 11):
            got = annual_schedule(start, years, convention)
            assert got == ql_annual_schedule(start, years, convention), (start, years)
            assert len(got) == years


@pytest.mark.parametrize("convention", ["Preceding", "Unadjusted"])
def test_annual_schedule_other_conventions_match_quantlib(convention: str) -> None:
    for start in EDGE_STARTS:
        for years in (1, 5, 10):
            assert annual_schedule(start, years, convention) == ql_annual_schedule(start, years, convention)


def test_annual_schedule_examples() -> None:
    # Each date is start + 12*i months, not iterated: a leap-day start returns to 29 Feb in leap years.
    assert annual_schedule(date(2024, 2, 29), 4, "Unadjusted") == [
        date(2025, 2, 28),
        date(2026, 2, 28),
        date(2027, 2, 28),
        date(2028, 2, 29),
    ]
    # 31 Dec 2022 is a Saturday: ModifiedFollowing rolls back, Following crosses into January.
    assert annual_schedule(date(2021, 12, 31), 1) == [date(2022, 12, 30)]
    assert annual_schedule(date(2021, 12, 31), 1, "Following") == [date(2023, 1, 2)]
    assert annual_schedule(date(2021, 12, 31), 1, "Preceding") == [date(2022, 12, 30)]


def test_year_fraction_matches_quantlib() -> None:
    a360, a365 = ql.Actual360(), ql.Actual365Fixed()
    start = date(2024, 2, 29)
    for offset in (-400, -1, 0, 1, 30, 181, 365, 366, 3653):
        end = start + timedelta(days=offset)
        qs, qe = to_ql(start), to_ql(end)
        assert year_fraction(start, end) == pytest.approx(a360.yearFraction(qs, qe), abs=1e-15)
        assert year_fraction(start, end, "ACT/360") == pytest.approx(a360.yearFraction(qs, qe), abs=1e-15)
        for spelling in ("ACT/365F", "ACT/365FIXED", "act/365fixed", "Act/365F"):
            assert year_fraction(start, end, spelling) == pytest.approx(a365.yearFraction(qs, qe), abs=1e-15)
    assert year_fraction(date(2025, 1, 1), date(2024, 1, 1)) == pytest.approx(-366 / 360)


def test_unknown_convention_raises() -> None:
    with pytest.raises(ValueError, match="ModifiedPreceding"):
        adjust(date(2024, 1, 6), "ModifiedPreceding")
    with pytest.raises(ValueError, match="following"):
        adjust(date(2024, 1, 6), "following")
    with pytest.raises(ValueError, match="Nearest"):
        annual_schedule(date(2024, 1, 6), 3, "Nearest")


@pytest.mark.parametrize("years", [0, -1])
def test_annual_schedule_rejects_non_positive_years(years: int) -> None:
    with pytest.raises(ValueError, match="years"):
        annual_schedule(date(2024, 1, 2), years)


@pytest.mark.parametrize("day_count", ["30/360", "ACT/ACT", "ACT/365", ""])
def test_unknown_day_count_raises(day_count: str) -> None:
    with pytest.raises(ValueError, match="day count"):
        year_fraction(date(2024, 1, 2), date(2025, 1, 2), day_count)
