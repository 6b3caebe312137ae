"""Computing a campaign's status (:func:`campaign_status`) and the province overview
(:func:`province_overview`) from the loaded rows, with the rules of :mod:`models.scoring`,
:mod:`models.status.lights` and :mod:`models.status.phase`.

:func:`campaign_status` reads one campaign with a fixed number of queries (each
table once, never a query per row) and computes a frozen :class:`CampaignStatus`
with the pure rules of :mod:`models.scoring` and of this package. The drill-downs
(:func:`unit_view`, :func:`item_view`, :func:`task_view`) are cut from that same
object. :func:`province_overview` reads every active campaign at once, with fixed
queries too, and computes only its one line per campaign, with the same rules.
Rendering is :mod:`reports.text`'s.

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
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import Any

from sqlmodel import Session

from models.calendar import working_days_between
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
from models.status.lights import (
    LABEL_DUE_SOON,
    LABEL_LATE_REVIEW,
    Light,
    assignment_light,
    item_light,
    worst,
)
from models.status.load import _load, _Rows
from models.status.phase import PhaseInfo, PhaseStatus, calendar_gaps, phase_status
from models.status.views import (
    AssignmentStatus,
    CampaignInfo,
    CampaignStatus,
    CategoryStatus,
    CriterionStatus,
    Gap,
    GapCriterion,
    Headline,
    ItemStatus,
    OverviewLine,
    TaskStatus,
    UnitRef,
    UnitSummary,
)
from models.tables import (
    AssessmentState,
    AssignmentState,
)

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


def item_deadline(stated: date | None, *, campaign_end: date | None) -> date | None:
    """The deadline the rules use for a score item: the one the document states, else the
    campaign's end (the acceptance phase's last day). ONE home for this fallback: the score,
    the lights, /item, the criterion cards and /mytasks all call it."""
    return stated if stated is not None else campaign_end


class DeadlineBasis(StrEnum):
    """Where a score item's deadline comes from (how /item and the cards word it)."""

    stated = "stated"  # the document gives a date
    whole_process = "whole_process"  # 全过程: kept up until the acceptance
    campaign_end = "campaign_end"  # the document gives none: the acceptance phase's end


def deadline_basis(stated: date | None, note: str | None) -> DeadlineBasis:
    """Which :class:`DeadlineBasis` an item with document deadline ``stated`` and note ``note`` has."""
    if stated is not None:
        return DeadlineBasis.stated
    if (note or "").strip().startswith("全过程"):
        return DeadlineBasis.whole_process
    return DeadlineBasis.campaign_end


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
        deadline = item_deadline(item.deadline, campaign_end=campaign_end)
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

    member_ids = [u.id for u in rows.units if u.is_member and not u.retired and u.id is not None]

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
        a_status = AssignmentStatus(
            assignment_id=a.id or 0, task_id=t.id or 0, task_no=t.no, task_title=t.title,
            unit_id=a.unit_id, unit_name=ref(a.unit_id).name, state=a.state, percent=a.percent,
            note=a.note, return_reason=a.return_reason, deadline=t.deadline,
            days_left=days or 0, working_days_left=wdays or 0, light=light, light_label=label,
            version=a.version, submitted_at=a.submitted_at, approved_at=a.approved_at,
        )
        by_task[t.id or 0].append(a_status)
        assignment_list.append(a_status)
    tasks: list[TaskStatus] = []
    for t in rows.tasks:
        of_task = tuple(by_task.get(t.id or 0, ()))
        g = groups.get(t.group_id)
        days, wdays = _days(today, t.deadline)
        task_light, done = _task_light([a.state for a in of_task], (a.light for a in of_task))
        tasks.append(TaskStatus(
            task_id=t.id or 0, no=t.no, title=t.title,
            group_no=g.no if g else None, group_title=g.title if g else None,
            deadline=t.deadline, planned_deadline=t.planned_deadline,
            days_left=days or 0, working_days_left=wdays or 0,
            light=task_light, done=done, assignments=of_task,
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
                text=c.label or c.text, points=float(c.points), tier_group=c.tier_group, state=ci.state,
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
        item_status = ItemStatus(
            item_id=item.id or 0, no=item.no, category_id=item.category_id,
            category_name=cat.name if cat else "", subcategory=item.subcategory, text=item.text,
            note=item.note, is_bonus=is_bonus, score=score, deadline=deadline,
            deadline_note=item.deadline_note,
            deadline_basis=deadline_basis(item.deadline, item.deadline_note), days_left=days, working_days_left=wdays,
            overdue=overdue, light=light, light_label=label, units=refs(item_unit_ids),
            criteria=tuple(crit_status),
            evidence_count=rows.item_evidence.get(item.id or 0, 0),
            all_members=item.all_members,
        )
        item_list.append(item_status)
        items_by_cat[item.category_id].append(item_status)

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
                item_id=item_status.item_id, item_no=item_status.no, title=item_status.title,
                category_name=item_status.category_name,
                is_bonus=is_bonus, points=score.at_stake, open=score.open,
                lost_late=score.lost_late, deadline=deadline, days_left=days,
                working_days_left=wdays, overdue=overdue, light=light,
                units=refs(owing),
                criteria=tuple(GapCriterion(
                    criterion_id=c.criterion_id, no=c.no, points=c.points, state=c.state,
                    units=c.units, evidence_count=c.evidence_count, reason=c.reason)
                    for c in unmet),
                missing_evidence=tuple(c.no for c in unmet if c.evidence_count == 0),
                item_evidence=item_status.evidence_count,
                all_members=item.all_members and owing >= set(member_ids),
            )
            (bonus_gaps if is_bonus else gaps).append(gap)

    categories: list[CategoryStatus] = []
    for c in rows.categories:
        cat_items = tuple(items_by_cat.get(c.id or 0, ()))
        stated, raw, cat_score = _category_score(c, [i.score for i in cat_items])
        categories.append(CategoryStatus(
            category_id=c.id or 0, no=c.no, name=c.name, is_bonus=c.is_bonus,
            stated_points=stated, raw_points=raw, score=cat_score, items=cat_items,
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
        for u in rows.units if not u.retired
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
        calendar_gaps=calendar_gaps(today, phase_ends=(p.end_date for p in rows.phases),
                                    deadlines=(t.deadline for t in rows.tasks)),
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
