"""What each request does, as plain functions ``(session, env, req, ...) -> Out(s)``.

They run inside the one transaction :meth:`bot.context.QcContext.act` opened,
check permission with ``models.permissions.check``, call the domain
(``models.progress``, ``models.status``, ``models.report``) and say what changed in one short line.
No Telegram objects here: they are testable without a bot, and the console
reuses them through the same handlers.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime

from sqlmodel import Session
from telegram.helpers import create_deep_linked_url

from bot import queries as q
from bot import render as r
from bot.callbacks import FORGED, Button, button
from bot.context import Answer, Menus, Out, Subject
from bot.parsing import (
    Done,
    Note,
    Progress,
    Report,
    check_note,
    check_reason,
    is_claim,
    parse_report,
)
from infra.config import Settings
from models import members as mm
from models import progress as pr
from models import report as rp
from models import status as stt
from models.errors import Conflict, InvalidInput, NotFound, PermissionDenied, StaleVersion
from models.evidence import check_upload, submit_evidence, target_label
from models.members import Env
from models.messages import lookup, remember, target_of
from models.owners import responsible_unit_ids
from models.permissions import Action, check
from models.tables import (
    AssessmentState,
    Assignment,
    AssignmentState,
    BotMessage,
    Criterion,
    Evidence,
    EvidenceState,
    Role,
    ScoreItem,
    SubjectKind,
    Task,
    Unit,
)

REVIEW_PAGE = 10
NOT_ONE_TASK = ("这条消息不对应某一项任务，无法据此填报。请点消息下方的“任务N”按钮打开任务后回复，"
                "或发送 /progress 任务号 百分比、/done 任务号。")
MYTASKS_LIMIT = 30


@dataclass(frozen=True, slots=True)
class Req:
    """The request's time and configuration (from the injectable clock)."""

    now: datetime
    today: date
    settings: Settings
    bot_username: str


def _member(env: Env):  # noqa: ANN202 - Member
    if env.member is None:
        raise PermissionDenied("你还不是本活动的成员。请使用协调员发给你的邀请链接加入。")
    return env.member


def _same_campaign(env: Env, campaign_id: int | None, what: str) -> None:
    if env.campaign is None or campaign_id != env.campaign.id:
        raise NotFound(f"没有找到{what}。")


# ================================================================== onboarding


def whoami(session: Session, env: Env, req: Req) -> Out:
    m = env.member
    if m is None:
        return Out(
            f"你的 Telegram ID：<code>{env.user.id}</code>\n"
            "你还不是本活动的成员。请使用协调员发给你的邀请链接加入。"
        )
    status = "（已被移出）" if not m.active else ""
    campaign = env.campaign.name if env.campaign else ""
    return Out(
        f"👤 {r.esc(mm.member_label(session, m))}{status}\n"
        f"活动：{r.esc(campaign)}\nTelegram ID：<code>{env.user.id}</code>"
    )


def start(session: Session, env: Env, req: Req, payload: str | None) -> Out:
    """/start [CODE]: join with an invite or the bootstrap code; else say hello."""
    if env.is_group:
        return Out("请在与我的私聊中发送 /start。在群里可以直接回复我发的任务消息。")
    if payload:
        member = mm.redeem_invite(
            session, token=payload.strip(), user=env.user, private_chat_id=env.chat_info.id,
            now=req.now,
        )
        label = mm.member_label(session, member)
        tips = {
            Role.coordinator: "发送 /help 查看协调员命令。下一步：把我拉进工作群并在群里发送 /bindgroup，"
            "然后用 /invite 单位名称 邀请各单位联络员。",
            Role.liaison: "发送 /mytasks 查看本单位的任务。以后直接回复我发的任务消息即可填报进度。",
            Role.leader: "领导账号为只读。发送 /status 查看全区进度。",
        }
        return Out(f"✅ 欢迎！你已加入，身份：{r.esc(label)}\n{tips.get(member.role, '')}",
                   menus=Menus(user_id=env.user.id))
    # A member's private chat may be new to us (one added from the command line): their menus.
    mine = Menus(user_id=env.user.id) if env.member is not None else None
    if env.member is not None and env.member.active:
        return Out(
            f"你好，{r.esc(env.member.display_name)}！你的身份：{r.esc(mm.member_label(session, env.member))}。\n"
            "发送 /help 查看可以使用的命令。",
            menus=mine,
        )
    return Out(
        "你好！我是质量强区工作助手，帮助各责任单位填报任务进度、提交证明材料。\n"
        "请点击协调员发给你的邀请链接加入；如果没有，请联系区市场监管局（领导小组办公室）。",
        menus=mine,
    )


