"""Campaign status: lights, phase, gaps, unit summaries, drill-downs, query count."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel, select

from infra.db import make_engine
from models.errors import NotFound
from models.scoring import ZERO, Score, score_item
from models.seed import SeedDoc, load_seed
from models.status import (
    LABEL_DUE_SOON,
    LABEL_LATE_REVIEW,
    LABEL_LOST,
    LABEL_OVERDUE,
    CampaignStatus,
    Light,
    OverviewLine,
    PhaseInfo,
    assignment_light,
    campaign_status,
    item_light,
    item_view,
    phase_status,
    province_overview,
    task_view,
    unit_view,
    worst,
)
from models.status.compute import _compute, _overview_line
from models.status.load import _Rows
from models.tables import (
    Assessment,
    AssessmentState,
    Assignment,
    AssignmentState,
    Campaign,
    Criterion,
    Evidence,
    EvidenceState,
    Outbox,
    OutboxState,
    Phase,
    ScoreCategory,
    ScoreItem,
    Task,
    Unit,
)
from tests.conftest import SEED_PATH
from tests.dbutil import fresh_database_url
from tests.factories import (
    NOW,
    PHASES_2021,
    CampaignBuilder,
    by_name,
    count_queries,
    seeded_campaign,
)

A = AssignmentState
TODAY = date(2021, 9, 1)  # a Wednesday


# ======================================================================= lights


@pytest.mark.parametrize(
    ("state", "deadline", "light", "label"),
    [
        (A.approved, date(2021, 7, 10), Light.green, ""),
        (A.not_started, date(2021, 8, 31), Light.red, LABEL_OVERDUE),
        (A.in_progress, date(2021, 8, 31), Light.red, LABEL_OVERDUE),
        (A.submitted, date(2021, 8, 31), Light.yellow, LABEL_LATE_REVIEW),
        (A.in_progress, TODAY, Light.yellow, LABEL_DUE_SOON),  # due today
        (A.submitted, TODAY, Light.green, ""),  # handed in on time
        (A.not_started, date(2021, 9, 8), Light.yellow, LABEL_DUE_SOON),  # 5 working days
        (A.not_started, date(2021, 9, 9), Light.green, ""),  # 6 working days
        (A.approved, date(2021, 9, 2), Light.green, ""),
    ],
)
def test_assignment_light(state: A, deadline: date, light: Light, label: str) -> None:
    assert assignment_light(state=state, deadline=deadline, today=TODAY,
                            yellow_working_days=5) == (light, label)


def test_yellow_counts_working_days_across_the_national_day() -> None:
    # 9/28 → 10/8: 9/29, 9/30, 10/8 are the working days in between.
    light = assignment_light(state=A.in_progress, deadline=date(2021, 10, 8),
                             today=date(2021, 9, 28), yellow_working_days=3)
    assert light == (Light.yellow, LABEL_DUE_SOON)
    light = assignment_light(state=A.in_progress, deadline=date(2021, 10, 9),
                             today=date(2021, 9, 28), yellow_working_days=3)
    assert light == (Light.green, "")  # 10/9 is a worked Saturday: 4 working days
    light = assignment_light(state=A.in_progress, deadline=date(2021, 9, 2),
                             today=TODAY, yellow_working_days=0)
    assert light == (Light.green, "")


def _score(**kw: float) -> Score:
    base = dict(max_points=4.0, attainable=4.0, possible=4.0, reachable=4.0, claimed=0.0,
                verified=0.0)
    base.update(kw)
    return Score(**base)  # type: ignore[arg-type]


def test_item_light() -> None:
    soon, later, past = date(2021, 9, 3), date(2021, 12, 31), date(2021, 8, 1)

    def light(score: Score, deadline: date | None) -> tuple[Light, str]:
        return item_light(score=score, deadline=deadline, today=TODAY, yellow_working_days=5)

    assert light(_score(), soon) == (Light.yellow, LABEL_DUE_SOON)
    assert light(_score(), later) == (Light.green, "")
    assert light(_score(claimed=4, reachable=4), soon) == (Light.green, "")  # all claimed
    assert light(_score(reachable=2, claimed=2), past) == (Light.red, LABEL_LOST)
    assert light(_score(claimed=4, verified=2), past) == (Light.yellow, LABEL_LATE_REVIEW)
    assert light(_score(claimed=4, verified=4), past) == (Light.green, "")
    assert light(_score(possible=2, reachable=2, claimed=2, verified=2), past) == (Light.green, "")
    assert light(_score(), None) == (Light.green, "")


def test_worst() -> None:
    assert worst([]) == Light.green
    assert worst([Light.green, Light.yellow]) == Light.yellow
    assert worst([Light.yellow, Light.red, Light.green]) == Light.red


# ======================================================================== phase

PHASES = [PhaseInfo(no, name, start, end) for no, name, start, end in PHASES_2021]


@pytest.mark.parametrize(
    ("day", "state", "current"),
    [
        (date(2021, 6, 30), "before", None),
        (date(2021, 7, 1), "during", 1),
        (date(2021, 7, 10), "during", 1),  # the boundary day is phase 1's deadline
        (date(2021, 7, 11), "during", 2),
        (date(2021, 12, 31), "during", 2),
        (date(2022, 1, 1), "during", 3),
        (date(2022, 3, 1), "during", 3),
        (date(2022, 3, 2), "during", 4),
        (date(2022, 4, 1), "during", 4),
        (date(2022, 4, 2), "after", None),
    ],
)
def test_phase_of_a_day(day: date, state: str, current: int | None) -> None:
    ph = phase_status(PHASES, day)
    assert ph.state == state
    assert (ph.current.no if ph.current else None) == current


def test_phase_between_and_none() -> None:
    gap = [PhaseInfo(1, "一", date(2021, 1, 1), date(2021, 1, 31)),
           PhaseInfo(2, "二", date(2021, 3, 1), date(2021, 3, 31))]
    ph = phase_status(gap, date(2021, 2, 10))
    assert (ph.state, ph.current, ph.previous.no, ph.next.no) == ("between", None, 1, 2)
    assert ph.next_milestone.date == date(2021, 3, 1)
    assert ph.next_milestone.phase_events == ("第二阶段“二”开始",)
    none = phase_status([], TODAY)
    assert (none.state, none.next_milestone) == ("none", None)
    after = phase_status(PHASES, date(2023, 1, 1))
    assert after.next_milestone is None and after.previous.no == 4


def test_next_milestone_is_the_nearest_boundary_or_deadline() -> None:
    ph = phase_status(PHASES, TODAY, task_deadlines={3: date(2021, 12, 31), 7: date(2021, 9, 30),
                                                     1: date(2021, 7, 10)},
                      item_deadlines={5: date(2021, 12, 31)})
    m = ph.next_milestone
    assert (m.date, m.days_left, m.task_nos, m.phase_events) == (date(2021, 9, 30), 29, (7,), ())
    assert m.working_days_left == 21
    ph = phase_status(PHASES, TODAY, task_deadlines={3: date(2021, 12, 31)},
                      item_deadlines={5: date(2021, 12, 31)})
    m = ph.next_milestone
    assert m.phase_events == ("第二阶段“全面创建，实现总体达标”结束",)
    assert (m.task_nos, m.item_nos, m.days_left) == ((3,), (5,), 121)
    assert ph.days_left_in_phase == 121
    # Today itself counts; a phase starting the day another ends is one event.
    ph = phase_status(PHASES, date(2021, 7, 10))
    assert ph.next_milestone.days_left == 0
    assert ph.next_milestone.phase_events == ("第一阶段“制定方案，落实目标任务”结束",)


# ===================================================================== a world


class World:
    """A small campaign with one of everything."""

    def __init__(self, session: Session) -> None:
        b = self.b = CampaignBuilder(session)
        b.phases_2021()
        self.office = b.unit("区市场监管局", is_lead=True)
        self.housing, self.health = b.units("区住建局", "区卫健委")
        self.outsider = b.unit("区外单位", is_member=False)
        # Tasks: 1 overdue (one unit late, one submitted late), 2 due soon, 3 later, 4 done.
        self.t1 = b.task(1, units=[self.office, self.housing], deadline=date(2021, 8, 20))
        b.state(self.t1.assignments[1], A.submitted)
        self.t2 = b.task(2, units=[self.health], deadline=date(2021, 9, 3))
        self.t3 = b.task(3, units=[self.office], deadline=date(2021, 12, 31))
        self.t4 = b.task(4, units=[self.housing], deadline=date(2021, 7, 10))
        b.state(self.t4.assignments[0], A.approved)
        retired = b.task(5, units=[self.outsider], deadline=date(2021, 7, 10)).assignments[0]
        retired.retired = True
        session.add(retired)
        base = b.category(1, "质量发展促进机制", stated_points=10)
        tech = b.category(2, "质量技术")
        bonus = b.category(3, "加分项", stated_points=10, is_bonus=True)
        # 1: 5 points, 1 verified + 2 claimed, office & housing, due 12/31.
        self.i1 = b.item(1, base, max_points=5, criteria=[1, 2, 1, 1],
                         units=[self.office, self.housing])
        b.assess(self.i1.criteria[0], "verified", self.office)
        b.assess(self.i1.criteria[1], "claimed", self.office)
        # 2: overdue (8/20) with nothing claimed: 2 points lost late.
        self.i2 = b.item(2, base, max_points=2, criteria=[2], units=[self.health],
                         deadline=date(2021, 8, 20))
        # 3: tiers + not attainable, no deadline (→ campaign end 2022-04-01).
        self.i3 = b.item(3, tech, max_points=4, criteria=[2, (2, "t"), (1, "t"), (1, None, True)],
                         units=[self.office], deadline=None)
        b.assess(self.i3.criteria[2], "verified", self.office)
        # 4: 4 points but criteria 1 + 1 (item 19's case), due soon, criterion 2 owned apart.
        self.i4 = b.item(4, tech, max_points=4, criteria=[1, 1], units=[self.office],
                         deadline=date(2021, 9, 2), criterion_units={2: [self.health]})
        b.assess(self.i4.criteria[0], "rejected", self.office, reason="材料不全")
        # 5: nobody responsible.
        self.i5 = b.item(5, tech, max_points=1, criteria=[1])
        # Bonus: 6 claimed (3), 7 untouched (all members).
        self.i6 = b.item(6, bonus, max_points=3, criteria=[3, 2], all_members=True)
        b.assess(self.i6.criteria[0], "claimed", self.health)
        self.i7 = b.item(7, bonus, max_points=3, criteria=[3], all_members=True)
        # Evidence: criterion 1.2 has one, item 1 has one for the whole item, 2.1 a withdrawn one.
        b.evidence(unit=self.office, criterion=self.i1.criteria[1])
        b.evidence(unit=self.office, item=self.i1.item)
        b.evidence(unit=self.health, criterion=self.i2.criteria[0], state=EvidenceState.withdrawn)
        b.outbox(OutboxState.failed)
        b.outbox(OutboxState.failed)
        b.outbox(OutboxState.sent)
        session.commit()
        self.cid = b.cid


@pytest.fixture
def world(session: Session) -> World:
    return World(session)


@pytest.fixture(scope="module")
def _built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[World, CampaignStatus]]:
    """One World and its status for the read-only tests of this module (one database)."""
    with fresh_database_url(tmp_path_factory.mktemp("status")) as url:
        eng = make_engine(url)
        SQLModel.metadata.create_all(eng)
        try:
            with Session(eng, expire_on_commit=False) as s:
                w = World(s)
                yield w, campaign_status(session=s, campaign_id=w.cid, today=TODAY)
        finally:
            eng.dispose()


@pytest.fixture
def built_world(_built: tuple[World, CampaignStatus]) -> World:
    return _built[0]


@pytest.fixture
def status(_built: tuple[World, CampaignStatus]) -> CampaignStatus:
    return _built[1]


def test_headline_and_categories(status: CampaignStatus) -> None:
    h = status.headline
    # Base: item 1 (1 verified, 3 claimed), item 3 (1 verified via the 省级 tier).
    assert (h.base.verified, h.base.claimed, h.base.max_points) == (2, 4, 100)
    # Attainable: 10 (cat 1: 5 + 2, capped at stated 10 → 7) + 4 + 2 + 1 = 14.
    cats = {c.name: c for c in status.categories}
    assert (cats["质量发展促进机制"].attainable, cats["质量发展促进机制"].max_points) == (7, 10)
    assert cats["质量技术"].stated_points is None
    assert (cats["质量技术"].raw_points, cats["质量技术"].max_points) == (9, 9)
    assert cats["质量技术"].attainable == 7  # item 4 reaches only 2
    assert h.base.attainable == 14
    assert (h.bonus.claimed, h.bonus.verified, h.bonus.attainable, h.bonus.max_points) == (
        3, 0, 6, 10)
    assert status.projected == h.projected_base == 4
    assert (h.verified, h.claimed) == (2, 7)
    assert status.failed_outbox == 2


def test_items_and_criteria(status: CampaignStatus) -> None:
    items = {i.no: i for i in status.items}
    i1 = items[1]
    assert (i1.verified, i1.claimed, i1.pending, i1.open, i1.light) == (1, 3, 2, 2, Light.green)
    assert [u.name for u in i1.units] == ["区市场监管局", "区住建局"]
    c12 = i1.criteria[1]
    assert (c12.label, c12.state, c12.claimed, c12.verified, c12.evidence_count) == (
        "1.2", AssessmentState.claimed, 2, 0, 1)
    assert c12.claimed_by.name == "区市场监管局" and c12.version == 0
    assert i1.evidence_count == 1
    i2 = items[2]
    assert (i2.overdue, i2.lost, i2.light, i2.light_label) == (True, 2, Light.red, LABEL_LOST)
    assert i2.criteria[0].lost and i2.criteria[0].evidence_count == 0  # withdrawn ignored
    i3 = items[3]
    assert i3.deadline == date(2022, 4, 1) and not i3.overdue  # campaign end
    assert (i3.attainable, i3.possible, i3.verified) == (4, 4, 1)  # 2 + max(2, 1); n/a 1 capped
    assert i3.criteria[3].not_attainable and i3.criteria[3].lost
    i4 = items[4]
    assert (i4.max_points, i4.attainable, i4.light, i4.light_label) == (
        4, 2, Light.yellow, LABEL_DUE_SOON)
    assert [u.name for u in i4.criteria[1].units] == ["区卫健委"]
    assert i4.criteria[0].reason == "材料不全"
    assert [c.label for c in status.unowned_criteria] == ["5.1"]
    assert [u.name for u in items[6].units] == ["区市场监管局", "区住建局", "区卫健委"]
    assert [i.no for i in status.bonus_unclaimed] == [7]
    assert [i.no for i in status.overdue_items] == [2]
    assert [i.no for i in status.due_soon_items] == [4]
    # Verified ≤ claimed ≤ attainable ≤ max everywhere.
    for x in (*status.items, *status.categories, status.base, status.bonus):
        assert x.verified <= x.claimed <= x.attainable <= x.max_points


def test_assignments_tasks_and_lights(status: CampaignStatus) -> None:
    by = {(a.task_no, a.unit_name): a for a in status.assignments}
    assert set(by) == {(1, "区市场监管局"), (1, "区住建局"), (2, "区卫健委"), (3, "区市场监管局"),
                       (4, "区住建局")}  # the retired one is left out
    assert by[(1, "区市场监管局")].light == Light.red
    assert (by[(1, "区住建局")].light, by[(1, "区住建局")].light_label) == (
        Light.yellow, LABEL_LATE_REVIEW)
    assert by[(2, "区卫健委")].light_label == LABEL_DUE_SOON
    assert by[(2, "区卫健委")].working_days_left == 2
    assert by[(1, "区市场监管局")].days_left == -12
    assert by[(4, "区住建局")].light == Light.green
    assert [(a.task_no, a.unit_name) for a in status.overdue] == [(1, "区市场监管局")]
    assert [(a.task_no, a.unit_name) for a in status.due_soon] == [(2, "区卫健委")]
    assert [a.task_no for a in status.late_review] == [1]
    tasks = {t.no: t for t in status.tasks}
    assert (tasks[1].light, tasks[1].done) == (Light.red, False)
    assert [a.unit_name for a in tasks[1].late_units] == ["区市场监管局"]
    assert (tasks[4].light, tasks[4].done) == (Light.green, True)
    assert tasks[5].assignments == () and not tasks[5].done
    assert [t.no for t in status.overdue_tasks] == [1]


def test_gap_list(status: CampaignStatus) -> None:
    gaps = [(g.item_no, g.points, g.days_left) for g in status.gaps]
    # Ranked by points at stake, then days left (overdue first), then number.
    assert gaps == [(3, 3, 212), (2, 2, -12), (4, 2, 1), (1, 2, 121), (5, 1, 121)]
    assert [g.points for g in status.gaps] == sorted((g.points for g in status.gaps), reverse=True)
    g2 = next(g for g in status.gaps if g.item_no == 2)
    assert (g2.overdue, g2.lost_late, g2.open, g2.light) == (True, 2, 0, Light.red)
    g1 = next(g for g in status.gaps if g.item_no == 1)
    assert [c.no for c in g1.criteria] == [3, 4]
    assert g1.missing_evidence == (3, 4) and g1.item_evidence == 1
    assert [u.name for u in g1.units] == ["区市场监管局", "区住建局"]
    g4 = next(g for g in status.gaps if g.item_no == 4)
    assert [u.name for u in g4.units] == ["区市场监管局", "区卫健委"]
    assert [c.state for c in g4.criteria] == [AssessmentState.rejected, AssessmentState.none]
    assert next(g for g in status.gaps if g.item_no == 5).units == ()
    assert [(g.item_no, g.points) for g in status.bonus_gaps] == [(7, 3)]  # 6 is claimed to the cap


def test_phase_in_status(status: CampaignStatus) -> None:
    assert status.phase.current.no == 2
    m = status.phase.next_milestone
    assert (m.date, m.task_nos, m.item_nos) == (date(2021, 9, 2), (), (4,))


def test_unit_summaries(status: CampaignStatus) -> None:
    units = {u.name: u for u in status.units}
    office = units["区市场监管局"]
    assert (office.assignments, office.not_started, office.red, office.yellow) == (2, 2, 1, 0)
    assert office.is_lead
    housing = units["区住建局"]
    assert (housing.assignments, housing.submitted, housing.approved, housing.yellow) == (
        2, 1, 1, 1)
    # Office owes 1.3, 1.4, 3.1, 3.2, 4.1 and (a member unit) 7.1; its claim 1.2 waits.
    assert (office.criteria_open, office.criteria_pending) == (6, 1)
    assert office.points_at_stake == 2 + 3 + 2 + 3
    health = units["区卫健委"]
    assert (health.criteria_open, health.criteria_pending) == (3, 1)  # 2.1, 4.2, 7.1; 6.1
    assert units["区外单位"].assignments == 0


def test_drill_downs(status: CampaignStatus, built_world: World) -> None:
    world = built_world
    uv = unit_view(status, world.health.id)
    assert uv.unit.name == "区卫健委"
    assert [a.task_no for a in uv.assignments] == [2]
    assert [c.label for c in uv.criteria] == ["2.1", "4.2", "6.1", "6.2", "7.1"]
    assert [g.item_no for g in uv.gaps] == [2, 4, 7]
    iv = item_view(status, 1)
    assert iv.item.no == 1 and iv.gap.item_no == 1
    assert item_view(status, 6).gap is None
    tv = task_view(status, 1)
    assert [a.unit_name for a in tv.task.assignments] == ["区市场监管局", "区住建局"]
    with pytest.raises(NotFound):
        unit_view(status, 999_999)
    with pytest.raises(NotFound):
        item_view(status, 99)
    with pytest.raises(NotFound):
        task_view(status, 99)


def test_unknown_campaign(session: Session) -> None:
    with pytest.raises(NotFound):
        campaign_status(session=session, campaign_id=12345, today=TODAY)


def test_status_reflects_uncommitted_changes_in_the_session(session: Session,
                                                            world: World) -> None:
    world.b.assess(world.i2.criteria[0], "claimed", world.health)
    st_ = campaign_status(session=session, campaign_id=world.cid, today=TODAY)
    assert next(i for i in st_.items if i.no == 2).light == Light.yellow


# ================================================================== query count


def _grow(b: CampaignBuilder, n: int) -> None:
    units = [b.unit(f"单位{b.cid}-{k}") for k in range(n)]
    cat = b.category(9, "大类", stated_points=None)
    for k in range(n):
        t = b.task(100 + k, units=units[: 1 + k % 3], deadline=date(2021, 8, 1) + timedelta(k))
        b.state(t.assignments[0], A.in_progress, percent=k % 100)
        it = b.item(100 + k, cat, max_points=3, criteria=[1, (1, "t"), (2, "t")],
                    units=units[k % n: k % n + 2], criterion_units={1: units[:1]})
        b.assess(it.criteria[k % 3], ["claimed", "verified", "rejected"][k % 3], units[0])
        b.evidence(unit=units[0], criterion=it.criteria[0])
        b.outbox(OutboxState.failed)


def _count(engine: Engine, campaign_id: int) -> tuple[int, int]:
    with Session(engine) as s, count_queries(engine) as q:
        campaign_status(session=s, campaign_id=campaign_id, today=TODAY)
    selects = sum(1 for x in q.statements if x.lstrip().upper().startswith("SELECT"))
    return q.count, selects


def test_query_count_is_fixed_whatever_the_campaign_size(engine: Engine, session: Session) -> None:
    small = CampaignBuilder(session, slug="small")
    small.unit("一个单位")
    big = CampaignBuilder(session, slug="big")
    big.phases_2021()
    _grow(big, 40)
    session.commit()
    n_small, selects_small = _count(engine, small.cid)
    n_big, selects_big = _count(engine, big.cid)
    assert n_small == n_big
    assert selects_small == selects_big == 14  # one per table (plus 2 aggregates)


def test_province_overview(engine: Engine, session: Session) -> None:
    w = World(session)
    other = CampaignBuilder(session, slug="other", name="另一区", district="另一区")
    other.phases_2021()
    _grow(other, 10)
    dead = CampaignBuilder(session, slug="dead", name="已停用")
    dead.campaign.active = False
    session.add(dead.campaign)
    session.commit()
    with Session(engine) as s, count_queries(engine) as q:
        lines = province_overview(session=s, today=TODAY)
    assert [line.campaign.slug for line in lines] == ["other", "test"]
    line = next(x for x in lines if x.campaign.slug == "test")
    assert (line.base.verified, line.base.claimed, line.overdue_assignments) == (2, 4, 1)
    assert (line.overdue_tasks, line.overdue_items, line.tasks_done, line.tasks_total) == (1, 1, 1, 5)
    assert line.failed_outbox == 2 and line.phase.current.no == 2
    assert lines[0].overdue_assignments == 19  # every assignment of _grow(10) is past 9/1
    one = q.count
    for k in range(3):
        extra = CampaignBuilder(session, slug=f"more{k}", name=f"区{k}", district=f"区{k}")
        _grow(extra, 5)
    session.commit()
    with Session(engine) as s, count_queries(engine) as q:
        assert len(province_overview(session=s, today=TODAY)) == 5
    assert q.count == one
    assert w.cid


# ================================================ the overview agrees with /status


def _line_of(st_: CampaignStatus) -> OverviewLine:
    """What the overview must say of a campaign: read off its full status."""
    return OverviewLine(
        campaign=st_.campaign, base=st_.base, bonus=st_.bonus,
        overdue_assignments=len(st_.overdue), overdue_tasks=len(st_.overdue_tasks),
        overdue_items=len(st_.overdue_items), tasks_done=sum(1 for t in st_.tasks if t.done),
        tasks_total=len(st_.tasks), phase=st_.phase, failed_outbox=st_.failed_outbox,
    )


def _stir(session: Session, cid: int, seed: int) -> None:
    """Put an imported plan in a random but plausible state (no rules, no audit)."""
    rng = random.Random(seed)
    units = list(by_name(session, cid).values())
    for a in session.exec(select(Assignment).where(Assignment.campaign_id == cid)):
        a.state = rng.choice(list(AssignmentState))
        a.retired = rng.random() < 0.05
        session.add(a)
    for t in session.exec(select(Task).where(Task.campaign_id == cid)):
        if rng.random() < 0.2:  # extended by the coordinator
            t.deadline = t.deadline + timedelta(days=rng.randint(1, 90))
            session.add(t)
    for c in session.exec(select(Criterion).where(Criterion.campaign_id == cid)):
        r = rng.random()
        if r < 0.6:
            state = rng.choice([AssessmentState.claimed, AssessmentState.claimed,
                                AssessmentState.verified, AssessmentState.rejected,
                                AssessmentState.none])
            session.add(Assessment(campaign_id=cid, criterion_id=c.id, state=state,
                                   unit_id=rng.choice(units).id, claimed_at=NOW))
        if r > 0.3:
            session.add(Evidence(
                campaign_id=cid, criterion_id=c.id, item_id=c.item_id,
                sha256=f"{rng.getrandbits(256):064x}", size=1, file_name="材料.pdf",
                state=rng.choice([EvidenceState.submitted, EvidenceState.withdrawn]),
                created_at=NOW))
    for k in range(rng.randint(1, 4)):
        session.add(Outbox(campaign_id=cid, idem_key=f"{cid}|{seed}|{k}", telegram_chat_id=-100,
                           kind="nudge", due_at=NOW, created_at=NOW,
                           state=rng.choice([OutboxState.failed, OutboxState.sent])))
    session.flush()


def test_overview_lines_equal_what_the_status_gives(engine: Engine, session: Session) -> None:
    World(session)
    grown = CampaignBuilder(session, slug="grown", name="增长区", district="增长区")
    grown.phases_2021()
    _grow(grown, 12)
    # The real plan moved so that 2021-09-01 falls in phase 1, 2, 3, before and after it.
    for k, start in enumerate([date(2021, 8, 25), date(2021, 7, 1), date(2021, 2, 1),
                               date(2021, 12, 1), date(2020, 5, 1)]):
        _stir(session, seeded_campaign(session, shift_to=start, slug=f"plan{k}"), seed=k)
    gap = CampaignBuilder(session, slug="gap", name="间隔区", district="间隔区")
    gap.phase(1, "一", date(2021, 7, 1), date(2021, 8, 15))
    gap.phase(2, "二", date(2021, 10, 1), date(2021, 12, 31))
    _grow(gap, 4)  # no bonus category
    bare = CampaignBuilder(session, slug="bare", name="空白区", district="空白区")
    bare.unit("一个单位")  # no phases, tasks or items
    dead = CampaignBuilder(session, slug="dead", name="已停用", district="已停用")
    dead.phases_2021()
    _grow(dead, 3)
    dead.campaign.active = False
    session.add(dead.campaign)
    session.commit()

    seen: dict[str, set[object]] = {"phase": set(), "facts": set()}
    with Session(engine) as s:
        for today in (TODAY, date(2021, 7, 10), date(2021, 12, 31), date(2022, 3, 20)):
            for yellow in (0, 5, 15):
                lines = province_overview(session=s, today=today, yellow_working_days=yellow)
                assert "dead" not in {line.campaign.slug for line in lines}
                assert len(lines) == 9
                assert lines == [_line_of(campaign_status(
                    session=s, campaign_id=line.campaign.id, today=today,
                    yellow_working_days=yellow)) for line in lines]
                for line in lines:
                    seen["phase"].add(line.phase.state)
                    seen["facts"] |= {
                        name for name, there in [
                            ("overdue", line.overdue_assignments > 0),
                            ("overdue task", line.overdue_tasks > 0),
                            ("overdue item", line.overdue_items > 0),
                            ("done", 0 < line.tasks_done < line.tasks_total),
                            ("pending", line.base.claimed > line.base.verified > 0),
                            ("bonus", line.bonus.claimed > 0),
                            ("no bonus", line.bonus == ZERO),
                            ("failed", line.failed_outbox > 0),
                            ("milestone", line.phase.next_milestone is not None
                             and bool(line.phase.next_milestone.task_nos)),
                        ] if there}
    # The data really was varied.
    assert seen["phase"] == {"none", "before", "during", "between", "after"}
    assert seen["facts"] == {"overdue", "overdue task", "overdue item", "done", "pending",
                             "bonus", "no bonus", "failed", "milestone"}


def test_status_reads_enum_members_and_aware_timestamps(session: Session, world: World) -> None:
    world.b.state(world.t1.assignments[0], A.submitted)
    world.t1.assignments[0].submitted_at = NOW
    session.add(world.t1.assignments[0])
    session.commit()
    st_ = campaign_status(session=session, campaign_id=world.cid, today=TODAY)
    # StrEnum members equal their strings: check the types, not only the values.
    assert {type(a.state) for a in st_.assignments} == {AssignmentState}
    assert {type(c.state) for c in st_.criteria} == {AssessmentState}
    submitted = next(a for a in st_.assignments if a.assignment_id == world.t1.assignments[0].id)
    assert submitted.submitted_at == NOW and submitted.submitted_at.tzinfo is not None


def test_status_sees_changes_not_yet_flushed(session: Session, world: World) -> None:
    a = session.exec(select(Assessment).where(
        Assessment.criterion_id == world.i6.criteria[0].id)).one()
    a.state = AssessmentState.verified  # not flushed: the status query flushes it
    st_ = campaign_status(session=session, campaign_id=world.cid, today=TODAY)
    assert st_.bonus.verified == 3
    [line] = [x for x in province_overview(session=session, today=TODAY)
              if x.campaign.id == world.cid]
    assert line.bonus.verified == 3


# ============================================================= the real plan


def test_seeded_campaign_totals_as_the_document_states(session: Session) -> None:
    cid = seeded_campaign(session)
    session.commit()
    st_ = campaign_status(session=session, campaign_id=cid, today=TODAY)
    cats = {c.name: c for c in st_.categories}
    assert {n: c.attainable for n, c in cats.items()} == {
        "质量发展促进机制": 22, "质量技术": 18, "质量工作成效": 44, "质量安全水平": 16, "加分项": 8}
    assert {n: c.max_points for n, c in cats.items()} == {
        "质量发展促进机制": 22, "质量技术": 18, "质量工作成效": 44, "质量安全水平": 16, "加分项": 10}
    assert cats["质量工作成效"].raw_points == 46
    assert (st_.base.attainable, st_.base.max_points) == (100, 100)
    assert (st_.bonus.attainable, st_.bonus.max_points) == (8, 10)
    items = {i.no: i for i in st_.items}
    assert items[19].attainable == 2 and items[25].attainable == 3 and items[28].attainable == 3
    assert items[10].lost == 2 and items[10].score.lost_not_attainable == 2
    assert items[26].deadline == date(2022, 4, 1) and items[26].deadline_note == "全过程"
    # 9/1: tasks 1, 4 (7/10) and 2 (8/30) are overdue; items 2 and 4 (7/10) lost their points.
    assert {a.task_no for a in st_.overdue} == {1, 2, 4}
    assert [i.no for i in st_.overdue_items] == [2, 4]
    assert st_.base.reachable == 100 - 2 - 2 - 2
    assert st_.phase.current.no == 2
    assert [c.label for c in st_.unowned_criteria] == ["10.1"]
    units = by_name(session, cid)
    market = next(u for u in st_.units if u.unit_id == units["区市场监管局"].id)
    assert market.is_lead and market.points_at_stake > 0
    assert st_.gaps[0].item_no == 14  # 8 points, the biggest


def _memory_rows(doc: SeedDoc, states: list[AssessmentState]) -> _Rows:
    """The seed's score table as unsaved rows with made-up ids (for pure property tests)."""
    rows = _Rows(campaign=Campaign(id=1, slug="mem", name="内存", district="区"))
    rows.phases = [Phase(id=n, campaign_id=1, no=n, name=name, start_date=s, end_date=e)
                   for n, name, s, e in PHASES_2021]
    cats = {}
    for k, c in enumerate(doc.score_categories, start=1):
        cats[c.name] = ScoreCategory(id=k, campaign_id=1, no=c.no, name=c.name,
                                     stated_points=c.stated_points, is_bonus=c.is_bonus)
    rows.categories = list(cats.values())
    cid = 0
    it_states = iter(states)
    for it in doc.score_items:
        rows.items.append(ScoreItem(id=it.no, campaign_id=1, category_id=cats[it.category].id,
                                    no=it.no, max_points=it.max_points, deadline=it.deadline))
        for c in it.criteria:
            cid += 1
            rows.criteria.append(Criterion(id=cid, campaign_id=1, item_id=it.no, no=c.no,
                                           text=c.text, points=c.points, tier_group=c.tier_group,
                                           not_attainable=c.not_attainable))
            state = next(it_states, AssessmentState.none)
            if state != AssessmentState.none:
                rows.assessments[cid] = Assessment(id=cid, campaign_id=1, criterion_id=cid,
                                                   state=state)
    return rows


