"""Routing a reply or a button press to the action it means, checked against the database."""

from __future__ import annotations

from sqlmodel import Session

from bot import queries
from bot.actions import plan as planning
from bot.actions.cards import assignment_out, criterion_out, evidence_prompt_out
from bot.actions.common import Req, button_version, replied_row
from bot.actions.onboarding import invites_list
from bot.actions.reading import my_tasks
from bot.actions.reporting import (
    checked_assignment,
    claim,
    claim_unit,
    report,
    responsible_assignment,
)
from bot.actions.review import approved, ask_reason, complete_return, working_day_instead
from bot.actions.supervision import (
    INSTRUCTABLE,
    instruct,
    reply_to_instruction,
    reply_to_supervision,
    target_of,
)
from bot.callbacks import FORGED, Button, button
from bot.context import Answer, Out, Subject
from bot.parsing import Done, parse_claim, parse_report
from models import links, members, progress, wording
from models.errors import InvalidInput, NotFound
from models.evidence import accept_evidence, reviewable_evidence
from models.members import Env
from models.owners import acting_unit, responsible_unit_ids
from models.permissions import Action, check
from models.tables import (
    Assignment,
    BotMessage,
    Criterion,
    Evidence,
    Role,
    ScoreItem,
    SubjectKind,
    Task,
)
from scheduler.outbox import assignments_of_message

#: At most this many tasks to choose from in one answer.
MAX_CHOICES = 8
NOT_ONE_TASK = ("这条消息不对应某一项任务，无法据此填报。请点消息下方的“任务N”按钮打开任务后回复，"
                "或发送 /progress 任务号 百分比、/done 任务号。")


def reply_text(session: Session, env: Env, req: Req, reply_to: int | None, text: str) -> Out | list[Out] | None:
    """A text reply to one of the bot's messages: route it by what that message is about."""
    row = replied_row(session, env, reply_to)
    if row is None:
        # In a group only replies to the bot get here (on_text drops the rest): answer them too.
        return Out("请<b>回复</b>我发的任务消息来填报（长按消息 → 回复），或发送 /help 查看命令。")
    if row.subject_kind == SubjectKind.return_reason:
        return complete_return(session, env, req, row, text)
    if row.subject_kind == SubjectKind.instruction:
        return reply_to_instruction(session, env, req, row, text)
    if row.subject_kind == SubjectKind.supervision:
        return reply_to_supervision(session, env, req, row, text)
    if env.member is not None and env.member.active and env.member.role == Role.leader and row.subject_kind in INSTRUCTABLE:
        # A leader's reply to a task, item, unit or nudge message is a 批示 on it.
        kind, ident = target_of(session, env, row)
        return instruct(session, env, req, kind, ident, text)
    if row.subject_kind in (SubjectKind.assignment, SubjectKind.task) and _claims(text):
        return claim_on_a_task(session, row)
    if row.subject_kind == SubjectKind.assignment:
        a = checked_assignment(session, env, row.subject_id, Action.report_progress)  # type: ignore[arg-type]
        what = parse_report(text)
        if isinstance(what, Done):
            check(member=env.member, action=Action.submit, responsible_unit_ids=[a.unit_id])
        return report(session, env, req, a, what)
    if row.subject_kind == SubjectKind.task:
        task = session.get(Task, row.subject_id)
        if task is None:
            raise NotFound("没有找到这项任务。")
        what = parse_report(text)
        a = responsible_assignment(session, env, task, Action.submit if isinstance(what, Done) else Action.report_progress)
        return report(session, env, req, a, what)
    if row.subject_kind == SubjectKind.criterion:
        crit = session.get(Criterion, row.subject_id)
        if crit is None:
            raise NotFound("没有找到这条细则。")
        said = parse_claim(text)
        if said is not None:
            return claim(session, env, req, crit, said.note)
        check(member=env.member, action=Action.claim_criterion, responsible_unit_ids=responsible_unit_ids(session, crit))
        return Out("要申报本条细则达标，请回复“达标”；要提交证明材料，请回复文件。")
    if row.subject_kind in (SubjectKind.nudge, SubjectKind.digest):
        return reply_to_nudge(session, env, req, reply_to, text)
    if row.subject_kind == SubjectKind.item:
        return Out("请用 /claim 项号.细则号 申报具体细则，例如 /claim 7.1；或回复具体细则的消息。")
    # A reminder listing several tasks, a review item, an evidence file: no single task to report on.
    return Out(NOT_ONE_TASK)


def _claims(text: str) -> bool:
    """“达标…” (a criterion's word), not “已完成” (a task's): said to a task, it is explained."""
    if parse_claim(text) is None:
        return False
    try:
        return not isinstance(parse_report(text), Done)
    except InvalidInput:
        return True