def bind_group(session: Session, env: Env, req: Req) -> Out:
    """/bindgroup: the coordinator binds this group to their campaign."""
    if not env.is_group:
        raise InvalidInput("/bindgroup 只能在工作群里使用：请把我拉进群，然后在群里发送 /bindgroup。")
    campaign = env.campaign
    member = env.member
    if campaign is None:
        # An unbound group: the sender's own campaign, if they coordinate one; else their
        # membership anywhere, so that a liaison is refused as a liaison, not as a stranger.
        for c in mm.active_campaigns(session):
            found = mm.get_member(session, campaign_id=c.id, telegram_user_id=env.user.id)  # type: ignore[arg-type]
            if found is not None and found.active and found.role == Role.coordinator:
                if campaign is None or c.slug == req.settings.campaign.slug:
                    campaign, member = c, found
            elif found is not None and campaign is None and (member is None or (found.active and not member.active)):
                member = found
    check(member=member, action=Action.bind_group)
    assert campaign is not None and member is not None
    env.campaign, env.member = campaign, member
    # Bound now or before: the menus of its coordinators and leaders in it (again).
    menus = Menus(group_chat_id=env.chat_info.id)
    if not mm.bind_group(session, env=env, campaign_id=campaign.id, now=req.now):  # type: ignore[arg-type]
        return Out(f"本群已绑定到“{r.esc(campaign.name)}”，无需重复绑定。", menus=menus)
    return Out(
        f"✅ 本群已绑定到“{r.esc(campaign.name)}”。\n"
        "各单位联络员可在群里直接回复我发的任务消息填报进度，或发送 /mytasks 查看本单位的任务。",
        menus=menus,
    )


def invite(session: Session, env: Env, req: Req, text: str) -> Out:
    """/invite 单位 | leader: a single-use, expiring deep link."""
    check(member=env.member, action=Action.invite)
    if env.is_group:
        raise InvalidInput("邀请链接只能使用一次，请在与我的私聊中发送 /invite，再把链接单独转发给对方。")
    role, unit = mm.parse_invite_target(session, campaign_id=env.campaign_id, text=text)
    ttl = req.settings.telegram.invite_ttl_hours
    inv = mm.create_invite(
        session, campaign_id=env.campaign_id, role=role, unit_id=unit.id if unit else None,
        created_by=env.member, actor=env.actor, now=req.now, ttl_hours=ttl,
    )
    link = create_deep_linked_url(req.bot_username, inv.token)
    who = f"{r.esc(unit.name)} 联络员" if unit else "领导（只读）"
    expires = r.when(inv.expires_at, req.settings.campaign.tz)
    return Out(
        f"🔗 {who} 邀请链接（一次性，{expires} 前有效）：\n{link}\n\n"
        "请把链接单独发给对方；对方点击后按“开始/START”即可加入。"
    )


def members_list(session: Session, env: Env, req: Req) -> Out:
    check(member=env.member, action=Action.list_members)
    rows = mm.list_members(session, campaign_id=env.campaign_id)
    if not rows:
        return Out("还没有成员。")
    lines = [f"👥 成员（{len(rows)} 人）："]
    for m in rows:
        handle = f" @{r.esc(m.username)}" if m.username else ""
        private = "" if m.private_chat_id else " · 未私聊"
        lines.append(f"• {r.esc(mm.member_label(session, m))}{handle} · ID <code>{m.telegram_user_id}</code>{private}")
    lines.append("\n移除成员：/remove Telegram ID 或 @用户名")
    return Out("\n".join(lines))


def remove(session: Session, env: Env, req: Req, ref: str) -> Out:
    check(member=env.member, action=Action.remove_member)
    target = mm.find_member(session, campaign_id=env.campaign_id, ref=ref)
    mm.remove_member(session, member=target, actor=env.actor, now=req.now)
    return Out(f"✅ 已移出：{r.esc(mm.member_label(session, target))}",
               menus=Menus(user_id=target.telegram_user_id))


# ================================================================== reading


def my_tasks(session: Session, env: Env, req: Req) -> Out:
    """/mytasks: my unit's open assignments and criteria, nearest deadline first."""
    check(member=env.member, action=Action.my_tasks)
    member = _member(env)
    if member.unit_id is None:
        raise InvalidInput("你的账号没有所属单位。协调员可用 /review、/status 查看全区情况。")
    unit = q.unit_name(session, member.unit_id)
    entries: list[tuple[date, str, tuple[str, str]]] = []
    for a, task in q.open_assignments(session, unit_id=member.unit_id):
        line = (f"任务{task.no} · {r.md(task.deadline)}截止{r.deadline_note(task.deadline, req.today)}"
                f" · {r.assignment_state(a)}\n   {r.esc(r.short(task.title, 36))}")
        entries.append((task.deadline, line, (f"任务{task.no}", button("a", "open", a.id))))  # type: ignore[arg-type]
    for crit, item, assessment in q.open_criteria(session, campaign_id=env.campaign_id, unit_id=member.unit_id):
        state = assessment.state if assessment else AssessmentState.none
        line = (f"细则{item.no}.{crit.no} · {r.md(item.deadline)}截止{r.deadline_note(item.deadline, req.today)}"
                f" · {r.ASSESSMENT_STATES[state]}\n   {r.esc(r.short(crit.text, 36))}")
        entries.append((item.deadline or date.max, line, (f"细则{item.no}.{crit.no}", button("c", "open", crit.id))))  # type: ignore[arg-type]
    if not entries:
        return Out(f"🎉 {r.esc(unit)} 目前没有待办的任务和细则。")
    entries.sort(key=lambda e: e[0])
    shown = entries[:MYTASKS_LIMIT]
    lines = [f"📋 <b>{r.esc(unit)}</b> 的待办（{len(entries)} 项，按截止日期排序）："]
    lines += [f"{i}. {line}" for i, (_, line, _) in enumerate(shown, 1)]
    if len(entries) > len(shown):
        lines.append(f"……另有 {len(entries) - len(shown)} 项未列出。")
    lines.append("\n点下方按钮打开某一项；回复打开的消息即可填报进度或提交材料。")
    buttons = [b for _, _, b in shown]
    rows = [buttons[i:i + 3] for i in range(0, len(buttons), 3)]
    return Out("\n".join(lines), buttons=rows)


