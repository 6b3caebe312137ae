"""The supervision loop in the bot: 批示, 督办单 and the 通报.

* A leader (or the coordinator) writes a 批示 by replying to a task, item, unit or nudge
  message, or with ``/instruct``; it goes to the units' liaisons (a mention in the work
  groups and a private message) and to the coordinators. A liaison replies to it with the
  落实情况; a leader or the coordinator replies “办结” to the answer (or sends ``/close N``).
* The coordinator issues a numbered 督办单 with ``/supervise``; it goes to the unit and is
  copied to the leaders. The liaison replies to it; the coordinator replies “办结”.
* ``/bulletin`` shows the 通报 to the coordinator; ``/bulletin 发布`` sends it (text and DOCX)
  to the work groups and the leaders.

The rules (who owes what, the states, the numbering, the ranking) are the domain's
(``models.supervision``, ``models.performance``); this module words and routes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date

from sqlmodel import Session, select

from bot import queries
from bot.actions.common import Req, member_of, notify_unit, replied_row
from bot.context import Out, Subject
from models import calendar, members, supervision
from models.errors import InvalidInput, NotFound
from models.members import Env
from models.permissions import Action, check
from models.tables import (
    Assignment,
    BotMessage,
    Criterion,
    Instruction,
    InstructionState,
    Member,
    Role,
    ScoreItem,
    SubjectKind,
    Task,
)
from models.wording import esc, full_date, member_name, mention, quoted, short
from reports.supervision import CRITICIZE, PRAISE, BulletinData, bulletin_data, bulletin_text
from scheduler.outbox import assignments_of_message

#: Messages a leader's reply turns into a 批示.
INSTRUCTABLE = frozenset({SubjectKind.task, SubjectKind.assignment, SubjectKind.item, SubjectKind.criterion,
                          SubjectKind.unit, SubjectKind.nudge, SubjectKind.digest})
CLOSE_WORDS = frozenset({"办结", "已办结", "同意办结"})
INSTRUCT_USAGE = "/instruct 任务号 批示内容，例如 /instruct 7 请加快推进，本周内报送进展；也可回复任务、评分项或单位消息发送 /instruct 批示内容"
SUPERVISE_USAGE = "/supervise 任务号 单位 原因 答复期限，例如 /supervise 7 区财政局 逾期未报送 2027年3月15日"


def _leaders(session: Session, campaign_id: int) -> list[Member]:
    return [m for m in session.exec(select(Member).where(
        Member.campaign_id == campaign_id, Member.role == Role.leader, Member.active == True))  # noqa: E712
        if m.private_chat_id and m.reachable]


def _coordinators(session: Session, campaign_id: int) -> list[Member]:
    return [m for m in members.coordinators(session, campaign_id) if m.private_chat_id and m.reachable]


def _to_units(session: Session, campaign_id: int, unit_ids: list[int], text: str, subject: Subject) -> list[Out]:
    """A mention of the units' liaisons in each work group, and a private message to each."""
    outs: list[Out] = []
    heads = []
    for uid in unit_ids:
        liaisons = queries.liaisons_of(session, campaign_id=campaign_id, unit_id=uid)
        name = esc(queries.unit_name(session, uid))
        heads.append(f"{name} " + "、".join(mention(m) for m in liaisons) if liaisons else f"{name}（尚无联络员）")
        for m in liaisons:
            if m.private_chat_id and m.reachable:
                outs.append(Out(text, chat_id=m.private_chat_id, subject=Subject(
                    subject.kind, subject.id, campaign_id, uid)))
    group_text = text + "\n" + "；".join(heads)
    for chat in members.bound_groups(session, campaign_id):
        outs.append(Out(group_text, chat_id=chat.telegram_chat_id, subject=subject))
    return outs


def _private(people: list[Member], text: str, subject: Subject | None, *, but: Member | None = None) -> list[Out]:
    return [Out(text, chat_id=m.private_chat_id, subject=subject) for m in people
            if but is None or m.id != but.id]