def claim_on_a_task(session: Session, row: BotMessage) -> Out:
    """“达标” replied to a task: 达标 is said of a criterion; name the task's linked ones."""
    task_id = row.subject_id
    if row.subject_kind == SubjectKind.assignment:
        a = session.get(Assignment, row.subject_id)
        task_id = a.task_id if a is not None else None
    linked = links.criteria_of_task(session=session, task_id=task_id) if task_id is not None else []
    hint = (f"本任务关联的评分细则：{'、'.join(f'细则{i.no}.{c.no}' for c, i in linked)}，"
            f"可发送 /claim {linked[0][1].no}.{linked[0][0].no} 申报，或在任务审核通过后按通知下方的按钮一并申报。"
            if linked else "申报评分细则请打开细则消息回复“达标”，或发送 /claim 项号.细则号。")
    return Out("“达标”用于评分细则，任务完成请回复“完成”。" + hint)


def reply_to_nudge(session: Session, env: Env, req: Req, reply_to: int | None, text: str) -> Out:
    """A reply to a reminder listing several tasks: the sender's unit's one task among them takes
    it; with several of theirs, the bot asks which (a button per task opens its card)."""
    ids = assignments_of_message(session, chat_id=env.chat_info.id, message_id=reply_to or 0)
    unit_id = env.member.unit_id if env.member is not None else None
    mine = [a for a in (session.get(Assignment, i) for i in ids)
            if a is not None and not a.retired and unit_id is not None and a.unit_id == unit_id]
    if not mine:
        return Out(NOT_ONE_TASK)
    what = parse_report(text)
    action = Action.submit if isinstance(what, Done) else Action.report_progress
    if len(mine) == 1:
        a = checked_assignment(session, env, mine[0].id, action)  # type: ignore[arg-type]
        return report(session, env, req, a, what)
    check(member=env.member, action=action, responsible_unit_ids=[a.unit_id for a in mine])
    tasks = {t.id: t for t in (session.get(Task, a.task_id) for a in mine) if t is not None}
    mine.sort(key=lambda a: (tasks[a.task_id].deadline, tasks[a.task_id].no) if a.task_id in tasks else (req.today, 0))
    unit = queries.unit_name(session, unit_id)  # type: ignore[arg-type]
    rows = [[(f"任务{tasks[a.task_id].no if a.task_id in tasks else '?'}", button("a", "open", a.id))]  # type: ignore[arg-type]
            for a in mine[:MAX_CHOICES]]
    return Out(f"这条提醒里有{wording.esc(unit)}的 {len(mine)} 项任务，这条回复没有记录。请点下方按钮打开要填报的任务，"
               "再回复那条任务消息。", buttons=rows)


