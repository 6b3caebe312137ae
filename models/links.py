"""Tasks of Annex 1 linked to criteria of Annex 2: report the work once.

A link (``TaskCriterion``) says that completing a task meets a criterion (task 7 设立质量发展
专项资金 ↔ criterion 7.1). When the coordinator approves a unit's task, :func:`claimable`
lists the linked criteria that unit can still claim; :func:`claim_linked` claims one of them
with the task's evidence filed for it too (the same files, never uploaded twice).
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, col, select

from models.audit import Actor
from models.errors import Conflict, InvalidInput, NotFound
from models.evidence import Upload, evidence_for, submit_evidence
from models.owners import responsible_unit_ids
from models.progress import claim_criterion
from models.tables import (
    Assessment,
    AssessmentState,
    Assignment,
    AssignmentState,
    Criterion,
    ScoreItem,
    Task,
    TaskCriterion,
)

#: A criterion can be claimed again from these states.
_OPEN = (AssessmentState.none, AssessmentState.rejected)


def criteria_of_task(*, session: Session, task_id: int) -> list[tuple[Criterion, ScoreItem]]:
    """The criteria a task is linked to, in item and criterion order."""
    return list(session.exec(
        select(Criterion, ScoreItem)
        .join(TaskCriterion, col(TaskCriterion.criterion_id) == col(Criterion.id))
        .join(ScoreItem, col(ScoreItem.id) == col(Criterion.item_id))
        .where(TaskCriterion.task_id == task_id)
        .order_by(col(ScoreItem.no), col(Criterion.no))).all())


def tasks_of_item(*, session: Session, item_id: int) -> list[tuple[Criterion, Task]]:
    """(criterion, task) for every link of a score item's criteria, in order."""
    return list(session.exec(
        select(Criterion, Task)
        .join(TaskCriterion, col(TaskCriterion.criterion_id) == col(Criterion.id))
        .join(Task, col(Task.id) == col(TaskCriterion.task_id))
        .where(Criterion.item_id == item_id, col(Task.retired).is_(False))
        .order_by(col(Criterion.no), col(Task.no))).all())


def _state(session: Session, criterion_id: int) -> AssessmentState:
    a = session.exec(select(Assessment).where(Assessment.criterion_id == criterion_id)).first()
    return a.state if a is not None else AssessmentState.none


def claimable(*, session: Session, assignment: Assignment) -> list[tuple[Criterion, ScoreItem]]:
    """The criteria linked to an approved assignment's task that its unit owes and can still claim."""
    if assignment.state != AssignmentState.approved or assignment.retired:
        return []
    return [(c, i) for c, i in criteria_of_task(session=session, task_id=assignment.task_id)
            if not c.not_attainable and assignment.unit_id in responsible_unit_ids(session, c, i)
            and _state(session, c.id) in _OPEN]  # type: ignore[arg-type]


def claim_linked(*, session: Session, assignment_id: int, criterion_id: int, actor: Actor,
                 now: datetime) -> tuple[Assessment, int]:
    """Claim ``criterion_id`` for the unit of approved ``assignment_id`` with the task's files:
    (the claim, how many files were filed for the criterion). The caller checked the permission."""
    a = session.get(Assignment, assignment_id)
    if a is None:
        raise NotFound("没有找到这项任务分工。")
    task = session.get(Task, a.task_id)
    link = session.get(TaskCriterion, (a.task_id, criterion_id))
    if link is None or task is None:
        raise InvalidInput("这条细则与该任务没有关联。")
    if a.state != AssignmentState.approved:
        raise Conflict(f"任务{task.no}尚未审核通过，通过后才能据此申报细则。")
    assessment = claim_criterion(session=session, criterion_id=criterion_id, unit_id=a.unit_id, actor=actor,
                                 now=now, note=f"随任务{task.no}一并申报（任务已审核通过）")
    filed = 0
    for ev in evidence_for(session=session, campaign_id=a.campaign_id, unit_id=a.unit_id, task_id=a.task_id):
        crit = session.get(Criterion, criterion_id)
        sub = submit_evidence(session, Upload(
            campaign_id=a.campaign_id, unit_id=a.unit_id, member_id=actor.member_id, sha256=ev.sha256,
            size=ev.size, mime_type=ev.mime_type, original_name=ev.original_name or ev.file_name,
            item_id=crit.item_id if crit else None, criterion_id=criterion_id,
            caption=f"任务{task.no}的证明材料", telegram_file_id=ev.telegram_file_id,
            telegram_file_unique_id=ev.telegram_file_unique_id, received_on=now.date()),
            actor=actor, now=now)
        filed += sub.created
    return assessment, filed
