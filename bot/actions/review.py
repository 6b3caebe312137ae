"""The coordinator's review: /review, approving, returning with a reason, /deadline."""

from __future__ import annotations

from datetime import date

from sqlmodel import Session

from bot import queries, render
from bot.actions.common import (
    Req,
    button_version,
    member_of,
    notify_unit,
    reachable_liaisons,
    same_campaign,
)
from bot.actions.reporting import checked_assignment
from bot.callbacks import button
from bot.context import Answer, Out, Subject
from bot.parsing import check_reason
from models import calendar, members, progress, wording
from models.errors import NotFound, PermissionDenied
from models.evidence import evidence_for, return_evidence, target_label
from models.members import Env
from models.messages import lookup, remember, target_of
from models.permissions import Action, check
from models.tables import (
    BotMessage,
    Criterion,
    Evidence,
    ScoreItem,
    SubjectKind,
    Task,
)

REVIEW_PAGE = 10


def review(session: Session, env: Env, req: Req) -> list[Out]:
    """/review: one message per waiting item, each with 通过/退回 buttons."""
    check(member=env.member, action=Action.review)
    assignments, claims, evidence = queries.review_queue(session, campaign_id=env.campaign_id)
    total = len(assignments) + len(claims) + len(evidence)
    if total == 0:
        return [Out("🎉 目前没有待审核的事项。")]
    outs = [Out(f"🗂 待审核：任务 {len(assignments)} 项，细则申报 {len(claims)} 项，证明材料 {len(evidence)} 份。")]
    for a in assignments:
        task = session.get(Task, a.task_id)
        assert task is not None
        text = (f"📥 <b>任务{task.no}</b> · {wording.esc(queries.unit_name(session, a.unit_id))} 报告完成（进度 {a.percent}%）\n"
                f"{wording.esc(wording.short(task.title, 80))}")
        if a.note:
            text += f"\n进展说明：{wording.esc(wording.short(a.note, 200))}"
        text += _evidence_note(session, campaign_id=a.campaign_id, unit_id=a.unit_id, task_id=a.task_id)
        outs.append(Out(text, buttons=[[("✅ 通过", button("a", "ok", a.id, a.version)), ("↩️ 退回", button("a", "rt", a.id, a.version))]],  # type: ignore[arg-type]
                        subject=Subject(SubjectKind.assignment, a.id, a.campaign_id, a.unit_id), quote=False))
    for s in claims:
        crit = session.get(Criterion, s.criterion_id)
        item = session.get(ScoreItem, crit.item_id) if crit else None
        if crit is None or item is None:
            continue
        text = (f"✋ <b>细则 {item.no}.{crit.no}</b>（{wording.points(crit.points)}分）· {wording.esc(queries.unit_name(session, s.unit_id))} 申报达标\n"
                f"{wording.esc(wording.short(crit.standalone, 120))}")
        if s.claim_note:
            text += f"\n说明：{wording.esc(wording.short(s.claim_note, 200))}"
        text += _evidence_note(session, campaign_id=crit.campaign_id, unit_id=s.unit_id, criterion_id=crit.id)
        outs.append(Out(text, buttons=[[("✅ 通过", button("c", "ok", crit.id, s.version)), ("↩️ 退回", button("c", "rt", crit.id, s.version))]],  # type: ignore[arg-type]
                        subject=Subject(SubjectKind.criterion, crit.id, crit.campaign_id, s.unit_id), quote=False))
    for ev in evidence:
        target = target_label(session, task_id=ev.task_id, item_id=ev.item_id, criterion_id=ev.criterion_id)
        text = render.evidence_line(ev, target, queries.unit_name(session, ev.unit_id))
        if ev.caption:
            text += f"\n说明：{wording.esc(wording.short(ev.caption, 200))}"
        if env.is_group:  # a file may have been sent privately: it is shown in private only
            text += "\n（文件本身请在与我的私聊中发送 /review 查看）"
        outs.append(Out(text, buttons=[[("✅ 通过", button("e", "ok", ev.id, 0)), ("↩️ 退回", button("e", "rt", ev.id, 0))]],  # type: ignore[arg-type]
                        subject=Subject(SubjectKind.evidence, ev.id, ev.campaign_id, ev.unit_id), quote=False,
                        document=None if env.is_group else ev.telegram_file_id))
    if len(outs) > REVIEW_PAGE + 1:
        rest = len(outs) - 1 - REVIEW_PAGE
        outs = outs[: REVIEW_PAGE + 1] + [Out(f"……还有 {rest} 项。处理完上面的再发送 /review 查看。", quote=False)]
    return outs