def _target_words(session: Session, inst: Instruction) -> str:
    if inst.task_id is not None:
        task = session.get(Task, inst.task_id)
        return f"关于任务{task.no}{quoted(esc(short(task.title, 30)))}" if task else ""
    if inst.item_id is not None:
        item = session.get(ScoreItem, inst.item_id)
        return f"关于评分项第{item.no}项" if item else ""
    return f"关于{esc(queries.unit_name(session, inst.unit_ids[0]))}的工作" if inst.unit_ids else ""


def _units_words(session: Session, unit_ids: list[int]) -> str:
    return "、".join(esc(queries.unit_name(session, u)) for u in unit_ids)


# ================================================================== 批示


def instruct(session: Session, env: Env, req: Req, target_kind: str, target_id: int, text: str | None) -> list[Out]:
    """Record a 批示 and send it to its units and the coordinators."""
    me = member_of(env)
    check(member=env.member, action=Action.instruct)
    inst = supervision.create_instruction(
        session=session, campaign_id=env.campaign_id, author_member_id=me.id,  # type: ignore[arg-type]
        target_kind=target_kind, target_id=target_id, text=text, actor=env.actor, now=req.now, today=req.today,
        answer_working_days=req.settings.supervision.instruction_answer_working_days,
    )
    units = _units_words(session, inst.unit_ids)
    who = "领导" if me.role == Role.leader else "协调员"
    notice = (f"📝 <b>{who}批示</b>（第{inst.id}号）\n{esc(member_name(me))}{_target_words(session, inst)}批示：\n"
              f"“{esc(inst.text)}”\n\n请{units}于 {full_date(inst.answer_by)} 前<b>回复本消息</b>报送落实情况。")
    subject = Subject(SubjectKind.instruction, inst.id, env.campaign_id)
    outs = [Out(f"✅ 批示已记录（第{inst.id}号），已送达{units}，答复期限 {full_date(inst.answer_by)}。"
                f"单位报送落实情况后会通知你。")]
    outs += _to_units(session, env.campaign_id, inst.unit_ids, notice, subject)
    outs += _private(_coordinators(session, env.campaign_id), notice, subject, but=me)
    return outs


def instruct_cmd(session: Session, env: Env, req: Req, reply_to: int | None, text: str) -> list[Out]:
    """/instruct [任务号|单位] 批示内容, or /instruct 批示内容 as a reply to a message."""
    check(member=env.member, action=Action.instruct)
    row = _replied(session, env, reply_to)
    if row is not None and row.subject_kind in INSTRUCTABLE:
        kind, ident = target_of(session, env, row)
        return instruct(session, env, req, kind, ident, text)
    parts = text.split(maxsplit=1)
    if not parts:
        raise InvalidInput(f"批示内容不能为空。用法：{INSTRUCT_USAGE}")
    head, rest = parts[0], parts[1] if len(parts) > 1 else ""
    if re.fullmatch(r"\d{1,4}", head):
        task = queries.task_by_no(session, campaign_id=env.campaign_id, no=int(head))
        return instruct(session, env, req, "task", task.id, rest)  # type: ignore[arg-type]
    try:
        unit = members.find_unit(session, campaign_id=env.campaign_id, text=head)
    except (NotFound, InvalidInput):
        raise InvalidInput(f"请写明批示针对的任务号或单位。用法：{INSTRUCT_USAGE}") from None
    return instruct(session, env, req, "unit", unit.id, rest)  # type: ignore[arg-type]


def _replied(session: Session, env: Env, reply_to: int | None) -> BotMessage | None:
    return replied_row(session, env, reply_to)


def target_of(session: Session, env: Env, row: BotMessage) -> tuple[str, int]:
    """What a replied message is about, as a 批示's target."""
    if row.subject_kind == SubjectKind.task and row.subject_id is not None:
        return "task", row.subject_id
    if row.subject_kind == SubjectKind.assignment and row.subject_id is not None:
        a = session.get(Assignment, row.subject_id)
        if a is not None:
            return "task", a.task_id
    if row.subject_kind == SubjectKind.item and row.subject_id is not None:
        return "item", row.subject_id
    if row.subject_kind == SubjectKind.criterion and row.subject_id is not None:
        crit = session.get(Criterion, row.subject_id)
        if crit is not None:
            return "item", crit.item_id
    if row.subject_kind == SubjectKind.unit and row.subject_id is not None:
        return "unit", row.subject_id
    if row.unit_id is not None:
        return "unit", row.unit_id
    ids = assignments_of_message(session, chat_id=row.telegram_chat_id, message_id=row.message_id)
    tasks = {a.task_id for a in (session.get(Assignment, i) for i in ids) if a is not None}
    if len(tasks) == 1:
        return "task", tasks.pop()
    raise InvalidInput("这条消息涉及多项任务或多个单位，无法确定批示对象。请回复具体任务、评分项或单位的消息，"
                       f"或发送 {INSTRUCT_USAGE.split('；')[0]}")


