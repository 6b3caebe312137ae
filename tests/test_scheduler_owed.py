"""One home for "is this nudge owed?": the planner and the claim's verdict agree.

A row the planner planned is cancelled (or failed) at claim time exactly when the
planner, asked again about the changed world at the same instant, would not plan
it any more. Pure: the rows are built in memory, no database.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from infra.config import SchedulerConfig
from models.tables import (
    Assignment,
    AssignmentState,
    Campaign,
    Chat,
    ChatKind,
    Member,
    Outbox,
    OutboxState,
    Phase,
    Role,
    Task,
    Unit,
)
from scheduler.plan import Kind, PlanInput, Planned, not_owed, plan

TZ = ZoneInfo("Asia/Shanghai")
NOW = datetime(2025, 11, 25, 9, 30, tzinfo=TZ).astimezone(UTC)  # a Tuesday
TODAY = date(2025, 11, 25)
CONFIG = SchedulerConfig(catchup_days=30, offsets_working_days=(7, 3, 1, 0),
                         escalate_after_working_days=2)
GROUP = -100
COORDINATOR_CHAT, LIAISON_1_CHAT, LIAISON_2_CHAT = 501, 601, 602


def world() -> PlanInput:
    """Task 1 (unit 1) overdue since 11-19, task 2 (unit 2) due 11-28; two phases."""
    created = datetime(2025, 1, 1, tzinfo=UTC)
    campaign = Campaign(id=1, slug="t", name="t", district="d", created_at=created, updated_at=created)
    tasks = {
        1: Task(id=1, campaign_id=1, group_id=1, no=1, title="一", deadline=date(2025, 11, 19),
                planned_deadline=date(2025, 11, 19)),
        2: Task(id=2, campaign_id=1, group_id=1, no=2, title="二", deadline=date(2025, 11, 28),
                planned_deadline=date(2025, 11, 28)),
    }
    assignments = [
        Assignment(id=1, campaign_id=1, task_id=1, unit_id=1, state=AssignmentState.in_progress),
        Assignment(id=2, campaign_id=1, task_id=2, unit_id=2, state=AssignmentState.not_started),
    ]
    units = {1: Unit(id=1, campaign_id=1, name="甲"), 2: Unit(id=2, campaign_id=1, name="乙")}
    members = [
        Member(id=1, campaign_id=1, telegram_user_id=1, role=Role.coordinator,
               private_chat_id=COORDINATOR_CHAT),
        Member(id=2, campaign_id=1, telegram_user_id=2, role=Role.liaison, unit_id=1,
               private_chat_id=LIAISON_1_CHAT, private_nudges=True),
        Member(id=3, campaign_id=1, telegram_user_id=3, role=Role.liaison, unit_id=2,
               private_chat_id=LIAISON_2_CHAT, private_nudges=True),
    ]
    groups = [Chat(id=1, telegram_chat_id=GROUP, campaign_id=1, kind=ChatKind.group)]
    phases = [
        Phase(id=1, campaign_id=1, no=1, name="一", start_date=date(2025, 11, 3), end_date=date(2025, 11, 21)),
        Phase(id=2, campaign_id=1, no=2, name="二", start_date=date(2025, 11, 24), end_date=date(2025, 12, 31)),
    ]
    return PlanInput(campaign=campaign, tasks=tasks, assignments=assignments, units=units,
                     members=members, group_chats=groups, phases=phases)


def row(p: Planned) -> Outbox:
    return Outbox(campaign_id=p.campaign_id, idem_key=p.key, telegram_chat_id=p.telegram_chat_id,
                  member_id=p.member_id, kind=p.kind, subject=p.subject, payload=p.payload,
                  due_at=p.due_at)


def member(inp: PlanInput, member_id: int) -> Member:
    return next(m for m in inp.members if m.id == member_id)


def unchanged(inp: PlanInput) -> None:
    pass


def approved(inp: PlanInput) -> None:
    inp.assignments[0].state = AssignmentState.approved


def submitted(inp: PlanInput) -> None:
    inp.assignments[1].state = AssignmentState.submitted


def retired(inp: PlanInput) -> None:
    inp.assignments[1].retired = True


def snoozed(inp: PlanInput) -> None:
    inp.snoozes[2] = date(2025, 11, 24)  # mutes the reminder of 11-19, not that of 11-25


def snoozed_past_the_deadline(inp: PlanInput) -> None:
    inp.snoozes[2] = date(2025, 12, 31)  # capped at the day before the deadline


def deadline_moved(inp: PlanInput) -> None:
    inp.tasks[1].deadline = date(2025, 11, 20)


def liaison_opted_out(inp: PlanInput) -> None:
    member(inp, 2).private_nudges = False


def liaison_moved_unit(inp: PlanInput) -> None:
    member(inp, 3).unit_id = 1


def liaison_new_private_chat(inp: PlanInput) -> None:
    member(inp, 2).private_chat_id = 699


def liaison_removed(inp: PlanInput) -> None:
    member(inp, 3).active = False


def liaison_unreachable(inp: PlanInput) -> None:
    member(inp, 2).reachable = False


def coordinator_removed(inp: PlanInput) -> None:
    member(inp, 1).active = False


def group_unreachable(inp: PlanInput) -> None:
    inp.group_chats[0].reachable = False


def phase_end_moved(inp: PlanInput) -> None:
    inp.phases[0].end_date = date(2025, 11, 20)


def phase_deleted(inp: PlanInput) -> None:
    del inp.phases[1]


CHANGES: list[Callable[[PlanInput], None]] = [
    unchanged, approved, submitted, retired, snoozed, snoozed_past_the_deadline, deadline_moved,
    liaison_opted_out, liaison_moved_unit, liaison_new_private_chat, liaison_removed,
    liaison_unreachable, coordinator_removed, group_unreachable, phase_end_moved, phase_deleted,
]


def test_the_world_plans_every_kind() -> None:
    kinds = {p.kind for p in plan(world(), now=NOW, config=CONFIG)}
    assert kinds == {Kind.remind, Kind.overdue, Kind.escalate, Kind.digest, Kind.phase_start, Kind.phase_end}


@pytest.mark.parametrize("change", CHANGES, ids=lambda f: f.__name__)
def test_a_row_is_still_owed_exactly_when_the_planner_still_plans_it(
    change: Callable[[PlanInput], None],
) -> None:
    before = world()
    rows = [row(p) for p in plan(before, now=NOW, config=CONFIG)]
    assert rows and all(not_owed(r, before, TODAY) is None for r in rows)
    after = world()
    change(after)
    still = {p.key for p in plan(after, now=NOW, config=CONFIG)}
    verdicts = {r.idem_key: not_owed(r, after, TODAY) for r in rows}
    for key, verdict in verdicts.items():
        assert (verdict is None) == (key in still), (key, verdict)
        if verdict is not None:
            state, reason = verdict
            assert state in (OutboxState.cancelled, OutboxState.failed) and reason
    dropped = [k for k, v in verdicts.items() if v is not None]
    assert bool(dropped) == (change is not unchanged)


def test_unreachable_chats_fail_and_the_rest_is_cancelled() -> None:
    inp = world()
    group_unreachable(inp)
    liaison_opted_out(inp)
    states = {
        (r.telegram_chat_id, v[0])
        for r in (row(p) for p in plan(world(), now=NOW, config=CONFIG))
        if (v := not_owed(r, inp, TODAY)) is not None
    }
    assert (GROUP, OutboxState.failed) in states
    assert (LIAISON_1_CHAT, OutboxState.cancelled) in states
    assert all(chat != COORDINATOR_CHAT for chat, _ in states)