def _assignment_out(session: Session, env: Env, req: Req, a: Assignment, *, chat_id: int | None = None) -> Out:
    task = session.get(Task, a.task_id)
    assert task is not None
    buttons = None
    if a.state != AssignmentState.approved:
        row = [("📎 交材料", button("a", "ev", a.id))]  # type: ignore[arg-type]
        if a.state != AssignmentState.submitted:
            row.insert(0, ("✅ 完成", button("a", "done", a.id, a.version)))  # type: ignore[arg-type]
        buttons = [row]
    return Out(
        r.assignment_card(a, task, q.unit_name(session, a.unit_id), req.today), buttons=buttons,
        subject=Subject(SubjectKind.assignment, a.id, a.campaign_id, a.unit_id), chat_id=chat_id,
    )


def _criterion_out(session: Session, env: Env, req: Req, crit: Criterion, unit_id: int | None, *, chat_id: int | None = None) -> Out:
    item = session.get(ScoreItem, crit.item_id)
    assert item is not None
    assessment = q.assessment_of(session, crit.id)  # type: ignore[arg-type]
    state = assessment.state if assessment else AssessmentState.none
    buttons = None
    if not crit.not_attainable and state not in (AssessmentState.verified,):
        row = [("📎 交材料", button("c", "ev", crit.id))]  # type: ignore[arg-type]
        if state != AssessmentState.claimed:
            row.insert(0, ("✋ 申报达标", button("c", "claim", crit.id, assessment.version if assessment else 0)))  # type: ignore[arg-type]
        buttons = [row]
    unit = q.unit_name(session, unit_id) if unit_id else None
    return Out(
        r.criterion_card(crit, item, assessment, unit, req.today), buttons=buttons,
        subject=Subject(SubjectKind.criterion, crit.id, crit.campaign_id, unit_id), chat_id=chat_id,
    )


def task_view(session: Session, env: Env, req: Req, no: int) -> list[Out]:
    """/task N: the task and each unit's state (reply to it to report, as a liaison)."""
    check(member=env.member, action=Action.view_task)
    task = q.task_by_no(session, campaign_id=env.campaign_id, no=no)
    st = _campaign_status(session, env, req)
    chunks = rp.render_task(stt.task_view(st, task.no))
    chunks[-1] += "\n\n👉 联络员可直接回复本消息填报本单位的进度。"
    outs = [Out(c, quote=(i == 0)) for i, c in enumerate(chunks)]
    outs[-1].subject = Subject(SubjectKind.task, task.id, task.campaign_id)
    return outs


# ============================================================== reporting work


def _responsible_assignment(session: Session, env: Env, task: Task, action: Action) -> Assignment:
    """The assignment of ``task`` the sender reports on (their unit's)."""
    assignments = q.assignments_of_task(session, task.id)  # type: ignore[arg-type]
    units = [a.unit_id for a in assignments]
    check(member=env.member, action=action, responsible_unit_ids=units)
    member = _member(env)
    for a in assignments:
        if a.unit_id == member.unit_id:
            return a
    if len(assignments) == 1:
        return assignments[0]
    names = "、".join(q.unit_name(session, u) for u in units)
    raise InvalidInput(f"任务{task.no}有多个责任单位（{names}）。请回复该单位的任务消息进行操作。")


def _checked_assignment(session: Session, env: Env, assignment_id: int, action: Action) -> Assignment:
    a = session.get(Assignment, assignment_id)
    if a is None or a.retired:
        raise NotFound("没有找到这项任务分工。")
    _same_campaign(env, a.campaign_id, "这项任务分工")
    check(member=env.member, action=action, responsible_unit_ids=[a.unit_id])
    return a


STALE_BUTTON = "这条消息上的按钮已过期（情况已有变化），本次操作未生效。请重新打开查看最新状态。"


@contextmanager
def _button_version(version: int | None) -> Iterator[None]:
    """The domain checks a button's version; a stale one is said as a stale button."""
    try:
        yield
    except StaleVersion:
        if version is None:
            raise
        raise Conflict(STALE_BUTTON) from None


def _expect(version: int | None, current: int) -> None:
    """Before a review prompt (the domain writes only when the reason arrives): a stale button."""
    if version is not None and version != current:
        raise Conflict(STALE_BUTTON)


def report(session: Session, env: Env, req: Req, a: Assignment, what: Report, *, version: int | None = None) -> Out:
    """Apply a liaison's report to an assignment; one line saying the new state.

    The domain locks the row and checks its state and ``version`` (a button's; None for a
    typed report, which applies to the row as it is when locked).
    """
    task = session.get(Task, a.task_id)
    assert task is not None
    unit = q.unit_name(session, a.unit_id)
    before = a.percent
    common = dict(session=session, assignment_id=a.id, actor=env.actor, now=req.now, expected_version=version)
    with _button_version(version):
        if isinstance(what, Done):
            a = pr.submit_assignment(**common)
            line = f"✅ {r.esc(unit)} · 任务{task.no} 已提交完成 → {r.assignment_state(a)}"
        elif isinstance(what, Progress):
            a = pr.set_progress(percent=what.percent, note=what.note, **common)
            line = f"✅ {r.esc(unit)} · 任务{task.no} 进度 {a.percent}% → {r.assignment_state(a)}"
            if before != a.percent:
                line = f"✅ {r.esc(unit)} · 任务{task.no} 进度 {before}% → {a.percent}%（{r.ASSIGNMENT_STATES[a.state]}）"
        else:
            assert isinstance(what, Note)
            a = pr.set_progress(percent=None, note=what.text, **common)
            line = f"📝 {r.esc(unit)} · 任务{task.no} 已记录进展说明（{r.assignment_state(a)}，进度 {a.percent}%）"
    return Out(line, subject=Subject(SubjectKind.assignment, a.id, a.campaign_id, a.unit_id))


