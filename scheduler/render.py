"""The text of nudge messages (Simplified Chinese, Telegram HTML).

One chat gets one message per sweep: every due outbox row for that chat is
rendered together. Assignment lines are grouped by unit; units are ordered by
points at stake, then by how late their worst task is; each unit's liaisons are
mentioned (``<a href="tg://user?id=...">name</a>``) so Telegram notifies them.
Dates, points, names and escaping are ``models.wording``'s.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from infra.config import SchedulerConfig
from models import calendar
from models.labels import STATE_NAMES
from models.status import LIGHT_ICONS, assignment_light
from models.tables import AssignmentState, InstructionState, Member, Outbox, SubjectKind
from models.wording import (
    calendar_gap,
    day,
    esc,
    full_date,
    mention,
    month_day,
    phase_name,
    points,
    quoted,
    short,
    when,
)
from scheduler import timing
from scheduler.plan import FINISHED, Kind, PlanInput

#: Telegram allows 4096 characters; stay clear of it (tags included, to be safe).
MAX_TEXT = 3800
#: More assignment lines than this are summarised per unit (one line each).
COMPACT_AFTER = 12
#: At most this many tasks get buttons under one message.
MAX_BUTTON_ROWS = 8
SNOOZE_DAYS = (1, 3)
CALLBACK_PREFIX = "qcn"
#: A task's title in a nudge line is cut to this many characters.
TITLE_LIMIT = 24


def snooze_cb(assignment_id: int, days: int) -> str:
    return f"{CALLBACK_PREFIX}:z:{assignment_id}:{days}"


def open_cb(assignment_id: int) -> str:
    return f"{CALLBACK_PREFIX}:t:{assignment_id}"


def snooze_until(today: date, days: int, deadline: date) -> date | None:
    """Until when a snooze of ``days`` working days pressed on ``today`` mutes nudges.

    Nudges on days up to and including the returned date are skipped. Never past
    the deadline: the nudge on the deadline day itself always goes out, so the
    cap is the day before it. ``None``: nothing left to snooze.
    """
    target = calendar.add_working_days(today, days)
    until = min(target, deadline - timedelta(days=1))
    return until if until > today else None


@dataclass(slots=True)
class Rendered:
    text: str
    keyboard: list[list[dict[str, str]]] = field(default_factory=list)
    assignment_ids: list[int] = field(default_factory=list)
    subject_kind: SubjectKind = SubjectKind.nudge
    subject_id: int | None = None
    unit_id: int | None = None
    #: Official documents sent after the text (file name → DOCX bytes): the 通报's, the 月报's.
    documents: dict[str, bytes] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "keyboard": self.keyboard,
            "assignment_ids": self.assignment_ids,
            "subject_kind": self.subject_kind.value,
            "subject_id": self.subject_id,
            "unit_id": self.unit_id,
        }


@dataclass(slots=True)
class _Line:
    assignment_id: int
    unit_id: int
    task_no: int
    deadline: date
    lateness: int  # working days overdue; negative: working days left
    text: str
    snoozable: bool
    escalated: bool


def _status(today: date, deadline: date, state: AssignmentState, yellow: int) -> tuple[int, str, str]:
    """(lateness, icon, words) of an assignment's deadline seen on ``today``; the icon is the
    light /task and /status show (``models.status.assignment_light``)."""
    light, _ = assignment_light(state=state, deadline=deadline, today=today, yellow_working_days=yellow)
    icon = LIGHT_ICONS[light]
    if deadline < today:
        late = calendar.working_days_between(deadline, today)
        words = f"已逾期 {late} 个工作日" if late else "已过截止日期"
        return max(late, 1), icon, words
    if deadline == today:
        return 0, icon, "今天截止"
    left = calendar.working_days_between(today, deadline)
    return -left, icon, f"还剩 {left} 个工作日"


def render_batch(
    *,
    inp: PlanInput,
    rows: list[Outbox],
    chat_id: int,
    stakes: dict[int, float],
    now: datetime,
    config: SchedulerConfig,
    texts: dict[str, str] | None = None,
    documents: dict[str, tuple[str, bytes]] | None = None,
) -> Rendered:
    """The one message that carries ``rows`` (all for ``chat_id``).

    ``texts``: the 通报 (``bulletin``) and the 月报 (``monthly``) already written (they need the
    database; :func:`scheduler.outbox` writes them), said at the top of the message;
    ``documents``: their DOCX (file name, bytes) by kind, sent after the message.
    """
    tz = inp.tz
    today = timing.local_now(now, tz).date()
    group_ids = {c.telegram_chat_id for c in inp.group_chats}
    in_group = chat_id in group_ids
    recipient: Member | None = None
    for m in inp.members:
        if m.private_chat_id == chat_id and not in_group:
            recipient = m
            break

    kinds: dict[str, list[Outbox]] = {}
    for r in rows:
        kinds.setdefault(r.kind, []).append(r)

    def of(*wanted: str) -> list[Outbox]:
        return [r for r in rows if r.kind in wanted]
    late_cutoff = now - timedelta(seconds=max(900, 3 * config.sweep_interval_seconds))
    catchup = [
        r
        for r in rows
        if r.due_at < late_cutoff or str(r.payload.get("local_date", today.isoformat())) < today.isoformat()
    ]

    parts: list[str] = []
    escalation_only = bool(of(Kind.escalate)) and not of(Kind.remind, Kind.overdue, Kind.digest)
    if escalation_only and not in_group:
        title = "🔺 <b>逾期督办</b>"
    elif of(Kind.digest):
        title = "📊 <b>质量强区每周进展</b>"
    elif of(Kind.alert) and len(kinds) == 1:
        title = "⚠️ <b>消息无法送达</b>"
    elif of(Kind.calendar) and len(kinds) == 1:
        title = "📅 <b>工作日日历</b>"
    elif set(kinds) <= {Kind.instruction, Kind.supervision}:
        title = "📝 <b>批示和督办单提醒</b>"
    elif set(kinds) <= {Kind.bulletin, Kind.monthly}:
        title = "📣 <b>质量强区工作通报</b>" if of(Kind.bulletin) else "🗓 <b>质量强区工作月报</b>"
    else:
        title = "📋 <b>质量强区任务提醒</b>"
    parts.append(f"{title} · {month_day(today, weekday=True)}")
    if catchup:
        since = min(r.due_at for r in catchup)
        parts.append(
            f"📮 自{when(since, tz)} 起未能按时发出的 {len(catchup)} 条提醒，已合并为这一条消息补发。"
        )
    deadlines = [t.deadline for t in inp.tasks.values()]
    if catchup and deadlines and max(deadlines) < today:
        parts.append(
            f"ℹ️ 本活动计划中的截止日期均已过去（最晚 {full_date(max(deadlines))}），"
            "以下为尚未完成事项的汇总。如需调整截止日期，请联系协调员。"
        )

    attached: dict[str, bytes] = {}
    for kind in (Kind.monthly, Kind.bulletin):
        carried = of(kind) or (kind == Kind.bulletin and of(Kind.digest) and config.digest_bulletin)
        if carried and texts and texts.get(kind):
            parts.append(texts[kind])
        if carried and documents and kind in documents:
            name, data = documents[kind]
            attached[name] = data

    # Phase announcements.
    phases = {p.id: p for p in inp.phases}
    for r in sorted(of(Kind.phase_start, Kind.phase_end), key=lambda r: (r.due_at, r.kind)):
        phase = phases.get(r.payload.get("phase_id"))
        if phase is None:
            continue
        name = f"{phase_name(phase.no)}{quoted(esc(phase.name))}"
        if r.kind == Kind.phase_start:
            span = f"（{full_date(phase.start_date or today)}至{full_date(phase.end_date)}）"
            parts.append(f"🚩 {name}开始{span}。")
            if phase.description:
                parts.append(esc(short(phase.description, 120)))
        else:
            ends = "今天" if phase.end_date == today else full_date(phase.end_date)
            verb = "结束" if phase.end_date >= today else "已结束"
            parts.append(f"🏁 {name}{ends}{verb}。")

    # Which assignments to list.
    open_asg = {
        a.id: a
        for a in inp.assignments
        if a.id is not None and not a.retired and a.state not in FINISHED
    }
    listed: dict[int, bool] = {}  # assignment id -> escalated
    for r in of(Kind.remind, Kind.overdue, Kind.escalate):
        aid = r.payload.get("assignment_id")
        if aid in open_asg:
            listed[aid] = listed.get(aid, False) or r.kind == Kind.escalate
    if of(Kind.digest):
        active = [a for a in inp.assignments if not a.retired]
        counts: dict[Any, int] = defaultdict(int)
        for a in active:
            counts[a.state] += 1
        horizon = max(config.offsets_working_days or (0,))
        overdue_n = 0
        for aid, a in open_asg.items():
            t = inp.tasks.get(a.task_id)
            if t is None:
                continue
            if t.deadline < today:
                overdue_n += 1
            if t.deadline < today or calendar.working_days_between(today, t.deadline) <= horizon:
                listed.setdefault(aid, False)
        total = len(active)
        done = counts[AssignmentState.approved]
        parts.append(
            f"共 {total} 项分工：已通过 {done}，已提交 {counts[AssignmentState.submitted]}，"
            f"进行中 {counts[AssignmentState.in_progress]}，未开始 {counts[AssignmentState.not_started]}；"
            f"逾期 {overdue_n} 项。"
        )
        if total:
            parts.append(f"完成率 {done * 100 // total}%（以协调员审核通过为准）。")

    lines: list[_Line] = []
    for aid, escalated in listed.items():
        a = open_asg[aid]
        t = inp.tasks.get(a.task_id)
        if t is None:
            continue
        lateness, icon, words = _status(today, t.deadline, a.state, config.yellow_working_days)
        state = STATE_NAMES.get(a.state, "")
        flag = " 🔺" if escalated and not escalation_only else ""
        text = (
            f"{icon} 任务{t.no} {esc(short(t.title, TITLE_LIMIT))}：{words}"
            f"（截止 {day(t.deadline, today)}，{state}{f' {a.percent}%' if a.percent else ''}）{flag}"
        )
        lines.append(
            _Line(
                assignment_id=aid,
                unit_id=a.unit_id,
                task_no=t.no,
                deadline=t.deadline,
                lateness=lateness,
                text=text,
                snoozable=snooze_until(today, 1, t.deadline) is not None,
                escalated=escalated,
            )
        )

    by_unit: dict[int, list[_Line]] = defaultdict(list)
    for line in lines:
        by_unit[line.unit_id].append(line)
    unit_order = sorted(
        by_unit,
        key=lambda u: (
            -stakes.get(u, 0.0),
            -max(x.lateness for x in by_unit[u]),
            inp.units[u].sort_order if u in inp.units else 0,
            u,
        ),
    )
    ordered: list[_Line] = []
    body: list[str] = []
    compact = len(lines) > COMPACT_AFTER
    if by_unit:
        if of(Kind.digest) or compact:
            body.append(
                f"<b>需要关注的任务</b>（{len(lines)} 项，按单位待得分和逾期程度排序）："
            )
        for u in unit_order:
            unit = inp.units.get(u)
            name = esc(unit.name) if unit else f"单位{u}"
            head = f"<b>{name}</b>"
            if stakes.get(u):
                head += f"（本单位负责的评分项尚有 {points(stakes[u])} 分待争取）"
            owed = open_instructions_of(inp, u)
            if owed:
                head += f"（批示待报送落实情况 {owed} 件）"
            if recipient is None or recipient.role != "liaison":
                liaisons = inp.liaisons_of(u)
                head += " " + "、".join(mention(m) for m in liaisons) if liaisons else "（尚无联络员）"
            unit_lines = sorted(by_unit[u], key=lambda x: (-x.lateness, x.deadline, x.task_no))
            ordered.extend(unit_lines)
            if compact:
                body.append(f"{head}：{_summary(unit_lines, today)}")
            else:
                body.append(head)
                body.extend(f"  {x.text}" for x in unit_lines)
    if any(x.escalated for x in lines):
        coords = inp.coordinators()
        if in_group and coords:
            body.append(
                f"🔺 标记的任务已逾期 {config.escalate_after_working_days} 个工作日以上，"
                f"提请 {'、'.join(mention(m) for m in coords)} 督办。"
            )
        elif not in_group:
            body.append(
                f"🔺 以上任务已逾期 {config.escalate_after_working_days} 个工作日以上，请督促相关单位。"
            )

    # 批示 and 督办单 past their date.
    instructions = {i.id: i for i in inp.instructions}
    said_inst: set[int] = set()
    for r in of(Kind.instruction):
        inst = instructions.get(r.payload.get("instruction_id"))
        unit = inp.units.get(int(r.payload.get("unit_id") or 0))
        if inst is None or unit is None or inst.id is None:
            continue
        said_inst.add(inst.id)
        body.append(
            f"📝 批示第{inst.id}号“{esc(short(inst.text, 40))}”：<b>{esc(unit.name)}</b>尚未报送落实情况，"
            f"已超过答复期限（{day(inst.answer_by, today)}）。"
            + ("" if recipient is not None and recipient.role == "liaison" else
               " " + "、".join(mention(m) for m in inp.liaisons_of(unit.id or 0))))
    supervisions = {x.id: x for x in inp.supervisions}
    said_sup: set[int] = set()
    for r in of(Kind.supervision):
        sup = supervisions.get(r.payload.get("supervision_id"))
        if sup is None or sup.id is None:
            continue
        said_sup.add(sup.id)
        unit = inp.units.get(sup.unit_id)
        body.append(f"📕 督办单 {esc(sup.number)}（{esc(unit.name) if unit else ''}）已逾期：答复期限 "
                    f"{day(sup.reply_by, today)}，尚未答复。")
    if said_inst or said_sup:
        body.append("请回复原批示或督办单消息报送落实情况。")

    # Unreachable chats.
    for r in of(Kind.alert):
        p = r.payload
        body.append(
            f"⚠️ 无法向{esc(p.get('target', '会话'))}发送提醒（{esc(p.get('reason', ''))}），"
            "已暂停向其发送。请检查机器人是否被移出群组或被屏蔽；恢复后请对方重新私聊机器人发送 /start。"
        )

    # A year of the plan without an official holiday arrangement (told once).
    gap_years = sorted({int(r.payload["year"]) for r in of(Kind.calendar) if "year" in r.payload})
    if gap_years:
        body.append(calendar_gap(gap_years))

    footer = ""
    if ordered:
        footer = "回复本消息可报告进度；也可点下方按钮查看任务或暂缓提醒（截止日当天仍会提醒）。"
        if not in_group and recipient is not None and recipient.role == "liaison":
            footer += "发送 /nudges off 可关闭私聊提醒。"

    text = _fit(parts, body, footer)
    keyboard: list[list[dict[str, str]]] = []
    for x in ordered[:MAX_BUTTON_ROWS]:
        unit = inp.units.get(x.unit_id)
        label = f"任务{x.task_no}·{unit.name}" if unit else f"任务{x.task_no}"
        row = [{"text": label, "callback_data": open_cb(x.assignment_id)}]
        if x.snoozable:
            row += [
                {"text": f"暂缓{d}天", "callback_data": snooze_cb(x.assignment_id, d)} for d in SNOOZE_DAYS
            ]
        keyboard.append(row)

    rendered = Rendered(text=text, keyboard=keyboard, assignment_ids=[x.assignment_id for x in ordered],
                        documents=attached)
    if of(Kind.digest):
        rendered.subject_kind = SubjectKind.digest
    if not ordered and len(said_inst) == 1 and not said_sup:
        rendered.subject_kind = SubjectKind.instruction
        rendered.subject_id = next(iter(said_inst))
    if not ordered and len(said_sup) == 1 and not said_inst:
        rendered.subject_kind = SubjectKind.supervision
        rendered.subject_id = next(iter(said_sup))
    if len(ordered) == 1 and not of(Kind.digest):
        a = open_asg[ordered[0].assignment_id]
        rendered.subject_kind = SubjectKind.task
        rendered.subject_id = a.task_id
    units = {x.unit_id for x in ordered}
    if len(units) == 1:
        rendered.unit_id = next(iter(units))
    return rendered


def open_instructions_of(inp: PlanInput, unit_id: int) -> int:
    """How many open 批示 still wait for ``unit_id``'s 落实情况 (shown beside it in nudges)."""
    return sum(1 for i in inp.instructions
               if unit_id in i.unit_ids and unit_id not in inp.answered.get(i.id or 0, set())
               and i.state == InstructionState.open)