def close_instruction(session: Session, env: Env, req: Req, instruction_id: int) -> list[Out]:
    """办结 a 批示 (a leader or the coordinator): its units and the author are told."""
    check(member=env.member, action=Action.close_instruction)
    inst = supervision.close_instruction(session=session, instruction_id=instruction_id, campaign_id=env.campaign_id,
                                         member_id=env.member.id if env.member else None, actor=env.actor, now=req.now)
    text = f"☑️ 批示（第{inst.id}号）已办结。"
    outs = [Out(text)]
    closer = esc(member_name(env.member)) if env.member is not None else ""
    told = f"{text}办结人：{closer}。{quoted(esc(short(inst.text, 40)))}"
    author = session.get(Member, inst.author_member_id)
    if author is not None and author.private_chat_id and env.member is not None and author.id != env.member.id:
        outs.append(Out(told, chat_id=author.private_chat_id))
    for unit_id in inst.unit_ids or []:  # the units that answered it hear it is done
        outs += notify_unit(session, env.campaign_id, unit_id, told, None)
    for coordinator in members.coordinators(session, env.campaign_id):  # and the office, unless it closed it
        if coordinator.private_chat_id and env.member is not None and coordinator.id not in (env.member.id, inst.author_member_id):
            outs.append(Out(told, chat_id=coordinator.private_chat_id))
    return outs


def answer_instruction(session: Session, env: Env, req: Req, inst_id: int, text: str) -> list[Out]:
    """A liaison's 落实情况: the author and the coordinators are told (they can reply “办结”)."""
    inst = supervision.get_instruction(session, campaign_id=env.campaign_id, instruction_id=inst_id)
    check(member=env.member, action=Action.answer_instruction, responsible_unit_ids=inst.unit_ids)
    me = member_of(env)
    unit_id = me.unit_id if me.unit_id in inst.unit_ids else (inst.unit_ids[0] if len(inst.unit_ids) == 1 else None)
    if unit_id is None:
        raise InvalidInput("这条批示涉及多个单位，请由责任单位的联络员回复报送落实情况。")
    inst = supervision.answer_instruction(session=session, instruction_id=inst_id, campaign_id=env.campaign_id,
                                          unit_id=unit_id, member_id=me.id, text=text, actor=env.actor, now=req.now)
    unit = esc(queries.unit_name(session, unit_id))
    done = inst.state == InstructionState.answered
    pending = supervision.unanswered_units(session, inst)
    tail = ("责任单位已全部报送（已答复）。如已落实到位，请<b>回复本消息“办结”</b>，或发送 /close "
            f"{inst.id}。" if done else f"尚待{_units_words(session, pending)}报送。")
    notice = (f"📬 {unit}报送了批示（第{inst.id}号）的落实情况：\n“{esc(short(inst.text, 60))}”\n"
              f"落实情况：{esc(' '.join(text.split()))}\n{tail}")
    subject = Subject(SubjectKind.instruction, inst.id, env.campaign_id)
    people = {m.id: m for m in _coordinators(session, env.campaign_id)}
    author = session.get(Member, inst.author_member_id)
    if author is not None and author.private_chat_id and author.reachable and author.active:
        people[author.id] = author
    outs = [Out(f"✅ 已报送{unit}对批示（第{inst.id}号）的落实情况，已转呈批示领导和协调员。")]
    outs += _private(list(people.values()), notice, subject, but=me)
    return outs


def reply_to_instruction(session: Session, env: Env, req: Req, row: BotMessage, text: str) -> list[Out]:
    """A reply to a 批示 message: “办结” closes it (a leader or the coordinator); anything else is
    the unit's 落实情况."""
    assert row.subject_id is not None
    if " ".join(text.split()) in CLOSE_WORDS:
        return close_instruction(session, env, req, row.subject_id)
    return answer_instruction(session, env, req, row.subject_id, text)


