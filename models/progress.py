"""Progress of the work: assignments and the assessment of score criteria.

The state machines (who may act is checked before, by ``models.permissions``):

Assignment (a task as one unit carries it)::

    not_started ──set_progress──▶ in_progress ──submit──▶ submitted ──approve──▶ approved
         └─────────────────────submit──────────────────────▲   │
                                   ▲                           │
                                   └──────return (reason)──────┘

* ``set_progress`` (percent 0–100 and/or a note) on not_started / in_progress only;
  it moves not_started to in_progress. A submitted assignment waits for review,
  an approved one is finished: both refuse.
* ``submit_assignment`` sets percent to 100 and clears the return reason.
* ``return_assignment`` needs a reason; it stays on the row (``return_reason``)
  until the next submit, so the unit can read it while reworking.
* A retired assignment (the plan no longer lists the unit) refuses everything.

Assessment (one per criterion)::

    none ──claim──▶ claimed ──verify──▶ verified
                     │   ▲
               reject│   │claim again
                     ▼   │
                    rejected

* Only a unit responsible for the criterion may claim it: its CriterionUnit rows,
  or, when it has none, its item's units (ItemUnit rows, plus every member unit
  when the item is assigned to all members).
* A criterion marked not attainable cannot be claimed. Marking one not attainable
  needs a reason, and is refused while it is claimed (reject it first) or verified.
* A new claim clears the previous rejection's reason and review.

Every function is keyword-only, takes ``now`` (aware), writes one audit row with
the fields before and after, bumps ``version`` and never commits. A stale
``expected_version`` raises :class:`Conflict`.

Concurrency: each write re-reads its row inside the caller's transaction with a
row lock (``SELECT … FOR UPDATE`` on PostgreSQL; SQLite connections of
``infra.db`` begin ``IMMEDIATE`` transactions, which serialise writers), with
``populate_existing`` so a copy already in the session is refreshed. Two updates
of one assignment therefore run one after the other, and the second sees the
first: nothing is lost. Assessment writes lock the criterion row, so two first
claims of one criterion cannot both insert an assessment.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlmodel import Session, col, func, select

from models.audit import Actor, record, snapshot
from models.calendar import first_working_day_on_or_after
from models.errors import Conflict, InvalidInput, NotFound, PermissionDenied, StaleVersion
from models.labels import ASSESSMENT_NAMES, STATE_NAMES
from models.members import check_second_reviewer
from models.owners import responsible_unit_ids
from models.tables import (
    Assessment,
    AssessmentState,
    Assignment,
    AssignmentState,
    AuditLog,
    Criterion,
    Phase,
    ScoreItem,
    Task,
    Unit,
)
from models.wording import full_date

ASSIGNMENT_FIELDS = ("state", "percent", "note", "return_reason", "version")
ASSESSMENT_FIELDS = ("state", "unit_id", "claim_note", "reason", "version")

MAX_NOTE_CHARS = 2000



def _check_now(now: datetime) -> None:
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be time-zone aware")


def _text(value: str | None, what: str, *, required: bool) -> str | None:
    # NUL is dropped: no note holds it (PostgreSQL text cannot), whichever way it came in.
    text = (value or "").replace("\x00", "").strip()
    if not text:
        if required:
            raise InvalidInput(f"请填写{what}。")
        return None
    if len(text) > MAX_NOTE_CHARS:
        raise InvalidInput(f"{what}太长了（{len(text)}字），请控制在{MAX_NOTE_CHARS}字以内。")
    return text


def _expect(expected: int | None, current: int) -> None:
    if expected is not None and expected != current:
        raise StaleVersion("情况已有变化（有人刚刚更新过），本次操作未生效。请重新查看最新状态后再操作。")


# ====================================================================== assignments


def _lock_assignment(session: Session, assignment_id: int) -> tuple[Assignment, Task]:
    row = session.exec(
        select(Assignment)
        .where(Assignment.id == assignment_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).first()
    if row is None:
        raise NotFound("没有找到这项任务分工。")
    task = session.get(Task, row.task_id)
    if task is None:  # pragma: no cover - foreign key
        raise NotFound("没有找到这项任务。")
    if row.retired:
        raise Conflict(f"任务{task.no}已不再由该单位承担（计划已调整），不能再操作。")
    return row, task


def _label(session: Session, a: Assignment, task: Task) -> str:
    unit = session.get(Unit, a.unit_id)
    return f"任务{task.no}（{unit.name if unit else '未知单位'}）"


def _write_assignment(
    session: Session, a: Assignment, *, before: dict, action: str, actor: Actor, now: datetime,
    note: str | None = None,
) -> Assignment:
    a.version += 1
    a.updated_at = now
    session.add(a)
    session.flush()
    record(session=session, actor=actor, action=action, entity="assignment", entity_id=a.id,
           at=now, campaign_id=a.campaign_id, before=before,
           after=snapshot(a, ASSIGNMENT_FIELDS), note=note)
    session.flush()
    return a


def set_progress(
    *,
    session: Session,
    assignment_id: int,
    percent: int | None,
    note: str | None,
    actor: Actor,
    now: datetime,
    expected_version: int | None = None,
) -> Assignment:
    """Report progress (percent 0–100 and/or a note); not_started becomes in_progress."""
    _check_now(now)
    if percent is not None and (isinstance(percent, bool) or not isinstance(percent, int)):
        raise InvalidInput("进度必须是0到100之间的整数。")
    if percent is not None and not 0 <= percent <= 100:
        raise InvalidInput(f"进度必须在0%到100%之间（收到的是{percent}%）。")
    text = _text(note, "进展说明", required=False)
    if percent is None and text is None:
        raise InvalidInput("请填写进度（0–100）或进展说明。")
    a, task = _lock_assignment(session, assignment_id)
    _expect(expected_version, a.version)
    if a.state == AssignmentState.approved:
        raise Conflict(f"{_label(session, a, task)}已审核通过，不能再填报进度。")
    if a.state == AssignmentState.submitted:
        raise Conflict(f"{_label(session, a, task)}已提交，正在等待审核；如需修改，请协调员先退回。")
    before = snapshot(a, ASSIGNMENT_FIELDS)
    a.state = AssignmentState.in_progress
    if percent is not None:
        a.percent = percent
    if text is not None:
        a.note = text
    return _write_assignment(session, a, before=before, action="assignment.progress",
                             actor=actor, now=now)


def submit_assignment(
    *,
    session: Session,
    assignment_id: int,
    actor: Actor,
    now: datetime,
    note: str | None = None,
    expected_version: int | None = None,
) -> Assignment:
    """The unit says the task is done: submitted for review (percent 100)."""
    _check_now(now)
    text = _text(note, "说明", required=False)
    a, task = _lock_assignment(session, assignment_id)
    _expect(expected_version, a.version)
    if a.state == AssignmentState.submitted:
        raise Conflict(f"{_label(session, a, task)}已提交，正在等待审核。")
    if a.state == AssignmentState.approved:
        raise Conflict(f"{_label(session, a, task)}已审核通过，无需再提交。")
    before = snapshot(a, ASSIGNMENT_FIELDS)
    a.state = AssignmentState.submitted
    a.percent = 100
    a.return_reason = None
    a.submitted_at = now
    if text is not None:
        a.note = text
    return _write_assignment(session, a, before=before, action="assignment.submit",
                             actor=actor, now=now)


def reviewable_assignment(
    *, session: Session, assignment_id: int, expected_version: int | None, verb: str = "审核",
) -> Assignment:
    """The assignment, locked, if the coordinator may review it now (submitted, at that version).

    The one check behind approving and returning; the bot also calls it before it asks for a
    reason to return (the return itself is written when the reason arrives).
    """
    a, task = _lock_assignment(session, assignment_id)
    _expect(expected_version, a.version)
    if a.state != AssignmentState.submitted:
        raise Conflict(f"{_label(session, a, task)}当前是“{STATE_NAMES[a.state]}”，"
                       f"只有已提交的任务才能{verb}。")
    return a


def approve_assignment(
    *,
    session: Session,
    assignment_id: int,
    actor: Actor,
    now: datetime,
    expected_version: int | None = None,
    alone_may_self_review: bool = True,
) -> Assignment:
    """The coordinator accepts a submitted assignment (not their own while another coordinator can)."""
    _check_now(now)
    a = reviewable_assignment(session=session, assignment_id=assignment_id,
                              expected_version=expected_version, verb="审核通过")
    check_second_reviewer(session, reviewer_member_id=actor.member_id,
                          submitter_member_id=_submitted_by(session, a), campaign_id=a.campaign_id,
                          alone_may_self_review=alone_may_self_review)
    before = snapshot(a, ASSIGNMENT_FIELDS)
    a.state = AssignmentState.approved
    a.approved_at = now
    return _write_assignment(session, a, before=before, action="assignment.approve",
                             actor=actor, now=now)


def _submitted_by(session: Session, a: Assignment) -> int | None:
    """Who handed the assignment in (the audit log's last submission of it)."""
    return session.exec(
        select(AuditLog.actor_member_id)
        .where(AuditLog.entity == "assignment", AuditLog.entity_id == a.id,
               AuditLog.action == "assignment.submit")
        .order_by(col(AuditLog.id).desc()).limit(1)
    ).first()


def return_assignment(
    *,
    session: Session,
    assignment_id: int,
    reason: str,
    actor: Actor,
    now: datetime,
    expected_version: int | None = None,
) -> Assignment:
    """The coordinator sends a submitted assignment back (in_progress) with a reason."""
    _check_now(now)
    why = _text(reason, "退回原因", required=True)
    a = reviewable_assignment(session=session, assignment_id=assignment_id,
                              expected_version=expected_version, verb="退回")
    before = snapshot(a, ASSIGNMENT_FIELDS)
    a.state = AssignmentState.in_progress
    a.return_reason = why
    a.approved_at = None
    return _write_assignment(session, a, before=before, action="assignment.return",
                             actor=actor, now=now, note=why)



def change_deadline(
    *, session: Session, task_id: int, new: date, actor: Actor, now: datetime, today: date,
    reason: str | None = None, reason_required: bool = True,
) -> tuple[Task, date]:
    """Move a task's deadline (the coordinator's /deadline); returns the task and the old date.

    A reason is required (kept in the audit note: /task and the ledger show it). The new date
    may not lie before ``today`` nor after the campaign's last phase (acceptance): a deadline
    past the inspection is no deadline. ``planned_deadline`` keeps the seed's date. The
    scheduler re-plans from the store on its next sweep.
    """
    _check_now(now)
    why = _text(reason, "调整原因", required=reason_required)
    task = session.exec(
        select(Task).where(Task.id == task_id).with_for_update().execution_options(populate_existing=True)
    ).first()
    if task is None:
        raise NotFound("没有找到这项任务。")
    if new == task.deadline:
        raise InvalidInput(f"任务{task.no}的完成时限已经是 {full_date(new)}。")
    if new < today:
        raise InvalidInput(f"新的完成时限 {full_date(new)} 早于今天，请检查日期。")
    last = campaign_end(session=session, campaign_id=task.campaign_id)
    if last is not None and new > last:
        raise InvalidInput(
            f"新的完成时限 {full_date(new)} 晚于验收阶段结束（{full_date(last)}），请检查日期。"
        )
    old = task.deadline
    before = snapshot(task, ("deadline",))
    task.deadline = new
    session.add(task)
    session.flush()
    record(session=session, actor=actor, action="task.deadline", entity="task", entity_id=task.id,
           at=now, campaign_id=task.campaign_id, before=before, after=snapshot(task, ("deadline",)),
           note=why)
    return task, old


def deadline_to_working_day(
    *, session: Session, task_id: int, shown_for: date, actor: Actor, now: datetime, today: date,
) -> tuple[Task, date]:
    """Move a deadline that falls on a non-working day to the next working day (the button
    under the warning); ``shown_for`` is the date the warning was about: stale once it moved.
    The reason is the last change's, marked （改为工作日）."""
    task = session.get(Task, task_id)
    if task is None:
        raise NotFound("没有找到这项任务。")
    if task.deadline != shown_for:
        raise StaleVersion("完成时限已经改过了，本次操作未生效。")
    before = deadline_reason(session=session, task_id=task_id)
    return change_deadline(session=session, task_id=task_id, new=first_working_day_on_or_after(task.deadline),
                           actor=actor, now=now, today=today, reason=f"{before or '调整完成时限'}（改为工作日）")


def deadline_reason(*, session: Session, task_id: int) -> str | None:
    """Why the task's deadline was last moved (the audit note of its last change), if it was."""
    return session.exec(
        select(AuditLog.note)
        .where(AuditLog.entity == "task", AuditLog.entity_id == task_id, AuditLog.action == "task.deadline")
        .order_by(col(AuditLog.id).desc()).limit(1)
    ).first()


def task_done(*, session: Session, task_id: int) -> bool:
    """Whether every non-retired unit's assignment of the task is approved.

    A task nobody carries (no active assignment) is not done.
    """
    states = list(session.exec(
        select(Assignment.state).where(Assignment.task_id == task_id,
                                       Assignment.retired == False)  # noqa: E712
    ))
    return bool(states) and all(s == AssignmentState.approved for s in states)


# ====================================================================== assessments


def _lock_criterion(session: Session, criterion_id: int) -> tuple[Criterion, ScoreItem]:
    crit = session.exec(
        select(Criterion)
        .where(Criterion.id == criterion_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).first()
    if crit is None:
        raise NotFound("没有找到这条评分细则。")
    item = session.get(ScoreItem, crit.item_id)
    if item is None:  # pragma: no cover - foreign key
        raise NotFound("没有找到这条细则所属的评分项。")
    return crit, item


def _assessment(session: Session, criterion_id: int) -> Assessment | None:
    return session.exec(
        select(Assessment)
        .where(Assessment.criterion_id == criterion_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).first()


def _clabel(item: ScoreItem, crit: Criterion) -> str:
    return f"细则 {item.no}.{crit.no}"


def _write_assessment(
    session: Session, a: Assessment, *, before: dict | None, action: str, actor: Actor,
    now: datetime, note: str | None = None,
) -> Assessment:
    a.version += 1
    a.updated_at = now
    session.add(a)
    session.flush()
    record(session=session, actor=actor, action=action, entity="criterion",
           entity_id=a.criterion_id, at=now, campaign_id=a.campaign_id, before=before,
           after=snapshot(a, ASSESSMENT_FIELDS), note=note)
    session.flush()
    return a


def claim_criterion(
    *,
    session: Session,
    criterion_id: int,
    unit_id: int,
    actor: Actor,
    now: datetime,
    note: str | None = None,
    expected_version: int | None = None,
) -> Assessment:
    """A responsible unit says the criterion is met (first claim, or again after a rejection)."""
    _check_now(now)
    text = _text(note, "申报说明", required=False)
    crit, item = _lock_criterion(session, criterion_id)
    unit = session.get(Unit, unit_id)
    if unit is None or unit.campaign_id != crit.campaign_id:
        raise NotFound("没有找到这个责任单位。")
    if crit.not_attainable:
        raise Conflict(f"{_clabel(item, crit)}已标为本区无法达到，不能申报。")
    if unit_id not in responsible_unit_ids(session, crit, item):
        raise PermissionDenied(f"{unit.name}不是{_clabel(item, crit)}的责任单位，不能申报。")
    a = _assessment(session, criterion_id)
    _expect(expected_version, a.version if a is not None else 0)
    if a is None:
        a = Assessment(campaign_id=crit.campaign_id, criterion_id=criterion_id)
        before = None
    else:
        if a.state == AssessmentState.claimed:
            raise Conflict(f"{_clabel(item, crit)}已申报，正在等待协调员审核。")
        if a.state == AssessmentState.verified:
            raise Conflict(f"{_clabel(item, crit)}已确认达标，无需再申报。")
        before = snapshot(a, ASSESSMENT_FIELDS)
    a.state = AssessmentState.claimed
    a.unit_id = unit_id
    a.claimed_by_member_id = actor.member_id
    a.claimed_at = now
    a.claim_note = text
    a.reason = None
    a.reviewed_by_member_id = None
    a.reviewed_at = None
    return _write_assessment(session, a, before=before, action="criterion.claim", actor=actor,
                             now=now)


def reviewable_claim(*, session: Session, criterion_id: int, expected_version: int | None,
                     verb: str = "审核") -> tuple[Assessment, Criterion, ScoreItem]:
    """The claim on a criterion, locked, if the coordinator may review it now (claimed, at that version)."""
    crit, item = _lock_criterion(session, criterion_id)
    a = _assessment(session, criterion_id)
    _expect(expected_version, a.version if a is not None else 0)
    state = a.state if a is not None else AssessmentState.none
    if a is None or state != AssessmentState.claimed:
        raise Conflict(f"{_clabel(item, crit)}当前是“{ASSESSMENT_NAMES[state]}”，"
                       f"只有已申报的细则才能{verb}。")
    return a, crit, item


def verify_criterion(
    *,
    session: Session,
    criterion_id: int,
    actor: Actor,
    now: datetime,
    expected_version: int | None = None,
    alone_may_self_review: bool = True,
) -> Assessment:
    """The coordinator accepts a claim: the criterion's points are verified (核定); not their
    own claim while another coordinator can."""
    _check_now(now)
    a, crit, item = reviewable_claim(session=session, criterion_id=criterion_id,
                                     expected_version=expected_version, verb="确认达标")
    check_second_reviewer(session, reviewer_member_id=actor.member_id,
                          submitter_member_id=a.claimed_by_member_id, campaign_id=a.campaign_id,
                          alone_may_self_review=alone_may_self_review)
    if crit.not_attainable:  # pragma: no cover - a waiver is refused while claimed (check_waivable)
        raise Conflict(f"{_clabel(item, crit)}已标为本区无法达到。")
    before = snapshot(a, ASSESSMENT_FIELDS)
    a.state = AssessmentState.verified
    a.reviewed_by_member_id = actor.member_id
    a.reviewed_at = now
    a.reason = None
    return _write_assessment(session, a, before=before, action="criterion.verify", actor=actor,
                             now=now)


def reject_criterion(
    *,
    session: Session,
    criterion_id: int,
    reason: str,
    actor: Actor,
    now: datetime,
    expected_version: int | None = None,
) -> Assessment:
    """The coordinator rejects a claim, with a reason the unit will read."""
    _check_now(now)
    why = _text(reason, "驳回原因", required=True)
    a, _crit, _item = reviewable_claim(session=session, criterion_id=criterion_id,
                                         expected_version=expected_version, verb="驳回")
    before = snapshot(a, ASSESSMENT_FIELDS)
    a.state = AssessmentState.rejected
    a.reason = why
    a.reviewed_by_member_id = actor.member_id
    a.reviewed_at = now
    return _write_assessment(session, a, before=before, action="criterion.reject", actor=actor,
                             now=now, note=why)


def check_waivable(*, session: Session, criterion: Criterion, item: ScoreItem) -> None:
    """Refuse to waive (mark not attainable) a criterion someone claimed or that was verified:
    the ONE guard of a waiver, in chat (/waive) and in the plan workbook (放弃原因)."""
    a = _assessment(session, criterion.id)  # type: ignore[arg-type]
    state = a.state if a is not None else AssessmentState.none
    if state == AssessmentState.claimed:
        raise Conflict(f"{_clabel(item, criterion)}已有单位申报达标，请先驳回该申报，再标为无法达到。")
    if state == AssessmentState.verified:
        raise Conflict(f"{_clabel(item, criterion)}已确认达标，不能标为无法达到。")


def campaign_end(*, session: Session, campaign_id: int) -> date | None:
    """The campaign's last day: the end of its last phase (验收阶段), None without phases."""
    return session.exec(select(func.max(Phase.end_date)).where(Phase.campaign_id == campaign_id)).first()
