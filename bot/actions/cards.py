"""The task and criterion cards a liaison replies to, and the evidence prompt."""

from __future__ import annotations

from sqlmodel import Session

from bot import queries, render
from bot.actions.common import Req
from bot.callbacks import button
from bot.context import Out, Subject
from models import progress, wording
from models.evidence import allowed_labels
from models.members import Env
from models.tables import (
    AssessmentState,
    Assignment,
    AssignmentState,
    Criterion,
    ScoreItem,
    SubjectKind,
    Task,
)


def assignment_out(session: Session, env: Env, req: Req, a: Assignment, *, chat_id: int | None = None) -> Out:
    task = session.get(Task, a.task_id)
    assert task is not None
    buttons = None
    if a.state != AssignmentState.approved:
        row = [("📎 交材料", button("a", "ev", a.id))]  # type: ignore[arg-type]
        if a.state != AssignmentState.submitted:
            row.insert(0, ("✅ 完成", button("a", "done", a.id, a.version)))  # type: ignore[arg-type]
        buttons = [row]
    return Out(
        render.assignment_card(a, task, queries.unit_name(session, a.unit_id), req.today), buttons=buttons,
        subject=Subject(SubjectKind.assignment, a.id, a.campaign_id, a.unit_id), chat_id=chat_id,
    )


def criterion_out(session: Session, env: Env, req: Req, crit: Criterion, unit_id: int | None, *, chat_id: int | None = None) -> Out:
    item = session.get(ScoreItem, crit.item_id)
    assert item is not None
    assessment = queries.assessment_of(session, crit.id)  # type: ignore[arg-type]
    state = assessment.state if assessment else AssessmentState.none
    buttons = None
    if not crit.not_attainable and state not in (AssessmentState.verified,):
        row = [("📎 交材料", button("c", "ev", crit.id))]  # type: ignore[arg-type]
        if state != AssessmentState.claimed:
            row.insert(0, ("✋ 申报达标", button("c", "claim", crit.id, assessment.version if assessment else 0)))  # type: ignore[arg-type]
        buttons = [row]
    unit = queries.unit_name(session, unit_id) if unit_id else None
    return Out(
        render.criterion_card(crit, item, assessment, unit, req.today,
                              progress.campaign_end(session=session, campaign_id=crit.campaign_id)),
        buttons=buttons,
        subject=Subject(SubjectKind.criterion, crit.id, crit.campaign_id, unit_id), chat_id=chat_id,
    )


def evidence_prompt_out(label: str, subject: Subject, req: Req) -> Out:

    s = req.settings.storage
    return Out(
        f"📎 请<b>回复本消息</b>发送 {wording.esc(label)} 的证明材料（{allowed_labels(s.allowed_types)}，"
        f"每个文件不超过 {s.max_file_mb} MB）。可以发送多个文件，每个都回复本消息。",
        subject=subject, force_reply=True, placeholder="回复文件",
    )

