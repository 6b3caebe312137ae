"""Where the campaign stands today: score, lights, phase, gaps, who owes what.

:func:`campaign_status` reads one campaign with a fixed number of queries (each
table once, never a query per row) and computes a frozen :class:`CampaignStatus`
with the pure rules of :mod:`models.scoring` and of this module. The drill-downs
(:func:`unit_view`, :func:`item_view`, :func:`task_view`) are cut from that same
object. :func:`province_overview` reads every active campaign at once, with fixed
queries too, and computes only its one line per campaign, with the same rules.
Rendering is :mod:`reports.text`'s.

Rules of this module
--------------------
Traffic lights (红黄绿灯), with ``N = yellow_working_days`` and the working-day
count of :func:`models.calendar.working_days_between`:

* Assignment (a task as one unit carries it), against the task's deadline:

  - approved: green;
  - deadline passed (today is after it) and not submitted: **red** (逾期);
  - deadline passed and *submitted* but not yet approved: **yellow** (逾期待审核).
    The unit has handed its work in; what is still owed is the coordinator's
    review, not the unit's work, so it is not counted as overdue and the unit
    is not chased. It turns red again if the coordinator returns it;
  - not submitted and due within N working days (including due today): yellow
    (临近截止);
  - otherwise green (submitted before the deadline is green: 待审核).

* Task: the worst light of its (non-retired) assignments; done when every one of
  them is approved (a task with no active assignment is not done).
* Score item, against its deadline (an item with no deadline — 全过程, or none
  given — uses the end of the campaign's last phase):

  - red: the deadline passed and points were lost for it (a criterion neither
    claimed nor verified; claiming it late turns the light back);
  - yellow: points still open and due within N working days, or the deadline
    passed with claims still waiting for review;
  - otherwise green.

Phase: a day belongs to the first phase (by number) whose window contains it,
start and end inclusive, so a shared boundary day (7月10日, 3月1日) belongs to the
phase that ends on it (its deadline). Before the first phase the campaign has not
started, after the last it is over, between two phases it is "between". The next
milestone is the nearest day from today on (today included) on which a phase
starts or ends, an unfinished task is due, or an item with points at stake is due.

Gap analysis: every item with points at stake (``possible − claimed``: still open,
or lost only because it is late), ranked by points at stake (most first), then
days left (fewest, overdue first), then item number. Each gap names the units that
owe its unmet criteria and the criteria with no evidence file of their own (an
active file attached to the criterion; files attached to the whole item are
counted separately). Bonus items are listed apart (``bonus_gaps``), as are those
not claimed at all (``bonus_unclaimed``). The projected score is the claimed score.

Responsibility: the units of a criterion are its CriterionUnit rows, or else its
item's units, which are the item's ItemUnit rows plus, when the item is assigned
to every member unit (``all_members``), every member unit.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import Any, Literal

import sqlalchemy as sa
from sqlmodel import Session

from infra.types import UTCDateTime
from models.calendar import working_days_between
from models.errors import NotFound
from models.evidence import ACTIVE_STATES
from models.owners import owing_unit_ids
from models.scoring import (
    ZERO,
    CriterionInput,
    Score,
    criterion_lost,
    criterion_scores,
    score_item,
    total,
)
from models.tables import (
    Assessment,
    AssessmentState,
    Assignment,
    AssignmentState,
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
)

# ============================================================================ lights


class Light(StrEnum):
    green = "green"
    yellow = "yellow"
    red = "red"


LIGHT_ICONS: dict[Light, str] = {Light.green: "🟢", Light.yellow: "🟡", Light.red: "🔴"}
_RANK = {Light.green: 0, Light.yellow: 1, Light.red: 2}

LABEL_OVERDUE = "逾期"
LABEL_DUE_SOON = "临近截止"
LABEL_LATE_REVIEW = "逾期待审核"
LABEL_LOST = "逾期失分"


def worst(lights: Iterable[Light]) -> Light:
    """The worst of ``lights`` (green when there are none)."""
    return max(lights, key=_RANK.__getitem__, default=Light.green)


def assignment_light(
    *, state: AssignmentState, deadline: date, today: date, yellow_working_days: int
) -> tuple[Light, str]:
    """The light of one assignment and its label (see the module docstring)."""
    if state == AssignmentState.approved:
        return Light.green, ""
    if today > deadline:
        if state == AssignmentState.submitted:
            return Light.yellow, LABEL_LATE_REVIEW
        return Light.red, LABEL_OVERDUE
    if state == AssignmentState.submitted:
        return Light.green, ""
    if working_days_between(today, deadline) <= yellow_working_days:
        return Light.yellow, LABEL_DUE_SOON
    return Light.green, ""


def item_light(
    *, score: Score, deadline: date | None, today: date, yellow_working_days: int
) -> tuple[Light, str]:
    """The light of one score item (``score`` computed for ``today``)."""
    if deadline is None:
        return Light.green, ""
    if today > deadline:
        if score.lost_late > 0:
            return Light.red, LABEL_LOST
        if score.pending > 0:
            return Light.yellow, LABEL_LATE_REVIEW
        return Light.green, ""
    if score.open > 0 and working_days_between(today, deadline) <= yellow_working_days:
        return Light.yellow, LABEL_DUE_SOON
    return Light.green, ""


# ============================================================================ phase


@dataclass(frozen=True, slots=True)
class PhaseInfo:
    no: int
    name: str
    start_date: date | None
    end_date: date
    description: str = ""


@dataclass(frozen=True, slots=True)
class Milestone:
    """The next day something is due, and what."""

    date: date
    days_left: int
    working_days_left: int
    # e.g. ("第二阶段“全面创建，实现总体达标”结束",)
    phase_events: tuple[str, ...] = ()
    task_nos: tuple[int, ...] = ()
    item_nos: tuple[int, ...] = ()


PhaseState = Literal["none", "before", "during", "between", "after"]

_CN_NUMS = "一二三四五六七八九十"


def phase_label(no: int) -> str:
    return f"第{_CN_NUMS[no - 1]}阶段" if 1 <= no <= len(_CN_NUMS) else f"第{no}阶段"


@dataclass(frozen=True, slots=True)
class PhaseStatus:
    today: date
    state: PhaseState
    current: PhaseInfo | None
    previous: PhaseInfo | None
    next: PhaseInfo | None
    phases: tuple[PhaseInfo, ...]
    next_milestone: Milestone | None

    @property
    def days_left_in_phase(self) -> int | None:
        return (self.current.end_date - self.today).days if self.current else None


def phase_status(
    phases: Sequence[PhaseInfo],
    today: date,
    *,
    task_deadlines: Mapping[int, date] | None = None,
    item_deadlines: Mapping[int, date] | None = None,
) -> PhaseStatus:
    """Which phase ``today`` is in and the next milestone (pure).

    ``task_deadlines`` / ``item_deadlines``: number -> deadline of the tasks not yet
    done and of the items with points at stake.
    """
    ordered = tuple(sorted(phases, key=lambda p: p.no))
    current = next(
        (p for p in ordered if (p.start_date is None or p.start_date <= today) and today <= p.end_date),
        None,
    )
    past = [p for p in ordered if p.end_date < today]
    future = [p for p in ordered if p.start_date is not None and p.start_date > today]
    previous = max(past, key=lambda p: (p.end_date, p.no)) if past else None
    upcoming = min(future, key=lambda p: (p.start_date, p.no)) if future else None
    state: PhaseState
    if not ordered:
        state = "none"
    elif current is not None:
        state = "during"
    elif previous is None:
        state = "before"
    elif upcoming is None and all(p.end_date < today for p in ordered):
        state = "after"
    else:
        state = "between"

    events: dict[date, list[str]] = defaultdict(list)
    for p in ordered:
        title = f"{phase_label(p.no)}“{p.name}”"
        if p.start_date is not None and p.start_date >= today and p.start_date != p.end_date:
            # A phase starting the day another ends: one event says both.
            ending = [q for q in ordered if q.end_date == p.start_date and q.no != p.no]
            if not ending:
                events[p.start_date].append(f"{title}开始")
        if p.end_date >= today:
            events[p.end_date].append(f"{title}结束")
    tasks: dict[date, list[int]] = defaultdict(list)
    for no, d in (task_deadlines or {}).items():
        if d >= today:
            tasks[d].append(no)
    items: dict[date, list[int]] = defaultdict(list)
    for no, d in (item_deadlines or {}).items():
        if d >= today:
            items[d].append(no)
    days = set(events) | set(tasks) | set(items)
    milestone = None
    if days:
        d = min(days)
        milestone = Milestone(
            date=d,
            days_left=(d - today).days,
            working_days_left=working_days_between(today, d),
            phase_events=tuple(events.get(d, ())),
            task_nos=tuple(sorted(tasks.get(d, ()))),
            item_nos=tuple(sorted(items.get(d, ()))),
        )
    return PhaseStatus(
        today=today, state=state, current=current, previous=previous,
        next=upcoming, phases=ordered, next_milestone=milestone,
    )


# ====================================================================== status data


@dataclass(frozen=True, slots=True)
class UnitRef:
    id: int
    name: str


@dataclass(frozen=True, slots=True)
class CampaignInfo:
    id: int
    slug: str
    name: str
    district: str
    timezone: str
    stated_base_points: float
    stated_bonus_points: float


class _ScoreFields:
    """Score numbers straight on the row, for readers that want ``row.verified``."""

    __slots__ = ()
    score: Score

    @property
    def max_points(self) -> float:
        return self.score.max_points

    @property
    def attainable(self) -> float:
        return self.score.attainable

    @property
    def possible(self) -> float:
        return self.score.possible

    @property
    def reachable(self) -> float:
        return self.score.reachable

    @property
    def claimed(self) -> float:
        return self.score.claimed

    @property
    def verified(self) -> float:
        return self.score.verified

    @property
    def pending(self) -> float:
        return self.score.pending

    @property
    def open(self) -> float:
        return self.score.open

    @property
    def lost(self) -> float:
        return self.score.lost

    @property
    def at_stake(self) -> float:
        return self.score.at_stake


@dataclass(frozen=True, slots=True)
class CriterionStatus:
    criterion_id: int
    item_id: int
    item_no: int
    no: int
    text: str
    points: float
    tier_group: str | None
    state: AssessmentState
    not_attainable: bool
    not_attainable_reason: str | None
    # Lost: not attainable, or the item's deadline passed while unmet.
    lost: bool
    # Points this criterion counts for on its own (before the item's cap).
    claimed: float
    verified: float
    units: tuple[UnitRef, ...]
    claimed_by: UnitRef | None
    claim_note: str | None
    # The coordinator's reason when rejected.
    reason: str | None
    evidence_count: int
    # Assessment.version (0 when never assessed): for stale-button checks.
    version: int

    @property
    def max_points(self) -> float:
        return self.points

    @property
    def label(self) -> str:
        return f"{self.item_no}.{self.no}"

    @property
    def met(self) -> bool:
        return self.state in (AssessmentState.claimed, AssessmentState.verified)


@dataclass(frozen=True, slots=True)
class ItemStatus(_ScoreFields):
    item_id: int
    no: int
    category_id: int
    category_name: str
    subcategory: str | None
    text: str
    note: str | None
    is_bonus: bool
    score: Score
    # The deadline the rules use (the item's, else the campaign's end); None without either.
    deadline: date | None
    deadline_note: str | None
    days_left: int | None
    working_days_left: int | None
    overdue: bool
    light: Light
    light_label: str
    units: tuple[UnitRef, ...]
    criteria: tuple[CriterionStatus, ...]
    # Active files attached to the item as a whole (not to one criterion).
    evidence_count: int
    # Assigned to every member unit of the leading group (领导小组全体成员单位).
    all_members: bool = False

    @property
    def title(self) -> str:
        return self.subcategory or self.category_name


@dataclass(frozen=True, slots=True)
class CategoryStatus(_ScoreFields):
    category_id: int
    no: int
    name: str
    is_bonus: bool
    stated_points: float | None
    # Sum of the items' stated points (102 for the base table; see models.scoring).
    raw_points: float
    score: Score
    items: tuple[ItemStatus, ...]


@dataclass(frozen=True, slots=True)
class AssignmentStatus:
    assignment_id: int
    task_id: int
    task_no: int
    task_title: str
    unit_id: int
    unit_name: str
    state: AssignmentState
    percent: int
    note: str | None
    return_reason: str | None
    deadline: date
    days_left: int
    working_days_left: int
    light: Light
    light_label: str
    version: int
    submitted_at: datetime | None
    approved_at: datetime | None

    @property
    def id(self) -> int:
        return self.assignment_id


@dataclass(frozen=True, slots=True)
class TaskStatus:
    task_id: int
    no: int
    title: str
    group_no: int | None
    group_title: str | None
    deadline: date
    planned_deadline: date
    days_left: int
    working_days_left: int
    light: Light
    done: bool
    assignments: tuple[AssignmentStatus, ...]

    @property
    def late_units(self) -> tuple[AssignmentStatus, ...]:
        return tuple(a for a in self.assignments if a.light == Light.red)


@dataclass(frozen=True, slots=True)
class GapCriterion:
    criterion_id: int
    no: int
    points: float
    state: AssessmentState
    units: tuple[UnitRef, ...]
    evidence_count: int
    reason: str | None


@dataclass(frozen=True, slots=True)
class Gap:
    item_id: int
    item_no: int
    title: str
    category_name: str
    is_bonus: bool
    # Points work could still win here: open + lost only for being late.
    points: float
    open: float
    lost_late: float
    deadline: date | None
    days_left: int | None
    working_days_left: int | None
    overdue: bool
    light: Light
    units: tuple[UnitRef, ...]
    criteria: tuple[GapCriterion, ...]
    # Numbers of the unmet criteria without an evidence file of their own.
    missing_evidence: tuple[int, ...]
    item_evidence: int
    # The owing units are all the member units (an item of 领导小组全体成员单位).
    all_members: bool = False


@dataclass(frozen=True, slots=True)
class UnitSummary:
    unit_id: int
    name: str
    is_lead: bool
    is_member: bool
    assignments: int
    not_started: int
    in_progress: int
    submitted: int
    approved: int
    red: int
    yellow: int
    # Unmet criteria it owes on items with points at stake; its own claims awaiting review.
    criteria_open: int
    criteria_pending: int
    # Points at stake on the items it owes something on (a shared item counts for each).
    points_at_stake: float

    @property
    def id(self) -> int:
        return self.unit_id


@dataclass(frozen=True, slots=True)
class Headline:
    base: Score
    bonus: Score

    @property
    def verified(self) -> float:
        return self.base.verified + self.bonus.verified

    @property
    def claimed(self) -> float:
        return self.base.claimed + self.bonus.claimed

    @property
    def projected_base(self) -> float:
        return self.base.claimed

    @property
    def projected_bonus(self) -> float:
        return self.bonus.claimed


@dataclass(frozen=True, slots=True)
class CampaignStatus:
    campaign: CampaignInfo
    today: date
    yellow_working_days: int
    headline: Headline
    categories: tuple[CategoryStatus, ...]
    items: tuple[ItemStatus, ...]
    tasks: tuple[TaskStatus, ...]
    assignments: tuple[AssignmentStatus, ...]
    # Red assignments and tasks (deadline passed, not submitted), red items.
    overdue: tuple[AssignmentStatus, ...]
    overdue_tasks: tuple[TaskStatus, ...]
    overdue_items: tuple[ItemStatus, ...]
    # Yellow: due within N working days and not submitted / points open.
    due_soon: tuple[AssignmentStatus, ...]
    due_soon_items: tuple[ItemStatus, ...]
    # Submitted after the deadline, waiting for the coordinator.
    late_review: tuple[AssignmentStatus, ...]
    gaps: tuple[Gap, ...]
    bonus_gaps: tuple[Gap, ...]
    bonus_unclaimed: tuple[ItemStatus, ...]
    # Attainable criteria nobody is responsible for (needs the coordinator).
    unowned_criteria: tuple[CriterionStatus, ...]
    phase: PhaseStatus
    units: tuple[UnitSummary, ...]
    failed_outbox: int

    @property
    def campaign_id(self) -> int:
        return self.campaign.id

    @property
    def campaign_name(self) -> str:
        return self.campaign.name

    @property
    def base(self) -> Score:
        return self.headline.base

    @property
    def bonus(self) -> Score:
        return self.headline.bonus

    @property
    def criteria(self) -> tuple[CriterionStatus, ...]:
        return tuple(c for i in self.items for c in i.criteria)

    @property
    def projected(self) -> float:
        """Base points if everything now claimed were verified."""
        return self.headline.base.claimed


@dataclass(frozen=True, slots=True)
class UnitView:
    campaign: CampaignInfo
    today: date
    unit: UnitSummary
    assignments: tuple[AssignmentStatus, ...]
    # Attainable criteria the unit owes (met or not), in item order.
    criteria: tuple[CriterionStatus, ...]
    gaps: tuple[Gap, ...]


@dataclass(frozen=True, slots=True)
class ItemView:
    campaign: CampaignInfo
    today: date
    item: ItemStatus
    gap: Gap | None


@dataclass(frozen=True, slots=True)
class TaskView:
    campaign: CampaignInfo
    today: date
    task: TaskStatus


@dataclass(frozen=True, slots=True)
class OverviewLine:
    campaign: CampaignInfo
    base: Score
    bonus: Score
    overdue_assignments: int
    overdue_tasks: int
    overdue_items: int
    tasks_done: int
    tasks_total: int
    phase: PhaseStatus
    failed_outbox: int


# ========================================================================= loading


def _table(model: Any) -> sa.Table:
    return model.__table__  # type: ignore[no-any-return]


_CAMPAIGN = _table(Campaign)
_PHASE = _table(Phase)
_UNIT = _table(Unit)
_GROUP = _table(TaskGroup)
_TASK = _table(Task)
_ASSIGNMENT = _table(Assignment)
_CATEGORY = _table(ScoreCategory)
_ITEM = _table(ScoreItem)
_ITEM_UNIT = _table(ItemUnit)
_CRITERION = _table(Criterion)
_CRITERION_UNIT = _table(CriterionUnit)
_ASSESSMENT = _table(Assessment)
_EVIDENCE = _table(Evidence)
_OUTBOX = _table(Outbox)


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
        campaigns = session.exec(
            sa.select(*_columns(_CAMPAIGN, detail)).where(_CAMPAIGN.c.id == campaign_id)).all()
        if not campaigns:
            raise NotFound(f"没有找到活动 #{campaign_id}。")

        def scope(column: Any) -> Any:
            return column == campaign_id
    else:
        campaigns = session.exec(
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
        return session.exec(
            sa.select(*_columns(table, detail)).where(scope(table.c.campaign_id), *where)
            .order_by(*order))

    for p in rows(_PHASE, _PHASE.c.no):
        out[p.campaign_id].phases.append(p)
    if detail:
        for u in rows(_UNIT, _UNIT.c.sort_order, _UNIT.c.id):
            out[u.campaign_id].units.append(u)
        for g in rows(_GROUP, _GROUP.c.no):
            out[g.campaign_id].groups.append(g)
    for t in rows(_TASK, _TASK.c.no):
        out[t.campaign_id].tasks.append(t)
    for a in rows(_ASSIGNMENT, _ASSIGNMENT.c.id, where=[_ASSIGNMENT.c.retired.is_(False)]):
        out[a.campaign_id].assignments.append(a)
    for c in rows(_CATEGORY, _CATEGORY.c.no):
        out[c.campaign_id].categories.append(c)
    for i in rows(_ITEM, _ITEM.c.no):
        out[i.campaign_id].items.append(i)
    if detail:
        for cid, item_id, unit_id in session.exec(
            sa.select(_ITEM.c.campaign_id, _ITEM_UNIT.c.item_id, _ITEM_UNIT.c.unit_id)
            .select_from(_ITEM_UNIT.join(_ITEM, _ITEM.c.id == _ITEM_UNIT.c.item_id))
            .where(scope(_ITEM.c.campaign_id))
        ):
            out[cid].item_units[item_id].append(unit_id)
    for c in rows(_CRITERION, _CRITERION.c.item_id, _CRITERION.c.no):
        out[c.campaign_id].criteria.append(c)
    if detail:
        for cid, crit_id, unit_id in session.exec(
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
        for cid, item_id, crit_id, n in session.exec(
            sa.select(_EVIDENCE.c.campaign_id, _EVIDENCE.c.item_id, _EVIDENCE.c.criterion_id,
                      sa.func.count())
            .where(scope(_EVIDENCE.c.campaign_id), _EVIDENCE.c.state.in_(list(ACTIVE_STATES)))
            .group_by(_EVIDENCE.c.campaign_id, _EVIDENCE.c.item_id, _EVIDENCE.c.criterion_id)
        ):
            if crit_id is not None:
                out[cid].criterion_evidence[crit_id] += n
            elif item_id is not None:
                out[cid].item_evidence[item_id] += n
    for cid, n in session.exec(
        sa.select(_OUTBOX.c.campaign_id, sa.func.count())
        .where(scope(_OUTBOX.c.campaign_id), _OUTBOX.c.state == OutboxState.failed)
        .group_by(_OUTBOX.c.campaign_id)
    ):
        out[cid].failed_outbox = n
    return out


# ========================================================================= compute
#
# The rules below are shared: _compute builds the full CampaignStatus of /status
# with them, _overview_line only the numbers of the province overview. Anything
# both show (scores, lights, done, phase) is decided here, once.


def _days(today: date, deadline: date | None) -> tuple[int | None, int | None]:
    if deadline is None:
        return None, None
    return (deadline - today).days, working_days_between(today, deadline)


def _gap_sort_key(g: Gap) -> tuple[float, int, int]:
    return (-g.points, g.days_left if g.days_left is not None else 10**6, g.item_no)


def _campaign_info(camp: Any) -> CampaignInfo:
    return CampaignInfo(
        id=camp.id or 0, slug=camp.slug, name=camp.name, district=camp.district,
        timezone=camp.timezone, stated_base_points=float(camp.stated_base_points),
        stated_bonus_points=float(camp.stated_bonus_points),
    )


def _lit_assignments(
    assignments: Iterable[Any], tasks_by_id: Mapping[int, Any], today: date, yellow: int
) -> Iterator[tuple[Any, Any, Light, str]]:
    """(assignment, its task, light, label) of each assignment whose task is loaded."""
    for a in assignments:
        t = tasks_by_id.get(a.task_id)
        if t is None:
            continue
        light, label = assignment_light(
            state=a.state, deadline=t.deadline, today=today, yellow_working_days=yellow)
        yield a, t, light, label


def _task_light(states: Sequence[AssignmentState], lights: Iterable[Light]) -> tuple[Light, bool]:
    """A task's light and whether it is done, from its active assignments."""
    return worst(lights), bool(states) and all(s == AssignmentState.approved for s in states)


