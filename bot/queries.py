"""Look-ups the bot needs, by the numbers people type (任务7, 评分项8, 细则8.1).

Plain queries on the session of the current transaction; unknown numbers raise
:class:`~models.errors.NotFound` with a Chinese message naming the valid range.
"""

from __future__ import annotations

from datetime import date

from sqlmodel import Session, col, func, select

from models.errors import NotFound
from models.owners import responsible_unit_ids
from models.tables import (
    Assessment,
    AssessmentState,
    Assignment,
    AssignmentState,
    Criterion,
    Evidence,
    EvidenceState,
    Member,
    Role,
    ScoreItem,
    Task,
    Unit,
)


def _range(session: Session, model: type, campaign_id: int) -> str:
    lo, hi = session.exec(
        select(func.min(model.no), func.max(model.no)).where(model.campaign_id == campaign_id)  # type: ignore[attr-defined]
    ).one()
    return f"{lo}–{hi}" if lo is not None else "（暂无）"


def task_by_no(session: Session, *, campaign_id: int, no: int) -> Task:
    task = session.exec(select(Task).where(Task.campaign_id == campaign_id, Task.no == no)).first()
    if task is None:
        raise NotFound(f"没有任务 {no}。任务编号为 {_range(session, Task, campaign_id)}。")
    return task


def item_by_no(session: Session, *, campaign_id: int, no: int) -> ScoreItem:
    item = session.exec(
        select(ScoreItem).where(ScoreItem.campaign_id == campaign_id, ScoreItem.no == no)
    ).first()
    if item is None:
        raise NotFound(f"没有评分项 {no}。评分项编号为 {_range(session, ScoreItem, campaign_id)}。")
    return item


def criterion_by_ref(session: Session, *, campaign_id: int, item_no: int, no: int) -> Criterion:
    item = item_by_no(session, campaign_id=campaign_id, no=item_no)
    crit = session.exec(
        select(Criterion).where(Criterion.item_id == item.id, Criterion.no == no)
    ).first()
    if crit is None:
        count = len(criteria_of_item(session, item.id))  # type: ignore[arg-type]
        raise NotFound(f"评分项 {item_no} 没有第 {no} 条细则（共 {count} 条）。")
    return crit


def criteria_of_item(session: Session, item_id: int) -> list[Criterion]:
    return list(session.exec(select(Criterion).where(Criterion.item_id == item_id).order_by(Criterion.no)))


def assignments_of_task(session: Session, task_id: int) -> list[Assignment]:
    return list(
        session.exec(
            select(Assignment)
            .where(Assignment.task_id == task_id, Assignment.retired == False)  # noqa: E712
            .order_by(Assignment.id)
        )
    )


def assessment_of(session: Session, criterion_id: int) -> Assessment | None:
    return session.exec(select(Assessment).where(Assessment.criterion_id == criterion_id)).first()


def unit_name(session: Session, unit_id: int | None) -> str:
    unit = session.get(Unit, unit_id) if unit_id is not None else None
    return unit.name if unit is not None else "（未指定单位）"


def open_assignments(session: Session, *, unit_id: int) -> list[tuple[Assignment, Task]]:
    """A unit's assignments not yet approved, nearest deadline first."""
    rows = session.exec(
        select(Assignment, Task)
        .join(Task, col(Task.id) == col(Assignment.task_id))
        .where(
            Assignment.unit_id == unit_id,
            Assignment.retired == False,  # noqa: E712
            Assignment.state != AssignmentState.approved,
        )
        .order_by(Task.deadline, Task.no)
    )
    return [(a, t) for a, t in rows]


def open_criteria(
    session: Session, *, campaign_id: int, unit_id: int
) -> list[tuple[Criterion, ScoreItem, Assessment | None]]:
    """Criteria a unit owes that are neither claimed nor verified, nearest deadline first."""
    out: list[tuple[Criterion, ScoreItem, Assessment | None]] = []
    items = session.exec(select(ScoreItem).where(ScoreItem.campaign_id == campaign_id))
    for item in items:
        for crit in criteria_of_item(session, item.id):  # type: ignore[arg-type]
            if crit.not_attainable or unit_id not in responsible_unit_ids(session, crit):
                continue
            assessment = assessment_of(session, crit.id)  # type: ignore[arg-type]
            if assessment is not None and assessment.state in (
                AssessmentState.claimed, AssessmentState.verified
            ):
                continue
            out.append((crit, item, assessment))
    out.sort(key=lambda r: (r[1].deadline or date.max, r[1].no, r[0].no))
    return out


def review_queue(
    session: Session, *, campaign_id: int
) -> tuple[list[Assignment], list[Assessment], list[Evidence]]:
    """What waits for the coordinator: submitted work, claims, evidence."""
    assignments = list(
        session.exec(
            select(Assignment)
            .where(Assignment.campaign_id == campaign_id, Assignment.state == AssignmentState.submitted)
            .order_by(col(Assignment.submitted_at), Assignment.id)
        )
    )
    claims = list(
        session.exec(
            select(Assessment)
            .where(Assessment.campaign_id == campaign_id, Assessment.state == AssessmentState.claimed)
            .order_by(col(Assessment.claimed_at), Assessment.id)
        )
    )
    evidence = list(
        session.exec(
            select(Evidence)
            .where(Evidence.campaign_id == campaign_id, Evidence.state == EvidenceState.submitted)
            .order_by(col(Evidence.created_at), Evidence.id)
        )
    )
    return assignments, claims, evidence


def liaisons_of(session: Session, *, campaign_id: int, unit_id: int) -> list[Member]:
    return list(
        session.exec(
            select(Member).where(
                Member.campaign_id == campaign_id, Member.unit_id == unit_id,
                Member.role == Role.liaison, Member.active == True,  # noqa: E712
            )
        )
    )
