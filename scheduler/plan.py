"""Which nudges are due: derived from the store's rows and ``now``, nothing else.

:func:`plan` is pure: given a :class:`PlanInput` (rows read from the database)
and the current instant, it lists every nudge that fell due within the catch-up
window, each with an idempotency key. Nothing is remembered between runs: a
changed deadline, a finished assignment or a snooze changes the next plan at
once, and materialising the same nudge twice is impossible because its key is
unique in the outbox.

The rules (all times in the campaign's time zone, all days working days):

* ``remind``: ``n`` working days before the deadline (each of
  ``offsets_working_days``; 0 = the deadline itself, or the last working day
  before it) at ``nudge_time``, to the bound group(s) and to the liaisons of the
  unit who opted in to private nudges. Skipped on days covered by a snooze.
* ``overdue``: every working day after the deadline, same recipients.
* ``escalate``: from ``escalate_after_working_days`` working days overdue on,
  every working day, to each coordinator (their private chat, or the group).
* ``digest``: weekly on ``digest_weekday`` at ``digest_time`` (the next working
  day when that day is a holiday), to the group(s).
* ``phase_start`` / ``phase_end``: on the first working day of a phase and on
  its last working day, to the group(s).
* ``instruction``: every working day after a 批示's answer-by date while a unit of it has not
  reported its 落实情况 (and it is not closed), to that unit's recipients.
* ``supervision``: every working day after a 督办单's reply-by date while it is unanswered,
  to the unit's recipients and the coordinators.
* ``bulletin``: with the weekly digest (``digest_bulletin``) to the leaders; the groups read
  it in the digest itself.
* ``monthly``: the 月报, on the first working day of each month at ``digest_time``, to the
  leaders (nobody without one); keyed by the month, so it goes out once per
  month whatever the restarts.
* ``calendar``: once per campaign and year, to each coordinator, when the plan
  (from today to its last phase end or deadline) runs into a year with no official
  holiday arrangement (:func:`models.status.calendar_gaps`): working days there are
  counted without 调休. Keyed by year, not by day, so it is said once.

A planned instant in quiet hours moves to the next allowed moment.

The same rules say, at claim time, whether a row already in the outbox is still
owed (:func:`not_owed`), and :func:`plan_alerts` plans the coordinators' alert
about an unreachable chat. Every planned nudge is built by :meth:`Planned.each`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlmodel import Session, col, select

from infra.config import SchedulerConfig
from models import calendar
from models.status import calendar_gaps
from models.tables import (
    Assignment,
    AssignmentState,
    Campaign,
    Chat,
    ChatKind,
    Instruction,
    InstructionAnswer,
    InstructionState,
    Member,
    Outbox,
    OutboxState,
    Phase,
    Role,
    Snooze,
    Supervision,
    SupervisionState,
    Task,
    Unit,
    by_id,
)
from models.wording import full_date
from scheduler import timing

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
FINISHED = frozenset({AssignmentState.submitted, AssignmentState.approved})


class Kind:
    """Outbox kinds written by the scheduler."""

    remind = "remind"
    overdue = "overdue"
    escalate = "escalate"
    digest = "digest"
    phase_start = "phase_start"
    phase_end = "phase_end"
    alert = "alert"  # a chat became unreachable (written by dispatch)
    calendar = "calendar"  # a year of the plan has no official holiday arrangement
    instruction = "instruction"  # a 批示 past its answer-by date, a unit's 落实情况 missing
    supervision = "supervision"  # a 督办单 past its reply-by date, unanswered
    bulletin = "bulletin"  # the weekly 通报 (with the digest)
    monthly = "monthly"  # the 月报 to the leaders

    assignment_kinds = frozenset({remind, overdue, escalate})
    phase_kinds = frozenset({phase_start, phase_end})


@dataclass(frozen=True, slots=True)
class Planned:
    """One nudge that is due, ready to be materialised as an Outbox row."""

    key: str
    campaign_id: int
    telegram_chat_id: int
    member_id: int | None
    kind: str
    subject: str
    local_date: date
    due_at: datetime
    payload: dict[str, Any]

    @classmethod
    def each(
        cls,
        recipients: Iterable[tuple[int, int | None]],
        *,
        campaign_id: int,
        kind: str,
        subject: str,
        local_date: date,
        due_at: datetime,
        payload: dict[str, Any],
        deadline: date | None = None,
        offset: int | None = None,
        key_date: date | None = None,
    ) -> list[Planned]:
        """The nudge for each recipient ``(telegram chat id, member id or None)``, keyed.

        The idempotency key (:func:`idem_key`) is made of the recipient, the subject
        (``subject@deadline`` when the nudge was planned for an assignment's
        ``deadline``), the kind (``remind-<offset>`` for a reminder ``offset`` working
        days before the deadline) and ``key_date``, the day the nudge is about
        (``local_date``, the day it goes out, unless given).
        """
        keyed_subject = subject if deadline is None else f"{subject}@{deadline.isoformat()}"
        keyed_kind = kind if offset is None else f"{kind}-{offset}"
        keyed_date = local_date if key_date is None else key_date
        return [
            cls(
                key=idem_key(chat_id=chat_id, subject=keyed_subject, kind=keyed_kind, local_date=keyed_date),
                campaign_id=campaign_id,
                telegram_chat_id=chat_id,
                member_id=member_id,
                kind=kind,
                subject=subject,
                local_date=local_date,
                due_at=due_at,
                payload=payload,
            )
            for chat_id, member_id in recipients
        ]


@dataclass(slots=True)
class PlanInput:
    """The rows a plan needs for one campaign (read by :func:`load_plan_input`)."""

    campaign: Campaign
    tasks: dict[int, Task]
    assignments: list[Assignment]
    units: dict[int, Unit]
    members: list[Member]
    group_chats: list[Chat]
    snoozes: dict[int, date] = field(default_factory=dict)  # assignment id -> until
    phases: list[Phase] = field(default_factory=list)
    instructions: list[Instruction] = field(default_factory=list)  # not closed
    answered: dict[int, set[int]] = field(default_factory=dict)  # instruction id -> units answered
    supervisions: list[Supervision] = field(default_factory=list)  # not closed
    _liaisons: dict[int, list[Member]] | None = field(default=None, repr=False, compare=False)

    @property
    def campaign_id(self) -> int:
        assert self.campaign.id is not None
        return self.campaign.id

    @property
    def tz(self) -> timing.ZoneInfo:
        return timing.zone(self.campaign.timezone)

    def liaisons_of(self, unit_id: int) -> list[Member]:
        # Indexed once per input: plan() asks for every assignment, and scanning all
        # members each time was most of a province-wide sweep (bench/, BENCHMARKS.md).
        if self._liaisons is None:
            self._liaisons = {}
            for m in self.members:
                if m.active and m.role == Role.liaison and m.unit_id is not None:
                    self._liaisons.setdefault(m.unit_id, []).append(m)
        return list(self._liaisons.get(unit_id, ()))

    def coordinators(self) -> list[Member]:
        return [m for m in self.members if m.active and m.role == Role.coordinator]

    def reachable_groups(self) -> list[Chat]:
        return [c for c in self.group_chats if c.reachable]

    def leaders(self) -> list[Member]:
        return [m for m in self.members if m.active and m.role == Role.leader]


def load_plan_input(session: Session, campaign: Campaign) -> PlanInput:
    """Read the rows :func:`plan` needs for ``campaign`` (no writes)."""
    cid = campaign.id
    tasks = by_id(session.exec(select(Task).where(Task.campaign_id == cid)))
    assignments = list(
        session.exec(
            select(Assignment).where(Assignment.campaign_id == cid).order_by(col(Assignment.id))
        )
    )
    units = by_id(session.exec(select(Unit).where(Unit.campaign_id == cid)))
    members = list(
        session.exec(select(Member).where(Member.campaign_id == cid).order_by(col(Member.id)))
    )
    groups = list(
        session.exec(
            select(Chat)
            .where(Chat.campaign_id == cid, Chat.kind == ChatKind.group)
            .order_by(col(Chat.id))
        )
    )
    snoozes = {
        s.assignment_id: s.until for s in session.exec(select(Snooze).where(Snooze.campaign_id == cid))
    }
    phases = list(
        session.exec(select(Phase).where(Phase.campaign_id == cid).order_by(col(Phase.no)))
    )
    instructions = list(session.exec(select(Instruction).where(
        Instruction.campaign_id == cid, Instruction.state != InstructionState.closed).order_by(col(Instruction.id))))
    answered: dict[int, set[int]] = {}
    if instructions:
        for ans in session.exec(select(InstructionAnswer).where(
                col(InstructionAnswer.instruction_id).in_([i.id for i in instructions]))):
            answered.setdefault(ans.instruction_id, set()).add(ans.unit_id)
    supervisions = list(session.exec(select(Supervision).where(
        Supervision.campaign_id == cid, Supervision.state != SupervisionState.closed).order_by(col(Supervision.id))))
    return PlanInput(
        campaign=campaign,
        tasks=tasks,
        assignments=assignments,
        units=units,
        members=members,
        group_chats=groups,
        snoozes=snoozes,
        phases=phases,
        instructions=instructions,
        answered=answered,
        supervisions=supervisions,
    )


# --------------------------------------------------------------------- rules
# Each rule is asked by the planner (is this nudge owed?) and by :func:`not_owed`
# (is this outbox row still owed?), so the two cannot disagree.


def nth_working_day_before(deadline: date, n: int) -> date:
    """The day of the "n working days before" nudge for ``deadline``.

    ``n = 0`` is the deadline itself, or the last working day before it when the
    deadline falls on a weekend or holiday. ``n > 0`` counts n working days back
    from that day.
    """
    return calendar.add_working_days(calendar.last_working_day_on_or_before(deadline), -n)


def effective_snooze(until: date | None, deadline: date) -> date | None:
    """A snooze never reaches the deadline, even after the deadline was moved earlier."""
    if until is None:
        return None
    return min(until, deadline - timedelta(days=1))


def snoozed(day: date, until: date | None) -> bool:
    """Whether a reminder on ``day`` is muted by a snooze ``until`` (an effective snooze)."""
    return until is not None and day <= until


def _said(iso: object) -> str:
    """A date kept in ISO in a payload, as people read it (``2026年12月2日``)."""
    try:
        return full_date(date.fromisoformat(str(iso)))
    except ValueError:
        return str(iso)


def assignment_closed(asg: Assignment | None) -> str | None:
    """Why nobody is nudged about ``asg`` any more (gone, retired, finished), or None."""
    if asg is None or asg.retired:
        return "该单位已不再负责这项任务"
    if asg.state in FINISHED:
        word = "已提交" if asg.state.value == "submitted" else "已审核通过"
        return f"发送前任务{word}，无需提醒"
    return None


def liaison_declines(member: Member, unit_id: int) -> str | None:
    """Why liaison ``member`` gets no private nudge about ``unit_id``'s work, or None."""
    if not member.private_nudges:
        return "联络员已关闭私聊提醒"
    if member.unit_id != unit_id:
        return "联络员已不属于该单位"
    return None