@pytest.fixture(scope="module")
def doc() -> SeedDoc:
    return load_seed(SEED_PATH)


N_CRITERIA = 70


@settings(max_examples=40, deadline=None)
@given(st.lists(st.sampled_from(list(AssessmentState)), min_size=N_CRITERIA,
                max_size=N_CRITERIA),
       st.dates(min_value=date(2021, 6, 1), max_value=date(2022, 6, 1)),
       st.data())
def test_status_totals_never_exceed_the_table_and_verifying_never_lowers(
    doc: SeedDoc, states: list[AssessmentState], today: date, data: st.DataObject,
) -> None:
    st_ = _compute(_memory_rows(doc, states), today, 5)
    for x in (*st_.items, *st_.categories, st_.base, st_.bonus):
        assert x.verified <= x.claimed <= x.reachable <= x.attainable <= x.max_points
    assert st_.base.claimed <= 100 and st_.bonus.claimed <= 10 and st_.bonus.attainable == 8
    assert st_.base.attainable == 100
    for item in st_.items:
        # The item score is the rule applied to the criteria as reported.
        assert item.score == score_item(item.max_points, [
            _input(c) for c in item.criteria], overdue=item.overdue)
    i = data.draw(st.integers(0, N_CRITERIA - 1))
    more = list(states)
    more[i] = AssessmentState.verified
    after = _compute(_memory_rows(doc, more), today, 5)
    assert after.base.verified >= st_.base.verified
    assert after.bonus.verified >= st_.bonus.verified
    assert after.base.claimed >= st_.base.claimed


