"""考核: each unit's punctuality and responsiveness, from the record, and THE ranking rule.

Per unit (its assignments that are not retired), on ``today`` in the campaign's time zone:

* **due**: assignments whose deadline has passed (deadline < today);
* **on time**: of those, handed in (submitted or approved) on or before the deadline
  (the local date of ``submitted_at``);
* **late**: handed in after the deadline; ``days_late`` sums the calendar days;
* **overdue**: deadline passed and still not handed in (a returned one counts here again);
* **returns**: how often the coordinator returned its work (``assignment.return`` and
  ``evidence.return`` in the audit log);
* **median response**: the median hours from the first nudge sent about an assignment to the
  unit's first report on it after that nudge (:func:`statistics.median`; None without any);
* **open 批示 / 督办单**: those not yet closed;
* **points at stake**: :class:`models.status.UnitSummary.points_at_stake` (the score is
  ``models.status``'s, never recomputed here).

THE ranking rule (:func:`rank`), used by the 通报, the 月报 and the ledger's 考核 sheet:

1. 按时完成率 (on time ÷ due), higher first;
2. then fewer overdue assignments;
3. then fewer points at stake;
4. units equal on all three share a rank (competition ranking: 1, 1, 3); they are listed
   by the unit's order in the plan, then name.

A unit with nothing due yet has no rate: it is listed after every ranked unit, without a rank,
and is never named among the best or the worst. The best are the ranked units of rank ≤ 3;
the worst are those whose rank counted from the bottom (the same rule reversed) is ≤ 3, when
they are not among the best.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import dataclass, replace
from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlmodel import Session, col, select

from models.status import campaign_status
from models.tables import (
    Assignment,
    AssignmentState,
    AuditLog,
    Campaign,
    Evidence,
    Instruction,
    InstructionState,
    Outbox,
    OutboxState,
    Supervision,
    SupervisionState,
    Task,
)

#: Outbox kinds that nudge a unit about one assignment (scheduler.plan.Kind.assignment_kinds).
NUDGE_KINDS = ("remind", "overdue", "escalate")
REPORT_ACTIONS = ("assignment.progress", "assignment.submit")
RETURN_ACTIONS = ("assignment.return", "evidence.return")
HANDED_IN = (AssignmentState.submitted, AssignmentState.approved)


@dataclass(frozen=True, slots=True)
class UnitRecord:
    unit_id: int
    name: str
    sort_order: int
    due: int
    on_time: int
    late: int
    days_late: int
    overdue: int
    returns: int
    median_response_hours: float | None
    open_instructions: int
    open_supervisions: int
    points_at_stake: float
    #: 1-based rank by :func:`rank`; None for a unit with nothing due yet.
    rank: int | None = None

    @property
    def rate(self) -> float | None:
        """按时完成率 (0–1), None when nothing is due yet."""
        return self.on_time / self.due if self.due else None


def _key(r: UnitRecord) -> tuple[float, int, float]:
    """What the rule compares: higher rate, fewer overdue, fewer points at stake."""
    return (-(r.rate or 0.0), r.overdue, round(r.points_at_stake, 2))


def rank(records: list[UnitRecord]) -> list[UnitRecord]:
    """THE ranking rule (see the module): ranked units first, rank set; the rest after."""
    ranked = sorted((r for r in records if r.rate is not None),
                    key=lambda r: (_key(r), r.sort_order, r.name, r.unit_id))
    out: list[UnitRecord] = []
    for i, r in enumerate(ranked):
        same = out and _key(out[-1]) == _key(r)
        out.append(replace(r, rank=out[-1].rank if same else i + 1))
    rest = sorted((r for r in records if r.rate is None), key=lambda r: (r.sort_order, r.name, r.unit_id))
    return out + [replace(r, rank=None) for r in rest]


def best_and_worst(ranked: list[UnitRecord], n: int = 3) -> tuple[list[UnitRecord], list[UnitRecord]]:
    """The best ``n`` and the worst ``n`` by rank (ties included), never the same unit twice."""
    rated = [r for r in ranked if r.rank is not None]
    best = [r for r in rated if r.rank is not None and r.rank <= n]
    keys = sorted({_key(r) for r in rated}, reverse=True)
    from_bottom: dict[tuple[float, int, float], int] = {}
    seen = 0
    for k in keys:
        from_bottom[k] = seen + 1
        seen += sum(1 for r in rated if _key(r) == k)
    worst = [r for r in reversed(rated) if from_bottom[_key(r)] <= n and r not in best]
    return best, worst


def unit_records(*, session: Session, campaign_id: int, today: date) -> list[UnitRecord]:
    """Every unit with assignments, measured on ``today`` and ranked by :func:`rank`."""
    campaign = session.get(Campaign, campaign_id)
    tz = ZoneInfo(campaign.timezone if campaign else "Asia/Shanghai")
    status = campaign_status(session=session, campaign_id=campaign_id, today=today)
    tasks = {t.id: t for t in session.exec(select(Task).where(Task.campaign_id == campaign_id))}
    asgs = [a for a in session.exec(select(Assignment).where(Assignment.campaign_id == campaign_id))
            if not a.retired]
    unit_of_asg = {a.id: a.unit_id for a in asgs}

    counts: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for a in asgs:
        task = tasks.get(a.task_id)
        if task is None or task.deadline >= today:
            continue
        c = counts[a.unit_id]
        c["due"] += 1
        handed = a.state in HANDED_IN and a.submitted_at is not None
        if not handed:
            c["overdue"] += 1
            continue
        assert a.submitted_at is not None
        on = a.submitted_at.astimezone(tz).date()
        if on <= task.deadline:
            c["on_time"] += 1
        else:
            c["late"] += 1
            c["days_late"] += (on - task.deadline).days

    audits = session.exec(select(AuditLog).where(
        AuditLog.campaign_id == campaign_id,
        col(AuditLog.action).in_(RETURN_ACTIONS + REPORT_ACTIONS)).order_by(col(AuditLog.id))).all()
    ev_units = {e.id: e.unit_id for e in session.exec(select(Evidence).where(Evidence.campaign_id == campaign_id))}
    reports: dict[int, list[datetime]] = defaultdict(list)
    for row in audits:
        if row.action == "assignment.return":
            owner = unit_of_asg.get(row.entity_id)
        elif row.action == "evidence.return":
            owner = ev_units.get(row.entity_id)
        else:
            if row.entity_id is not None:
                reports[row.entity_id].append(row.at)
            continue
        if owner is not None:
            counts[owner]["returns"] += 1

    first_nudge: dict[int, datetime] = {}
    nudges = session.exec(select(Outbox).where(
        Outbox.campaign_id == campaign_id, col(Outbox.kind).in_(NUDGE_KINDS),
        col(Outbox.state).in_([OutboxState.sent, OutboxState.merged]))).all()
    sent_at = {o.id: o.sent_at for o in nudges if o.state == OutboxState.sent}
    for o in nudges:
        when: datetime | None = o.sent_at if o.state == OutboxState.sent else sent_at.get(o.merged_into_id)
        aid = (o.payload or {}).get("assignment_id")
        if when is None or not isinstance(aid, int):
            continue
        if aid not in first_nudge or when < first_nudge[aid]:
            first_nudge[aid] = when
    responses: dict[int, list[float]] = defaultdict(list)
    for aid, nudged in first_nudge.items():
        after = [t for t in reports.get(aid, []) if t >= nudged]
        if after and aid in unit_of_asg:
            responses[unit_of_asg[aid]].append((min(after) - nudged).total_seconds() / 3600)

    open_inst: dict[int, int] = defaultdict(int)
    for inst in session.exec(select(Instruction).where(
            Instruction.campaign_id == campaign_id, Instruction.state != InstructionState.closed)):
        for uid in inst.unit_ids:
            open_inst[uid] += 1
    open_sup: dict[int, int] = defaultdict(int)
    for sup in session.exec(select(Supervision).where(
            Supervision.campaign_id == campaign_id, Supervision.state != SupervisionState.closed)):
        open_sup[sup.unit_id] += 1

    sort_orders = {u.unit_id: i for i, u in enumerate(status.units)}
    records = []
    for u in status.units:
        if not u.assignments:
            continue
        c = counts[u.unit_id]
        hours = responses.get(u.unit_id)
        records.append(UnitRecord(
            unit_id=u.unit_id, name=u.name, sort_order=sort_orders[u.unit_id],
            due=c["due"], on_time=c["on_time"], late=c["late"], days_late=c["days_late"],
            overdue=c["overdue"], returns=c["returns"],
            median_response_hours=round(statistics.median(hours), 1) if hours else None,
            open_instructions=open_inst[u.unit_id], open_supervisions=open_sup[u.unit_id],
            points_at_stake=u.points_at_stake,
        ))
    return rank(records)
