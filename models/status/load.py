"""Reading one campaign's rows, or every active campaign's, with a fixed number of queries."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session as _OrmSession
from sqlmodel import Session

from infra.types import UTCDateTime
from models.errors import NotFound
from models.evidence import ACTIVE_STATES
from models.tables import (
    Assessment,
    Assignment,
    Campaign,
    Criterion,
    CriterionUnit,
    Evidence,
    ItemUnit,
    Outbox,
    OutboxState,
    Phase,
    ScoreCategory,
    ScoreItem,
    Task,
    TaskGroup,
    Unit,
    table_of,
)

# ========================================================================= loading


_CAMPAIGN = table_of(Campaign)
_PHASE = table_of(Phase)
_UNIT = table_of(Unit)
_GROUP = table_of(TaskGroup)
_TASK = table_of(Task)
_ASSIGNMENT = table_of(Assignment)
_CATEGORY = table_of(ScoreCategory)
_ITEM = table_of(ScoreItem)
_ITEM_UNIT = table_of(ItemUnit)
_CRITERION = table_of(Criterion)
_CRITERION_UNIT = table_of(CriterionUnit)
_ASSESSMENT = table_of(Assessment)
_EVIDENCE = table_of(Evidence)
_OUTBOX = table_of(Outbox)


def _execute(
    session: Session, statement: sa.Select[*tuple[Any, ...]]
) -> sa.Result[*tuple[Any, ...]]:
    """Run a Core select in ``session`` (autoflushing first) and return its rows.

    SQLAlchemy's own ``Session.execute``: SQLModel's ``exec`` types only SQLModel's
    ``select``, and SQLModel marks its ``execute`` override deprecated. Same call underneath.
    """
    return _OrmSession.execute(session, statement)


def _columns(table: sa.Table, detail: bool) -> list[sa.Column[Any]]:
    """The columns to read: all of them, or (not ``detail``) all but timestamps and JSON.

    Converting timestamps (aware, see ``UTCDateTime``) and parsing JSON is a large
    part of what reading a province's rows costs, and no rule of the overview reads them.
    """
    if detail:
        return list(table.c)
    return [c for c in table.c if not isinstance(c.type, UTCDateTime | sa.JSON)]


@dataclass
class _Rows:
    """One campaign's rows, as loaded (no further queries are made on them).

    The rows are read-only records with the tables' attributes (``row.deadline``):
    Core rows as :func:`_load` reads them, or unsaved table objects in tests. Enum
    columns read back as their members, timestamps aware, as on the table objects.
    """

    campaign: Any
    phases: list[Any] = field(default_factory=list)
    units: list[Any] = field(default_factory=list)
    groups: list[Any] = field(default_factory=list)
    tasks: list[Any] = field(default_factory=list)
    assignments: list[Any] = field(default_factory=list)
    categories: list[Any] = field(default_factory=list)
    items: list[Any] = field(default_factory=list)
    item_units: dict[int, list[int]] = field(default_factory=lambda: defaultdict(list))
    criteria: list[Any] = field(default_factory=list)
    criterion_units: dict[int, list[int]] = field(default_factory=lambda: defaultdict(list))
    assessments: dict[int, Any] = field(default_factory=dict)
    criterion_evidence: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    item_evidence: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    failed_outbox: int = 0


def _load(session: Session, campaign_id: int | None, *, detail: bool = True) -> dict[int, _Rows]:
    """Load one campaign (``campaign_id``) or every active one: 14 queries either way.

    The rows are read as plain Core rows, not as table objects: the session's
    identity map and attribute instrumentation are most of the cost of loading a
    province, and nothing here writes. (The session still flushes pending changes
    first, so uncommitted work in the same session shows.)

    ``detail=False`` leaves out what only the full status shows (units, task
    groups, who owes which item or criterion, evidence counts): 9 queries.
    """
    if campaign_id is not None:
        campaigns = _execute(
            session,
            sa.select(*_columns(_CAMPAIGN, detail)).where(_CAMPAIGN.c.id == campaign_id)).all()
        if not campaigns:
            raise NotFound(f"没有找到活动 #{campaign_id}。")

        def scope(column: Any) -> Any:
            return column == campaign_id
    else:
        campaigns = _execute(
            session,
            sa.select(*_columns(_CAMPAIGN, detail)).where(_CAMPAIGN.c.active.is_(True))
            .order_by(_CAMPAIGN.c.id)
        ).all()
        active = sa.select(_CAMPAIGN.c.id).where(_CAMPAIGN.c.active.is_(True)).scalar_subquery()

        def scope(column: Any) -> Any:
            return column.in_(active)

    out = {c.id: _Rows(campaign=c) for c in campaigns if c.id is not None}
    if not out:
        return out

    def rows(table: sa.Table, *order: Any, where: Iterable[Any] = ()) -> Iterable[Any]:
        return _execute(
            session,
            sa.select(*_columns(table, detail)).where(scope(table.c.campaign_id), *where)
            .order_by(*order))

    for p in rows(_PHASE, _PHASE.c.no):
        out[p.campaign_id].phases.append(p)
    if detail:
        # Every unit, retired (已撤销) ones too, so old records still name theirs; a retired
        # unit owes nothing and is not listed (compute). A retired task is not read at all.
        for u in rows(_UNIT, _UNIT.c.sort_order, _UNIT.c.id):
            out[u.campaign_id].units.append(u)
        for g in rows(_GROUP, _GROUP.c.no):
            out[g.campaign_id].groups.append(g)
    for t in rows(_TASK, _TASK.c.no, where=[_TASK.c.retired.is_(False)]):
        out[t.campaign_id].tasks.append(t)
    for a in rows(_ASSIGNMENT, _ASSIGNMENT.c.id, where=[_ASSIGNMENT.c.retired.is_(False)]):
        out[a.campaign_id].assignments.append(a)
    for c in rows(_CATEGORY, _CATEGORY.c.no):
        out[c.campaign_id].categories.append(c)
    for i in rows(_ITEM, _ITEM.c.no):
        out[i.campaign_id].items.append(i)
    if detail:
        for cid, item_id, unit_id in _execute(
            session,
            sa.select(_ITEM.c.campaign_id, _ITEM_UNIT.c.item_id, _ITEM_UNIT.c.unit_id)
            .select_from(_ITEM_UNIT.join(_ITEM, _ITEM.c.id == _ITEM_UNIT.c.item_id))
            .where(scope(_ITEM.c.campaign_id))
        ):
            out[cid].item_units[item_id].append(unit_id)
    for c in rows(_CRITERION, _CRITERION.c.item_id, _CRITERION.c.no):
        out[c.campaign_id].criteria.append(c)
    if detail:
        for cid, crit_id, unit_id in _execute(
            session,
            sa.select(_CRITERION.c.campaign_id, _CRITERION_UNIT.c.criterion_id,
                      _CRITERION_UNIT.c.unit_id)
            .select_from(_CRITERION_UNIT.join(
                _CRITERION, _CRITERION.c.id == _CRITERION_UNIT.c.criterion_id))
            .where(scope(_CRITERION.c.campaign_id))
        ):
            out[cid].criterion_units[crit_id].append(unit_id)
    for a in rows(_ASSESSMENT, _ASSESSMENT.c.id):
        out[a.campaign_id].assessments[a.criterion_id] = a
    if detail:
        for cid, item_id, crit_id, n in _execute(
            session,
            sa.select(_EVIDENCE.c.campaign_id, _EVIDENCE.c.item_id, _EVIDENCE.c.criterion_id,
                      sa.func.count())
            .where(scope(_EVIDENCE.c.campaign_id), _EVIDENCE.c.state.in_(list(ACTIVE_STATES)))
            .group_by(_EVIDENCE.c.campaign_id, _EVIDENCE.c.item_id, _EVIDENCE.c.criterion_id)
        ):
            if crit_id is not None:
                out[cid].criterion_evidence[crit_id] += n
            elif item_id is not None:
                out[cid].item_evidence[item_id] += n
    for cid, n in _execute(
            session,
        sa.select(_OUTBOX.c.campaign_id, sa.func.count())
        .where(scope(_OUTBOX.c.campaign_id), _OUTBOX.c.state == OutboxState.failed)
        .group_by(_OUTBOX.c.campaign_id)
    ):
        out[cid].failed_outbox = n
    return out