def _evidence_note(session: Session, *, campaign_id: int, unit_id: int | None, task_id: int | None = None,
                   criterion_id: int | None = None) -> str:
    """What a review card says of the files behind a completion or a claim (names, or a warning)."""
    files = evidence_for(session, campaign_id=campaign_id, unit_id=unit_id, task_id=task_id,
                         criterion_id=criterion_id)
    if not files:
        return "\n⚠️ 没有附证明材料。"
    names = "".join(f"《{wording.esc(wording.short(f.file_name, 30))}》" for f in files[:5])
    more = f"等 {len(files)} 份" if len(files) > 5 else f"{len(files)} 份"
    return f"\n📎 证明材料 {more}：{names}"


def complete_return(session: Session, env: Env, req: Req, prompt: BotMessage, text: str) -> list[Out]:
    """The coordinator's reason, replied to the 退回 prompt: return and tell the unit."""
    member = member_of(env)
    check(member=member, action=Action.review)
    if prompt.for_member_id is not None and prompt.for_member_id != member.id:
        raise PermissionDenied("这条提示在等待另一位协调员填写原因。")
    reason = check_reason(text)
    target = target_of(session, prompt)
    if target is None or target.subject_id is None:
        raise NotFound("没有找到要退回的事项，可能已被删除。")
    kind, ident = target.subject_kind, target.subject_id
    edit = (target.telegram_chat_id, target.message_id)
    if kind == SubjectKind.assignment:
        a = checked_assignment(session, env, ident, Action.review)
        task = session.get(Task, a.task_id)
        progress.return_assignment(session=session, assignment_id=a.id, actor=env.actor, now=req.now,
                                   reason=reason)
        label = f"{queries.unit_name(session, a.unit_id)} · 任务{task.no if task else '?'}"
        unit_id, campaign_id = a.unit_id, a.campaign_id
        subject = Subject(SubjectKind.assignment, a.id, a.campaign_id, a.unit_id)
    elif kind == SubjectKind.criterion:
        crit = session.get(Criterion, ident)
        if crit is None:
            raise NotFound("没有找到这条细则。")
        same_campaign(env, crit.campaign_id, "这条细则")
        assessment = progress.reject_criterion(session=session, criterion_id=crit.id, actor=env.actor,
                                               now=req.now, reason=reason)
        item = session.get(ScoreItem, crit.item_id)
        unit_id, campaign_id = assessment.unit_id, crit.campaign_id
        label = f"{queries.unit_name(session, unit_id)} · 细则 {item.no if item else '?'}.{crit.no}"
        subject = Subject(SubjectKind.criterion, crit.id, crit.campaign_id, unit_id)
    elif kind == SubjectKind.evidence:

        ev = session.get(Evidence, ident)
        if ev is None:
            raise NotFound("没有找到这份证明材料。")
        same_campaign(env, ev.campaign_id, "这份证明材料")
        return_evidence(session, evidence_id=ev.id, reason=reason, actor=env.actor, now=req.now)  # type: ignore[arg-type]
        unit_id, campaign_id = ev.unit_id, ev.campaign_id
        label = f"{queries.unit_name(session, unit_id)} · 证明材料《{ev.file_name}》"
        subject = Subject(SubjectKind.evidence, ev.id, ev.campaign_id, unit_id)
    else:
        raise NotFound("这条提示对应的事项无法退回。")
    line = f"↩️ 已退回 {wording.esc(label)}：{wording.esc(reason)}"
    outs = [
        Out(line),
        Out(f"{line}\n（{wording.esc(member.display_name)} · {wording.when(req.now, req.settings.campaign.tz)}）", edit=edit),
    ]
    outs += notify_unit(session, campaign_id, unit_id, f"↩️ {wording.esc(label)} 被退回，原因：{wording.esc(reason)}\n请修改后重新提交（回复本消息即可）。", subject)
    return outs


def deadline(session: Session, env: Env, req: Req, task_no: int, new: date, reason: str | None) -> list[Out]:
    """/deadline N YYYY-MM-DD 原因: move a task's deadline (audited, with the reason; the rules
    are the domain's) and tell the units it concerns, in the work groups and privately."""
    check(member=env.member, action=Action.extend_deadline)
    task = queries.task_by_no(session, campaign_id=env.campaign_id, no=task_no)
    return _move_deadline(session, env, req, task, new, reason)


def working_day_instead(session: Session, env: Env, req: Req, task_id: int, shown_for: int | None) -> list[Out]:
    """The 改为下一个工作日 button under a deadline set on a non-working day (stale once moved)."""
    check(member=env.member, action=Action.extend_deadline)
    task = session.get(Task, task_id)
    if task is None or task.campaign_id != env.campaign_id or shown_for is None:
        raise NotFound("没有找到这项任务。")
    with button_version(shown_for):
        task, old = progress.deadline_to_working_day(
            session=session, task_id=task_id, shown_for=date.fromordinal(shown_for), actor=env.actor,
            now=req.now, today=req.today)
    return _deadline_moved(session, task, old)


