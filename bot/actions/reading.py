"""Reading: /mytasks, /status, /unit, /task, /item (rendered from the domain's status)."""

from __future__ import annotations

from datetime import date

from sqlmodel import Session

import models.status
import reports.text
from bot import queries, render
from bot.actions.common import Req, member_of
from bot.actions.supervision import open_lines
from bot.callbacks import button
from bot.context import Out, Subject
from models import links, members, progress, wording
from models.errors import InvalidInput
from models.members import Env
from models.permissions import Action, check
from models.tables import AssessmentState, SubjectKind, Unit

#: Open items on one page of /mytasks (the most urgent first).
MYTASKS_PAGE = 15


def my_tasks(session: Session, env: Env, req: Req, page: int = 0) -> Out:
    """/mytasks: my unit's open assignments and criteria, nearest deadline first, a page at a
    time (上一页 / 下一页 buttons edit the same message)."""
    check(member=env.member, action=Action.my_tasks)
    member = member_of(env)
    if member.unit_id is None:
        raise InvalidInput("你的账号没有所属单位。协调员可用 /review、/status 查看全区情况。")
    unit = queries.unit_name(session, member.unit_id)
    entries: list[tuple[date, str, tuple[str, str]]] = []
    for a, task in queries.open_assignments(session, unit_id=member.unit_id):
        line = (f"任务{task.no} · {wording.month_day(task.deadline)}截止{render.deadline_note(task.deadline, req.today)}"
                f" · {render.assignment_state(a)}\n   {wording.esc(wording.short(task.title, 36))}")
        entries.append((task.deadline, line, (f"任务{task.no}", button("a", "open", a.id))))  # type: ignore[arg-type]
    end = progress.campaign_end(session=session, campaign_id=env.campaign_id)
    for crit, item, assessment in queries.open_criteria(session, campaign_id=env.campaign_id, unit_id=member.unit_id):
        state = assessment.state if assessment else AssessmentState.none
        due = models.status.item_deadline(item.deadline, campaign_end=end)
        basis = models.status.deadline_basis(item.deadline, item.deadline_note)
        when = wording.item_due(due, basis, req.today, brief=True)
        line = (f"细则{item.no}.{crit.no} · {when}{'截止' if basis == 'stated' else ''}{render.deadline_note(due, req.today)}"
                f" · {render.ASSESSMENT_STATES[state]}\n   {wording.esc(wording.short(crit.standalone, 36))}")
        entries.append((due or date.max, line, (f"细则{item.no}.{crit.no}", button("c", "open", crit.id))))  # type: ignore[arg-type]
    if not entries:
        return Out(f"🎉 {wording.esc(unit)} 目前没有待办的任务和细则。")
    entries.sort(key=lambda e: e[0])
    pages = (len(entries) + MYTASKS_PAGE - 1) // MYTASKS_PAGE
    page = min(max(page, 0), pages - 1)
    first = page * MYTASKS_PAGE
    shown = entries[first:first + MYTASKS_PAGE]
    head = f"📋 <b>{wording.esc(unit)}</b> 的待办（{len(entries)} 项，按截止日期排序"
    head += f"，第 {page + 1}/{pages} 页）：" if pages > 1 else "）："
    lines = [head]
    lines += [f"{i}. {line}" for i, (_, line, _) in enumerate(shown, first + 1)]
    lines.append("\n点下方按钮打开某一项；回复打开的消息即可填报进度或提交材料。")
    buttons = [b for _, _, b in shown]
    rows = [buttons[i:i + 3] for i in range(0, len(buttons), 3)]
    turn = []
    if page > 0:
        turn.append(("◀ 上一页", button("m", "pg", page - 1)))
    if page < pages - 1:
        turn.append(("下一页 ▶", button("m", "pg", page + 1)))
    if turn:
        rows.append(turn)
    return Out("\n".join(lines), buttons=rows)


