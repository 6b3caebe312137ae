"""Working days in mainland China (工作日).

Statutory holidays and the weekends made working days in exchange (调休) come from
the ``chinesecalendar`` package (import name ``chinese_calendar``). It only knows
the years the State Council has announced; :func:`covered_years` says which ones
(1.11.0: 2004–2026). For any other year qcbot falls back to Monday–Friday and logs
a warning, once per year and process, so that a campaign running into an
unannounced year keeps working and the operator knows to upgrade the package.

Conventions (all pure, all ``datetime.date``; a ``datetime`` is reduced to its date):

* :func:`is_working_day` — whether people work that day.
* :func:`add_working_days` ``(d, n)`` — the n-th working day after ``d`` (``n > 0``),
  before ``d`` (``n < 0``), or ``d`` itself (``n == 0``, even on a holiday). ``d``
  itself never counts as one of the n.
* :func:`working_days_between` ``(a, b)`` — the working days in ``(a, b]`` when
  ``b >= a``; minus the working days in ``(b, a]`` when ``b < a`` (antisymmetric).
  A deadline due today is 0 working days away, tomorrow's (a working day) 1, and
  ``working_days_between(deadline, today)`` is how many working days late it is.
  ``working_days_between(d, add_working_days(d, n)) == n`` for every ``n >= 0``,
  and for ``n < 0`` when ``d`` itself is a working day.
* :func:`next_working_day` ``(d)`` — the first working day strictly after ``d``.
* :func:`last_working_day_on_or_before` / :func:`first_working_day_on_or_after`
  ``(d)`` — ``d`` itself when it is a working day, else the nearest one before/after.
"""

from __future__ import annotations

import logging
import threading
from datetime import date, datetime, timedelta
from functools import lru_cache

import chinese_calendar
from chinese_calendar import constants as _cc_constants

log = logging.getLogger(__name__)

_ONE_DAY = timedelta(days=1)
_warned_years: set[int] = set()
_warn_lock = threading.Lock()


def _years_with_data() -> range:
    days = list(_cc_constants.holidays) + list(_cc_constants.workdays)
    if not days:  # pragma: no cover - a broken package
        return range(0)
    return range(min(d.year for d in days), max(d.year for d in days) + 1)


_COVERED = _years_with_data()


def covered_years() -> range:
    """The years for which ``chinesecalendar`` knows holidays and adjusted working days."""
    return _COVERED


def _as_date(d: date) -> date:
    return d.date() if isinstance(d, datetime) else d


def _warn_uncovered(year: int) -> None:
    with _warn_lock:
        if year in _warned_years:
            return
        _warned_years.add(year)
    log.warning(
        "chinesecalendar %s has no holiday data for %d (it covers %d–%d); "
        "counting Monday–Friday as working days for that year. Upgrade the package "
        "once the State Council publishes the year's holiday arrangement.",
        getattr(chinese_calendar, "__version__", "?"), year, _COVERED.start, _COVERED.stop - 1,
    )


@lru_cache(maxsize=8192)
def _is_working_day(d: date) -> bool:
    if d.year in _COVERED:
        try:
            return bool(chinese_calendar.is_workday(d))
        except NotImplementedError:  # pragma: no cover - coverage computed above
            pass
    _warn_uncovered(d.year)
    return d.weekday() < 5


def is_working_day(d: date) -> bool:
    """Whether ``d`` is a working day (holidays off, adjusted weekends on)."""
    return _is_working_day(_as_date(d))


def next_working_day(d: date) -> date:
    """The first working day strictly after ``d``."""
    day = _as_date(d) + _ONE_DAY
    while not _is_working_day(day):
        day += _ONE_DAY
    return day


def previous_working_day(d: date) -> date:
    """The last working day strictly before ``d``."""
    day = _as_date(d) - _ONE_DAY
    while not _is_working_day(day):
        day -= _ONE_DAY
    return day


def last_working_day_on_or_before(d: date) -> date:
    """``d`` when it is a working day, else the last working day before it."""
    return d if is_working_day(d) else previous_working_day(d)


def first_working_day_on_or_after(d: date) -> date:
    """``d`` when it is a working day, else the first working day after it."""
    return d if is_working_day(d) else next_working_day(d)


def add_working_days(d: date, n: int) -> date:
    """The n-th working day after ``d`` (before it when n < 0); ``d`` itself when n == 0."""
    day = _as_date(d)
    step = next_working_day if n > 0 else previous_working_day
    for _ in range(abs(n)):
        day = step(day)
    return day


@lru_cache(maxsize=16384)
def _count(a: date, b: date) -> int:
    """Working days in (a, b], a < b."""
    span = (b - a).days
    if span > 64:
        mid = a + timedelta(days=span // 2)
        return _count(a, mid) + _count(mid, b)
    n = 0
    day = a + _ONE_DAY
    while day <= b:
        if _is_working_day(day):
            n += 1
        day += _ONE_DAY
    return n


def working_days_between(a: date, b: date) -> int:
    """Working days in ``(a, b]``; negative (those in ``(b, a]``) when ``b`` is before ``a``."""
    a, b = _as_date(a), _as_date(b)
    if a == b:
        return 0
    if a < b:
        return _count(a, b)
    return -_count(b, a)