def _input(c):  # noqa: ANN001, ANN202
    from models.scoring import CriterionInput

    return CriterionInput(c.points, c.tier_group, c.state, c.not_attainable)


def test_seed_has_the_criteria_count_the_property_test_assumes(doc: SeedDoc) -> None:
    assert sum(len(it.criteria) for it in doc.score_items) <= N_CRITERIA


def _with_tasks(rows: _Rows, plan: list[list[tuple[AssignmentState, int]]], start: date) -> _Rows:
    """Add tasks to in-memory rows: each a list of (state, deadline offset) per unit."""
    rows.units = [Unit(id=k, campaign_id=1, name=f"单位{k}", sort_order=k) for k in range(1, 4)]
    aid = 0
    for no, assignments in enumerate(plan, start=1):
        deadline = start + timedelta(days=assignments[0][1] if assignments else no)
        rows.tasks.append(Task(id=no, campaign_id=1, group_id=1, no=no, title=f"任务{no}",
                               deadline=deadline, planned_deadline=deadline))
        for unit_id, (state, _) in enumerate(assignments, start=1):
            aid += 1
            rows.assignments.append(Assignment(id=aid, campaign_id=1, task_id=no,
                                               unit_id=unit_id, state=state))
    return rows


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(list(AssessmentState)), min_size=N_CRITERIA,
                max_size=N_CRITERIA),
       st.lists(st.lists(st.tuples(st.sampled_from(list(AssignmentState)),
                                   st.integers(-60, 400)), max_size=3), max_size=12),
       st.dates(min_value=date(2021, 6, 1), max_value=date(2022, 6, 1)),
       st.integers(0, 12))