def progress_cmd(session: Session, env: Env, req: Req, task_no: int, percent: int, note: str | None) -> Out:
    """/progress N 60 [说明]."""
    task = q.task_by_no(session, campaign_id=env.campaign_id, no=task_no)
    a = _responsible_assignment(session, env, task, Action.report_progress)
    return report(session, env, req, a, Progress(percent, check_note(note)))


def done_cmd(session: Session, env: Env, req: Req, task_no: int) -> Out:
    """/done N."""
    task = q.task_by_no(session, campaign_id=env.campaign_id, no=task_no)
    a = _responsible_assignment(session, env, task, Action.submit)
    return report(session, env, req, a, Done())


def _claim_unit(session: Session, env: Env, crit: Criterion) -> int:
    units = responsible_unit_ids(session, crit)
    check(member=env.member, action=Action.claim_criterion, responsible_unit_ids=units)
    member = _member(env)
    if member.unit_id in units:
        return member.unit_id  # type: ignore[return-value]
    if len(units) == 1:
        return units[0]
    item = session.get(ScoreItem, crit.item_id)
    raise InvalidInput(f"细则 {item.no if item else '?'}.{crit.no} 有多个责任单位，请由相应单位的联络员申报。")


def claim(session: Session, env: Env, req: Req, crit: Criterion, note: str | None, *, version: int | None = None) -> Out:
    """Claim that a criterion is met (the coordinator verifies it later)."""
    _same_campaign(env, crit.campaign_id, "这条细则")
    unit_id = _claim_unit(session, env, crit)
    item = session.get(ScoreItem, crit.item_id)
    assert item is not None
    with _button_version(version):
        pr.claim_criterion(session=session, criterion_id=crit.id, unit_id=unit_id, actor=env.actor,
                           now=req.now, note=check_note(note), expected_version=version)
    return Out(
        f"✋ {r.esc(q.unit_name(session, unit_id))} · 细则 {item.no}.{crit.no}（{r.points(crit.points)}分）已申报达标 → 待协调员审核",
        subject=Subject(SubjectKind.criterion, crit.id, crit.campaign_id, unit_id),
    )


def claim_cmd(session: Session, env: Env, req: Req, item_no: int, crit_no: int, note: str | None) -> Out:
    """/claim 8.1 [说明]."""
    if env.campaign is None:
        raise NotFound("没有找到活动。")
    crit = q.criterion_by_ref(session, campaign_id=env.campaign_id, item_no=item_no, no=crit_no)
    return claim(session, env, req, crit, note)


def evidence_prompt(session: Session, env: Env, req: Req, ref: tuple[str, int] | tuple[str, int, int]) -> Out:
    """/evidence N (or 8.1): ask for the file as a reply to this message."""
    if ref[0] == "task":
        task = q.task_by_no(session, campaign_id=env.campaign_id, no=ref[1])
        a = _responsible_assignment(session, env, task, Action.upload_evidence)
        label = f"{q.unit_name(session, a.unit_id)} · 任务{task.no}"
        subject = Subject(SubjectKind.assignment, a.id, a.campaign_id, a.unit_id)
    else:
        crit = q.criterion_by_ref(session, campaign_id=env.campaign_id, item_no=ref[1], no=ref[2])  # type: ignore[misc]
        unit_id = _claim_unit(session, env, crit)
        label = f"{q.unit_name(session, unit_id)} · 细则 {ref[1]}.{ref[2]}"  # type: ignore[misc]
        subject = Subject(SubjectKind.criterion, crit.id, crit.campaign_id, unit_id)
    return _evidence_prompt_out(label, subject, req)


def _evidence_prompt_out(label: str, subject: Subject, req: Req) -> Out:
    from models.evidence import allowed_labels

    s = req.settings.storage
    return Out(
        f"📎 请<b>回复本消息</b>发送 {r.esc(label)} 的证明材料（{allowed_labels(s.allowed_types)}，"
        f"每个文件不超过 {s.max_file_mb} MB）。可以发送多个文件，每个都回复本消息。",
        subject=subject, force_reply=True, placeholder="回复文件",
    )


# ================================================================ replies


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


def _replied_row(session: Session, env: Env, reply_to: int | None) -> BotMessage | None:
    if reply_to is None:
        return None
    row = lookup(session, chat_id=env.chat_info.id, message_id=reply_to)
    if row is None or env.campaign is None or row.campaign_id != env.campaign.id:
        return None
    return row


