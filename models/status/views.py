"""What /status shows: the frozen dataclasses of a campaign's status, and the drill-downs
(:func:`unit_view`, :func:`item_view`, :func:`task_view`) cut from a :class:`CampaignStatus`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from models.errors import NotFound
from models.scoring import (
    Score,
)
from models.status.lights import Light
from models.status.phase import PhaseStatus
from models.tables import (
    AssessmentState,
    AssignmentState,
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
    # Whether the document states the deadline (models.status.DeadlineBasis).
    deadline_basis: str
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
    #: Years of the plan, from today on, with no official holiday arrangement on record
    #: (:func:`models.status.phase.calendar_gaps`): their working days leave out 调休.
    calendar_gaps: tuple[int, ...] = ()

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