def press(session: Session, env: Env, req: Req, btn: Button, chat_id: int, message_id: int, shown: str) -> Answer:
    """A button press, checked against the database before anything changes."""
    if env.campaign is None:
        raise InvalidInput(FORGED)
    kind, verb = btn.kind, btn.verb
    alone = req.settings.campaign.self_review_when_alone
    if kind == "a":
        a = session.get(Assignment, btn.id)
        if a is None or a.retired or a.campaign_id != env.campaign.id:
            raise InvalidInput(FORGED)
        if verb == "open":
            check(member=env.member, action=Action.view_task)
            return Answer("", outs=[assignment_out(session, env, req, a)])
        if verb == "ev":
            check(member=env.member, action=Action.upload_evidence, responsible_unit_ids=[a.unit_id])
            task = session.get(Task, a.task_id)
            label = f"{queries.unit_name(session, a.unit_id)} · 任务{task.no if task else '?'}"
            return Answer("请回复提示消息发送文件", outs=[evidence_prompt_out(label, Subject(SubjectKind.assignment, a.id, a.campaign_id, a.unit_id), req)])
        if verb == "done":
            check(member=env.member, action=Action.submit, responsible_unit_ids=[a.unit_id])
            out = report(session, env, req, a, Done(), version=btn.version)
            return Answer("已提交", outs=[out])
        check(member=env.member, action=Action.review)
        task = session.get(Task, a.task_id)
        label = f"{queries.unit_name(session, a.unit_id)} · 任务{task.no if task else '?'}"
        subject = Subject(SubjectKind.assignment, a.id, a.campaign_id, a.unit_id)
        with button_version(btn.version):
            if verb == "ok":
                progress.approve_assignment(session=session, assignment_id=a.id, actor=env.actor, now=req.now,
                                            expected_version=btn.version, alone_may_self_review=alone)
            else:
                progress.reviewable_assignment(session=session, assignment_id=a.id, expected_version=btn.version)
        if verb == "ok":
            answer = approved(session, env, req, label, subject, chat_id, message_id, shown, a.campaign_id, a.unit_id)
            offers = planning.claim_buttons(session, a)
            if offers:  # the linked criteria, claimable with the task's files in one press
                for out in answer.outs[1:]:
                    out.text += "\n本任务关联的评分细则可一并申报（附本任务的证明材料）："
                    out.buttons = offers
            return answer
        return ask_reason(session, env, req, label, subject, chat_id, message_id)
    if kind == "c":
        crit = session.get(Criterion, btn.id)
        if crit is None or crit.campaign_id != env.campaign.id:
            raise InvalidInput(FORGED)
        units = responsible_unit_ids(session, crit)
        item = session.get(ScoreItem, crit.item_id)
        if verb == "open":
            check(member=env.member, action=Action.view_item)
            unit_id = acting_unit(units, member_unit_id=env.member.unit_id if env.member else None)
            return Answer("", outs=[criterion_out(session, env, req, crit, unit_id)])
        if verb == "ev":
            unit_id = claim_unit(session, env, crit)
            label = f"{queries.unit_name(session, unit_id)} · 细则 {item.no if item else '?'}.{crit.no}"
            return Answer("请回复提示消息发送文件", outs=[evidence_prompt_out(label, Subject(SubjectKind.criterion, crit.id, crit.campaign_id, unit_id), req)])
        if verb == "claim":
            return Answer("已申报", outs=[claim(session, env, req, crit, None, version=btn.version)])
        check(member=env.member, action=Action.review)
        with button_version(btn.version):
            if verb == "ok":
                assessment = progress.verify_criterion(session=session, criterion_id=crit.id, actor=env.actor,
                                                       now=req.now, expected_version=btn.version,
                                                       alone_may_self_review=alone)
            else:
                assessment, _, _ = progress.reviewable_claim(session=session, criterion_id=crit.id,
                                                             expected_version=btn.version)
        label = f"{queries.unit_name(session, assessment.unit_id)} · 细则 {item.no if item else '?'}.{crit.no}"
        subject = Subject(SubjectKind.criterion, crit.id, crit.campaign_id, assessment.unit_id)
        if verb == "ok":
            return approved(session, env, req, label, subject, chat_id, message_id, shown, crit.campaign_id, assessment.unit_id)
        return ask_reason(session, env, req, label, subject, chat_id, message_id)
    if kind == "e":
        ev = session.get(Evidence, btn.id)
        if ev is None or ev.campaign_id != env.campaign.id:
            raise InvalidInput(FORGED)
        check(member=env.member, action=Action.review)
        if verb == "ok":
            ev = accept_evidence(session, evidence_id=btn.id, actor=env.actor, now=req.now,
                                 alone_may_self_review=alone)
        else:
            ev = reviewable_evidence(session, evidence_id=btn.id, campaign_id=env.campaign.id)
        label = f"{queries.unit_name(session, ev.unit_id)} · 证明材料《{ev.file_name}》"
        subject = Subject(SubjectKind.evidence, ev.id, ev.campaign_id, ev.unit_id)
        if verb == "ok":
            return approved(session, env, req, label, subject, chat_id, message_id, shown, ev.campaign_id, ev.unit_id)
        return ask_reason(session, env, req, label, subject, chat_id, message_id)
    if kind == "m":  # a page of the presser's own /mytasks: in place in private, anew in a group
        listing = my_tasks(session, env, req, page=btn.id)
        if env.is_group:
            listing.chat_id = chat_id
        elif wording.plain(listing.text) == wording.plain(shown):  # that page is shown already: nothing to redraw
            return Answer("")
        else:
            listing.edit = (chat_id, message_id)
        return Answer("", outs=[listing])
    if kind == "t":
        outs = working_day_instead(session, env, req, btn.id, btn.version)
        return Answer("已改为工作日", outs=outs)
    if kind == "p":
        return planning.decided(session, env, req, btn.id, verb == "ok", chat_id, message_id)
    if kind == "l":
        return planning.linked_claim(session, env, req, btn.id, btn.version or 0)
    if kind == "i":
        check(member=env.member, action=Action.invite)
        invite = members.revoke_invite(session, invite_id=btn.id, campaign_id=env.campaign.id,
                                       actor=env.actor, now=req.now)
        listing = invites_list(session, env, req)
        listing.edit = (chat_id, message_id)
        return Answer(f"已撤销：{members.invite_label(session, invite)}", outs=[listing])
    raise InvalidInput(FORGED)

