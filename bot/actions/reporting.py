"""A unit's own work: progress, completion, criterion claims and evidence files."""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import Session

from bot import queries, render
from bot.actions.cards import evidence_prompt_out
from bot.actions.common import Req, button_version, member_of, replied_row, same_campaign
from bot.callbacks import FORGED, button
from bot.context import Out, Subject
from bot.parsing import Done, Note, Progress, Report, check_note
from models import progress, wording
from models.errors import InvalidInput, NotFound
from models.evidence import Upload, check_quota, check_upload, submit_evidence
from models.members import Env
from models.owners import acting_unit, responsible_unit_ids
from models.permissions import Action, check
from models.tables import Assignment, AssignmentState, Criterion, Role, ScoreItem, SubjectKind, Task

DONE_BUTTON = "✅ 报告完成"


def responsible_assignment(session: Session, env: Env, task: Task, action: Action) -> Assignment:
    """The assignment of ``task`` the sender reports on (their unit's)."""
    assignments = queries.assignments_of_task(session, task.id)  # type: ignore[arg-type]
    units = [a.unit_id for a in assignments]
    check(member=env.member, action=action, responsible_unit_ids=units)
    unit_id = acting_unit(units, member_unit_id=member_of(env).unit_id)
    for a in assignments:
        if unit_id is not None and a.unit_id == unit_id:
            return a
    names = "、".join(queries.unit_name(session, u) for u in units)
    raise InvalidInput(f"任务{task.no}有多个责任单位（{names}）。请回复该单位的任务消息进行操作。")


def checked_assignment(session: Session, env: Env, assignment_id: int, action: Action) -> Assignment:
    a = session.get(Assignment, assignment_id)
    if a is None or a.retired:
        raise NotFound("没有找到这项任务分工。")
    same_campaign(env, a.campaign_id, "这项任务分工")
    check(member=env.member, action=action, responsible_unit_ids=[a.unit_id])
    return a


def report(session: Session, env: Env, req: Req, a: Assignment, what: Report, *, version: int | None = None) -> Out:
    """Apply a liaison's report to an assignment; one line saying the new state.

    The domain locks the row and checks its state and ``version`` (a button's; None for a
    typed report, which applies to the row as it is when locked).
    """
    task = session.get(Task, a.task_id)
    assert task is not None
    unit = queries.unit_name(session, a.unit_id)
    before = a.percent
    common = dict(session=session, assignment_id=a.id, actor=env.actor, now=req.now, expected_version=version)
    buttons = None
    with button_version(version):
        if isinstance(what, Done):
            a = progress.submit_assignment(**common)
            line = f"✅ {wording.esc(unit)} · 任务{task.no} 已提交完成 → {render.assignment_state(a)}"
        elif isinstance(what, Progress):
            a = progress.set_progress(percent=what.percent, note=what.note, **common)
            line = f"✅ {wording.esc(unit)} · 任务{task.no} 进度 {a.percent}% → {render.assignment_state(a)}"
            if before != a.percent:
                line = f"✅ {wording.esc(unit)} · 任务{task.no} 进度 {before}% → {a.percent}%（{render.ASSIGNMENT_STATES[a.state]}）"
            if a.percent == 100 and a.state not in (AssignmentState.submitted, AssignmentState.approved):
                # 100% is not yet handed in: offer the one press that does it (at this version).
                line += f"\n进度已达 100%。如已全部完成，请点“{DONE_BUTTON}”提交{wording.COORDINATOR}审核。"
                buttons = [[(DONE_BUTTON, button("a", "done", a.id, a.version))]]  # type: ignore[arg-type]
        else:
            assert isinstance(what, Note)
            a = progress.set_progress(percent=None, note=what.text, **common)
            line = f"📝 {wording.esc(unit)} · 任务{task.no} 已记录进展说明（{render.assignment_state(a)}，进度 {a.percent}%）"
    return Out(line, buttons=buttons, subject=Subject(SubjectKind.assignment, a.id, a.campaign_id, a.unit_id))


