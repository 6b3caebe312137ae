"""The supervision loop's records: 批示 (instructions) and 督办单 (numbered supervision notices).

A 批示 is written by a leader (or the coordinator) on a task, a score item or a unit. It is
owed a 落实情况 by each responsible unit within ``answer_working_days`` working days
(:func:`models.calendar.add_working_days`); once every unit answered it is 已答复, and a leader
or the coordinator closes it (已办结).

A 督办单 is issued by the coordinator to one unit about one of its unfinished tasks. It is
numbered per campaign and calendar year (``number_format``, e.g. ``质强督〔2027〕1号``), has a
reply-by date, and is 已下发 → 已答复 → 已办结; one still 已下发 after its reply-by date is 已逾期
(:func:`supervision_state`, derived, never stored).

Helpers never commit; every write is audited (``instruction.*``, ``supervision.*``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime

import sqlalchemy as sa
from sqlmodel import Session, col, select

from models import calendar
from models.audit import Actor, record, snapshot
from models.errors import Conflict, InvalidInput, NotFound, StaleVersion
from models.owners import item_unit_ids
from models.tables import (
    Assignment,
    AssignmentState,
    Bulletin,
    Instruction,
    InstructionAnswer,
    InstructionState,
    ScoreItem,
    Supervision,
    SupervisionState,
    Task,
    Unit,
)

#: The longest 批示, 落实情况 or 督办 reason accepted.
MAX_TEXT = 1000

INSTRUCTION_LABELS: dict[InstructionState, str] = {
    InstructionState.open: "待落实",
    InstructionState.answered: "已答复",
    InstructionState.closed: "已办结",
}
#: The four states of a 督办单 as people read them ("overdue" is derived).
SUPERVISION_LABELS: dict[str, str] = {
    "issued": "已下发",
    "answered": "已答复",
    "closed": "已办结",
    "overdue": "已逾期",
}
_INSTRUCTION_FIELDS = ("state", "text", "unit_ids", "answer_by", "version")
_SUPERVISION_FIELDS = ("state", "number", "unit_id", "task_id", "reply_by", "reason", "answer", "version")


def _text(text: str | None, *, what: str, example: str) -> str:
    cleaned = " ".join((text or "").replace("\x00", "").split())
    if not cleaned:
        raise InvalidInput(f"{what}不能为空。{example}")
    if len(cleaned) > MAX_TEXT:
        raise InvalidInput(f"{what}过长（{len(cleaned)} 字），请控制在 {MAX_TEXT} 字以内。")
    return cleaned


def _open_unit_ids(session: Session, task_id: int) -> list[int]:
    """The units that carry a task (their assignment is not retired), in id order."""
    return sorted(session.exec(select(Assignment.unit_id).where(
        Assignment.task_id == task_id, col(Assignment.retired).is_(False))).all())


# ------------------------------------------------------------------ 批示


def instruction_units(
    session: Session, *, campaign_id: int, target_kind: str, target_id: int
) -> list[int]:
    """The units a 批示 on a task, a score item or a unit is addressed to."""
    if target_kind == "task":
        task = session.get(Task, target_id)
        if task is None or task.campaign_id != campaign_id:
            raise NotFound("没有找到这项任务。")
        return _open_unit_ids(session, target_id)
    if target_kind == "item":
        item = session.get(ScoreItem, target_id)
        if item is None or item.campaign_id != campaign_id:
            raise NotFound("没有找到这个评分项。")
        return sorted(item_unit_ids(session, item))
    if target_kind == "unit":
        unit = session.get(Unit, target_id)
        if unit is None or unit.campaign_id != campaign_id:
            raise NotFound("没有找到这个单位。")
        return [target_id]
    raise InvalidInput("批示只能针对任务、评分项或单位。")


def create_instruction(
    *,
    session: Session,
    campaign_id: int,
    author_member_id: int,
    target_kind: str,
    target_id: int,
    text: str | None,
    actor: Actor,
    now: datetime,
    today: date,
    answer_working_days: int,
) -> Instruction:
    """Record a 批示; it is owed a 落实情况 by its units within ``answer_working_days`` working days."""
    body = _text(text, what="批示内容", example="请在回复或命令后写明批示意见，例如：/instruct 7 请抓紧推进，本周内报送进展。")
    units = instruction_units(session, campaign_id=campaign_id, target_kind=target_kind, target_id=target_id)
    if not units:
        raise InvalidInput("该事项没有责任单位，批示无人落实。请先由协调员明确责任单位。")
    inst = Instruction(
        campaign_id=campaign_id, author_member_id=author_member_id, text=body, target_kind=target_kind,
        task_id=target_id if target_kind == "task" else None,
        item_id=target_id if target_kind == "item" else None,
        unit_ids=units, answer_by=calendar.add_working_days(today, answer_working_days),
        created_at=now,
    )
    session.add(inst)
    session.flush()
    record(session=session, actor=actor, action="instruction.create", entity="instruction", entity_id=inst.id,
           at=now, campaign_id=campaign_id, after=snapshot(inst, _INSTRUCTION_FIELDS))
    return inst


def get_instruction(session: Session, *, campaign_id: int, instruction_id: int) -> Instruction:
    inst = session.get(Instruction, instruction_id)
    if inst is None or inst.campaign_id != campaign_id:
        raise NotFound("没有找到这条批示。")
    return inst


def answers_of(session: Session, instruction_id: int) -> list[InstructionAnswer]:
    return list(session.exec(select(InstructionAnswer).where(
        InstructionAnswer.instruction_id == instruction_id).order_by(col(InstructionAnswer.id))))


def answer_instruction(
    *,
    session: Session,
    instruction_id: int,
    campaign_id: int,
    unit_id: int,
    member_id: int | None,
    text: str | None,
    actor: Actor,
    now: datetime,
) -> Instruction:
    """A unit's 落实情况; the 批示 is 已答复 once every one of its units answered."""
    inst = get_instruction(session, campaign_id=campaign_id, instruction_id=instruction_id)
    if inst.state == InstructionState.closed:
        raise Conflict("这条批示已办结，无需再报送落实情况。")
    if unit_id not in inst.unit_ids:
        raise InvalidInput("这条批示不是发给你的单位的。")
    body = _text(text, what="落实情况", example="请回复批示消息，写明落实情况。")
    before = snapshot(inst, _INSTRUCTION_FIELDS)
    session.add(InstructionAnswer(campaign_id=campaign_id, instruction_id=instruction_id, unit_id=unit_id,
                                  member_id=member_id, text=body, created_at=now))
    session.flush()
    answered = {a.unit_id for a in answers_of(session, instruction_id)}
    if inst.state == InstructionState.open and set(inst.unit_ids) <= answered:
        inst.state = InstructionState.answered
        inst.answered_at = now
    inst.version += 1
    session.add(inst)
    session.flush()
    record(session=session, actor=actor, action="instruction.answer", entity="instruction", entity_id=inst.id,
           at=now, campaign_id=campaign_id, before=before, after=snapshot(inst, _INSTRUCTION_FIELDS),
           note=body)
    return inst