def task_view(session: Session, env: Env, req: Req, no: int) -> list[Out]:
    """/task N: the task and each unit's state (reply to it to report, as a liaison)."""
    check(member=env.member, action=Action.view_task)
    task = queries.task_by_no(session, campaign_id=env.campaign_id, no=no)
    if task.retired:
        return [Out(f"任务{task.no}已从工作计划中撤销（其进度和材料记录均保留，可在台账中查到）。")]
    st = campaign_status_of(session, env, req)
    chunks = reports.text.render_task(models.status.task_view(st, task.no))
    reason = progress.deadline_reason(session=session, task_id=task.id) if task.deadline != task.planned_deadline else None  # type: ignore[arg-type]
    if reason:
        chunks[-1] += f"\n📅 完成时限调整原因：{wording.esc(reason)}"
    linked = links.criteria_of_task(session=session, task_id=task.id)  # type: ignore[arg-type]
    if linked:
        chunks[-1] += "\n🔗 关联评分细则：" + "、".join(f"细则{i.no}.{c.no}" for c, i in linked) + "（任务通过后可一并申报）"
    extra = open_lines(session, env.campaign_id, req.today, task_id=task.id)
    if extra:
        chunks[-1] += "\n\n" + "\n".join(extra)
    chunks[-1] += "\n\n👉 联络员可直接回复本消息填报本单位的进度。"
    outs = [Out(c, quote=(i == 0)) for i, c in enumerate(chunks)]
    outs[-1].subject = Subject(SubjectKind.task, task.id, task.campaign_id)
    offers = [(f"✋ {queries.unit_name(session, a.unit_id)}申报细则{i.no}.{c.no}", button("l", "cl", c.id, a.id))  # type: ignore[arg-type]
              for a in queries.assignments_of_task(session, task.id)  # type: ignore[arg-type]
              for c, i in links.claimable(session=session, assignment=a)][:6]
    if offers:  # still open after the approval's notice: the same one-press claim
        outs[-1].buttons = [[o] for o in offers]
    return outs


def unit_of(session: Session, env: Env, text: str) -> Unit:
    check(member=env.member, action=Action.view_unit)
    return members.find_unit(session, campaign_id=env.campaign_id, text=text)


def campaign_status_of(session: Session, env: Env, req: Req) -> models.status.CampaignStatus:
    return models.status.campaign_status(
        session=session, campaign_id=env.campaign_id, today=req.today,
        yellow_working_days=req.settings.campaign.yellow_working_days,
    )


def status(session: Session, env: Env, req: Req) -> list[Out]:
    """/status: the campaign against the official score, in ≤4096-character chunks."""
    check(member=env.member, action=Action.view_status)
    st = campaign_status_of(session, env, req)
    chunks = reports.text.render_status(st)
    extra = open_lines(session, env.campaign_id, req.today)
    if extra:
        chunks.append("\n".join(extra))
    return [Out(c, quote=(i == 0)) for i, c in enumerate(chunks)]


def unit_status(session: Session, env: Env, req: Req, text: str) -> list[Out]:
    """/unit 名称: one unit's assignments and criteria."""
    unit = unit_of(session, env, text)
    st = campaign_status_of(session, env, req)
    view = models.status.unit_view(st, unit.id)
    chunks = reports.text.render_unit(view)
    extra = open_lines(session, env.campaign_id, req.today, unit_id=unit.id)
    if extra:
        chunks[-1] += "\n\n" + "\n".join(extra)
    outs = [Out(c, quote=(i == 0)) for i, c in enumerate(chunks)]
    # A leader's reply to it is a 批示 to this unit.
    outs[-1].subject = Subject(SubjectKind.unit, unit.id, unit.campaign_id, unit.id)
    return outs


def item_view(session: Session, env: Env, req: Req, no: int) -> list[Out]:
    """/item N: a score item, its criteria and points (reply-able)."""
    check(member=env.member, action=Action.view_item)
    item = queries.item_by_no(session, campaign_id=env.campaign_id, no=no)
    st = campaign_status_of(session, env, req)
    chunks = reports.text.render_item(models.status.item_view(st, item.no))
    linked = links.tasks_of_item(session=session, item_id=item.id)  # type: ignore[arg-type]
    if linked:
        chunks[-1] += "\n🔗 关联任务：" + "、".join(f"细则{item.no}.{c.no} ↔ 任务{t.no}" for c, t in linked)
    subject = Subject(SubjectKind.item, item.id, item.campaign_id)
    outs = [Out(c, quote=(i == 0)) for i, c in enumerate(chunks)]
    outs[-1].subject = subject
    member = env.member
    crits = queries.criteria_of_item(session, item.id)  # type: ignore[arg-type]
    if member is not None and crits:
        buttons = [(f"细则{item.no}.{c.no}", button("c", "open", c.id)) for c in crits]  # type: ignore[arg-type]
        outs[-1].buttons = [buttons[i:i + 4] for i in range(0, len(buttons), 4)]
    return outs