def progress_cmd(session: Session, env: Env, req: Req, task_no: int, percent: int, note: str | None) -> Out:
    """/progress N 60 [说明]."""
    task = queries.task_by_no(session, campaign_id=env.campaign_id, no=task_no)
    a = responsible_assignment(session, env, task, Action.report_progress)
    return report(session, env, req, a, Progress(percent, check_note(note)))


def done_cmd(session: Session, env: Env, req: Req, task_no: int) -> Out:
    """/done N."""
    task = queries.task_by_no(session, campaign_id=env.campaign_id, no=task_no)
    a = responsible_assignment(session, env, task, Action.submit)
    return report(session, env, req, a, Done())


def claim_unit(session: Session, env: Env, crit: Criterion) -> int:
    units = responsible_unit_ids(session, crit)
    check(member=env.member, action=Action.claim_criterion, responsible_unit_ids=units)
    unit_id = acting_unit(units, member_unit_id=member_of(env).unit_id)
    if unit_id is not None:
        return unit_id
    item = session.get(ScoreItem, crit.item_id)
    raise InvalidInput(f"细则 {item.no if item else '?'}.{crit.no} 有多个责任单位，请由相应单位的联络员申报。")


def claim(session: Session, env: Env, req: Req, crit: Criterion, note: str | None, *, version: int | None = None) -> Out:
    """Claim that a criterion is met (the coordinator verifies it later)."""
    same_campaign(env, crit.campaign_id, "这条细则")
    unit_id = claim_unit(session, env, crit)
    item = session.get(ScoreItem, crit.item_id)
    assert item is not None
    with button_version(version):
        progress.claim_criterion(session=session, criterion_id=crit.id, unit_id=unit_id, actor=env.actor,
                           now=req.now, note=check_note(note), expected_version=version)
    return Out(
        f"✋ {wording.esc(queries.unit_name(session, unit_id))} · 细则 {item.no}.{crit.no}（{wording.points(crit.points)}分）已申报达标 → 待协调员审核",
        subject=Subject(SubjectKind.criterion, crit.id, crit.campaign_id, unit_id),
    )


def claim_cmd(session: Session, env: Env, req: Req, item_no: int, crit_no: int, note: str | None) -> Out:
    """/claim 8.1 [说明]."""
    if env.campaign is None:
        raise NotFound("没有找到活动。")
    crit = queries.criterion_by_ref(session, campaign_id=env.campaign_id, item_no=item_no, no=crit_no)
    return claim(session, env, req, crit, note)


def evidence_prompt(session: Session, env: Env, req: Req, ref: tuple[str, int] | tuple[str, int, int]) -> Out:
    """/evidence N (or 8.1): ask for the file as a reply to this message."""
    if ref[0] == "task":
        task = queries.task_by_no(session, campaign_id=env.campaign_id, no=ref[1])
        a = responsible_assignment(session, env, task, Action.upload_evidence)
        label = f"{queries.unit_name(session, a.unit_id)} · 任务{task.no}"
        subject = Subject(SubjectKind.assignment, a.id, a.campaign_id, a.unit_id)
    else:
        crit = queries.criterion_by_ref(session, campaign_id=env.campaign_id, item_no=ref[1], no=ref[2])  # type: ignore[misc]
        unit_id = claim_unit(session, env, crit)
        label = f"{queries.unit_name(session, unit_id)} · 细则 {ref[1]}.{ref[2]}"  # type: ignore[misc]
        subject = Subject(SubjectKind.criterion, crit.id, crit.campaign_id, unit_id)
    return evidence_prompt_out(label, subject, req)


@dataclass(frozen=True, slots=True)
class FileTarget:
    """Where an incoming file goes, decided before it is downloaded."""

    campaign_id: int
    unit_id: int | None
    member_id: int | None
    label: str
    mime_type: str
    task_id: int | None = None
    item_id: int | None = None
    criterion_id: int | None = None
    subject: Subject | None = None