@dataclass(frozen=True, slots=True)
class _ScoredItem:
    """One score item as the rules see it, before any presentation."""

    item: Any
    category: Any
    is_bonus: bool
    # The deadline the rules use (the item's, else the campaign's end).
    deadline: date | None
    overdue: bool
    # (criterion, its assessment or None, the criterion as scoring sees it), in order.
    criteria: tuple[tuple[Any, Any, CriterionInput], ...]
    score: Score
    light: Light
    label: str


def _score_items(rows: _Rows, today: date, yellow: int) -> list[_ScoredItem]:
    """Every item's score and light on ``today``, in item order."""
    crits_by_item: dict[int, list[Any]] = defaultdict(list)
    for c in rows.criteria:
        crits_by_item[c.item_id].append(c)
    cats = {c.id: c for c in rows.categories}
    campaign_end = max((p.end_date for p in rows.phases), default=None)
    none = AssessmentState.none
    out: list[_ScoredItem] = []
    for item in rows.items:
        cat = cats.get(item.category_id)
        deadline = item.deadline if item.deadline is not None else campaign_end
        overdue = deadline is not None and today > deadline
        criteria = []
        for c in crits_by_item.get(item.id or 0, ()):
            a = rows.assessments.get(c.id or 0)
            ci = CriterionInput(points=c.points, tier_group=c.tier_group,
                                state=a.state if a is not None else none,
                                not_attainable=c.not_attainable)
            criteria.append((c, a, ci))
        score = score_item(item.max_points, [ci for _, _, ci in criteria], overdue=overdue)
        light, label = item_light(score=score, deadline=deadline, today=today,
                                  yellow_working_days=yellow)
        out.append(_ScoredItem(
            item=item, category=cat, is_bonus=bool(cat.is_bonus) if cat else False,
            deadline=deadline, overdue=overdue, criteria=tuple(criteria), score=score,
            light=light, label=label,
        ))
    return out