def close_cmd(session: Session, env: Env, req: Req, text: str) -> list[Out]:
    """/close N: 办结 批示 N."""
    check(member=env.member, action=Action.close_instruction)
    m = re.fullmatch(r"\s*(?:批示)?\s*第?\s*(\d{1,9})\s*号?\s*", text or "")
    if not m:
        raise InvalidInput("用法：/close 批示编号，例如 /close 3（编号见批示消息中的“第N号”）。")
    return close_instruction(session, env, req, int(m.group(1)))


# ================================================================== 督办单


def supervise(session: Session, env: Env, req: Req, task_no: int, unit_text: str, reason: str,
              reply_by: date) -> list[Out]:
    """/supervise: issue a numbered 督办单 to the unit, copied to the leaders."""
    check(member=env.member, action=Action.supervise)
    task = queries.task_by_no(session, campaign_id=env.campaign_id, no=task_no)
    unit = members.find_unit(session, campaign_id=env.campaign_id, text=unit_text)
    sup = supervision.issue_supervision(
        session=session, campaign_id=env.campaign_id, task=task, unit=unit, reason=reason, reply_by=reply_by,
        member_id=env.member.id if env.member else None, actor=env.actor, now=req.now, today=req.today,
        number_format=req.settings.supervision.number_format,
    )
    body = (f"📕 <b>督办单</b> {esc(sup.number)}\n督办单位：{esc(unit.name)}\n督办事项：任务{task.no}"
            f"{quoted(esc(short(task.title, 40)))}（截止 {full_date(task.deadline)}）\n督办原因：{esc(sup.reason)}\n"
            f"答复期限：{full_date(sup.reply_by)}")
    to_unit = body + "\n\n请于答复期限前<b>回复本消息</b>报告办理情况。"
    subject = Subject(SubjectKind.supervision, sup.id, env.campaign_id, unit.id)
    said = f"✅ 已下发督办单 {esc(sup.number)}，已送达{esc(unit.name)}并抄送领导。"
    if not calendar.is_working_day(sup.reply_by):  # as /deadline warns of a day off
        said += (f"\n⚠️ 答复期限 {full_date(sup.reply_by, weekday=True)}不是工作日（节假日或周末），"
                 f"单位可能在 {full_date(calendar.first_working_day_on_or_after(sup.reply_by), weekday=True)}才能答复。")
    outs = [Out(said)]
    outs += _to_units(session, env.campaign_id, [unit.id], to_unit, subject)  # type: ignore[list-item]
    outs += _private(_leaders(session, env.campaign_id), "（抄送）" + body, None)
    return outs


def reply_to_supervision(session: Session, env: Env, req: Req, row: BotMessage, text: str) -> list[Out]:
    """A reply to a 督办单 message: “办结” closes it (the coordinator); anything else is the unit's answer."""
    assert row.subject_id is not None
    sup = supervision.get_supervision(session, campaign_id=env.campaign_id, supervision_id=row.subject_id)
    if " ".join(text.split()) in CLOSE_WORDS:
        check(member=env.member, action=Action.close_supervision)
        sup = supervision.close_supervision(session=session, supervision_id=row.subject_id,
                                            campaign_id=env.campaign_id, member_id=env.member.id if env.member else None,
                                            actor=env.actor, now=req.now)
        done = f"☑️ 督办单 {esc(sup.number)} 已办结。"
        return [Out(done), *notify_unit(session, env.campaign_id, sup.unit_id, done, None)]
    check(member=env.member, action=Action.answer_supervision, responsible_unit_ids=[sup.unit_id])
    me = member_of(env)
    sup = supervision.answer_supervision(session=session, supervision_id=row.subject_id, campaign_id=env.campaign_id,
                                         member_id=me.id, text=text, actor=env.actor, now=req.now)
    unit = esc(queries.unit_name(session, sup.unit_id))
    notice = (f"📬 {unit}答复了督办单 {esc(sup.number)}：\n{esc(sup.answer or '')}\n"
              "如已办理到位，请<b>回复本消息“办结”</b>。")
    subject = Subject(SubjectKind.supervision, sup.id, env.campaign_id, sup.unit_id)
    return [Out(f"✅ 已报送对督办单 {esc(sup.number)} 的答复，等待协调员办结。"),
            *_private(_coordinators(session, env.campaign_id), notice, subject, but=me),
            *_private(_leaders(session, env.campaign_id), notice.rsplit("\n", 1)[0], None)]