def close_instruction(
    *,
    session: Session,
    instruction_id: int,
    campaign_id: int,
    member_id: int | None,
    actor: Actor,
    now: datetime,
    expected_version: int | None = None,
) -> Instruction:
    """办结: a leader or the coordinator closes a 批示 its units answered."""
    inst = get_instruction(session, campaign_id=campaign_id, instruction_id=instruction_id)
    if expected_version is not None and inst.version != expected_version:
        raise StaleVersion("这条批示已有变化。")
    if inst.state == InstructionState.closed:
        raise Conflict("这条批示已办结。")
    if inst.state != InstructionState.answered:
        raise InvalidInput("责任单位尚未全部报送落实情况，暂不能办结。")
    before = snapshot(inst, _INSTRUCTION_FIELDS)
    inst.state = InstructionState.closed
    inst.closed_at = now
    inst.closed_by_member_id = member_id
    inst.version += 1
    session.add(inst)
    session.flush()
    record(session=session, actor=actor, action="instruction.close", entity="instruction", entity_id=inst.id,
           at=now, campaign_id=campaign_id, before=before, after=snapshot(inst, _INSTRUCTION_FIELDS))
    return inst


def open_instructions(
    session: Session, *, campaign_id: int, unit_id: int | None = None, task_id: int | None = None
) -> list[Instruction]:
    """批示 not yet closed (待落实 or 已答复), oldest first; of one unit or task when given."""
    rows = session.exec(select(Instruction).where(
        Instruction.campaign_id == campaign_id, Instruction.state != InstructionState.closed,
    ).order_by(col(Instruction.id))).all()
    return [i for i in rows if (unit_id is None or unit_id in i.unit_ids)
            and (task_id is None or i.task_id == task_id)]


