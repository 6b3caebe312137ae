"""The plan: which nudge is due when, derived from the store (no Telegram here)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy.engine import Engine

from infra.config import SchedulerConfig
from infra.db import transaction
from models import calendar
from models.tables import AssignmentState, OutboxState, Phase, Snooze, Task
from scheduler import claim, sweep, timing
from scheduler.plan import Kind, load_plan_input, nth_working_day_before, plan
from scheduler.sweep import materialise
from tests.test_scheduler_fixtures import at, build_world, outbox_rows, set_state

NATIONAL_DAY_DEADLINE = "2025-10-10"  # Friday after the 2025-10-01..08 holiday


def _plan(engine: Engine, now: datetime, config: SchedulerConfig | None = None, campaign_id: int = 1):
    from models.tables import Campaign

    with transaction(engine) as s:
        campaign = s.get(Campaign, campaign_id)
        assert campaign is not None
        return plan(load_plan_input(s, campaign), now=now, config=config or SchedulerConfig())


def test_working_day_offsets_around_national_day() -> None:
    deadline = date(2025, 10, 10)
    assert nth_working_day_before(deadline, 0) == deadline
    assert nth_working_day_before(deadline, 1) == date(2025, 10, 9)
    # 10-01..10-08 are holidays: three working days back is Monday 09-29.
    assert nth_working_day_before(deadline, 3) == date(2025, 9, 29)
    # The adjusted working Sunday 09-28 counts as a working day.
    assert nth_working_day_before(deadline, 4) == date(2025, 9, 28)
    assert nth_working_day_before(deadline, 7) == date(2025, 9, 24)
    # A deadline on a holiday: "on the day" is the last working day before it.
    assert nth_working_day_before(date(2025, 10, 5), 0) == date(2025, 9, 30)
    # Saturday 10-11 is an adjusted working day: one working day overdue.
    assert calendar.working_days_between(deadline, date(2025, 10, 11)) == 1
    assert calendar.working_days_between(deadline, date(2025, 10, 12)) == 1
    assert calendar.working_days_between(deadline, date(2025, 10, 14)) == 3


def test_quiet_hours_and_allowed_moments() -> None:
    q0, q1 = time(21), time(8)
    assert timing.in_quiet_hours(time(22), q0, q1)
    assert timing.in_quiet_hours(time(7, 59), q0, q1)
    assert not timing.in_quiet_hours(time(8), q0, q1)
    assert not timing.in_quiet_hours(time(20, 59), q0, q1)
    assert not timing.in_quiet_hours(time(3), time(0), time(0))
    tz = timing.zone("Asia/Shanghai")
    # Tuesday 09-30 22:00 -> the next allowed moment is Thursday 10-09 08:00 (holiday week).
    late = datetime(2025, 9, 30, 22, 0, tzinfo=tz)
    assert timing.next_allowed_moment(late, q0, q1) == datetime(2025, 10, 9, 8, 0, tzinfo=tz)
    # Saturday 09-27 -> adjusted working Sunday 09-28 at 08:00.
    sat = datetime(2025, 9, 27, 10, 0, tzinfo=tz)
    assert timing.next_allowed_moment(sat, q0, q1) == datetime(2025, 9, 28, 8, 0, tzinfo=tz)


def test_each_offset_is_planned_once_at_nudge_time(engine: Engine) -> None:
    from models.tables import Campaign

    build_world(engine, None, deadlines={1: NATIONAL_DAY_DEADLINE}, units_of={1: ["区财政局"]})
    with transaction(engine) as s:
        campaign = s.get(Campaign, 1)
        assert campaign is not None
        inp = load_plan_input(s, campaign)  # the plan is pure: read the rows once
    config = SchedulerConfig()
    seen: dict[str, datetime] = {}
    now = at("2025-09-20", 0, 0)
    end = at("2025-10-16", 0, 0)
    while now < end:
        for p in plan(inp, now=now, config=config):
            seen.setdefault(p.key, p.due_at)
        now += timedelta(hours=1)
    group = [k for k in seen if k.startswith("chat:-100777|")]
    reminders = sorted((seen[k], k.split("|")[2]) for k in group if "|remind-" in k)
    assert reminders == [
        (at("2025-09-24"), "remind-7"),
        (at("2025-09-29"), "remind-3"),
        (at("2025-10-09"), "remind-1"),
        (at("2025-10-10"), "remind-0"),
    ]
    overdue = sorted(seen[k] for k in group if "|overdue|" in k)
    assert overdue == [at("2025-10-11"), at("2025-10-13"), at("2025-10-14"), at("2025-10-15")]
    # Escalation after 3 working days overdue, to the coordinator's private chat (9001).
    escalations = sorted(seen[k] for k in seen if "|escalate|" in k)
    assert escalations == [at("2025-10-14"), at("2025-10-15")]
    assert all(k.startswith("chat:9001|") for k in seen if "|escalate|" in k)
    # Nothing falls on a holiday or a weekend that is not an adjusted working day.
    for due in seen.values():
        local = due.astimezone(timing.zone("Asia/Shanghai"))
        assert calendar.is_working_day(local.date()), local
        assert local.time() == time(9, 0)


def test_weekly_digest_moves_off_a_holiday_monday(engine: Engine) -> None:
    build_world(engine, None, deadlines={1: "2025-12-31"})
    kinds = {(p.kind, p.due_at) for p in _plan(engine, at("2025-09-29", 9, 5))}
    assert (Kind.digest, at("2025-09-29")) in kinds
    # Monday 10-06 is a holiday: that week's digest goes out Thursday 10-09 at 09:00.
    assert not [p for p in _plan(engine, at("2025-10-08", 12)) if p.kind == Kind.digest and p.local_date == date(2025, 10, 6)]
    digests = [p for p in _plan(engine, at("2025-10-09", 9, 1)) if p.kind == Kind.digest]
    assert [(d.due_at, d.local_date) for d in digests] == [(at("2025-10-09"), date(2025, 10, 6))]


def test_phase_start_and_end_are_announced(engine: Engine) -> None:
    w = build_world(engine, None, deadlines={1: "2025-12-31"})
    with transaction(engine) as s:
        s.add(Phase(campaign_id=w.campaign_id, no=1, name="制定方案", start_date=date(2025, 9, 29), end_date=date(2025, 10, 5)))
    starts = [p for p in _plan(engine, at("2025-09-29", 10)) if p.kind == Kind.phase_start]
    assert [(p.due_at, p.telegram_chat_id) for p in starts] == [(at("2025-09-29"), w.group_chat_id)]
    # It ends on a holiday: announced on the last working day before, 09-30.
    ends = [p for p in _plan(engine, at("2025-09-30", 10)) if p.kind == Kind.phase_end]
    assert [p.due_at for p in ends] == [at("2025-09-30")]


def test_quiet_nudge_time_moves_to_quiet_end(engine: Engine) -> None:
    build_world(engine, None, deadlines={1: NATIONAL_DAY_DEADLINE}, units_of={1: ["区财政局"]})
    cfg = SchedulerConfig(nudge_time=time(22, 30))
    due = {p.key.split("|")[2]: p.due_at for p in _plan(engine, at("2025-10-11", 9), cfg) if p.telegram_chat_id < 0}
    # 22:30 on 10-09 is quiet: the 1-day reminder waits for 08:00 on 10-10, and the
    # on-the-day one (10-10 22:30) for 08:00 on Saturday 10-11 (an adjusted working day).
    assert due["remind-1"] == at("2025-10-10", 8, 0)
    assert due["remind-0"] == at("2025-10-11", 8, 0)


def test_sweep_is_idempotent(engine: Engine) -> None:
    build_world(engine, None, deadlines={1: NATIONAL_DAY_DEADLINE, 2: NATIONAL_DAY_DEADLINE})
    now = at("2025-09-29", 9, 30)
    first = sweep(engine=engine, now=now)
    assert first.inserted == first.planned > 0
    again = sweep(engine=engine, now=now + timedelta(minutes=1))
    assert again.inserted == 0
    assert len(outbox_rows(engine)) == first.inserted
    # Inserting the same planned rows directly is ignored too (the unique key decides).
    with transaction(engine) as s:
        from models.tables import Campaign

        campaign = s.get(Campaign, 1)
        assert campaign is not None
        assert materialise(s, plan(load_plan_input(s, campaign), now=now, config=SchedulerConfig()), now=now) == []


def test_finished_assignment_is_cancelled_with_a_reason(engine: Engine) -> None:
    w = build_world(engine, None, deadlines={1: NATIONAL_DAY_DEADLINE, 2: NATIONAL_DAY_DEADLINE})
    now = at("2025-09-29", 9, 0)
    sweep(engine=engine, now=now)
    set_state(engine, w.assignments[(1, "区财政局")], AssignmentState.submitted)
    report = claim(engine=engine, now=now)
    cancelled = outbox_rows(engine, state=OutboxState.cancelled)
    assert cancelled and all(r.payload["assignment_id"] == w.assignments[(1, "区财政局")] for r in cancelled)
    assert all("已提交" in (r.last_error or "") for r in cancelled)
    assert [b.rendered.assignment_ids for b in report.batches] == [[w.assignments[(2, "区商务局")]]]
    # The plan no longer lists it either.
    assert all(p.payload.get("assignment_id") != w.assignments[(1, "区财政局")] for p in _plan(engine, now))


def test_deadline_change_replans(engine: Engine) -> None:
    w = build_world(engine, None, deadlines={1: NATIONAL_DAY_DEADLINE}, units_of={1: ["区财政局"]})
    now = at("2025-09-29", 9, 0)
    sweep(engine=engine, now=now)  # remind-3 (09-29) and remind-7 (09-24, caught up)
    assert {r.idem_key.split("|")[2] for r in outbox_rows(engine)} == {"remind-3", "remind-7", "digest"}
    with transaction(engine) as s:
        task = s.get(Task, w.tasks[1])
        assert task is not None
        task.deadline = date(2025, 9, 30)  # moved earlier: today is now 1 working day before
        s.add(task)
    sweep(engine=engine, now=now + timedelta(minutes=1))
    new = [r for r in outbox_rows(engine) if "@2025-09-30|" in r.idem_key]
    assert {r.idem_key.split("|")[2] for r in new} == {"remind-1", "remind-3"}
    claim(engine=engine, now=now + timedelta(minutes=1))
    old = [r for r in outbox_rows(engine) if "@2025-10-10|" in r.idem_key]
    assert old and all(r.state == OutboxState.cancelled and "截止日期已由 2025年10月10日 改为 2025年9月30日" in (r.last_error or "") for r in old)


def test_snoozed_assignment_is_skipped_until_then(engine: Engine) -> None:
    w = build_world(engine, None, deadlines={1: NATIONAL_DAY_DEADLINE}, units_of={1: ["区财政局"]})
    aid = w.assignments[(1, "区财政局")]
    with transaction(engine) as s:
        s.add(Snooze(campaign_id=w.campaign_id, assignment_id=aid, until=date(2025, 10, 9)))
    keys = {p.key.split("|")[2] for p in _plan(engine, at("2025-10-10", 10))}
    # remind-1 (10-09) is snoozed; the deadline-day nudge is not.
    assert "remind-1" not in keys
    assert "remind-0" in keys


def test_time_zone_is_the_campaigns(engine: Engine) -> None:
    # Asia/Urumqi campaigns nudge at 09:00 Urumqi time (03:00 UTC), not Shanghai's.
    from models.tables import Campaign

    build_world(engine, None, deadlines={1: NATIONAL_DAY_DEADLINE}, units_of={1: ["区财政局"]})
    with transaction(engine) as s:
        c = s.get(Campaign, 1)
        assert c is not None
        c.timezone = "Asia/Urumqi"
        s.add(c)
    due = [p.due_at for p in _plan(engine, datetime(2025, 10, 10, 4, tzinfo=UTC)) if "remind-0" in p.key]
    assert due and all(d == datetime(2025, 10, 10, 3, tzinfo=UTC) for d in due)


def test_snooze_never_reaches_a_deadline_moved_earlier(engine: Engine) -> None:
    w = build_world(engine, None, deadlines={1: NATIONAL_DAY_DEADLINE}, units_of={1: ["区财政局"]})
    aid = w.assignments[(1, "区财政局")]
    with transaction(engine) as s:
        s.add(Snooze(campaign_id=w.campaign_id, assignment_id=aid, until=date(2025, 10, 9)))
        task = s.get(Task, w.tasks[1])
        assert task is not None
        task.deadline = date(2025, 9, 30)
        s.add(task)
    keys = {p.key.split("|")[2] for p in _plan(engine, at("2025-09-30", 10)) if p.telegram_chat_id < 0}
    assert "remind-0" in keys  # the deadline-day nudge of the new deadline still goes out


def test_rows_of_a_deactivated_campaign_end_cancelled(engine: Engine) -> None:
    from models.tables import Campaign

    w = build_world(engine, None, deadlines={1: NATIONAL_DAY_DEADLINE})
    now = at("2025-10-10", 9, 0)
    sweep(engine=engine, now=now)
    with transaction(engine) as s:
        c = s.get(Campaign, w.campaign_id)
        assert c is not None
        c.active = False
        s.add(c)
    report = claim(engine=engine, now=now)
    rows = outbox_rows(engine)
    assert report.batches == [] and rows
    assert all(r.state == OutboxState.cancelled and r.last_error == "活动已停用，不再发送" for r in rows)


def test_no_catch_up_for_days_before_the_campaign_existed(engine: Engine) -> None:
    from models.tables import Campaign

    build_world(engine, None, deadlines={1: "2025-10-10"})
    # Imported on Wednesday 2025-10-15 at 10:00, three working days after the deadline.
    with transaction(engine) as s:
        campaign = s.get(Campaign, 1)
        assert campaign is not None
        campaign.created_at = at("2025-10-15", 10, 0)
    planned = _plan(engine, at("2025-10-15", 10, 5))
    days = {p.local_date for p in planned}
    assert days == {date(2025, 10, 15)}  # today's overdue nudge, none of the days before
    assert any(p.kind == Kind.overdue for p in planned)