def test_overview_line_is_the_status_line(
    doc: SeedDoc, states: list[AssessmentState], plan: list[list[tuple[AssignmentState, int]]],
    today: date, yellow: int,
) -> None:
    rows = _with_tasks(_memory_rows(doc, states), plan, date(2021, 7, 1))
    assert _overview_line(rows, today, yellow) == _line_of(_compute(rows, today, yellow))


def test_status_names_the_years_of_the_plan_without_an_official_calendar(
    session: Session, tmp_path: Path
) -> None:
    from models import calendar

    old = seeded_campaign(session, slug="old")
    new = seeded_campaign(session, shift_to=date(2026, 12, 1), slug="new")
    session.flush()
    today = date(2026, 12, 5)
    st_new = campaign_status(session=session, campaign_id=new, today=today)
    last = max([p.end_date for p in st_new.phase.phases] + [t.deadline for t in st_new.tasks])
    assert last.year >= 2027
    assert st_new.calendar_gaps == tuple(range(2027, last.year + 1))
    assert campaign_status(session=session, campaign_id=old, today=today).calendar_gaps == ()
    # An operator file for each of those years settles it.
    files = []
    for year in st_new.calendar_gaps:
        f = tmp_path / f"{year}.toml"
        f.write_text(f'year = {year}\nnotice = "测试"\nholidays = ["{year}-01-01"]\n', encoding="utf-8")
        files.append(f)
    calendar.configure(files, shipped_dir=None)
    assert campaign_status(session=session, campaign_id=new, today=today).calendar_gaps == ()