def reply_text(session: Session, env: Env, req: Req, reply_to: int | None, text: str) -> Out | list[Out] | None:
    """A text reply to one of the bot's messages: route it by what that message is about."""
    row = _replied_row(session, env, reply_to)
    if row is None:
        # In a group only replies to the bot get here (on_text drops the rest): answer them too.
        return Out("请<b>回复</b>我发的任务消息来填报（长按消息 → 回复），或发送 /help 查看命令。")
    if row.subject_kind == SubjectKind.return_reason:
        return complete_return(session, env, req, row, text)
    if row.subject_kind == SubjectKind.assignment:
        a = _checked_assignment(session, env, row.subject_id, Action.report_progress)  # type: ignore[arg-type]
        what = parse_report(text)
        if isinstance(what, Done):
            check(member=env.member, action=Action.submit, responsible_unit_ids=[a.unit_id])
        return report(session, env, req, a, what)
    if row.subject_kind == SubjectKind.task:
        task = session.get(Task, row.subject_id)
        if task is None:
            raise NotFound("没有找到这项任务。")
        what = parse_report(text)
        a = _responsible_assignment(session, env, task, Action.submit if isinstance(what, Done) else Action.report_progress)
        return report(session, env, req, a, what)
    if row.subject_kind == SubjectKind.criterion:
        crit = session.get(Criterion, row.subject_id)
        if crit is None:
            raise NotFound("没有找到这条细则。")
        if is_claim(text):
            return claim(session, env, req, crit, None)
        check(member=env.member, action=Action.claim_criterion, responsible_unit_ids=responsible_unit_ids(session, crit))
        return Out("要申报本条细则达标，请回复“达标”；要提交证明材料，请回复文件。")
    if row.subject_kind == SubjectKind.item:
        return Out("请用 /claim 项号.细则号 申报具体细则，例如 /claim 7.1；或回复具体细则的消息。")
    # A reminder listing several tasks, a review item, an evidence file: no single task to report on.
    return Out(NOT_ONE_TASK)


def complete_return(session: Session, env: Env, req: Req, prompt: BotMessage, text: str) -> list[Out]:
    """The coordinator's reason, replied to the 退回 prompt: return and tell the unit."""
    member = _member(env)
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
        a = _checked_assignment(session, env, ident, Action.review)
        task = session.get(Task, a.task_id)
        if a.state != AssignmentState.submitted:
            raise Conflict("这项任务当前不是“已提交”状态（可能已处理过），本次退回未生效。")
        pr.return_assignment(session=session, assignment_id=a.id, actor=env.actor, now=req.now,
             reason=reason, expected_version=a.version)
        session.flush()
        label = f"{q.unit_name(session, a.unit_id)} · 任务{task.no if task else '?'}"
        unit_id, campaign_id = a.unit_id, a.campaign_id
        subject = Subject(SubjectKind.assignment, a.id, a.campaign_id, a.unit_id)
    elif kind == SubjectKind.criterion:
        crit = session.get(Criterion, ident)
        assessment = q.assessment_of(session, ident)
        if crit is None or assessment is None or assessment.state != AssessmentState.claimed:
            raise Conflict("这条细则当前没有待审核的申报（可能已处理过），本次退回未生效。")
        _same_campaign(env, crit.campaign_id, "这条细则")
        pr.reject_criterion(session=session, criterion_id=crit.id, actor=env.actor, now=req.now,
             reason=reason, expected_version=assessment.version)
        item = session.get(ScoreItem, crit.item_id)
        unit_id, campaign_id = assessment.unit_id, crit.campaign_id
        label = f"{q.unit_name(session, unit_id)} · 细则 {item.no if item else '?'}.{crit.no}"
        subject = Subject(SubjectKind.criterion, crit.id, crit.campaign_id, unit_id)
    elif kind == SubjectKind.evidence:
        from models.evidence import return_evidence

        ev = session.get(Evidence, ident)
        if ev is None:
            raise NotFound("没有找到这份证明材料。")
        _same_campaign(env, ev.campaign_id, "这份证明材料")
        return_evidence(session, evidence_id=ev.id, reason=reason, actor=env.actor, now=req.now)  # type: ignore[arg-type]
        unit_id, campaign_id = ev.unit_id, ev.campaign_id
        label = f"{q.unit_name(session, unit_id)} · 证明材料《{ev.file_name}》"
        subject = Subject(SubjectKind.evidence, ev.id, ev.campaign_id, unit_id)
    else:
        raise NotFound("这条提示对应的事项无法退回。")
    line = f"↩️ 已退回 {r.esc(label)}：{r.esc(reason)}"
    outs = [
        Out(line),
        Out(f"{line}\n（{r.esc(member.display_name)} · {r.when(req.now, req.settings.campaign.tz)}）", edit=edit),
    ]
    outs += notify_unit(session, campaign_id, unit_id, f"↩️ {r.esc(label)} 被退回，原因：{r.esc(reason)}\n请修改后重新提交（回复本消息即可）。", subject)
    return outs


def notify_unit(session: Session, campaign_id: int, unit_id: int | None, text: str, subject: Subject | None) -> list[Out]:
    """Tell a unit's liaisons privately; the bound groups when none can be reached."""
    if unit_id is None:
        return []
    liaisons = [m for m in q.liaisons_of(session, campaign_id=campaign_id, unit_id=unit_id)
                if m.private_chat_id and m.reachable]
    if liaisons:
        return [Out(text, chat_id=m.private_chat_id, subject=subject) for m in liaisons]
    return [Out(f"【{r.esc(q.unit_name(session, unit_id))}】{text}", chat_id=c.telegram_chat_id, subject=subject)
            for c in mm.bound_groups(session, campaign_id)]


