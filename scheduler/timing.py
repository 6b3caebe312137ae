"""Time rules of the scheduler: working-day offsets, quiet hours, local time.

Everything here is pure: it takes dates, times and a time zone and returns
dates and aware instants. Working days (statutory holidays, adjusted working
weekends; Monday to Friday for years chinesecalendar does not cover yet) come
from :mod:`models.calendar`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from models import calendar

#: Never look further than this for a working day (the longest holiday is ~9 days).
_MAX_SCAN_DAYS = 60


def is_working_day(day: date) -> bool:
    """Whether ``day`` is a working day in mainland China (models.calendar)."""
    return calendar.is_working_day(day)


def last_working_day_on_or_before(day: date) -> date:
    return day if is_working_day(day) else calendar.previous_working_day(day)


def first_working_day_on_or_after(day: date) -> date:
    return day if is_working_day(day) else calendar.next_working_day(day)


def nth_working_day_before(deadline: date, n: int) -> date:
    """The day of the "n working days before" nudge for ``deadline``.

    ``n = 0`` is the deadline itself, or the last working day before it when the
    deadline falls on a weekend or holiday. ``n > 0`` counts n working days back
    from that day.
    """
    return calendar.add_working_days(last_working_day_on_or_before(deadline), -n)


def working_days_after(start: date, end: date) -> int:
    """How many working days lie in ``(start, end]`` (0 when ``end <= start``)."""
    return max(0, calendar.working_days_between(start, end))


def working_days_until(today: date, deadline: date) -> int:
    """Working days left before ``deadline`` as seen on ``today`` (0: due today or past)."""
    return working_days_after(today, deadline)


def add_working_days(day: date, n: int) -> date:
    """The n-th working day after ``day`` (n >= 1)."""
    return calendar.add_working_days(day, n)


# ------------------------------------------------------------------ quiet hours


def in_quiet_hours(moment: time, quiet_start: time, quiet_end: time) -> bool:
    """Whether the local wall time ``moment`` falls in the quiet window.

    The window may wrap midnight (21:00-08:00); ``quiet_start == quiet_end``
    means there are no quiet hours.
    """
    moment = moment.replace(tzinfo=None)
    if quiet_start == quiet_end:
        return False
    if quiet_start < quiet_end:
        return quiet_start <= moment < quiet_end
    return moment >= quiet_start or moment < quiet_end


def is_allowed_moment(local: datetime, quiet_start: time, quiet_end: time) -> bool:
    """A nudge may go out at ``local`` (campaign time): a working day, outside quiet hours."""
    return is_working_day(local.date()) and not in_quiet_hours(
        local.timetz(), quiet_start, quiet_end
    )


def next_allowed_moment(local: datetime, quiet_start: time, quiet_end: time) -> datetime:
    """The first moment at or after ``local`` when a nudge may go out (same zone)."""
    tz = local.tzinfo
    for _ in range(_MAX_SCAN_DAYS * 2):
        if not is_working_day(local.date()):
            nxt = first_working_day_on_or_after(local.date())
            local = datetime.combine(nxt, time(0, 0), tzinfo=tz)
            continue
        if in_quiet_hours(local.timetz(), quiet_start, quiet_end):
            day = local.date()
            if local.time() >= quiet_end:
                day += timedelta(days=1)
            local = datetime.combine(day, quiet_end.replace(tzinfo=None), tzinfo=tz)
            continue
        return local
    raise ValueError("no allowed moment found")  # pragma: no cover


# ------------------------------------------------------------------- local time


def zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def local_now(now: datetime, tz: ZoneInfo) -> datetime:
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be time-zone aware")
    return now.astimezone(tz)


def at_local(day: date, moment: time, tz: ZoneInfo) -> datetime:
    """``day`` at wall time ``moment`` in ``tz``, as an aware UTC instant."""
    return datetime.combine(day, moment.replace(tzinfo=None), tzinfo=tz).astimezone(UTC)


def due_instant(
    day: date, moment: time, tz: ZoneInfo, quiet_start: time, quiet_end: time
) -> datetime:
    """When a nudge planned for ``day`` at ``moment`` goes out: moved out of quiet hours."""
    local = datetime.combine(day, moment.replace(tzinfo=None), tzinfo=tz)
    return next_allowed_moment(local, quiet_start, quiet_end).astimezone(UTC)


Clock = Callable[[], datetime]
