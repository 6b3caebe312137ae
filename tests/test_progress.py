"""Progress rules: the assignment and assessment state machines, audit, versions, locking."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel, col, select

from infra.db import make_engine, transaction
from models.audit import Actor
from models.errors import Conflict, DomainError, InvalidInput, NotFound, PermissionDenied
from models.owners import responsible_unit_ids
from models.progress import (
    approve_assignment,
    claim_criterion,
    reject_criterion,
    return_assignment,
    set_progress,
    submit_assignment,
    task_done,
    verify_criterion,
)
from models.tables import (
    Assessment,
    AssessmentState,
    Assignment,
    AssignmentState,
    AuditLog,
)
from tests.dbutil import fresh_database_url
from tests.factories import CampaignBuilder

NOW = datetime(2021, 9, 1, 2, 0, tzinfo=UTC)
LIAISON = Actor(kind="telegram", member_id=None, telegram_id=111)
COORD = Actor(kind="telegram", member_id=None, telegram_id=222)


class World:
    def __init__(self, session: Session) -> None:
        b = self.b = CampaignBuilder(session, slug=f"p{next(_slugs)}")
        self.office, self.housing, self.health = b.units("区市场监管局", "区住建局", "区卫健委")
        self.outsider = b.unit("区外单位", is_member=False)
        self.task = b.task(1, units=[self.office, self.housing], deadline=date(2021, 12, 31))
        self.a, self.b2 = self.task.assignments
        cat = b.category(1, "质量安全水平", stated_points=16)
        # Item 1: criterion 1 owed by 区卫健委 alone, criterion 2 by the item's units.
        self.item = b.item(1, cat, max_points=3, criteria=[1, 2], units=[self.office, self.housing],
                           criterion_units={1: [self.health]})
        self.c1, self.c2 = self.item.criteria
        # Item 2: every member unit.
        self.all = b.item(2, cat, max_points=2, criteria=[2], all_members=True)
        session.commit()
        self.session = session


# One database for the module (creating one per test is slow on PostgreSQL); each
# test gets a campaign of its own in it and only looks at that campaign's rows.
_slugs = itertools.count(1)
_current: list[int] = []


@pytest.fixture(scope="module")
def _module_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    with fresh_database_url(tmp_path_factory.mktemp("progress")) as url:
        eng = make_engine(url)
        SQLModel.metadata.create_all(eng)
        try:
            yield eng
        finally:
            eng.dispose()


@pytest.fixture
def engine(_module_engine: Engine) -> Engine:
    return _module_engine


@pytest.fixture
def w(session: Session) -> Iterator[World]:
    world = World(session)
    _current[:] = [world.b.cid]
    yield world
    _current.clear()


def audits(session: Session, action: str | None = None) -> list[AuditLog]:
    q = select(AuditLog).where(AuditLog.campaign_id == _current[0]).order_by(col(AuditLog.id))
    if action:
        q = q.where(AuditLog.action == action)
    return list(session.exec(q))


# ----------------------------------------------------------------- assignments


def test_full_assignment_cycle_with_return(w: World) -> None:
    s = w.session
    a = set_progress(session=s, assignment_id=w.a.id, percent=30, note="已起草", actor=LIAISON,
                     now=NOW)
    assert (a.state, a.percent, a.note, a.version) == (AssignmentState.in_progress, 30, "已起草", 1)
    a = submit_assignment(session=s, assignment_id=w.a.id, actor=LIAISON, now=NOW)
    assert (a.state, a.percent, a.submitted_at) == (AssignmentState.submitted, 100, NOW)
    a = return_assignment(session=s, assignment_id=w.a.id, reason="缺少会议纪要", actor=COORD,
                          now=NOW + timedelta(hours=1))
    assert (a.state, a.return_reason) == (AssignmentState.in_progress, "缺少会议纪要")
    # The reason stays while the unit reworks ...
    a = set_progress(session=s, assignment_id=w.a.id, percent=90, note=None, actor=LIAISON,
                     now=NOW)
    assert a.return_reason == "缺少会议纪要" and a.note == "已起草"
    # ... and goes with the next submission.
    a = submit_assignment(session=s, assignment_id=w.a.id, actor=LIAISON, now=NOW)
    assert a.return_reason is None
    a = approve_assignment(session=s, assignment_id=w.a.id, actor=COORD, now=NOW)
    assert (a.state, a.approved_at, a.version) == (AssignmentState.approved, NOW, 6)
    s.commit()
    rows = audits(s)
    assert [r.action for r in rows] == [
        "assignment.progress", "assignment.submit", "assignment.return", "assignment.progress",
        "assignment.submit", "assignment.approve"]
    assert all(r.entity == "assignment" and r.entity_id == w.a.id for r in rows)
    assert rows[0].before == {"state": "not_started", "percent": 0, "note": None,
                              "return_reason": None, "version": 0}
    assert rows[0].after["state"] == "in_progress" and rows[0].after["version"] == 1
    assert rows[2].note == "缺少会议纪要" and rows[2].actor_telegram_id == 222
    # Each audit row's "before" is the previous one's "after": nothing happened unrecorded.
    for prev, nxt in zip(rows, rows[1:], strict=False):
        assert nxt.before == prev.after


def test_submit_straight_from_not_started(w: World) -> None:
    a = submit_assignment(session=w.session, assignment_id=w.a.id, actor=LIAISON, now=NOW,
                          note="一次完成")
    assert a.state == AssignmentState.submitted and a.note == "一次完成"


@pytest.mark.parametrize("percent", [-1, 101, 1000])
def test_percent_outside_0_100_is_refused(w: World, percent: int) -> None:
    with pytest.raises(InvalidInput, match="0%到100%"):
        set_progress(session=w.session, assignment_id=w.a.id, percent=percent, note=None,
                     actor=LIAISON, now=NOW)
    assert w.session.get(Assignment, w.a.id).version == 0
    assert audits(w.session) == []


def test_progress_needs_percent_or_note(w: World) -> None:
    with pytest.raises(InvalidInput, match="进度"):
        set_progress(session=w.session, assignment_id=w.a.id, percent=None, note="   ",
                     actor=LIAISON, now=NOW)
    with pytest.raises(InvalidInput):
        set_progress(session=w.session, assignment_id=w.a.id, percent=True, note=None,  # type: ignore[arg-type]
                     actor=LIAISON, now=NOW)
    a = set_progress(session=w.session, assignment_id=w.a.id, percent=None, note="只写说明",
                     actor=LIAISON, now=NOW)
    assert (a.percent, a.note, a.state) == (0, "只写说明", AssignmentState.in_progress)
    for pct in (0, 100):
        assert set_progress(session=w.session, assignment_id=w.a.id, percent=pct, note=None,
                            actor=LIAISON, now=NOW).percent == pct


def test_illegal_assignment_transitions(w: World) -> None:
    s = w.session
    with pytest.raises(Conflict, match="只有已提交"):
        approve_assignment(session=s, assignment_id=w.a.id, actor=COORD, now=NOW)
    with pytest.raises(Conflict, match="只有已提交"):
        return_assignment(session=s, assignment_id=w.a.id, reason="x", actor=COORD, now=NOW)
    submit_assignment(session=s, assignment_id=w.a.id, actor=LIAISON, now=NOW)
    with pytest.raises(Conflict, match="等待审核"):
        submit_assignment(session=s, assignment_id=w.a.id, actor=LIAISON, now=NOW)
    with pytest.raises(Conflict, match="等待审核"):
        set_progress(session=s, assignment_id=w.a.id, percent=50, note=None, actor=LIAISON,
                     now=NOW)
    with pytest.raises(InvalidInput, match="退回原因"):
        return_assignment(session=s, assignment_id=w.a.id, reason="  ", actor=COORD, now=NOW)
    approve_assignment(session=s, assignment_id=w.a.id, actor=COORD, now=NOW)
    with pytest.raises(Conflict, match="已审核通过"):
        set_progress(session=s, assignment_id=w.a.id, percent=50, note=None, actor=LIAISON,
                     now=NOW)
    with pytest.raises(Conflict, match="已审核通过"):
        submit_assignment(session=s, assignment_id=w.a.id, actor=LIAISON, now=NOW)
    with pytest.raises(Conflict):
        approve_assignment(session=s, assignment_id=w.a.id, actor=COORD, now=NOW)
    with pytest.raises(NotFound):
        set_progress(session=s, assignment_id=999_999, percent=1, note=None, actor=LIAISON,
                     now=NOW)
    # Messages are Chinese and name the task and the unit.
    with pytest.raises(DomainError) as err:
        submit_assignment(session=s, assignment_id=w.a.id, actor=LIAISON, now=NOW)
    assert "任务1（区市场监管局）" in str(err.value)


def test_retired_assignment_refuses(w: World) -> None:
    w.a.retired = True
    w.session.add(w.a)
    w.session.commit()
    with pytest.raises(Conflict, match="不再由该单位承担"):
        set_progress(session=w.session, assignment_id=w.a.id, percent=10, note=None,
                     actor=LIAISON, now=NOW)


def test_stale_expected_version_is_a_conflict(w: World) -> None:
    s = w.session
    set_progress(session=s, assignment_id=w.a.id, percent=10, note=None, actor=LIAISON, now=NOW,
                 expected_version=0)
    with pytest.raises(Conflict, match="情况已有变化"):
        set_progress(session=s, assignment_id=w.a.id, percent=20, note=None, actor=LIAISON,
                     now=NOW, expected_version=0)
    assert s.get(Assignment, w.a.id).percent == 10


def test_naive_now_is_a_programming_error(w: World) -> None:
    with pytest.raises(ValueError):
        set_progress(session=w.session, assignment_id=w.a.id, percent=1, note=None,
                     actor=LIAISON, now=datetime(2021, 9, 1))


def test_task_done_when_every_active_unit_is_approved(w: World) -> None:
    s = w.session
    tid = w.task.id
    assert not task_done(session=s, task_id=tid)
    for a in (w.a, w.b2):
        submit_assignment(session=s, assignment_id=a.id, actor=LIAISON, now=NOW)
    approve_assignment(session=s, assignment_id=w.a.id, actor=COORD, now=NOW)
    assert not task_done(session=s, task_id=tid)
    # A retired unit no longer counts.
    w.b2.retired = True
    s.add(w.b2)
    s.flush()
    assert task_done(session=s, task_id=tid)
    w.a.retired = True
    s.add(w.a)
    s.flush()
    assert not task_done(session=s, task_id=tid)  # nobody carries it


def test_nothing_is_committed_by_the_rules(engine: Engine, w: World) -> None:
    aid = w.a.id
    set_progress(session=w.session, assignment_id=aid, percent=40, note="未提交事务",
                 actor=LIAISON, now=NOW)
    w.session.rollback()
    with Session(engine) as other:
        assert other.get(Assignment, aid).percent == 0
        assert audits(other) == []


# ------------------------------------------------------------------ assessments


def test_claim_verify_and_the_audit(w: World) -> None:
    s = w.session
    a = claim_criterion(session=s, criterion_id=w.c2.id, unit_id=w.housing.id, actor=LIAISON,
                        now=NOW, note="见验收报告")
    assert (a.state, a.unit_id, a.claim_note, a.version) == (
        AssessmentState.claimed, w.housing.id, "见验收报告", 1)
    a = verify_criterion(session=s, criterion_id=w.c2.id, actor=COORD, now=NOW,
                         expected_version=1)
    assert (a.state, a.reviewed_at, a.version) == (AssessmentState.verified, NOW, 2)
    rows = audits(s)
    assert [r.action for r in rows] == ["criterion.claim", "criterion.verify"]
    assert rows[0].before is None and rows[0].after["state"] == "claimed"
    assert rows[1].before == rows[0].after and rows[1].entity_id == w.c2.id
    with pytest.raises(Conflict, match="已确认达标"):
        claim_criterion(session=s, criterion_id=w.c2.id, unit_id=w.housing.id, actor=LIAISON,
                        now=NOW)


def test_reject_then_claim_again(w: World) -> None:
    s = w.session
    claim_criterion(session=s, criterion_id=w.c2.id, unit_id=w.office.id, actor=LIAISON, now=NOW)
    with pytest.raises(Conflict, match="等待协调员审核"):
        claim_criterion(session=s, criterion_id=w.c2.id, unit_id=w.office.id, actor=LIAISON,
                        now=NOW)
    with pytest.raises(InvalidInput):
        reject_criterion(session=s, criterion_id=w.c2.id, reason="", actor=COORD, now=NOW)
    a = reject_criterion(session=s, criterion_id=w.c2.id, reason="材料不全", actor=COORD, now=NOW)
    assert (a.state, a.reason) == (AssessmentState.rejected, "材料不全")
    with pytest.raises(Conflict, match="只有已申报"):
        verify_criterion(session=s, criterion_id=w.c2.id, actor=COORD, now=NOW)
    with pytest.raises(Conflict, match="只有已申报"):
        reject_criterion(session=s, criterion_id=w.c2.id, reason="again", actor=COORD, now=NOW)
    a = claim_criterion(session=s, criterion_id=w.c2.id, unit_id=w.housing.id, actor=LIAISON,
                        now=NOW, note="已补充")
    assert (a.state, a.reason, a.unit_id, a.reviewed_at) == (
        AssessmentState.claimed, None, w.housing.id, None)
    assert s.exec(select(Assessment).where(Assessment.criterion_id == w.c2.id)).all() == [a]


def test_verify_or_reject_without_a_claim(w: World) -> None:
    with pytest.raises(Conflict, match="未申报"):
        verify_criterion(session=w.session, criterion_id=w.c1.id, actor=COORD, now=NOW)
    with pytest.raises(NotFound):
        verify_criterion(session=w.session, criterion_id=999_999, actor=COORD, now=NOW)


def test_only_a_responsible_unit_may_claim(w: World) -> None:
    s = w.session
    # Criterion 1 has its own unit (区卫健委): the item's units do not owe it.
    assert responsible_unit_ids(s, w.c1, w.item.item) == [w.health.id]
    assert sorted(responsible_unit_ids(s, w.c2, w.item.item)) == sorted([w.office.id, w.housing.id])
    with pytest.raises(PermissionDenied, match="区市场监管局不是细则 1.1的责任单位"):
        claim_criterion(session=s, criterion_id=w.c1.id, unit_id=w.office.id, actor=LIAISON,
                        now=NOW)
    claim_criterion(session=s, criterion_id=w.c1.id, unit_id=w.health.id, actor=LIAISON, now=NOW)
    with pytest.raises(PermissionDenied):
        claim_criterion(session=s, criterion_id=w.c2.id, unit_id=w.health.id, actor=LIAISON,
                        now=NOW)
    # An item of all member units: any member, not a non-member.
    crit = w.all.criteria[0]
    assert sorted(responsible_unit_ids(s, crit, w.all.item)) == sorted([w.office.id, w.housing.id, w.health.id])
    with pytest.raises(PermissionDenied):
        claim_criterion(session=s, criterion_id=crit.id, unit_id=w.outsider.id, actor=LIAISON,
                        now=NOW)
    claim_criterion(session=s, criterion_id=crit.id, unit_id=w.health.id, actor=LIAISON, now=NOW)
    with pytest.raises(NotFound):
        claim_criterion(session=s, criterion_id=crit.id, unit_id=999_999, actor=LIAISON, now=NOW)


def test_claim_with_stale_version(w: World) -> None:
    s = w.session
    with pytest.raises(Conflict):
        claim_criterion(session=s, criterion_id=w.c2.id, unit_id=w.office.id, actor=LIAISON,
                        now=NOW, expected_version=3)
    claim_criterion(session=s, criterion_id=w.c2.id, unit_id=w.office.id, actor=LIAISON,
                    now=NOW, expected_version=0)
    with pytest.raises(Conflict, match="情况已有变化"):
        verify_criterion(session=s, criterion_id=w.c2.id, actor=COORD, now=NOW,
                         expected_version=0)


# ------------------------------------------------------------------ concurrency


def _run_two(engine: Engine, first, second) -> list[BaseException]:  # noqa: ANN001
    """Run ``first`` and ``second`` in their own transactions, overlapping.

    ``first`` takes its lock, then holds the transaction open while ``second``
    starts (and must wait for it); ``first`` commits after a pause.
    """
    locked = threading.Event()
    errors: list[BaseException] = []

    def one() -> None:
        try:
            with transaction(engine) as s:
                first(s)
                locked.set()
                time.sleep(0.4)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)
            locked.set()

    def two() -> None:
        try:
            locked.wait(10)
            with transaction(engine) as s:
                second(s)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=one), threading.Thread(target=two)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return errors


def test_two_concurrent_updates_of_one_assignment_are_both_kept(engine: Engine, w: World) -> None:
    aid = w.a.id

    def first(s: Session) -> None:
        set_progress(session=s, assignment_id=aid, percent=40, note="甲", actor=LIAISON, now=NOW)

    def second(s: Session) -> None:
        set_progress(session=s, assignment_id=aid, percent=None, note="乙", actor=LIAISON,
                     now=NOW)

    assert _run_two(engine, first, second) == []
    with Session(engine) as s:
        a = s.get(Assignment, aid)
        # The second saw the first: its percent survived, both audit rows chain.
        assert (a.percent, a.note, a.version) == (40, "乙", 2)
        rows = audits(s)
        assert [r.after["version"] for r in rows] == [1, 2]
        assert rows[1].before == rows[0].after


def test_concurrent_approve_and_return_one_wins(engine: Engine, w: World) -> None:
    aid = w.a.id
    with transaction(engine) as s:
        submit_assignment(session=s, assignment_id=aid, actor=LIAISON, now=NOW)

    def first(s: Session) -> None:
        approve_assignment(session=s, assignment_id=aid, actor=COORD, now=NOW)

    def second(s: Session) -> None:
        return_assignment(session=s, assignment_id=aid, reason="再看看", actor=COORD, now=NOW)

    errors = _run_two(engine, first, second)
    assert len(errors) == 1 and isinstance(errors[0], Conflict)
    with Session(engine) as s:
        assert s.get(Assignment, aid).state == AssignmentState.approved


def test_concurrent_first_claims_make_one_assessment(engine: Engine, w: World) -> None:
    cid = w.c2.id

    def first(s: Session) -> None:
        claim_criterion(session=s, criterion_id=cid, unit_id=w.office.id, actor=LIAISON, now=NOW)

    def second(s: Session) -> None:
        claim_criterion(session=s, criterion_id=cid, unit_id=w.housing.id, actor=LIAISON,
                        now=NOW)

    errors = _run_two(engine, first, second)
    assert len(errors) == 1 and isinstance(errors[0], Conflict)
    with Session(engine) as s:
        rows = s.exec(select(Assessment).where(Assessment.criterion_id == cid)).all()
        assert [(r.state, r.unit_id) for r in rows] == [(AssessmentState.claimed, w.office.id)]