def _summary(lines: list[_Line], today: date) -> str:
    """One unit's lines in one: counts by urgency and the task numbers."""
    overdue = [x for x in lines if x.deadline < today]
    due_today = [x for x in lines if x.deadline == today]
    soon = [x for x in lines if x.deadline > today]
    parts = []
    if overdue:
        oldest = min(x.deadline for x in overdue)
        parts.append(f"🔴 逾期 {len(overdue)} 项（最早截止 {day(oldest, today)}）")
    if due_today:
        parts.append(f"⏰ 今天截止 {len(due_today)} 项")
    if soon:
        nearest = min(x.deadline for x in soon)
        parts.append(f"🟡 即将到期 {len(soon)} 项（最近 {day(nearest, today)}）")
    numbers = "、".join(str(x.task_no) for x in sorted(lines, key=lambda x: x.task_no))
    return "；".join(parts) + f"。任务 {numbers}"


def _fit(parts: list[str], body: list[str], footer: str) -> str:
    """Join the sections, dropping trailing lines (with a note) beyond MAX_TEXT."""
    head = "\n".join(parts)
    tail = f"\n\n{footer}" if footer else ""
    kept: list[str] = []
    size = len(head) + len(tail) + 2
    dropped = 0
    for i, line in enumerate(body):
        if size + len(line) + 1 > MAX_TEXT - 60:
            dropped = sum(1 for x in body[i:] if x.startswith("  "))
            break
        kept.append(line)
        size += len(line) + 1
    if dropped:
        kept.append(f"……另有 {dropped} 项未列出，请发送 /status 查看全部。")
    text = head
    if kept:
        text += "\n\n" + "\n".join(kept)
    return text + tail