def file_target(
    session: Session, env: Env, req: Req, reply_to: int | None, *, size: int | None,
    mime_type: str | None, file_name: str | None, caption: str | None = None,
) -> FileTarget | Out | None:
    """Decide, before downloading, where a document/photo goes and whether it is acceptable:
    every limit that can be checked without the bytes is checked here (size, name and type,
    the caption's length, the unit's storage quota), so a refused file is never stored."""
    row = replied_row(session, env, reply_to)
    if row is None or row.subject_kind not in (SubjectKind.assignment, SubjectKind.task, SubjectKind.criterion):
        # In a group only files replying to the bot get here (on_file drops the rest).
        return Out("要提交证明材料，请<b>回复</b>对应的任务消息发送文件，或先发送 /evidence 任务号。")
    if row.subject_kind == SubjectKind.criterion:
        crit = session.get(Criterion, row.subject_id)
        if crit is None:
            raise NotFound("没有找到这条细则。")
        units = responsible_unit_ids(session, crit)
        check(member=env.member, action=Action.upload_evidence, responsible_unit_ids=units)
        unit_id = acting_unit(units, member_unit_id=member_of(env).unit_id, about_unit_id=row.unit_id)
        item = session.get(ScoreItem, crit.item_id)
        label = f"{queries.unit_name(session, unit_id)} · 细则 {item.no if item else '?'}.{crit.no}"
        target = dict(item_id=crit.item_id, criterion_id=crit.id)
        subject = Subject(SubjectKind.criterion, crit.id, crit.campaign_id, unit_id)
    else:
        if row.subject_kind == SubjectKind.task:
            task = session.get(Task, row.subject_id)
            if task is None:
                raise NotFound("没有找到这项任务。")
            a = responsible_assignment(session, env, task, Action.upload_evidence)
        else:
            a = checked_assignment(session, env, row.subject_id, Action.upload_evidence)  # type: ignore[arg-type]
        unit_id, label, subject, target = _assignment_target(session, a)
    return _checked_target(session, env, req, unit_id, label, subject, target, size=size, mime_type=mime_type,
                           file_name=file_name, caption=caption)


def _assignment_target(session: Session, a: Assignment) -> tuple[int, str, Subject, dict[str, int | None]]:
    task = session.get(Task, a.task_id)
    label = f"{queries.unit_name(session, a.unit_id)} · 任务{task.no if task else '?'}"
    return a.unit_id, label, Subject(SubjectKind.assignment, a.id, a.campaign_id, a.unit_id), dict(task_id=a.task_id)


def _checked_target(
    session: Session, env: Env, req: Req, unit_id: int | None, label: str, subject: Subject,
    target: dict[str, int | None], *, size: int | None, mime_type: str | None, file_name: str | None,
    caption: str | None,
) -> FileTarget:
    s = req.settings.storage
    mime = check_upload(size=size, mime_type=mime_type, file_name=file_name, max_mb=s.max_file_mb, allowed_types=s.allowed_types)
    check_note(caption, what="文件说明")
    check_quota(session, campaign_id=env.campaign_id, unit_id=unit_id, size=size, quota_mb=s.unit_quota_mb)
    return FileTarget(campaign_id=env.campaign_id, unit_id=unit_id, member_id=env.member.id if env.member else None,
                      label=label, mime_type=mime, subject=subject, **target)  # type: ignore[arg-type]


#: How many of the unit's open tasks a file question offers.
MAX_FILE_CHOICES = 8
REPLY_WITH_FILE = "要提交证明材料，请<b>回复</b>对应的任务消息发送文件，或先发送 /evidence 任务号。"