def _category_score(category: Any, scores: Sequence[Score]) -> tuple[float | None, float, Score]:
    """(stated points, sum of its items' points, score) of one category."""
    raw = float(sum(s.max_points for s in scores))
    stated = float(category.stated_points) if category.stated_points is not None else None
    return stated, raw, total(scores, max_points=stated if stated is not None else raw)


def _headline(info: CampaignInfo, categories: Sequence[tuple[bool, Score]]) -> Headline:
    """Base and bonus from the categories' (is_bonus, score)."""
    base = total((s for bonus, s in categories if not bonus), max_points=info.stated_base_points)
    if not any(bonus for bonus, _ in categories):
        return Headline(base=base, bonus=ZERO)
    return Headline(base=base, bonus=total((s for bonus, s in categories if bonus),
                                           max_points=info.stated_bonus_points))


def _phase(
    rows: _Rows, today: date, *, tasks: Iterable[tuple[int, date, bool, bool]],
    items: Iterable[tuple[int, date | None, Score]],
) -> PhaseStatus:
    """The phase and next milestone; ``tasks``: (no, deadline, done, has assignments),
    ``items``: (no, deadline, score)."""
    return phase_status(
        [PhaseInfo(p.no, p.name, p.start_date, p.end_date, p.description) for p in rows.phases],
        today,
        task_deadlines={no: d for no, d, done, assigned in tasks if assigned and not done},
        item_deadlines={no: d for no, d, score in items if d is not None and score.at_stake > 0},
    )


