"""Where the campaign is in its phases, and its next milestone.

Phase: a day belongs to the first phase (by number) whose window contains it,
start and end inclusive, so a shared boundary day (7月10日, 3月1日) belongs to the
phase that ends on it (its deadline). Before the first phase the campaign has not
started, after the last it is over, between two phases it is "between". The next
milestone is the nearest day from today on (today included) on which a phase
starts or ends, an unfinished task is due, or an item with points at stake is due.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Literal

from models.calendar import working_days_between, years_without_arrangement
from models.wording import phase_name

# ============================================================================ phase


@dataclass(frozen=True, slots=True)
class PhaseInfo:
    no: int
    name: str
    start_date: date | None
    end_date: date
    description: str = ""


@dataclass(frozen=True, slots=True)
class Milestone:
    """The next day something is due, and what."""

    date: date
    days_left: int
    working_days_left: int
    # e.g. ("第二阶段“全面创建，实现总体达标”结束",)
    phase_events: tuple[str, ...] = ()
    task_nos: tuple[int, ...] = ()
    item_nos: tuple[int, ...] = ()


PhaseState = Literal["none", "before", "during", "between", "after"]

#: ``第二阶段`` (the glossary's one home: :func:`models.wording.phase_name`).
phase_label = phase_name


@dataclass(frozen=True, slots=True)
class PhaseStatus:
    today: date
    state: PhaseState
    current: PhaseInfo | None
    previous: PhaseInfo | None
    next: PhaseInfo | None
    phases: tuple[PhaseInfo, ...]
    next_milestone: Milestone | None

    @property
    def days_left_in_phase(self) -> int | None:
        return (self.current.end_date - self.today).days if self.current else None


def phase_status(
    phases: Sequence[PhaseInfo],
    today: date,
    *,
    task_deadlines: Mapping[int, date] | None = None,
    item_deadlines: Mapping[int, date] | None = None,
) -> PhaseStatus:
    """Which phase ``today`` is in and the next milestone (pure).

    ``task_deadlines`` / ``item_deadlines``: number -> deadline of the tasks not yet
    done and of the items with points at stake.
    """
    ordered = tuple(sorted(phases, key=lambda p: p.no))
    current = next(
        (p for p in ordered if (p.start_date is None or p.start_date <= today) and today <= p.end_date),
        None,
    )
    past = [p for p in ordered if p.end_date < today]
    future = [p for p in ordered if p.start_date is not None and p.start_date > today]
    previous = max(past, key=lambda p: (p.end_date, p.no)) if past else None
    upcoming = min(future, key=lambda p: (p.start_date, p.no)) if future else None
    state: PhaseState
    if not ordered:
        state = "none"
    elif current is not None:
        state = "during"
    elif previous is None:
        state = "before"
    elif upcoming is None and all(p.end_date < today for p in ordered):
        state = "after"
    else:
        state = "between"

    events: dict[date, list[str]] = defaultdict(list)
    for p in ordered:
        title = f"{phase_label(p.no)}“{p.name}”"
        if p.start_date is not None and p.start_date >= today and p.start_date != p.end_date:
            # A phase starting the day another ends: one event says both.
            ending = [q for q in ordered if q.end_date == p.start_date and q.no != p.no]
            if not ending:
                events[p.start_date].append(f"{title}开始")
        if p.end_date >= today:
            events[p.end_date].append(f"{title}结束")
    tasks: dict[date, list[int]] = defaultdict(list)
    for no, d in (task_deadlines or {}).items():
        if d >= today:
            tasks[d].append(no)
    items: dict[date, list[int]] = defaultdict(list)
    for no, d in (item_deadlines or {}).items():
        if d >= today:
            items[d].append(no)
    days = set(events) | set(tasks) | set(items)
    milestone = None
    if days:
        d = min(days)
        milestone = Milestone(
            date=d,
            days_left=(d - today).days,
            working_days_left=working_days_between(today, d),
            phase_events=tuple(events.get(d, ())),
            task_nos=tuple(sorted(tasks.get(d, ()))),
            item_nos=tuple(sorted(items.get(d, ()))),
        )
    return PhaseStatus(
        today=today, state=state, current=current, previous=previous,
        next=upcoming, phases=ordered, next_milestone=milestone,
    )


def calendar_gaps(
    today: date, *, phase_ends: Iterable[date], deadlines: Iterable[date]
) -> tuple[int, ...]:
    """The years of the campaign's plan that lack an official holiday arrangement.

    The plan runs from ``today`` to its last date (the last phase end or task deadline);
    a year lacks the arrangement when neither an operator file nor chinesecalendar gives
    it (:func:`models.calendar.years_without_arrangement`): its working days are counted
    with the statutory holidays but without 调休. /status says so, and the coordinators are
    told once (``scheduler.plan``).
    """
    return years_without_arrangement([*phase_ends, *deadlines], today)