def file_target(
    session: Session, env: Env, req: Req, reply_to: int | None, *, size: int | None,
    mime_type: str | None, file_name: str | None,
) -> FileTarget | Out | None:
    """Decide, before downloading, where a document/photo goes and whether it is acceptable."""
    row = _replied_row(session, env, reply_to)
    if row is None or row.subject_kind not in (SubjectKind.assignment, SubjectKind.task, SubjectKind.criterion):
        # In a group only files replying to the bot get here (on_file drops the rest).
        return Out("要提交证明材料，请<b>回复</b>对应的任务消息发送文件，或先发送 /evidence 任务号。")
    if row.subject_kind == SubjectKind.criterion:
        crit = session.get(Criterion, row.subject_id)
        if crit is None:
            raise NotFound("没有找到这条细则。")
        units = responsible_unit_ids(session, crit)
        check(member=env.member, action=Action.upload_evidence, responsible_unit_ids=units)
        member = _member(env)
        unit_id = member.unit_id if member.unit_id in units else (row.unit_id if row.unit_id in units else (units[0] if len(units) == 1 else None))
        item = session.get(ScoreItem, crit.item_id)
        label = f"{q.unit_name(session, unit_id)} · 细则 {item.no if item else '?'}.{crit.no}"
        target = dict(item_id=crit.item_id, criterion_id=crit.id)
        subject = Subject(SubjectKind.criterion, crit.id, crit.campaign_id, unit_id)
    else:
        if row.subject_kind == SubjectKind.task:
            task = session.get(Task, row.subject_id)
            if task is None:
                raise NotFound("没有找到这项任务。")
            a = _responsible_assignment(session, env, task, Action.upload_evidence)
        else:
            a = _checked_assignment(session, env, row.subject_id, Action.upload_evidence)  # type: ignore[arg-type]
        task = session.get(Task, a.task_id)
        unit_id = a.unit_id
        label = f"{q.unit_name(session, unit_id)} · 任务{task.no if task else '?'}"
        target = dict(task_id=a.task_id)
        subject = Subject(SubjectKind.assignment, a.id, a.campaign_id, a.unit_id)
    s = req.settings.storage
    mime = check_upload(size=size, mime_type=mime_type, file_name=file_name, max_mb=s.max_file_mb, allowed_types=s.allowed_types)
    return FileTarget(campaign_id=env.campaign_id, unit_id=unit_id, member_id=env.member.id if env.member else None,
                      label=label, mime_type=mime, subject=subject, **target)


def file_stored(
    session: Session, env: Env, req: Req, t: FileTarget, *, sha256: str, size: int,
    original_name: str | None, caption: str | None, file_id: str, file_unique_id: str,
) -> Out:
    """Record a downloaded, stored file as evidence; one line saying so."""
    sub = submit_evidence(
        session, campaign_id=t.campaign_id, unit_id=t.unit_id, member_id=t.member_id, sha256=sha256,
        size=size, mime_type=t.mime_type, original_name=original_name, actor=env.actor, now=req.now,
        task_id=t.task_id, item_id=t.item_id, criterion_id=t.criterion_id,
        caption=check_note(caption, what="文件说明"), telegram_file_id=file_id,
        telegram_file_unique_id=file_unique_id,
    )
    ev = sub.evidence
    if not sub.created:
        line = f"ℹ️ {r.esc(t.label)} 已有同一份文件《{r.esc(ev.file_name)}》，无需重复提交。"
    else:
        line = f"📎 已收到 {r.esc(t.label)} 的证明材料《{r.esc(ev.file_name)}》（{r.size(ev.size)}）→ 待协调员审核"
    if sub.warning:
        line += f"\n⚠️ {r.esc(sub.warning)}"
    return Out(line, subject=t.subject)


# ============================================================ coordinator


def review(session: Session, env: Env, req: Req) -> list[Out]:
    """/review: one message per waiting item, each with 通过/退回 buttons."""
    check(member=env.member, action=Action.review)
    assignments, claims, evidence = q.review_queue(session, campaign_id=env.campaign_id)
    total = len(assignments) + len(claims) + len(evidence)
    if total == 0:
        return [Out("🎉 目前没有待审核的事项。")]
    outs = [Out(f"🗂 待审核：任务 {len(assignments)} 项，细则申报 {len(claims)} 项，证明材料 {len(evidence)} 份。")]
    for a in assignments:
        task = session.get(Task, a.task_id)
        assert task is not None
        text = (f"📥 <b>任务{task.no}</b> · {r.esc(q.unit_name(session, a.unit_id))} 报告完成（进度 {a.percent}%）\n"
                f"{r.esc(r.short(task.title, 80))}")
        if a.note:
            text += f"\n进展说明：{r.esc(r.short(a.note, 200))}"
        outs.append(Out(text, buttons=[[("✅ 通过", button("a", "ok", a.id, a.version)), ("↩️ 退回", button("a", "rt", a.id, a.version))]],  # type: ignore[arg-type]
                        subject=Subject(SubjectKind.assignment, a.id, a.campaign_id, a.unit_id), quote=False))
    for s in claims:
        crit = session.get(Criterion, s.criterion_id)
        item = session.get(ScoreItem, crit.item_id) if crit else None
        if crit is None or item is None:
            continue
        text = (f"✋ <b>细则 {item.no}.{crit.no}</b>（{r.points(crit.points)}分）· {r.esc(q.unit_name(session, s.unit_id))} 申报达标\n"
                f"{r.esc(r.short(crit.text, 120))}")
        if s.claim_note:
            text += f"\n说明：{r.esc(r.short(s.claim_note, 200))}"
        outs.append(Out(text, buttons=[[("✅ 通过", button("c", "ok", crit.id, s.version)), ("↩️ 退回", button("c", "rt", crit.id, s.version))]],  # type: ignore[arg-type]
                        subject=Subject(SubjectKind.criterion, crit.id, crit.campaign_id, s.unit_id), quote=False))
    for ev in evidence:
        target = target_label(session, task_id=ev.task_id, item_id=ev.item_id, criterion_id=ev.criterion_id)
        text = r.evidence_line(ev, target, q.unit_name(session, ev.unit_id))
        if ev.caption:
            text += f"\n说明：{r.esc(r.short(ev.caption, 200))}"
        outs.append(Out(text, buttons=[[("✅ 通过", button("e", "ok", ev.id, 0)), ("↩️ 退回", button("e", "rt", ev.id, 0))]],  # type: ignore[arg-type]
                        subject=Subject(SubjectKind.evidence, ev.id, ev.campaign_id, ev.unit_id), quote=False,
                        document=ev.telegram_file_id))
    if len(outs) > REVIEW_PAGE + 1:
        rest = len(outs) - 1 - REVIEW_PAGE
        outs = outs[: REVIEW_PAGE + 1] + [Out(f"……还有 {rest} 项。处理完上面的再发送 /review 查看。", quote=False)]
    return outs