def phase_date(phase: Phase, kind: str) -> date | None:
    """The date a phase announcement of ``kind`` is about: the phase's start or its end."""
    return phase.start_date if kind == Kind.phase_start else phase.end_date


# --------------------------------------------------------------------- keys


def recipient_ref(telegram_chat_id: int) -> str:
    return f"chat:{telegram_chat_id}"


def assignment_subject(assignment_id: int) -> str:
    return f"assignment:{assignment_id}"


def idem_key(*, chat_id: int, subject: str, kind: str, local_date: date) -> str:
    """``recipient|subject|kind|local date``, e.g. ``chat:-100|assignment:7@2025-10-10|remind-3|2025-09-30``.

    For assignment nudges the subject carries the deadline the nudge was planned
    for, so a deadline moved back and forth plans fresh nudges instead of
    colliding with cancelled ones.
    """
    return f"{recipient_ref(chat_id)}|{subject}|{kind}|{local_date.isoformat()}"


# --------------------------------------------------------------------- plan


def plan(inp: PlanInput, *, now: datetime, config: SchedulerConfig) -> list[Planned]:
    """Every nudge of the campaign due in ``(now - catchup_days, now]``, by due time."""
    tz = inp.tz
    local = timing.local_now(now, tz)
    today = local.date()
    since = now - timedelta(days=config.catchup_days)
    # Never catch up on days before the campaign existed: a plan imported today
    # owes nobody the nudges of last week (today's own nudges still go out).
    created = inp.campaign.created_at
    if created is not None:
        first_day = datetime.combine(created.astimezone(tz).date(), time(0), tz)
        since = max(since, first_day - timedelta(microseconds=1))
    window_days = [
        since.astimezone(tz).date() + timedelta(days=i)
        for i in range((today - since.astimezone(tz).date()).days + 1)
    ]
    out: list[Planned] = []

    def due_at(day: date, moment: Any) -> datetime:
        return timing.due_instant(day, moment, tz, config.quiet_start, config.quiet_end)

    def in_window(instant: datetime) -> bool:
        return since < instant <= now

    groups = inp.reachable_groups()
    coordinators = inp.coordinators()
    cid = inp.campaign_id
    for asg in inp.assignments:
        if assignment_closed(asg) is not None:
            continue
        task = inp.tasks.get(asg.task_id)
        if task is None or asg.id is None:
            continue
        deadline = task.deadline
        snoozed_until = effective_snooze(inp.snoozes.get(asg.id), deadline)
        base = {
            "assignment_id": asg.id,
            "task_id": task.id,
            "unit_id": asg.unit_id,
            "deadline": deadline.isoformat(),
        }
        subject = assignment_subject(asg.id)
        unit_recipients = _unit_recipients(inp, asg.unit_id, groups)

        # Before the deadline (and on it).
        for n in sorted(set(config.offsets_working_days), reverse=True):
            day = nth_working_day_before(deadline, n)
            if snoozed(day, snoozed_until):
                continue
            instant = due_at(day, config.nudge_time)
            if not in_window(instant):
                continue
            out.extend(Planned.each(
                unit_recipients, campaign_id=cid, kind=Kind.remind, subject=subject,
                deadline=deadline, offset=n, local_date=day, due_at=instant,
                payload={**base, "offset": n, "local_date": day.isoformat()},
            ))

        # After the deadline: every working day, escalating after a while.
        if deadline >= today:
            continue
        for day in window_days:
            if day <= deadline or not calendar.is_working_day(day):
                continue
            instant = due_at(day, config.nudge_time)
            if not in_window(instant):
                continue
            late = calendar.working_days_between(deadline, day)
            payload = {**base, "days_overdue": late, "local_date": day.isoformat()}
            out.extend(Planned.each(
                unit_recipients, campaign_id=cid, kind=Kind.overdue, subject=subject,
                deadline=deadline, local_date=day, due_at=instant, payload=payload,
            ))
            if late >= config.escalate_after_working_days:
                out.extend(Planned.each(
                    _coordinator_recipients(coordinators, groups), campaign_id=cid,
                    kind=Kind.escalate, subject=subject, deadline=deadline, local_date=day,
                    due_at=instant, payload=payload,
                ))

    out.extend(_supervision_nudges(inp, window_days=window_days, groups=groups, coordinators=coordinators,
                                   config=config, in_window=in_window, due_at=due_at))
    out.extend(_digests(inp, now=now, config=config, groups=groups, in_window=in_window))
    out.extend(_monthly(inp, today=today, config=config, groups=groups, in_window=in_window, due_at=due_at))
    out.extend(_phase_announcements(inp, config=config, groups=groups, in_window=in_window, due_at=due_at))
    out.extend(_calendar_notices(inp, today=today, config=config, recipients=_coordinator_recipients(
        coordinators, groups), in_window=in_window, due_at=due_at))
    out.sort(key=lambda p: (p.due_at, p.key))
    return out