def unanswered_units(session: Session, inst: Instruction) -> list[int]:
    """The units of ``inst`` that have not reported their 落实情况 yet."""
    answered = {a.unit_id for a in answers_of(session, saved(inst))}
    return [u for u in inst.unit_ids if u not in answered]


def saved(row: Instruction | Supervision) -> int:
    assert row.id is not None
    return row.id


# ------------------------------------------------------------------ 督办单


def supervision_state(sup: Supervision, today: date) -> str:
    """``issued``, ``answered``, ``closed`` or ``overdue`` (issued and past its reply-by date)."""
    if sup.state == SupervisionState.issued and sup.reply_by < today:
        return "overdue"
    return sup.state.value


def next_number(session: Session, *, campaign_id: int, year: int) -> int:
    """The next 督办单 sequence number of ``campaign_id`` in ``year`` (1 for the first)."""
    top = session.exec(select(sa.func.max(Supervision.seq)).where(
        Supervision.campaign_id == campaign_id, Supervision.year == year)).one()
    return int(top or 0) + 1


def issue_supervision(
    *,
    session: Session,
    campaign_id: int,
    task: Task,
    unit: Unit,
    reason: str | None,
    reply_by: date,
    member_id: int | None,
    actor: Actor,
    now: datetime,
    today: date,
    number_format: str,
) -> Supervision:
    """Issue a numbered 督办单 to ``unit`` about its unfinished ``task``."""
    asg = session.exec(select(Assignment).where(
        Assignment.task_id == task.id, Assignment.unit_id == unit.id)).first()
    if asg is None or asg.retired:
        raise InvalidInput(f"{unit.name}不负责任务{task.no}，不能就此下发督办单。")
    if asg.state in (AssignmentState.submitted, AssignmentState.approved):
        word = "已提交" if asg.state == AssignmentState.submitted else "已审核通过"
        raise InvalidInput(f"{unit.name}的任务{task.no}{word}，无需督办。")
    body = _text(reason, what="督办原因", example="用法：/supervise 任务号 单位 原因 答复期限")
    if reply_by <= today:
        raise InvalidInput("答复期限须晚于今天，请重新填写日期。")
    year = today.year
    seq = next_number(session, campaign_id=campaign_id, year=year)
    sup = Supervision(
        campaign_id=campaign_id, year=year, seq=seq, number=number_format.format(year=year, seq=seq),
        task_id=task.id, unit_id=unit.id, reason=body, reply_by=reply_by,  # type: ignore[arg-type]
        issued_by_member_id=member_id, issued_at=now,
    )
    session.add(sup)
    session.flush()
    record(session=session, actor=actor, action="supervision.issue", entity="supervision", entity_id=sup.id,
           at=now, campaign_id=campaign_id, after=snapshot(sup, _SUPERVISION_FIELDS), note=body)
    return sup


def get_supervision(session: Session, *, campaign_id: int, supervision_id: int) -> Supervision:
    sup = session.get(Supervision, supervision_id)
    if sup is None or sup.campaign_id != campaign_id:
        raise NotFound("没有找到这份督办单。")
    return sup


