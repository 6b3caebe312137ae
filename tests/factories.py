"""Small campaigns for tests, built straight on the tables.

Everything here only adds and flushes; the test decides when to commit.

    b = CampaignBuilder(session, slug="demo")
    office, housing = b.unit("区市场监管局", is_lead=True), b.unit("区住建局")
    b.phases_2021()                                   # the document's four phases
    t = b.task(1, units=[office, housing], deadline=date(2021, 7, 10))
    cat = b.category(1, "质量发展促进机制", stated_points=22)
    item = b.item(1, cat, max_points=5, units=[office],
                  criteria=[1, 2, (2, "tier"), (1, "tier")])
    b.assess(item.criteria[0], "verified")            # or b.claim(...)
    b.state(t.assignments[0], "submitted")

:func:`seeded_campaign` imports the real plan (``data/seed.json``) instead, and
:class:`QueryCounter` counts the SQL statements an engine runs.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from models.audit import Actor
from models.tables import (
    Assessment,
    AssessmentState,
    Assignment,
    AssignmentState,
    Campaign,
    Criterion,
    CriterionUnit,
    Evidence,
    EvidenceState,
    ItemUnit,
    Member,
    Outbox,
    OutboxState,
    Phase,
    Role,
    ScoreCategory,
    ScoreItem,
    Task,
    TaskGroup,
    Unit,
)

NOW = datetime(2021, 9, 1, 2, 0, tzinfo=UTC)

#: The four phases of the document (section 四), start and end inclusive.
PHASES_2021: tuple[tuple[int, str, date, date], ...] = (
    (1, "制定方案，落实目标任务", date(2021, 7, 1), date(2021, 7, 10)),
    (2, "全面创建，实现总体达标", date(2021, 7, 10), date(2021, 12, 31)),
    (3, "巩固提高，做好迎检准备", date(2022, 1, 1), date(2022, 3, 1)),
    (4, "迎接验收，全面提升质量发展水平", date(2022, 3, 1), date(2022, 4, 1)),
)

# A criterion spec: points, or (points, tier_group), or (points, tier_group, not_attainable).
CriterionSpec = float | tuple[float, str | None] | tuple[float, str | None, bool]

_serial = itertools.count(1)


def _criterion_spec(spec: CriterionSpec) -> tuple[float, str | None, bool]:
    if isinstance(spec, int | float):
        return float(spec), None, False
    if len(spec) == 2:
        return float(spec[0]), spec[1], False
    return float(spec[0]), spec[1], bool(spec[2])  # type: ignore[misc]


@dataclass
class BuiltTask:
    task: Task
    assignments: list[Assignment]

    @property
    def id(self) -> int:
        assert self.task.id is not None
        return self.task.id


@dataclass
class BuiltItem:
    item: ScoreItem
    criteria: list[Criterion]

    @property
    def id(self) -> int:
        assert self.item.id is not None
        return self.item.id


@dataclass
class CampaignBuilder:
    """Adds one campaign's rows, numbering things for you where you do not care."""

    session: Session
    slug: str = "test"
    name: str = "测试区争创质量强区"
    district: str = "测试区"
    now: datetime = NOW
    campaign: Campaign = field(init=False)
    _group: TaskGroup | None = field(init=False, default=None)
    _units: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        self.campaign = Campaign(slug=self.slug, name=self.name, district=self.district,
                                 created_at=self.now, updated_at=self.now)
        self.session.add(self.campaign)
        self.session.flush()

    @property
    def cid(self) -> int:
        assert self.campaign.id is not None
        return self.campaign.id

    def _add(self, row: Any) -> Any:
        self.session.add(row)
        self.session.flush()
        return row

    # ------------------------------------------------------------------ plan

    def unit(self, name: str, *, is_lead: bool = False, is_member: bool = True) -> Unit:
        self._units += 1
        return self._add(Unit(campaign_id=self.cid, name=name, is_lead=is_lead,
                              is_member=is_member, sort_order=self._units))

    def units(self, *names: str) -> list[Unit]:
        return [self.unit(n) for n in names]

    def phase(self, no: int, name: str, start: date | None, end: date) -> Phase:
        return self._add(Phase(campaign_id=self.cid, no=no, name=name, start_date=start,
                               end_date=end))

    def phases_2021(self) -> list[Phase]:
        return [self.phase(*p) for p in PHASES_2021]

    def group(self, no: int = 1, title: str = "任务组") -> TaskGroup:
        self._group = self._add(TaskGroup(campaign_id=self.cid, no=no, title=title))
        return self._group

    def task(self, no: int, *, units: Sequence[Unit], deadline: date, title: str | None = None,
             group: TaskGroup | None = None) -> BuiltTask:
        g = group or self._group or self.group()
        t = self._add(Task(campaign_id=self.cid, group_id=g.id, no=no,
                           title=title or f"任务{no}", deadline=deadline,
                           planned_deadline=deadline))
        assignments = [self._add(Assignment(campaign_id=self.cid, task_id=t.id, unit_id=u.id,
                                            updated_at=self.now)) for u in units]
        return BuiltTask(t, assignments)

    def category(self, no: int, name: str, *, stated_points: float | None = None,
                 is_bonus: bool = False) -> ScoreCategory:
        return self._add(ScoreCategory(campaign_id=self.cid, no=no, name=name,
                                       stated_points=stated_points, is_bonus=is_bonus))

    def item(self, no: int, category: ScoreCategory, *, max_points: float,
             criteria: Sequence[CriterionSpec] = (), units: Sequence[Unit] = (),
             deadline: date | None = date(2021, 12, 31), all_members: bool = False,
             subcategory: str | None = None, criterion_units: dict[int, Sequence[Unit]] | None = None,
             ) -> BuiltItem:
        """A score item; ``criterion_units`` maps criterion numbers to their own units."""
        item = self._add(ScoreItem(campaign_id=self.cid, category_id=category.id, no=no,
                                   max_points=max_points, deadline=deadline,
                                   planned_deadline=deadline, all_members=all_members,
                                   subcategory=subcategory, text=f"评分项{no}"))
        for u in units:
            self.session.add(ItemUnit(item_id=item.id, unit_id=u.id))
        crits: list[Criterion] = []
        for n, spec in enumerate(criteria, start=1):
            points, tier, na = _criterion_spec(spec)
            crits.append(self._add(Criterion(
                campaign_id=self.cid, item_id=item.id, no=n, text=f"细则{no}.{n}",
                points=float(points), tier_group=tier, not_attainable=bool(na),
                not_attainable_reason="测试：无法达到" if na else None)))
        for n, us in (criterion_units or {}).items():
            for u in us:
                self.session.add(CriterionUnit(criterion_id=crits[n - 1].id, unit_id=u.id))
        self.session.flush()
        return BuiltItem(item, crits)

    # ----------------------------------------------------------------- state

    def assess(self, criterion: Criterion, state: AssessmentState | str,
               unit: Unit | None = None, *, reason: str | None = None) -> Assessment:
        """Set a criterion's assessment directly (no rules, no audit)."""
        row = self.session.exec(
            select(Assessment).where(Assessment.criterion_id == criterion.id)).first()
        if row is None:
            row = Assessment(campaign_id=self.cid, criterion_id=criterion.id)
        row.state = AssessmentState(state)
        row.unit_id = unit.id if unit is not None else row.unit_id
        row.claimed_at = row.claimed_at or self.now
        row.reason = reason
        return self._add(row)

    def state(self, assignment: Assignment, state: AssignmentState | str, *,
              percent: int | None = None) -> Assignment:
        """Set an assignment's state directly (no rules, no audit)."""
        assignment.state = AssignmentState(state)
        if percent is not None:
            assignment.percent = percent
        elif assignment.state in (AssignmentState.submitted, AssignmentState.approved):
            assignment.percent = 100
        return self._add(assignment)

    def evidence(self, *, unit: Unit | None = None, criterion: Criterion | None = None,
                 item: ScoreItem | None = None, task: Task | None = None,
                 state: EvidenceState | str = EvidenceState.submitted,
                 name: str = "材料.pdf") -> Evidence:
        return self._add(Evidence(
            campaign_id=self.cid, unit_id=unit.id if unit else None,
            criterion_id=criterion.id if criterion else None,
            item_id=item.id if item else (criterion.item_id if criterion else None),
            task_id=task.id if task else None, sha256=f"{next(_serial):064x}", size=1000,
            mime_type="application/pdf", file_name=name, state=EvidenceState(state),
            created_at=self.now))

    def member(self, role: Role | str, unit: Unit | None = None, *,
               telegram_user_id: int | None = None, name: str = "") -> Member:
        tid = telegram_user_id or 10_000 + next(_serial)
        return self._add(Member(campaign_id=self.cid, telegram_user_id=tid, role=Role(role),
                                unit_id=unit.id if unit else None,
                                display_name=name or f"成员{tid}", created_at=self.now))

    def outbox(self, state: OutboxState | str = OutboxState.failed, *, key: str | None = None
               ) -> Outbox:
        key = key or f"{self.slug}|failed|{next(_serial)}"
        return self._add(Outbox(campaign_id=self.cid, idem_key=key, telegram_chat_id=-100,
                                kind="nudge", due_at=self.now, state=OutboxState(state),
                                created_at=self.now))