def _move_deadline(session: Session, env: Env, req: Req, task: Task, new: date, reason: str | None) -> list[Out]:
    task, old = progress.change_deadline(session=session, task_id=task.id, new=new, actor=env.actor,  # type: ignore[arg-type]
                                         now=req.now, today=req.today, reason=reason)
    return _deadline_moved(session, task, old)


def _deadline_moved(session: Session, task: Task, old: date) -> list[Out]:
    """The confirmation (with the working-day button when needed) and the units' notices."""
    new = task.deadline
    change = moved_words(session, task, old)
    subject = Subject(SubjectKind.task, task.id, task.campaign_id)
    buttons = None
    text = f"📅 {change}"
    if not calendar.is_working_day(new):
        instead = calendar.first_working_day_on_or_after(new)
        text += (f"\n⚠️ {wording.full_date(new, weekday=True)}不是工作日（节假日或周末），"
                 f"单位可能无法在当天办结。可改为下一个工作日 {wording.full_date(instead, weekday=True)}。")
        buttons = [[(f"改为 {wording.month_day(instead)}", button("t", "wd", task.id, new.toordinal()))]]  # type: ignore[arg-type]
    return [Out(text, subject=subject, buttons=buttons), *deadline_notices(session, task, change)]


def deadline_notices(session: Session, task: Task, change: str) -> list[Out]:
    """The units a moved deadline concerns are told: in the work groups and privately."""
    subject = Subject(SubjectKind.task, task.id, task.campaign_id)
    units = [a.unit_id for a in queries.assignments_of_task(session, task.id)]  # type: ignore[arg-type]
    names = "、".join(queries.unit_name(session, u) for u in units)
    notice = f"📅 {change}\n涉及单位：{wording.esc(names)}。请按新的时限安排工作，回复本消息即可填报。"
    outs = [Out(notice, chat_id=group.telegram_chat_id, subject=subject)
            for group in members.bound_groups(session, task.campaign_id)]
    for unit_id in units:
        for liaison in reachable_liaisons(session, campaign_id=task.campaign_id, unit_id=unit_id):
            outs.append(Out(f"📅 {change}\n请按新的时限安排工作。", chat_id=liaison.private_chat_id,
                            subject=subject))
    return outs


def moved_words(session: Session, task: Task, old: date) -> str:
    """“任务7 完成时限已延长：A → B（原定 P）\n原因：…”, as every deadline notice says it."""
    new = task.deadline
    why = progress.deadline_reason(session=session, task_id=task.id) or ""  # type: ignore[arg-type]
    verb = "延长" if new > old else "提前"
    return (f"任务{task.no} 完成时限已{verb}：{wording.full_date(old)} → {wording.full_date(new)}"
            f"（原定 {wording.full_date(task.planned_deadline)}）\n原因：{wording.esc(why)}")


def approved(session: Session, env: Env, req: Req, label: str, subject: Subject, chat_id: int, message_id: int,
              shown: str, campaign_id: int, unit_id: int | None) -> Answer:
    who = env.member.display_name if env.member else ""
    stamp = f"✅ 已通过（{wording.esc(who)} · {wording.when(req.now, req.settings.campaign.tz)}）"
    outs = [Out(f"{shown}\n\n{stamp}", edit=(chat_id, message_id), subject=subject)]
    outs += notify_unit(session, campaign_id, unit_id, f"✅ {wording.esc(label)} 已审核通过。", subject)
    return Answer("已通过", outs=outs)


def ask_reason(session: Session, env: Env, req: Req, label: str, subject: Subject, chat_id: int, message_id: int) -> Answer:
    """退回: ask for the reason with ForceReply; the reply completes the return."""
    row = lookup(session, chat_id=chat_id, message_id=message_id)
    if row is None or row.subject_kind != subject.kind or row.subject_id != subject.id:
        row = remember(session, campaign_id=subject.campaign_id, chat_id=chat_id, message_id=message_id,
                       kind=subject.kind, subject_id=subject.id, unit_id=subject.unit_id, now=req.now)
    member = member_of(env)
    prompt = Out(
        f"{wording.mention(member)}，请<b>回复本消息</b>写明退回 {wording.esc(label)} 的原因（对方会收到）：",
        chat_id=chat_id, force_reply=True, placeholder="退回原因",
        subject=Subject(SubjectKind.return_reason, row.id, subject.campaign_id, subject.unit_id, for_member_id=member.id),
    )
    return Answer("请填写退回原因", outs=[prompt])