def _overview_line(rows: _Rows, today: date, yellow: int) -> OverviewLine:
    """The overview's numbers for one campaign, by the same rules as :func:`_compute`."""
    info = _campaign_info(rows.campaign)
    tasks_by_id = {t.id: t for t in rows.tasks}
    states: dict[int, list[AssignmentState]] = defaultdict(list)
    lights: dict[int, list[Light]] = defaultdict(list)
    overdue = 0
    for a, t, light, _ in _lit_assignments(rows.assignments, tasks_by_id, today, yellow):
        states[t.id or 0].append(a.state)
        lights[t.id or 0].append(light)
        overdue += light == Light.red
    tasks = []
    for t in rows.tasks:
        light, done = _task_light(states.get(t.id or 0, ()), lights.get(t.id or 0, ()))
        tasks.append((t.no, t.deadline, done, (t.id or 0) in states, light))
    scored = _score_items(rows, today, yellow)
    by_cat: dict[int, list[Score]] = defaultdict(list)
    for s in scored:
        by_cat[s.item.category_id].append(s.score)
    headline = _headline(info, [
        (c.is_bonus, _category_score(c, by_cat.get(c.id or 0, ()))[2]) for c in rows.categories])
    return OverviewLine(
        campaign=info, base=headline.base, bonus=headline.bonus,
        overdue_assignments=overdue,
        overdue_tasks=sum(1 for *_, light in tasks if light == Light.red),
        overdue_items=sum(1 for s in scored if s.light == Light.red),
        tasks_done=sum(1 for _, _, done, _, _ in tasks if done), tasks_total=len(tasks),
        phase=_phase(rows, today, tasks=(t[:4] for t in tasks),
                     items=((s.item.no, s.deadline, s.score) for s in scored)),
        failed_outbox=rows.failed_outbox,
    )


