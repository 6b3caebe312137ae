"""Working days: statutory holidays, adjusted weekends, the Monday–Friday fallback."""

from __future__ import annotations

import logging
from datetime import date, datetime, timedelta
from pathlib import Path

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
from tests.conftest import REPO


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


def test_fallback_is_the_statutory_holidays_and_warns_once_per_year(
    caplog: pytest.LogCaptureFixture,
) -> None:
    year = covered_years().stop + 3  # surely not covered
    cal.reset()
    jan1 = date(year, 1, 1)
    statutory = cal._statutory(year)
    with caplog.at_level(logging.WARNING, logger="models.calendar"):
        days = [jan1 + timedelta(days=i) for i in range(14)]
        flags = [is_working_day(d) for d in days]
        working_days_between(jan1, date(year, 3, 1))
        is_working_day(date(year, 6, 1))
    assert flags == [d.weekday() < 5 and d not in statutory for d in days]
    assert is_working_day(jan1) is False  # 元旦, whatever the weekday
    warnings = [r for r in caplog.records if str(year) in r.getMessage()]
    assert len(warnings) == 1
    message = warnings[0].getMessage()
    assert "`holidays` package" in message and "no adjusted working days" in message


def test_years_before_coverage_fall_back_too() -> None:
    year = covered_years().start - 1
    assert is_working_day(date(year, 1, 1)) is False
    assert cal.year_source(year).kind == cal.SourceKind.holidays


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


# ------------------------------------------------------------------ years without chinesecalendar

SPRING_2027 = [date(2027, 2, 5), date(2027, 2, 8), date(2027, 2, 9), date(2027, 2, 10)]  # weekdays


def test_2027_without_any_file_uses_the_statutory_holidays() -> None:
    assert 2027 not in covered_years()
    assert cal.year_source(2027).kind == cal.SourceKind.holidays
    assert cal.year_source(2027).official is False
    assert cal.year_source(2027).label == "holidays 包（无调休）"
    assert is_working_day(date(2027, 1, 1)) is False  # 元旦 (a Friday)
    for d in SPRING_2027:
        assert is_working_day(d) is False, d
    assert is_working_day(date(2027, 2, 11)) is True
    assert is_working_day(date(2027, 2, 7)) is False  # a Sunday: no 调休 without the notice


def test_counting_across_2026_into_2027_skips_the_holidays() -> None:
    # (2026-12-31, 2027-01-08]: 1/1 元旦 off, 1/4–1/8 worked.
    assert working_days_between(date(2026, 12, 31), date(2027, 1, 8)) == 5
    assert add_working_days(date(2026, 12, 31), 1) == date(2027, 1, 4)
    # (2027-02-04, 2027-02-12]: 2/5, 2/8, 2/9, 2/10 off; 2/11, 2/12 worked.
    assert working_days_between(date(2027, 2, 4), date(2027, 2, 12)) == 2
    assert add_working_days(date(2027, 2, 4), 1) == date(2027, 2, 11)
    monday_to_friday = sum(
        (date(2026, 12, 5) + timedelta(days=i)).weekday() < 5
        for i in range(1, (date(2027, 4, 2) - date(2026, 12, 5)).days + 1))
    assert working_days_between(date(2026, 12, 5), date(2027, 4, 2)) == monday_to_friday - 5


def _file(tmp_path: Path, body: str, name: str = "calendar-2027.toml") -> Path:
    path = tmp_path / name
    path.write_text(body, encoding="utf-8")
    return path


GOOD_2027 = """
year = 2027
notice = "国务院办公厅关于2027年部分节假日安排的通知（测试）"
holidays = ["2027-01-01", "2027-02-05", "2027-02-08", "2027-02-09", "2027-02-10", "2027-02-11"]
workdays = ["2027-02-07", "2027-02-20"]
"""


def test_an_operator_file_overrides_the_fallback(tmp_path: Path) -> None:
    path = _file(tmp_path, GOOD_2027)
    years = cal.configure([path], shipped_dir=None)
    assert set(years) == {2027}
    src = cal.year_source(2027)
    assert src.kind == cal.SourceKind.operator and src.official
    assert src.label == f"运营方文件 {path}"
    assert is_working_day(date(2027, 2, 7)) is True    # Sunday worked (调休)
    assert is_working_day(date(2027, 2, 20)) is True   # Saturday worked
    assert is_working_day(date(2027, 2, 11)) is False  # a holiday of the file, not of the package
    assert is_working_day(date(2027, 4, 5)) is True    # the package's 清明 is not in this file
    # (2027-02-04, 2027-02-12]: 2/7 (Sun) and 2/12 worked.
    assert working_days_between(date(2027, 2, 4), date(2027, 2, 12)) == 2
    assert add_working_days(date(2027, 2, 4), 1) == date(2027, 2, 7)
    assert cal.years_without_arrangement([date(2028, 3, 1)], date(2026, 12, 5)) == (2028,)
    cal.reset()
    assert is_working_day(date(2027, 2, 7)) is False  # forgotten


def test_a_configured_file_overrides_chinesecalendar_too(tmp_path: Path) -> None:
    path = _file(tmp_path, 'year = 2021\nnotice = "测试"\nholidays = ["2021-01-01", "2021-03-01"]\n'
                 'workdays = ["2021-10-10"]\n')
    cal.configure([path], shipped_dir=None)
    assert is_working_day(date(2021, 3, 1)) is False
    assert is_working_day(date(2021, 10, 10)) is True
    assert is_working_day(date(2021, 10, 1)) is True  # the file is the whole truth for its year