def deadline(session: Session, env: Env, req: Req, task_no: int, new: date) -> Out:
    """/deadline N YYYY-MM-DD: move a task's deadline (audited; the rules are the domain's)."""
    check(member=env.member, action=Action.extend_deadline)
    task = q.task_by_no(session, campaign_id=env.campaign_id, no=task_no)
    task, old = pr.change_deadline(session=session, task_id=task.id, new=new, actor=env.actor,  # type: ignore[arg-type]
                                now=req.now, today=req.today)
    verb = "延长" if new > old else "提前"
    return Out(f"📅 任务{task.no} 完成时限已{verb}：{r.day(old)} → {r.day(new)}（原计划 {r.day(task.planned_deadline)}）",
               subject=Subject(SubjectKind.task, task.id, task.campaign_id))


# ================================================================ buttons


def press(session: Session, env: Env, req: Req, btn: Button, chat_id: int, message_id: int, shown: str) -> Answer:
    """A button press, checked against the database before anything changes."""
    if env.campaign is None:
        raise InvalidInput(FORGED)
    kind, verb = btn.kind, btn.verb
    if kind == "a":
        a = session.get(Assignment, btn.id)
        if a is None or a.retired or a.campaign_id != env.campaign.id:
            raise InvalidInput(FORGED)
        if verb == "open":
            check(member=env.member, action=Action.view_task)
            return Answer("", outs=[_assignment_out(session, env, req, a)])
        if verb == "ev":
            check(member=env.member, action=Action.upload_evidence, responsible_unit_ids=[a.unit_id])
            task = session.get(Task, a.task_id)
            label = f"{q.unit_name(session, a.unit_id)} · 任务{task.no if task else '?'}"
            return Answer("请回复提示消息发送文件", outs=[_evidence_prompt_out(label, Subject(SubjectKind.assignment, a.id, a.campaign_id, a.unit_id), req)])
        if verb == "done":
            check(member=env.member, action=Action.submit, responsible_unit_ids=[a.unit_id])
            out = report(session, env, req, a, Done(), version=btn.version)
            return Answer("已提交", outs=[out])
        check(member=env.member, action=Action.review)
        _expect(btn.version, a.version)
        if a.state != AssignmentState.submitted:
            raise Conflict("这项任务已处理过（不是“已提交”状态），本次操作未生效。")
        task = session.get(Task, a.task_id)
        label = f"{q.unit_name(session, a.unit_id)} · 任务{task.no if task else '?'}"
        subject = Subject(SubjectKind.assignment, a.id, a.campaign_id, a.unit_id)
        if verb == "ok":
            pr.approve_assignment(session=session, assignment_id=a.id, actor=env.actor, now=req.now, expected_version=a.version)
            return _approved(session, env, req, label, subject, chat_id, message_id, shown, a.campaign_id, a.unit_id)
        return _ask_reason(session, env, req, label, subject, chat_id, message_id)
    if kind == "c":
        crit = session.get(Criterion, btn.id)
        if crit is None or crit.campaign_id != env.campaign.id:
            raise InvalidInput(FORGED)
        units = responsible_unit_ids(session, crit)
        item = session.get(ScoreItem, crit.item_id)
        assessment = q.assessment_of(session, crit.id)  # type: ignore[arg-type]
        if verb == "open":
            check(member=env.member, action=Action.view_item)
            member = env.member
            unit_id = member.unit_id if member and member.unit_id in units else (units[0] if len(units) == 1 else None)
            return Answer("", outs=[_criterion_out(session, env, req, crit, unit_id)])
        if verb == "ev":
            unit_id = _claim_unit(session, env, crit)
            label = f"{q.unit_name(session, unit_id)} · 细则 {item.no if item else '?'}.{crit.no}"
            return Answer("请回复提示消息发送文件", outs=[_evidence_prompt_out(label, Subject(SubjectKind.criterion, crit.id, crit.campaign_id, unit_id), req)])
        if verb == "claim":
            return Answer("已申报", outs=[claim(session, env, req, crit, None, version=btn.version)])
        check(member=env.member, action=Action.review)
        _expect(btn.version, assessment.version if assessment else 0)
        if assessment is None or assessment.state != AssessmentState.claimed:
            raise Conflict("这条细则当前没有待审核的申报（可能已处理过），本次操作未生效。")
        label = f"{q.unit_name(session, assessment.unit_id)} · 细则 {item.no if item else '?'}.{crit.no}"
        subject = Subject(SubjectKind.criterion, crit.id, crit.campaign_id, assessment.unit_id)
        if verb == "ok":
            pr.verify_criterion(session=session, criterion_id=crit.id, actor=env.actor, now=req.now, expected_version=assessment.version)
            return _approved(session, env, req, label, subject, chat_id, message_id, shown, crit.campaign_id, assessment.unit_id)
        return _ask_reason(session, env, req, label, subject, chat_id, message_id)
    if kind == "e":
        from models.evidence import accept_evidence

        ev = session.get(Evidence, btn.id)
        if ev is None or ev.campaign_id != env.campaign.id:
            raise InvalidInput(FORGED)
        check(member=env.member, action=Action.review)
        if ev.state != EvidenceState.submitted:
            raise Conflict("这份证明材料已处理过，本次操作未生效。")
        label = f"{q.unit_name(session, ev.unit_id)} · 证明材料《{ev.file_name}》"
        subject = Subject(SubjectKind.evidence, ev.id, ev.campaign_id, ev.unit_id)
        if verb == "ok":
            accept_evidence(session, evidence_id=ev.id, actor=env.actor, now=req.now)  # type: ignore[arg-type]
            return _approved(session, env, req, label, subject, chat_id, message_id, shown, ev.campaign_id, ev.unit_id)
        return _ask_reason(session, env, req, label, subject, chat_id, message_id)
    raise InvalidInput(FORGED)