def _unit_recipients(inp: PlanInput, unit_id: int, groups: Iterable[Chat]) -> list[tuple[int, int | None]]:
    """The group chats, plus the unit's liaisons who asked for private nudges."""
    out: list[tuple[int, int | None]] = [(g.telegram_chat_id, None) for g in groups]
    for m in inp.liaisons_of(unit_id):
        if liaison_declines(m, unit_id) is None and m.private_chat_id is not None and m.reachable:
            out.append((m.private_chat_id, m.id))
    return out


def _group_recipients(groups: Iterable[Chat]) -> list[tuple[int, int | None]]:
    return [(g.telegram_chat_id, None) for g in groups]


def _coordinator_recipients(
    coordinators: list[Member], groups: list[Chat]
) -> list[tuple[int, int | None]]:
    """Each coordinator's private chat; the group(s) for those without one (once)."""
    out: list[tuple[int, int | None]] = []
    need_group = False
    for m in coordinators:
        if m.private_chat_id is not None and m.reachable:
            out.append((m.private_chat_id, m.id))
        else:
            need_group = True
    if need_group:
        out.extend((g.telegram_chat_id, None) for g in groups)
    # One row per chat even if two coordinators share nothing but the group.
    seen: set[int] = set()
    unique = []
    for chat_id, member_id in out:
        if chat_id not in seen:
            seen.add(chat_id)
            unique.append((chat_id, member_id))
    return unique