# ================================================================== where they show


def open_lines(session: Session, campaign_id: int, today: date, *, unit_id: int | None = None,
               task_id: int | None = None) -> list[str]:
    """The open 批示 and 督办单 (of a unit or a task), one line each, for /status, /unit, /task."""
    insts = supervision.open_instructions(session, campaign_id=campaign_id, unit_id=unit_id, task_id=task_id)
    sups = supervision.open_supervisions(session, campaign_id=campaign_id, unit_id=unit_id, task_id=task_id)
    if not insts and not sups:
        return []
    lines = [f"<b>未办结的批示 {len(insts)} 件、督办单 {len(sups)} 件</b>"]
    for i in insts[:10]:
        lines.append(f"📝 批示第{i.id}号（{_units_words(session, i.unit_ids)}）：{esc(short(i.text, 30))}"
                     f" · {supervision.INSTRUCTION_LABELS[i.state]}，答复期限 {full_date(i.answer_by)}")
    for s in sups[:10]:
        lines.append(f"📕 {esc(s.number)}（{esc(queries.unit_name(session, s.unit_id))}）："
                     f"{supervision.SUPERVISION_LABELS[supervision.supervision_state(s, today)]}，"
                     f"答复期限 {full_date(s.reply_by)}")
    return lines


# ================================================================== 通报


@dataclass
class BulletinPlan:
    """What /bulletin decided: the text to show, the DOCX, and where both go."""

    data: BulletinData
    outs: list[Out]
    chat_ids: list[int] = field(default_factory=list)


def parse_verdicts(session: Session, campaign_id: int, words: list[str]) -> dict[int, str]:
    """``表扬 区财政局 区教育局 批评 区发改委`` → unit id → praise/criticize."""
    verdicts: dict[int, str] = {}
    current: str | None = None
    for w in words:
        if w in ("表扬",):
            current = PRAISE
            continue
        if w in ("批评", "通报批评"):
            current = CRITICIZE
            continue
        if current is None:
            raise InvalidInput(f"无法识别“{esc(w)}”。用法：/bulletin 发布 表扬 单位… 批评 单位…")
        unit = members.find_unit(session, campaign_id=campaign_id, text=w)
        verdicts[unit.id] = current  # type: ignore[index]
    return verdicts


def bulletin(session: Session, env: Env, req: Req, text: str) -> BulletinPlan:
    """/bulletin: a preview to the coordinator; /bulletin 发布 …: issue it to the groups and leaders."""
    check(member=env.member, action=Action.bulletin)
    words = text.split()
    publish = bool(words) and words[0] in ("发布", "发送")
    verdicts = parse_verdicts(session, env.campaign_id, words[1:] if publish else words)
    data = bulletin_data(session=session, campaign_id=env.campaign_id, today=req.today, verdicts=verdicts)
    body = bulletin_text(data)
    if not publish:
        hint = ("\n\n（预览，尚未发送）确认无误后发送 <b>/bulletin 发布</b>；如需表扬或通报批评，"
                "例如 /bulletin 发布 表扬 区财政局 批评 区发改委（默认不作评价）。")
        return BulletinPlan(data, [Out(body + hint)], [])
    supervision.issue_bulletin(session=session, campaign_id=env.campaign_id, kind="bulletin",
                               snapshot=data.snapshot(), actor=env.actor, now=req.now,
                               after={"issue": data.issue, "verdicts": verdicts})
    chats = [c.telegram_chat_id for c in members.bound_groups(session, env.campaign_id)]
    chats += [m.private_chat_id for m in _leaders(session, env.campaign_id) if m.private_chat_id]
    outs = [Out(f"✅ 第{data.issue}期通报已发布，已发送至工作群和领导。")]
    outs += [Out(body, chat_id=c) for c in chats]
    return BulletinPlan(data, outs, chats)