def _approved(session: Session, env: Env, req: Req, label: str, subject: Subject, chat_id: int, message_id: int,
              shown: str, campaign_id: int, unit_id: int | None) -> Answer:
    who = env.member.display_name if env.member else ""
    stamp = f"✅ 已通过（{r.esc(who)} · {r.when(req.now, req.settings.campaign.tz)}）"
    outs = [Out(f"{shown}\n\n{stamp}", edit=(chat_id, message_id), subject=subject)]
    outs += notify_unit(session, campaign_id, unit_id, f"✅ {r.esc(label)} 已审核通过。", subject)
    return Answer("已通过", outs=outs)


def _ask_reason(session: Session, env: Env, req: Req, label: str, subject: Subject, chat_id: int, message_id: int) -> Answer:
    """退回: ask for the reason with ForceReply; the reply completes the return."""
    row = lookup(session, chat_id=chat_id, message_id=message_id)
    if row is None or row.subject_kind != subject.kind or row.subject_id != subject.id:
        row = remember(session, campaign_id=subject.campaign_id, chat_id=chat_id, message_id=message_id,
                       kind=subject.kind, subject_id=subject.id, unit_id=subject.unit_id, now=req.now)
    member = _member(env)
    prompt = Out(
        f"{r.mention(member)}，请<b>回复本消息</b>写明退回 {r.esc(label)} 的原因（对方会收到）：",
        chat_id=chat_id, force_reply=True, placeholder="退回原因",
        subject=Subject(SubjectKind.return_reason, row.id, subject.campaign_id, subject.unit_id, for_member_id=member.id),
    )
    return Answer("请填写退回原因", outs=[prompt])


def unit_of(session: Session, env: Env, text: str) -> Unit:
    check(member=env.member, action=Action.view_unit)
    return mm.find_unit(session, campaign_id=env.campaign_id, text=text)



# ================================================================ status


def _campaign_status(session: Session, env: Env, req: Req) -> stt.CampaignStatus:
    return stt.campaign_status(
        session=session, campaign_id=env.campaign_id, today=req.today,
        yellow_working_days=req.settings.campaign.yellow_working_days,
    )


def status(session: Session, env: Env, req: Req) -> list[Out]:
    """/status: the campaign against the official score, in ≤4096-character chunks."""
    check(member=env.member, action=Action.view_status)
    st = _campaign_status(session, env, req)
    chunks = rp.render_status(st)
    return [Out(c, quote=(i == 0)) for i, c in enumerate(chunks)]


def unit_status(session: Session, env: Env, req: Req, text: str) -> list[Out]:
    """/unit 名称: one unit's assignments and criteria."""
    unit = unit_of(session, env, text)
    st = _campaign_status(session, env, req)
    view = stt.unit_view(st, unit.id)
    return [Out(c, quote=(i == 0)) for i, c in enumerate(rp.render_unit(view))]


def item_view(session: Session, env: Env, req: Req, no: int) -> list[Out]:
    """/item N: a score item, its criteria and points (reply-able)."""
    check(member=env.member, action=Action.view_item)
    item = q.item_by_no(session, campaign_id=env.campaign_id, no=no)
    st = _campaign_status(session, env, req)
    chunks = rp.render_item(stt.item_view(st, item.no))
    subject = Subject(SubjectKind.item, item.id, item.campaign_id)
    outs = [Out(c, quote=(i == 0)) for i, c in enumerate(chunks)]
    outs[-1].subject = subject
    member = env.member
    crits = q.criteria_of_item(session, item.id)  # type: ignore[arg-type]
    if member is not None and crits:
        buttons = [(f"细则{item.no}.{c.no}", button("c", "open", c.id)) for c in crits]  # type: ignore[arg-type]
        outs[-1].buttons = [buttons[i:i + 4] for i in range(0, len(buttons), 4)]
    return outs