def file_question(
    session: Session, env: Env, req: Req, file_message_id: int, *, private: bool, size: int | None,
    mime_type: str | None, file_name: str | None, caption: str | None,
) -> Out | None:
    """A file sent without replying to anything: ask which of the unit's open tasks it is for
    (most urgent first). A non-member's file in a group is left alone; a file that would be
    refused anyway is refused now (size, type, caption), before anyone chooses."""
    if env.member is None or not env.member.active or env.campaign is None:  # a stranger, a former member
        return Out(REPLY_WITH_FILE) if private else None
    unit_id = env.member.unit_id
    if unit_id is None:  # a coordinator or a leader: no task of their own to choose from
        if env.member.role == Role.coordinator and (file_name or "").lower().endswith(".xlsx"):
            return Out("要导入修改后的工作计划，请<b>回复</b>我发出的工作计划工作簿消息发送（没有的话先发送 /plan）。"
                       "要替某单位提交证明材料，请回复该单位的任务消息发送。")
        return Out("证明材料由各单位联络员回复任务消息提交；" + (
            "协调员也可回复某单位的任务消息代为提交。" if env.member.role == Role.coordinator
            else "领导可发送 /status、/unit 单位名 查看进度。"))
    s = req.settings.storage
    check_upload(size=size, mime_type=mime_type, file_name=file_name, max_mb=s.max_file_mb, allowed_types=s.allowed_types)
    check_note(caption, what="文件说明")
    unit = queries.unit_name(session, unit_id)
    choices = queries.open_assignments(session, unit_id=unit_id)
    criteria = "评分细则的材料请回复细则消息发送，或先发送 /evidence 项号.细则号。"
    if not choices:
        return Out(f"📎 {wording.esc(unit)}目前没有未完成的任务，这个文件没有归档。{criteria}")
    what = f"文件《{wording.esc(file_name)}》" if file_name else "这张照片"
    more = f"（共 {len(choices)} 项，列出最紧急的 {MAX_FILE_CHOICES} 项；其他任务请回复任务消息发送）" \
        if len(choices) > MAX_FILE_CHOICES else ""
    rows = [[(f"任务{t.no} · {wording.day(t.deadline, req.today)}截止", button("f", "to", a.id))]  # type: ignore[arg-type]
            for a, t in choices[:MAX_FILE_CHOICES]]
    return Out(
        f"📎 收到{what}。这是{wording.esc(unit)}哪项任务的证明材料？请点下方按钮选择{more}。{criteria}",
        buttons=rows,
        subject=Subject(SubjectKind.file, file_message_id, env.campaign.id, unit_id, for_member_id=env.member.id),  # type: ignore[arg-type]
    )


def chosen_target(
    session: Session, env: Env, req: Req, *, chat_id: int, question_id: int, file_message_id: int,
    assignment_id: int, size: int | None, mime_type: str | None, file_name: str | None, caption: str | None,
) -> FileTarget:
    """The task pressed under a file question: where that file goes, checked as a reply with the
    file to that task's message would be (whoever may hand in the unit's evidence may choose)."""
    a = checked_assignment(session, env, assignment_id, Action.upload_evidence)
    row = replied_row(session, env, question_id)
    if row is None or row.subject_kind != SubjectKind.file or row.subject_id != file_message_id:
        raise InvalidInput(FORGED)  # not a file question (any more): it became the answer once filed
    unit_id, label, subject, target = _assignment_target(session, a)
    return _checked_target(session, env, req, unit_id, label, subject, target, size=size, mime_type=mime_type,
                           file_name=file_name, caption=caption)


def file_stored(
    session: Session, env: Env, req: Req, t: FileTarget, *, sha256: str, size: int,
    original_name: str | None, caption: str | None, file_id: str, file_unique_id: str,
) -> Out:
    """Record a downloaded, stored file as evidence; one line saying so."""
    upload = Upload(
        campaign_id=t.campaign_id, unit_id=t.unit_id, member_id=t.member_id, sha256=sha256,
        size=size, mime_type=t.mime_type, original_name=original_name,
        task_id=t.task_id, item_id=t.item_id, criterion_id=t.criterion_id,
        caption=check_note(caption, what="文件说明"), telegram_file_id=file_id,
        telegram_file_unique_id=file_unique_id, received_on=req.today,
    )
    sub = submit_evidence(session, upload, actor=env.actor, now=req.now)
    ev = sub.evidence
    if not sub.created:  # said once: the domain's words name the date and the number
        line = f"ℹ️ {wording.esc(sub.warning or '这份文件已经提交过，无需重复提交。')}"
    else:
        line = f"📎 已收到 {wording.esc(t.label)} 的证明材料《{wording.esc(ev.file_name)}》（{wording.size(ev.size)}）→ 待协调员审核"
        if sub.warning:
            line += f"\n⚠️ {wording.esc(sub.warning)}"
    return Out(line, subject=t.subject)

