"""Time of day in the scheduler: quiet hours, local time, when a nudge goes out.

Everything here is pure: it takes dates, times and a time zone and returns aware
instants. Which days are working days (statutory holidays, adjusted working
weekends) is :mod:`models.calendar`'s, and callers ask it directly.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from models import calendar

#: Never look further than this for a working day (the longest holiday is ~9 days).
_MAX_SCAN_DAYS = 60


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
    return calendar.is_working_day(local.date()) and not in_quiet_hours(
        local.timetz(), quiet_start, quiet_end
    )


def next_allowed_moment(local: datetime, quiet_start: time, quiet_end: time) -> datetime:
    """The first moment at or after ``local`` when a nudge may go out (same zone)."""
    tz = local.tzinfo
    for _ in range(_MAX_SCAN_DAYS * 2):
        if not calendar.is_working_day(local.date()):
            nxt = calendar.first_working_day_on_or_after(local.date())
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


def due_instant(
    day: date, moment: time, tz: ZoneInfo, quiet_start: time, quiet_end: time
) -> datetime:
    """When a nudge planned for ``day`` at ``moment`` goes out: moved out of quiet hours."""
    local = datetime.combine(day, moment.replace(tzinfo=None), tzinfo=tz)
    return next_allowed_moment(local, quiet_start, quiet_end).astimezone(UTC)