def _digests(inp: PlanInput, *, now: datetime, config: SchedulerConfig, groups: list[Chat], in_window: Any) -> list[Planned]:
    tz = inp.tz
    today = timing.local_now(now, tz).date()
    weekday = WEEKDAYS.index(config.digest_weekday)
    nominal = today - timedelta(days=(today.weekday() - weekday) % 7)
    for _ in range(2):
        day = calendar.first_working_day_on_or_after(nominal)
        instant = timing.due_instant(day, config.digest_time, tz, config.quiet_start, config.quiet_end)
        if instant <= now:
            break
        nominal -= timedelta(days=7)
    else:
        return []
    if not in_window(instant):
        return []
    digest = Planned.each(
        _group_recipients(groups), campaign_id=inp.campaign_id, kind=Kind.digest,
        subject=f"campaign:{inp.campaign_id}", local_date=nominal, due_at=instant,
        payload={"week_of": nominal.isoformat(), "local_date": day.isoformat()},
    )
    if not config.digest_bulletin:
        return digest
    # The groups read the 通报 in the digest itself; the leaders get it on its own.
    leaders = [(m.private_chat_id, m.id) for m in inp.leaders() if m.private_chat_id is not None and m.reachable]
    return digest + Planned.each(
        leaders, campaign_id=inp.campaign_id, kind=Kind.bulletin,
        subject=f"campaign:{inp.campaign_id}:bulletin", local_date=nominal, due_at=instant,
        payload={"week_of": nominal.isoformat(), "local_date": day.isoformat()},
    )


