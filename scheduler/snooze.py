"""The buttons under a nudge: snooze it (1 or 3 working days, never past the deadline)
or open the task. Callback data is validated against the store, never trusted.

Callback data: ``qcn:z:<assignment id>:<days>`` (snooze) and ``qcn:t:<assignment id>``
(open). A press is accepted only if the message it came from is a nudge the
scheduler sent to that very chat (outbox lead row with that chat and message id)
and that nudge listed the assignment; anything else is forged or stale and is
refused with nothing changed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime

from sqlmodel import Session, select

from models import calendar
from models.audit import Actor, record
from models.errors import Conflict, InvalidInput, NotFound
from models.labels import STATE_NAMES
from models.permissions import Action, check
from models.tables import (
    Assignment,
    Campaign,
    Member,
    Outbox,
    OutboxState,
    Snooze,
    Task,
    Unit,
    saved_id,
)
from models.wording import esc, full_date, month_day
from scheduler import timing
from scheduler.plan import FINISHED
from scheduler.render import SNOOZE_DAYS, snooze_until

_DATA = re.compile(r"^qcn:(?P<op>[zt]):(?P<aid>\d{1,12})(?::(?P<days>\d{1,3}))?$")
STALE = "这个按钮已失效（提醒已过期或不属于本会话），请以最新的提醒为准。"


@dataclass(frozen=True, slots=True)
class ButtonPress:
    op: str  # "snooze" or "open"
    assignment_id: int
    days: int | None = None


@dataclass(frozen=True, slots=True)
class SnoozeResult:
    assignment_id: int
    until: date
    changed: bool
    message: str


@dataclass(frozen=True, slots=True)
class TaskCard:
    campaign_id: int
    task_id: int
    unit_id: int
    assignment_id: int
    text: str


def is_nudge_callback(data: str | None) -> bool:
    return data is not None and data.startswith("qcn:")


def parse_callback(data: str | None) -> ButtonPress:
    """Parse callback data; :class:`InvalidInput` for anything malformed."""
    m = _DATA.match(data or "")
    if m is None:
        raise InvalidInput("无法识别的按钮。")
    aid = int(m["aid"])
    if m["op"] == "t":
        if m["days"] is not None:
            raise InvalidInput("无法识别的按钮。")
        return ButtonPress("open", aid)
    if m["days"] is None or int(m["days"]) not in SNOOZE_DAYS:
        raise InvalidInput("无法识别的按钮。")
    return ButtonPress("snooze", aid, int(m["days"]))


def _nudge_of(session: Session, *, chat_id: int, message_id: int, assignment_id: int) -> Outbox:
    lead = session.exec(
        select(Outbox).where(
            Outbox.telegram_chat_id == chat_id,
            Outbox.telegram_message_id == message_id,
            Outbox.state == OutboxState.sent,
        )
    ).first()
    listed = ((lead.payload or {}).get("render") or {}).get("assignment_ids", []) if lead else []
    if lead is None or assignment_id not in listed:
        raise Conflict(STALE)
    return lead


def _member(session: Session, campaign_id: int, telegram_user_id: int) -> Member | None:
    return session.exec(
        select(Member).where(
            Member.campaign_id == campaign_id, Member.telegram_user_id == telegram_user_id
        )
    ).first()


def snooze_from_button(
    session: Session,
    *,
    chat_id: int,
    message_id: int,
    data: str,
    telegram_user_id: int,
    now: datetime,
) -> SnoozeResult:
    """Apply a snooze button press (the caller's transaction commits it)."""
    press = parse_callback(data)
    if press.op != "snooze" or press.days is None:
        raise InvalidInput("无法识别的按钮。")
    lead = _nudge_of(session, chat_id=chat_id, message_id=message_id, assignment_id=press.assignment_id)
    asg = session.get(Assignment, press.assignment_id)
    if asg is None or asg.campaign_id != lead.campaign_id:
        raise Conflict(STALE)
    member = _member(session, lead.campaign_id, telegram_user_id)
    check(member=member, action=Action.snooze_nudge, responsible_unit_ids=[asg.unit_id])
    assert member is not None
    return snooze(
        session,
        assignment_id=saved_id(asg),
        days=press.days,
        now=now,
        actor=Actor(kind="telegram", member_id=member.id, telegram_id=telegram_user_id),
    )


def snooze(
    session: Session, *, assignment_id: int, days: int, now: datetime, actor: Actor
) -> SnoozeResult:
    """Mute the nudges of an assignment for ``days`` working days, capped before its deadline.

    Repeating a press is harmless (an existing longer snooze is kept). Refused
    for a finished or retired assignment, and when the deadline is too close to
    skip anything (the deadline-day nudge always goes out).
    """
    asg = session.get(Assignment, assignment_id)
    if asg is None:
        raise NotFound("找不到这项任务分工。")
    task = session.get(Task, asg.task_id)
    campaign = session.get(Campaign, asg.campaign_id)
    unit = session.get(Unit, asg.unit_id)
    assert task is not None and campaign is not None
    label = f"任务{task.no}（{unit.name if unit else ''}）"
    if asg.retired:
        raise Conflict(f"{label}已不再由该单位负责，无需暂缓。")
    if asg.state in FINISHED:
        raise Conflict(f"{label}{STATE_NAMES[asg.state]}，不会再提醒，无需暂缓。")
    today = timing.local_now(now, timing.zone(campaign.timezone)).date()
    until = snooze_until(today, days, task.deadline)
    if until is None:
        raise Conflict(f"{label}截止日期为{month_day(task.deadline)}，已临近或已过截止日，不能再暂缓提醒。")
    row = session.exec(select(Snooze).where(Snooze.assignment_id == assignment_id)).first()
    before = row.until if row is not None else None
    if row is not None and row.until >= until:
        return SnoozeResult(
            assignment_id, row.until, False,
            f"{label}的提醒已暂缓至{month_day(row.until)}，截止日{month_day(task.deadline)}当天仍会提醒。",
        )
    if row is None:
        row = Snooze(campaign_id=asg.campaign_id, assignment_id=assignment_id, until=until,
                     by_member_id=actor.member_id, created_at=now)
    else:
        row.until = until
        row.by_member_id = actor.member_id
        row.created_at = now
    session.add(row)
    session.flush()
    record(
        session=session, actor=actor, action="nudge.snooze", entity="assignment",
        entity_id=assignment_id, at=now, campaign_id=asg.campaign_id,
        before={"until": before.isoformat() if before else None},
        after={"until": until.isoformat(), "days": days},
    )
    note = "（已到截止日前一天，不能再往后）" if until < calendar.add_working_days(today, days) else ""
    return SnoozeResult(
        assignment_id, until, True,
        f"已暂缓{label}的提醒至{month_day(until)}{note}；截止日{month_day(task.deadline)}当天仍会提醒。",
    )


def task_card_from_button(
    session: Session,
    *,
    chat_id: int,
    message_id: int,
    data: str,
    telegram_user_id: int,
    now: datetime,
) -> TaskCard:
    """The task behind an "open" button, as a Chinese card (read only)."""
    press = parse_callback(data)
    if press.op != "open":
        raise InvalidInput("无法识别的按钮。")
    lead = _nudge_of(session, chat_id=chat_id, message_id=message_id, assignment_id=press.assignment_id)
    asg = session.get(Assignment, press.assignment_id)
    if asg is None or asg.campaign_id != lead.campaign_id:
        raise Conflict(STALE)
    check(member=_member(session, lead.campaign_id, telegram_user_id), action=Action.view_task)
    return task_card(session, assignment_id=saved_id(asg), now=now)


def task_card(session: Session, *, assignment_id: int, now: datetime) -> TaskCard:
    asg = session.get(Assignment, assignment_id)
    if asg is None:
        raise NotFound("找不到这项任务分工。")
    task = session.get(Task, asg.task_id)
    unit = session.get(Unit, asg.unit_id)
    campaign = session.get(Campaign, asg.campaign_id)
    assert task is not None and campaign is not None
    today = timing.local_now(now, timing.zone(campaign.timezone)).date()
    if task.deadline < today:
        when = f"已逾期 {calendar.working_days_between(task.deadline, today)} 个工作日"
    elif task.deadline == today:
        when = "今天截止"
    else:
        when = f"还剩 {calendar.working_days_between(today, task.deadline)} 个工作日"
    snoozed = session.exec(select(Snooze).where(Snooze.assignment_id == assignment_id)).first()
    lines = [
        f"📄 <b>任务{task.no}</b>（{esc(unit.name if unit else '')}）",
        f"主要内容：{esc(task.title)}",
    ]
    if task.detail and task.detail != task.title:
        # Annex 1's 主要内容 above; the plan's text (三、工作任务) labelled, never a bare repeat.
        lines.append(f"工作要求：{esc(task.detail)}")
    lines.append(f"截止日期：{full_date(task.deadline)}（{when}）")
    if task.deadline != task.planned_deadline:
        lines.append(f"原定截止：{full_date(task.planned_deadline)}")
    lines.append(f"状态：{STATE_NAMES.get(asg.state, str(asg.state))}{f' {asg.percent}%' if asg.percent else ''}")
    if snoozed is not None and snoozed.until >= today:
        lines.append(f"提醒已暂缓至{month_day(snoozed.until)}。")
    lines.append("回复本消息可报告进度或提交材料。")
    return TaskCard(asg.campaign_id, saved_id(task), asg.unit_id, saved_id(asg), "\n".join(lines))