def _compute(rows: _Rows, today: date, yellow: int) -> CampaignStatus:
    info = _campaign_info(rows.campaign)
    units = {u.id: u for u in rows.units}

    def ref(uid: int) -> UnitRef:
        u = units.get(uid)
        return UnitRef(uid, u.name if u is not None else f"#{uid}")

    unit_order = {u.id: n for n, u in enumerate(rows.units)}

    def refs(ids: Iterable[int]) -> tuple[UnitRef, ...]:
        return tuple(ref(u) for u in sorted(set(ids), key=lambda u: (unit_order.get(u, 10**6), u)))

    member_ids = [u.id for u in rows.units if u.is_member and u.id is not None]

    # ---------------------------------------------------------------- tasks
    groups = {g.id: g for g in rows.groups}
    tasks_by_id = {t.id: t for t in rows.tasks}
    by_task: dict[int, list[AssignmentStatus]] = defaultdict(list)
    assignment_list: list[AssignmentStatus] = []
    ordered = sorted(rows.assignments, key=lambda a: (
        tasks_by_id[a.task_id].no if a.task_id in tasks_by_id else 10**6,
        unit_order.get(a.unit_id, 10**6), a.id or 0))
    for a, t, light, label in _lit_assignments(ordered, tasks_by_id, today, yellow):
        days, wdays = _days(today, t.deadline)
        st = AssignmentStatus(
            assignment_id=a.id or 0, task_id=t.id or 0, task_no=t.no, task_title=t.title,
            unit_id=a.unit_id, unit_name=ref(a.unit_id).name, state=a.state, percent=a.percent,
            note=a.note, return_reason=a.return_reason, deadline=t.deadline,
            days_left=days or 0, working_days_left=wdays or 0, light=light, light_label=label,
            version=a.version, submitted_at=a.submitted_at, approved_at=a.approved_at,
        )
        by_task[t.id or 0].append(st)
        assignment_list.append(st)
    tasks: list[TaskStatus] = []
    for t in rows.tasks:
        mine = tuple(by_task.get(t.id or 0, ()))
        g = groups.get(t.group_id)
        days, wdays = _days(today, t.deadline)
        task_light, done = _task_light([a.state for a in mine], (a.light for a in mine))
        tasks.append(TaskStatus(
            task_id=t.id or 0, no=t.no, title=t.title,
            group_no=g.no if g else None, group_title=g.title if g else None,
            deadline=t.deadline, planned_deadline=t.planned_deadline,
            days_left=days or 0, working_days_left=wdays or 0,
            light=task_light, done=done, assignments=mine,
        ))

    # ---------------------------------------------------------------- score
    items_by_cat: dict[int, list[ItemStatus]] = defaultdict(list)
    item_list: list[ItemStatus] = []
    gaps: list[Gap] = []
    bonus_gaps: list[Gap] = []
    unowned: list[CriterionStatus] = []
    stake_by_unit: dict[int, float] = defaultdict(float)
    open_by_unit: dict[int, int] = defaultdict(int)
    pending_by_unit: dict[int, int] = defaultdict(int)
    for scored in _score_items(rows, today, yellow):
        item, cat, score = scored.item, scored.category, scored.score
        is_bonus, deadline, overdue = scored.is_bonus, scored.deadline, scored.overdue
        item_unit_ids = owing_unit_ids(item_units=rows.item_units.get(item.id or 0, ()),
                                       all_members=item.all_members, member_units=member_ids)
        crit_status: list[CriterionStatus] = []
        for c, a, ci in scored.criteria:
            claimed_pts, verified_pts = criterion_scores(ci)
            owners = owing_unit_ids(criterion_units=rows.criterion_units.get(c.id or 0, ()),
                                    item_units=item_unit_ids, all_members=False, member_units=())
            cs = CriterionStatus(
                criterion_id=c.id or 0, item_id=item.id or 0, item_no=item.no, no=c.no,
                text=c.text, points=float(c.points), tier_group=c.tier_group, state=ci.state,
                not_attainable=c.not_attainable, not_attainable_reason=c.not_attainable_reason,
                lost=criterion_lost(ci, overdue=overdue), claimed=claimed_pts,
                verified=verified_pts, units=refs(owners),
                claimed_by=ref(a.unit_id) if a is not None and a.unit_id is not None else None,
                claim_note=a.claim_note if a is not None else None,
                reason=a.reason if a is not None else None,
                evidence_count=rows.criterion_evidence.get(c.id or 0, 0),
                version=a.version if a is not None else 0,
            )
            crit_status.append(cs)
            if not cs.not_attainable and not cs.units:
                unowned.append(cs)
        light, label = scored.light, scored.label
        days, wdays = _days(today, deadline)
        st = ItemStatus(
            item_id=item.id or 0, no=item.no, category_id=item.category_id,
            category_name=cat.name if cat else "", subcategory=item.subcategory, text=item.text,
            note=item.note, is_bonus=is_bonus, score=score, deadline=deadline,
            deadline_note=item.deadline_note, days_left=days, working_days_left=wdays,
            overdue=overdue, light=light, light_label=label, units=refs(item_unit_ids),
            criteria=tuple(crit_status),
            evidence_count=rows.item_evidence.get(item.id or 0, 0),
            all_members=item.all_members,
        )
        item_list.append(st)
        items_by_cat[item.category_id].append(st)

        unmet = [c for c in crit_status if not c.not_attainable and not c.met]
        owing: set[int] = {u.id for c in unmet for u in c.units}
        for c in crit_status:
            if c.not_attainable:
                continue
            if c.state == AssessmentState.claimed and c.claimed_by is not None:
                pending_by_unit[c.claimed_by.id] += 1
            if not c.met and score.at_stake > 0:
                for u in c.units:
                    open_by_unit[u.id] += 1
        if score.at_stake > 0:
            for uid in owing:
                stake_by_unit[uid] += score.at_stake
            gap = Gap(
                item_id=st.item_id, item_no=st.no, title=st.title, category_name=st.category_name,
                is_bonus=is_bonus, points=score.at_stake, open=score.open,
                lost_late=score.lost_late, deadline=deadline, days_left=days,
                working_days_left=wdays, overdue=overdue, light=light,
                units=refs(owing),
                criteria=tuple(GapCriterion(
                    criterion_id=c.criterion_id, no=c.no, points=c.points, state=c.state,
                    units=c.units, evidence_count=c.evidence_count, reason=c.reason)
                    for c in unmet),
                missing_evidence=tuple(c.no for c in unmet if c.evidence_count == 0),
                item_evidence=st.evidence_count,
                all_members=item.all_members and owing >= set(member_ids),
            )
            (bonus_gaps if is_bonus else gaps).append(gap)

    categories: list[CategoryStatus] = []
    for c in rows.categories:
        mine = tuple(items_by_cat.get(c.id or 0, ()))
        stated, raw, cat_score = _category_score(c, [i.score for i in mine])
        categories.append(CategoryStatus(
            category_id=c.id or 0, no=c.no, name=c.name, is_bonus=c.is_bonus,
            stated_points=stated, raw_points=raw, score=cat_score, items=mine,
        ))
    headline = _headline(info, [(c.is_bonus, c.score) for c in categories])

    # ---------------------------------------------------------------- units
    counts: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for a in assignment_list:
        counts[a.unit_id][a.state.value] += 1
        counts[a.unit_id]["total"] += 1
        if a.light == Light.red:
            counts[a.unit_id]["red"] += 1
        elif a.light == Light.yellow:
            counts[a.unit_id]["yellow"] += 1
    summaries = tuple(
        UnitSummary(
            unit_id=u.id or 0, name=u.name, is_lead=u.is_lead, is_member=u.is_member,
            assignments=counts[u.id or 0]["total"],
            not_started=counts[u.id or 0][AssignmentState.not_started.value],
            in_progress=counts[u.id or 0][AssignmentState.in_progress.value],
            submitted=counts[u.id or 0][AssignmentState.submitted.value],
            approved=counts[u.id or 0][AssignmentState.approved.value],
            red=counts[u.id or 0]["red"], yellow=counts[u.id or 0]["yellow"],
            criteria_open=open_by_unit.get(u.id or 0, 0),
            criteria_pending=pending_by_unit.get(u.id or 0, 0),
            points_at_stake=stake_by_unit.get(u.id or 0, 0.0),
        )
        for u in rows.units
    )

    # ---------------------------------------------------------------- phase
    phase = _phase(rows, today,
                   tasks=((t.no, t.deadline, t.done, bool(t.assignments)) for t in tasks),
                   items=((i.no, i.deadline, i.score) for i in item_list))
    gaps.sort(key=_gap_sort_key)
    bonus_gaps.sort(key=_gap_sort_key)
    assignments = tuple(assignment_list)
    return CampaignStatus(
        campaign=info, today=today, yellow_working_days=yellow,
        headline=headline,
        categories=tuple(categories), items=tuple(item_list), tasks=tuple(tasks),
        assignments=assignments,
        overdue=tuple(a for a in assignments if a.light == Light.red),
        overdue_tasks=tuple(t for t in tasks if t.light == Light.red),
        overdue_items=tuple(i for i in item_list if i.light == Light.red),
        due_soon=tuple(a for a in assignments if a.light_label == LABEL_DUE_SOON),
        due_soon_items=tuple(i for i in item_list if i.light_label == LABEL_DUE_SOON),
        late_review=tuple(a for a in assignments if a.light_label == LABEL_LATE_REVIEW),
        gaps=tuple(gaps), bonus_gaps=tuple(bonus_gaps),
        bonus_unclaimed=tuple(i for i in item_list
                              if i.is_bonus and i.score.claimed == 0 and i.score.possible > 0),
        unowned_criteria=tuple(unowned),
        phase=phase, units=summaries, failed_outbox=rows.failed_outbox,
    )