def answer_supervision(
    *,
    session: Session,
    supervision_id: int,
    campaign_id: int,
    member_id: int | None,
    text: str | None,
    actor: Actor,
    now: datetime,
) -> Supervision:
    """The unit's answer to a 督办单 (已答复); a later answer replaces an earlier one."""
    sup = get_supervision(session, campaign_id=campaign_id, supervision_id=supervision_id)
    if sup.state == SupervisionState.closed:
        raise Conflict(f"督办单{sup.number}已办结，无需再答复。")
    body = _text(text, what="督办答复", example="请回复督办单消息，写明办理情况。")
    before = snapshot(sup, _SUPERVISION_FIELDS)
    sup.state = SupervisionState.answered
    sup.answer = body
    sup.answered_by_member_id = member_id
    sup.answered_at = now
    sup.version += 1
    session.add(sup)
    session.flush()
    record(session=session, actor=actor, action="supervision.answer", entity="supervision", entity_id=sup.id,
           at=now, campaign_id=campaign_id, before=before, after=snapshot(sup, _SUPERVISION_FIELDS))
    return sup


def close_supervision(
    *,
    session: Session,
    supervision_id: int,
    campaign_id: int,
    member_id: int | None,
    actor: Actor,
    now: datetime,
    expected_version: int | None = None,
) -> Supervision:
    """办结 a 督办单 the unit answered (the coordinator)."""
    sup = get_supervision(session, campaign_id=campaign_id, supervision_id=supervision_id)
    if expected_version is not None and sup.version != expected_version:
        raise StaleVersion("这份督办单已有变化。")
    if sup.state == SupervisionState.closed:
        raise Conflict(f"督办单{sup.number}已办结。")
    if sup.state != SupervisionState.answered:
        raise InvalidInput(f"{sup.number}尚未收到单位答复，暂不能办结。")
    before = snapshot(sup, _SUPERVISION_FIELDS)
    sup.state = SupervisionState.closed
    sup.closed_at = now
    sup.closed_by_member_id = member_id
    sup.version += 1
    session.add(sup)
    session.flush()
    record(session=session, actor=actor, action="supervision.close", entity="supervision", entity_id=sup.id,
           at=now, campaign_id=campaign_id, before=before, after=snapshot(sup, _SUPERVISION_FIELDS))
    return sup


def open_supervisions(
    session: Session, *, campaign_id: int, unit_id: int | None = None, task_id: int | None = None
) -> list[Supervision]:
    """督办单 not yet closed, oldest first; of one unit or task when given."""
    q = select(Supervision).where(Supervision.campaign_id == campaign_id,
                                  Supervision.state != SupervisionState.closed)
    if unit_id is not None:
        q = q.where(Supervision.unit_id == unit_id)
    if task_id is not None:
        q = q.where(Supervision.task_id == task_id)
    return list(session.exec(q.order_by(col(Supervision.id))))


def all_of_campaign(session: Session, campaign_id: int) -> tuple[Sequence[Instruction], Sequence[Supervision]]:
    """Every 批示 and 督办单 of a campaign (the ledger's sheets)."""
    return (session.exec(select(Instruction).where(Instruction.campaign_id == campaign_id)
                         .order_by(col(Instruction.id))).all(),
            session.exec(select(Supervision).where(Supervision.campaign_id == campaign_id)
                         .order_by(col(Supervision.id))).all())


def issue_bulletin(*, session: Session, campaign_id: int, kind: str, snapshot: dict[str, object], actor: Actor,
                   now: datetime, after: dict[str, object]) -> Bulletin:
    """ONE way a 通报 (``kind`` "bulletin") or 月报 ("monthly") is issued, on demand or by the
    scheduler: its row (the figures the next one compares with) and its audit row."""
    row = Bulletin(campaign_id=campaign_id, kind=kind, created_at=now, snapshot=snapshot)
    session.add(row)
    session.flush()
    record(session=session, actor=actor, action=f"{kind}.issue", entity="bulletin", entity_id=row.id,
           at=now, campaign_id=campaign_id, after=after)
    return row
