"""Working days: statutory holidays, adjusted weekends, the Monday–Friday fallback."""

from __future__ import annotations

import logging
from datetime import date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from models import calendar as cal
from models.calendar import (
    add_working_days,
    covered_years,
    is_working_day,
    next_working_day,
    working_days_between,
)


def test_covered_years_include_the_campaign() -> None:
    years = covered_years()
    assert 2021 in years and 2022 in years
    assert years.start <= 2004


@pytest.mark.parametrize(
    ("day", "working"),
    [
        (date(2021, 9, 17), True),   # Friday
        (date(2021, 9, 18), True),   # Saturday, worked for 中秋节
        (date(2021, 9, 20), False),  # Monday, 中秋节 holiday
        (date(2021, 9, 26), True),   # Sunday, worked for 国庆节
        (date(2021, 10, 1), False),  # 国庆节
        (date(2021, 10, 7), False),  # Thursday, still 国庆节
        (date(2021, 10, 9), True),   # Saturday, worked for 国庆节
        (date(2021, 10, 10), False),  # an ordinary Sunday
        (date(2022, 1, 29), True),   # Saturday before 春节
        (date(2022, 2, 3), False),   # 春节
    ],
)
def test_holidays_and_adjusted_weekends(day: date, working: bool) -> None:
    assert is_working_day(day) is working


def test_datetime_is_reduced_to_its_date() -> None:
    assert is_working_day(datetime(2021, 10, 1, 9, 0)) is False
    assert next_working_day(datetime(2021, 9, 30, 23, 0)) == date(2021, 10, 8)


def test_next_working_day_skips_the_national_day_week() -> None:
    assert next_working_day(date(2021, 9, 30)) == date(2021, 10, 8)
    assert next_working_day(date(2021, 10, 8)) == date(2021, 10, 9)  # Saturday worked
    assert next_working_day(date(2021, 10, 9)) == date(2021, 10, 11)


def test_add_working_days_forward_backward_and_zero() -> None:
    assert add_working_days(date(2021, 9, 29), 2) == date(2021, 10, 8)
    assert add_working_days(date(2021, 10, 8), -2) == date(2021, 9, 29)
    assert add_working_days(date(2021, 10, 3), 0) == date(2021, 10, 3)  # a holiday stays
    assert add_working_days(date(2021, 10, 3), 1) == date(2021, 10, 8)
    assert add_working_days(date(2021, 10, 3), -1) == date(2021, 9, 30)


def test_working_days_between() -> None:
    # (9/30, 10/11]: 10/8 Fri, 10/9 Sat (worked), 10/11 Mon.
    assert working_days_between(date(2021, 9, 30), date(2021, 10, 11)) == 3
    assert working_days_between(date(2021, 10, 11), date(2021, 9, 30)) == -3
    assert working_days_between(date(2021, 12, 31), date(2021, 12, 31)) == 0
    # 2021 had 250 working days.
    assert working_days_between(date(2020, 12, 31), date(2021, 12, 31)) == 250


def test_fallback_is_monday_to_friday_and_warns_once_per_year(
    caplog: pytest.LogCaptureFixture,
) -> None:
    year = covered_years().stop + 3  # surely not covered
    cal._warned_years.discard(year)
    cal._is_working_day.cache_clear()
    cal._count.cache_clear()
    jan1 = date(year, 1, 1)
    with caplog.at_level(logging.WARNING, logger="models.calendar"):
        days = [jan1 + timedelta(days=i) for i in range(14)]
        flags = [is_working_day(d) for d in days]
        working_days_between(jan1, date(year, 3, 1))
        is_working_day(date(year, 6, 1))
    assert flags == [d.weekday() < 5 for d in days]  # no holiday data: 1 January is worked
    warnings = [r for r in caplog.records if str(year) in r.getMessage()]
    assert len(warnings) == 1
    assert "Monday–Friday" in warnings[0].getMessage()


def test_years_before_coverage_fall_back_too() -> None:
    year = covered_years().start - 1
    assert is_working_day(date(year, 1, 1)) is (date(year, 1, 1).weekday() < 5)


days = st.dates(min_value=date(2019, 1, 1), max_value=date(2027, 12, 31))


@given(days, st.integers(min_value=-40, max_value=40))
def test_add_then_count_round_trips(d: date, n: int) -> None:
    target = add_working_days(d, n)
    if n >= 0 or is_working_day(d):
        assert working_days_between(d, target) == n
    else:  # from a day off, counting back starts at the working day before it
        assert working_days_between(d, target) == n + 1
    if n != 0:
        assert is_working_day(target)
        assert (target > d) is (n > 0)


@given(days, days)
def test_count_is_antisymmetric_and_matches_a_plain_loop(a: date, b: date) -> None:
    assert working_days_between(a, b) == -working_days_between(b, a)
    lo, hi = sorted((a, b))
    plain = sum(is_working_day(lo + timedelta(days=i)) for i in range(1, (hi - lo).days + 1))
    assert abs(working_days_between(a, b)) == plain


@given(days)
def test_next_working_day_is_the_first_one_after(d: date) -> None:
    nxt = next_working_day(d)
    assert nxt > d and is_working_day(nxt)
    assert not any(is_working_day(d + timedelta(days=i)) for i in range(1, (nxt - d).days))
    assert working_days_between(d, nxt) == 1


def test_nearest_working_day_on_either_side() -> None:
    # 2025-10-01..08 is the 国庆/中秋 holiday; 2025-09-28 (Sunday) and 10-11 (Saturday) are worked.
    assert cal.last_working_day_on_or_before(date(2025, 10, 10)) == date(2025, 10, 10)
    assert cal.last_working_day_on_or_before(date(2025, 10, 5)) == date(2025, 9, 30)
    assert cal.first_working_day_on_or_after(date(2025, 10, 5)) == date(2025, 10, 9)
    assert cal.first_working_day_on_or_after(date(2025, 9, 28)) == date(2025, 9, 28)


@given(st.dates(min_value=date(2020, 1, 1), max_value=date(2026, 12, 25)))
def test_nearest_working_day_is_a_working_day_and_nearest(day: date) -> None:
    before, after = cal.last_working_day_on_or_before(day), cal.first_working_day_on_or_after(day)
    assert is_working_day(before) and is_working_day(after) and before <= day <= after
    assert working_days_between(before, day) == 0  # no working day after ``before`` up to ``day``
    assert working_days_between(day, after) == (0 if day == after else 1)