def instruction_owed(inp: PlanInput, instruction_id: object, unit_id: object) -> str | None:
    """Why nobody is nudged any more about a unit's 落实情况 on a 批示, or None."""
    inst = next((i for i in inp.instructions if i.id == instruction_id), None)
    if inst is None or inst.state == InstructionState.closed:
        return "批示已办结"
    if unit_id in inp.answered.get(inst.id or 0, set()):
        return "单位已报送落实情况"
    unit = inp.units.get(unit_id)  # type: ignore[call-overload]
    if unit is None or unit.retired:
        return "单位已从工作计划中撤销"
    return None


def supervision_owed(inp: PlanInput, supervision_id: object) -> str | None:
    """Why nobody is nudged any more about a 督办单, or None."""
    sup = next((x for x in inp.supervisions if x.id == supervision_id), None)
    if sup is None or sup.state != SupervisionState.issued:
        return "督办单已答复或已办结"
    unit = inp.units.get(sup.unit_id)
    task = inp.tasks.get(sup.task_id)
    if unit is None or unit.retired or (task is not None and task.retired):
        return "督办的单位或任务已从工作计划中撤销"
    return None


def _supervision_nudges(
    inp: PlanInput, *, window_days: list[date], groups: list[Chat], coordinators: list[Member],
    config: SchedulerConfig, in_window: Any, due_at: Any,
) -> list[Planned]:
    """Unanswered 批示 and 督办单 past their date: nudged every working day, like a deadline."""
    out: list[Planned] = []
    cid = inp.campaign_id
    for day in window_days:
        if not calendar.is_working_day(day):
            continue
        instant = due_at(day, config.nudge_time)
        if not in_window(instant):
            continue
        for inst in inp.instructions:
            if inst.answer_by >= day or inst.id is None:
                continue
            for unit_id in inst.unit_ids:
                if instruction_owed(inp, inst.id, unit_id) is not None:
                    continue
                out.extend(Planned.each(
                    _unit_recipients(inp, unit_id, groups), campaign_id=cid, kind=Kind.instruction,
                    subject=f"instruction:{inst.id}:{unit_id}", local_date=day, due_at=instant,
                    payload={"instruction_id": inst.id, "unit_id": unit_id, "local_date": day.isoformat(),
                             "days_overdue": calendar.working_days_between(inst.answer_by, day)},
                ))
        for sup in inp.supervisions:
            if sup.reply_by >= day or sup.id is None or supervision_owed(inp, sup.id) is not None:
                continue
            recipients = _unit_recipients(inp, sup.unit_id, groups)
            recipients += [r for r in _coordinator_recipients(coordinators, groups) if r not in recipients]
            out.extend(Planned.each(
                recipients, campaign_id=cid, kind=Kind.supervision, subject=f"supervision:{sup.id}",
                local_date=day, due_at=instant,
                payload={"supervision_id": sup.id, "unit_id": sup.unit_id, "local_date": day.isoformat(),
                         "days_overdue": calendar.working_days_between(sup.reply_by, day)},
            ))
    return out