def seeded_campaign(session: Session, *, now: datetime = NOW, shift_to: date | None = None,
                    slug: str | None = None) -> int:
    """Import ``data/seed.json`` (the real plan); returns the campaign id. Flushes only."""
    from models.seed import import_seed, load_seed
    from tests.conftest import SEED_PATH

    rep = import_seed(session=session, doc=load_seed(SEED_PATH), now=now, actor=Actor.cli(),
                      shift_to=shift_to, slug=slug)
    return rep.campaign_id


def by_name(session: Session, campaign_id: int) -> dict[str, Unit]:
    """The campaign's units by name."""
    return {u.name: u for u in session.exec(select(Unit).where(Unit.campaign_id == campaign_id))}


class QueryCounter:
    """Counts the SQL statements run on an engine while active (``with`` block)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.statements: list[str] = []

    def _on(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        self.statements.append(statement)

    @property
    def count(self) -> int:
        return len(self.statements)

    def __enter__(self) -> QueryCounter:
        event.listen(self.engine, "before_cursor_execute", self._on)
        return self

    def __exit__(self, *exc: object) -> None:
        event.remove(self.engine, "before_cursor_execute", self._on)


@contextmanager
def count_queries(engine: Engine) -> Iterator[QueryCounter]:
    with QueryCounter(engine) as counter:
        yield counter