# ========================================================================== public


def campaign_status(
    *, session: Session, campaign_id: int, today: date, yellow_working_days: int = 5
) -> CampaignStatus:
    """Everything /status shows for one campaign on ``today`` (a fixed number of queries)."""
    if yellow_working_days < 0:
        raise ValueError("yellow_working_days must be >= 0")
    rows = _load(session, campaign_id)
    return _compute(rows[campaign_id], today, yellow_working_days)


def province_overview(
    *, session: Session, today: date, yellow_working_days: int = 5
) -> list[OverviewLine]:
    """One line per active campaign (a city supervises many districts); fixed queries."""
    lines = [_overview_line(rows, today, yellow_working_days)
             for rows in _load(session, None, detail=False).values()]
    lines.sort(key=lambda line: (line.campaign.district, line.campaign.name, line.campaign.id))
    return lines


def unit_view(status: CampaignStatus, unit_id: int) -> UnitView:
    """One unit's assignments, the criteria it owes and its gaps."""
    unit = next((u for u in status.units if u.unit_id == unit_id), None)
    if unit is None:
        raise NotFound("该活动中没有这个责任单位。")
    return UnitView(
        campaign=status.campaign, today=status.today, unit=unit,
        assignments=tuple(a for a in status.assignments if a.unit_id == unit_id),
        criteria=tuple(c for i in status.items for c in i.criteria
                       if not c.not_attainable and any(u.id == unit_id for u in c.units)),
        gaps=tuple(g for g in (*status.gaps, *status.bonus_gaps)
                   if any(u.id == unit_id for u in g.units)),
    )


def item_view(status: CampaignStatus, item_no: int) -> ItemView:
    """One score item (by its number in the table) with its criteria and gap."""
    item = next((i for i in status.items if i.no == item_no), None)
    if item is None:
        raise NotFound(f"评分表中没有第{item_no}项。")
    gap = next((g for g in (*status.gaps, *status.bonus_gaps) if g.item_no == item_no), None)
    return ItemView(campaign=status.campaign, today=status.today, item=item, gap=gap)


def task_view(status: CampaignStatus, task_no: int) -> TaskView:
    """One task (by its number) with every unit's assignment."""
    task = next((t for t in status.tasks if t.no == task_no), None)
    if task is None:
        raise NotFound(f"没有第{task_no}项任务。")
    return TaskView(campaign=status.campaign, today=status.today, task=task)