def _leader_recipients(inp: PlanInput, groups: list[Chat]) -> list[tuple[int, int | None]]:
    """Each leader's private chat (nobody when the campaign has no leader the bot can reach)."""
    return [(m.private_chat_id, m.id) for m in inp.leaders() if m.private_chat_id is not None and m.reachable]


def monthly_subject(campaign_id: int, day: date) -> str:
    """The 月报's subject: one per campaign and month (``monthly:3:2027-03``)."""
    return f"monthly:{campaign_id}:{day:%Y-%m}"


def _monthly(
    inp: PlanInput, *, today: date, config: SchedulerConfig, groups: list[Chat], in_window: Any, due_at: Any,
) -> list[Planned]:
    """The 月报 on the first working day of the month, keyed by the month (sent once)."""
    if not config.monthly_report:
        return []
    first = today.replace(day=1)
    day = calendar.first_working_day_on_or_after(first)
    instant = due_at(day, config.digest_time)
    if not in_window(instant):
        return []
    return Planned.each(
        _leader_recipients(inp, groups), campaign_id=inp.campaign_id, kind=Kind.monthly,
        subject=monthly_subject(inp.campaign_id, first), local_date=day, key_date=first, due_at=instant,
        payload={"month": f"{first:%Y-%m}", "local_date": day.isoformat()},
    )


def _phase_announcements(
    inp: PlanInput, *, config: SchedulerConfig, groups: list[Chat], in_window: Any, due_at: Any
) -> list[Planned]:
    out: list[Planned] = []
    for phase in inp.phases:
        for kind in (Kind.phase_start, Kind.phase_end):
            nominal = phase_date(phase, kind)
            if nominal is None:
                continue
            if kind == Kind.phase_start:
                day = calendar.first_working_day_on_or_after(nominal)
            else:
                day = calendar.last_working_day_on_or_before(nominal)
            instant = due_at(day, config.nudge_time)
            if not in_window(instant):
                continue
            out.extend(Planned.each(
                _group_recipients(groups), campaign_id=inp.campaign_id, kind=kind,
                subject=f"phase:{phase.id}", local_date=day, key_date=nominal, due_at=instant,
                payload={"phase_id": phase.id, "date": nominal.isoformat(), "local_date": day.isoformat()},
            ))
    return out


def calendar_subject(campaign_id: int, year: int) -> str:
    return f"campaign:{campaign_id}:calendar:{year}"


def _calendar_notices(
    inp: PlanInput, *, today: date, config: SchedulerConfig, recipients: list[tuple[int, int | None]],
    in_window: Any, due_at: Any,
) -> list[Planned]:
    """Tell the coordinators, once per year, that the plan runs into a year without an arrangement.

    Due at today's ``nudge_time``; the key's date is 1 January of that year, so a later
    day, a restart or another sweep plans the same key and nothing new is sent.
    """
    years = calendar_gaps(today, phase_ends=(p.end_date for p in inp.phases),
                          deadlines=(t.deadline for t in inp.tasks.values()))
    if not years:
        return []
    instant = due_at(today, config.nudge_time)
    if not in_window(instant):
        return []
    out: list[Planned] = []
    for year in years:
        out.extend(Planned.each(
            recipients, campaign_id=inp.campaign_id, kind=Kind.calendar,
            subject=calendar_subject(inp.campaign_id, year), local_date=today,
            key_date=date(year, 1, 1), due_at=instant,
            payload={"year": year, "local_date": today.isoformat()},
        ))
    return out


def plan_alerts(
    inp: PlanInput, *, failed_chat_id: int, target: str, reason: str, now: datetime
) -> list[Planned]:
    """Tell the coordinators (their private chats, else the groups) that a chat is unreachable.

    Due ``now``; nobody is told through the failed chat itself. Empty when nobody can be told.
    """
    recipients: list[tuple[int, int | None]] = [
        (m.private_chat_id, m.id)
        for m in inp.coordinators()
        if m.private_chat_id is not None and m.reachable and m.private_chat_id != failed_chat_id
    ]
    if not recipients:
        recipients = [
            (g.telegram_chat_id, None)
            for g in inp.reachable_groups()
            if g.telegram_chat_id != failed_chat_id
        ]
    today = timing.local_now(now, inp.tz).date()
    return Planned.each(
        recipients, campaign_id=inp.campaign_id, kind=Kind.alert, subject=f"chat:{failed_chat_id}",
        local_date=today, due_at=now,
        payload={
            "failed_chat_id": failed_chat_id,
            "target": target,
            "reason": reason,
            "local_date": today.isoformat(),
        },
    )