def test_the_sample_file_agrees_with_chinesecalendar(tmp_path: Path) -> None:
    sample = REPO / "data" / "calendar" / "2026.toml.example"
    oy = cal.load_file(sample)
    assert oy.year == 2026
    assert not any(REPO.joinpath("data", "calendar").glob("2027.toml"))  # see README
    cal.configure([sample], shipped_dir=None)
    with_file = [is_working_day(date(2026, 1, 1) + timedelta(days=i)) for i in range(365)]
    cal.reset()
    from_package = [is_working_day(date(2026, 1, 1) + timedelta(days=i)) for i in range(365)]
    assert with_file == from_package


@pytest.mark.parametrize(
    ("body", "key", "words"),
    [
        ("year = 2027\nnotice = 'x'\nholidays = ['2027-01-01']\nworkdays = ['2027-02-08']\n",
         "workdays", "周一"),
        ("year = 2027\nnotice = 'x'\nholidays = ['2027-01-01', '2028-02-08']\n", "holidays[1]",
         "不在 year = 2027"),
        ("year = 2027\nnotice = 'x'\nholidays = ['2027-01-01', '2027-02-07']\n"
         "workdays = ['2027-02-07']\n", "workdays", "同时列在 holidays"),
        ("year = 2027\nnotice = 'x'\nholidays = ['2027-01-01', '2027-13-01']\n", "holidays[1]",
         "YYYY-MM-DD"),
        ("year = 2027\nnotice = 'x'\nholidays = ['2027-01-01', '2027-01-01']\n", "holidays[1]",
         "重复"),
        ("year = 2027\nnotice = 'x'\nholidays = ['2027-02-08']\n", "holidays", "元旦"),
        ("year = 2027\nholidays = ['2027-01-01']\n", "notice", "依据"),
        ("notice = 'x'\nholidays = ['2027-01-01']\n", "year", "年份"),
        ("year = 2027\nnotice = 'x'\nholiday = ['2027-01-01']\n", "holiday", "未知"),
        ("year = 2027\nnotice = 'x'\nholidays = '2027-01-01'\n", "holidays", "日期列表"),
        ("year = 2027\nnotice = 'x'\nholidays = [2027-01-01, 2027-02-05]\n"
         "workdays = [2027-02-09]\n", "workdays", "周二"),  # TOML dates are fine too
        ("year = 2027\nnotice = 'x'\nholidays = [\n", "", "TOML"),
    ],
)
def test_a_malformed_file_is_refused_naming_file_and_key(
    tmp_path: Path, body: str, key: str, words: str
) -> None:
    path = _file(tmp_path, body)
    with pytest.raises(cal.CalendarFileError) as err:
        cal.configure([path], shipped_dir=None)
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith(f"工作日日历文件 {path}：")
    if key:
        assert f"：{key}：" in message
    assert words in message
    assert cal.year_source(2027).kind == cal.SourceKind.holidays  # nothing changed


def test_file_name_and_year_must_agree_and_one_file_per_year(tmp_path: Path) -> None:
    wrong = _file(tmp_path, GOOD_2027.replace("year = 2027", "year = 2028").replace("2027-", "2028-"),
                  name="2027.toml")
    with pytest.raises(cal.CalendarFileError, match="文件名是 2027 年"):
        cal.load_file(wrong)
    a, b = _file(tmp_path, GOOD_2027, "a.toml"), _file(tmp_path, GOOD_2027, "b.toml")
    with pytest.raises(cal.CalendarFileError, match="已由 .*a.toml 给出"):
        cal.configure([a, b], shipped_dir=None)
    with pytest.raises(cal.CalendarFileError, match="文件不存在"):
        cal.configure([tmp_path / "missing.toml"], shipped_dir=None)


def test_a_configured_file_replaces_the_shipped_one(tmp_path: Path) -> None:
    shipped = tmp_path / "shipped"
    shipped.mkdir()
    _file(shipped, GOOD_2027, name="2027.toml")
    cal.configure([], shipped_dir=shipped)
    assert cal.year_source(2027).file is not None
    assert is_working_day(date(2027, 2, 20)) is True
    local = _file(tmp_path, GOOD_2027.replace(', "2027-02-20"', ""))
    cal.configure([local], shipped_dir=shipped)
    assert cal.year_source(2027).label == f"运营方文件 {local}"
    assert is_working_day(date(2027, 2, 20)) is False


def test_years_without_arrangement() -> None:
    today = date(2026, 12, 5)
    assert cal.years_without_arrangement([date(2026, 12, 31)], today) == ()
    assert cal.years_without_arrangement([date(2026, 12, 31), date(2027, 4, 2)], today) == (2027,)
    assert cal.years_without_arrangement([date(2028, 1, 5)], today) == (2027, 2028)
    assert cal.years_without_arrangement([date(2027, 4, 2)], date(2027, 5, 1)) == ()  # all past
    assert cal.years_without_arrangement([], today) == ()


def test_day_info_says_what_a_day_is_and_why() -> None:
    info = cal.day_info(date(2026, 2, 14))  # a Saturday worked for 春节
    assert info.working and info.special and info.name == "调休上班"
    assert info.source.kind == cal.SourceKind.chinesecalendar
    info = cal.day_info(date(2026, 2, 17))
    assert not info.working and info.special and info.name == "春节"
    info = cal.day_info(date(2027, 2, 9))
    assert not info.working and info.special and "春节" in info.name
    assert not cal.day_info(date(2027, 2, 6)).special  # a Saturday off is a plain weekend day