# ------------------------------------------------------------------ still owed?


def not_owed(row: Outbox, inp: PlanInput, today: date) -> tuple[OutboxState, str] | None:
    """Why outbox ``row`` must not be sent any more (state to put it in, and the reason), or None.

    Asks the planner's rules (:func:`assignment_closed`, :func:`snoozed`,
    :func:`liaison_declines`, :func:`phase_date`) of the row as it stands now. Time
    does not cancel a row: one that fell due is still sent after its window.
    """
    chat_id = row.telegram_chat_id
    group = next((c for c in inp.group_chats if c.telegram_chat_id == chat_id), None)
    member = next((m for m in inp.members if m.id == row.member_id), None) if row.member_id else None
    private_owner = next((m for m in inp.members if m.private_chat_id == chat_id), None)
    if group is not None and not group.reachable:
        return OutboxState.failed, f"群组无法送达：{group.unreachable_reason or '未知原因'}"
    if group is None:
        owner = member or private_owner
        if owner is None:
            return OutboxState.cancelled, "该会话已不再属于本活动"
        if not owner.reachable:
            return OutboxState.failed, f"私聊无法送达：{owner.unreachable_reason or '未知原因'}"
        if owner.private_chat_id != chat_id:
            return OutboxState.cancelled, "该成员的私聊会话已变更"
    if member is not None and not member.active:
        return OutboxState.cancelled, "收件人已被移出本活动"
    payload = row.payload or {}
    if row.kind in Kind.assignment_kinds:
        aid = payload.get("assignment_id")
        asg = next((a for a in inp.assignments if a.id == aid), None)
        closed = assignment_closed(asg)
        if closed is not None:
            return OutboxState.cancelled, closed
        assert asg is not None
        task = inp.tasks.get(asg.task_id)
        if task is None:
            return OutboxState.cancelled, "任务已删除"
        planned_for = payload.get("deadline")
        if planned_for and planned_for != task.deadline.isoformat():
            return OutboxState.cancelled, f"截止日期已由 {_said(planned_for)} 改为 {full_date(task.deadline)}，按新日期重新安排"
        until = effective_snooze(inp.snoozes.get(asg.id or 0), task.deadline)
        local_day = payload.get("local_date")
        if row.kind == Kind.remind and local_day and snoozed(date.fromisoformat(local_day), until):
            assert until is not None
            return OutboxState.cancelled, f"提醒已暂缓至 {full_date(until)}"
        if member is not None and member.role == Role.liaison and group is None:
            declined = liaison_declines(member, asg.unit_id)
            if declined is not None:
                return OutboxState.cancelled, declined
        if row.kind == Kind.escalate and member is not None and member.role != Role.coordinator:
            return OutboxState.cancelled, "收件人已不是协调员"
    elif row.kind == Kind.instruction:
        why = instruction_owed(inp, payload.get("instruction_id"), payload.get("unit_id"))
        if why is not None:
            return OutboxState.cancelled, why
    elif row.kind == Kind.supervision:
        why = supervision_owed(inp, payload.get("supervision_id"))
        if why is not None:
            return OutboxState.cancelled, why
    elif row.kind == Kind.calendar:
        year = payload.get("year")
        if isinstance(year, int) and calendar.year_source(year).official:
            return OutboxState.cancelled, f"{year}年的节假日安排已收录（{calendar.year_source(year).label}）"
        if member is not None and member.role != Role.coordinator:
            return OutboxState.cancelled, "收件人已不是协调员"
    elif row.kind in Kind.phase_kinds:
        phase = next((p for p in inp.phases if p.id == payload.get("phase_id")), None)
        if phase is None:
            return OutboxState.cancelled, "工作阶段已删除"
        date_now = phase_date(phase, row.kind)
        if date_now is None or date_now.isoformat() != payload.get("date"):
            return OutboxState.cancelled, "工作阶段日期已变更"
    return None
