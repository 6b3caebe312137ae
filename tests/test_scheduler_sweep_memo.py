"""The sweep's memo: an idle tick skips campaigns whose plan cannot have changed.

The memo is only an optimisation, so the property that matters is equivalence:
ticking with the memo materialises exactly the rows that ticking without it does,
whatever is written between ticks (audited writes, unaudited bookkeeping) and
whenever the nudge moments pass.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

from sqlalchemy.engine import Engine
from sqlmodel import SQLModel, select

from infra.config import SchedulerConfig
from infra.db import make_engine, transaction
from models.audit import Actor
from models.progress import change_deadline, set_progress, submit_assignment
from models.tables import Campaign, Chat, Member, Outbox
from scheduler import sweep
from scheduler.prefs import set_private_nudges
from scheduler.sweep import SweepMemo
from tests.dbutil import fresh_database_url
from tests.test_scheduler_fixtures import World, at, build_world

DEADLINES = {1: "2025-09-24", 2: "2025-09-26", 3: "2025-10-10"}
ACTOR = Actor.cli()


def _keys(engine: Engine) -> set[str]:
    with transaction(engine) as s:
        return set(s.exec(select(Outbox.idem_key)))


def _member(s, world: World, name: str) -> Member:  # noqa: ANN001
    m = s.get(Member, world.members[name])
    assert m is not None
    return m


def _write(engine: Engine, world: World, step: int, now) -> str | None:  # noqa: ANN001
    """The write made before tick ``step`` (the same on both databases), if any."""
    with transaction(engine) as s:
        if step == 7:  # audited: a deadline moves
            change_deadline(session=s, task_id=world.tasks[3], new=date(2025, 9, 30), reason="区政府要求提前",
                            actor=ACTOR, now=now, today=date(2025, 9, 22))
            return "deadline"
        if step == 19:  # audited: a liaison asks for private nudges
            set_private_nudges(s, telegram_user_id=world.users["财政小李"], on=True, now=now)
            return "private nudges"
        if step == 33:  # bookkeeping, no audit row: the liaison's private chat is unreachable
            m = _member(s, world, "财政小李")
            m.reachable = False
            s.add(m)
            return "unreachable"
        if step == 52:  # bookkeeping again: reachable once more (they wrote to the bot)
            m = _member(s, world, "财政小李")
            m.reachable = True
            s.add(m)
            return "reachable"
        if step == 61:  # audited: 区商务局 submits task 2
            aid = world.assignments[(2, "区商务局")]
            set_progress(session=s, assignment_id=aid, percent=90, note=None, actor=ACTOR, now=now)
            submit_assignment(session=s, assignment_id=aid, actor=ACTOR, now=now)
            return "submitted"
        if step == 70:  # bookkeeping: the group became unreachable
            chat = s.exec(select(Chat).where(Chat.telegram_chat_id == world.group_chat_id)).one()
            chat.reachable = False
            s.add(chat)
            return "group unreachable"
    return None


def test_ticks_with_the_memo_materialise_exactly_what_ticks_without_it_do(
    engine: Engine, tmp_path: Path
) -> None:
    config = SchedulerConfig(replan_every_seconds=86_400)
    world = build_world(engine, None, deadlines=DEADLINES)
    with fresh_database_url(tmp_path / "plain") as other_url:
        plain = make_engine(other_url)
        try:
            SQLModel.metadata.create_all(plain)
            assert build_world(plain, None, deadlines=DEADLINES) == world
            memo = SweepMemo(replan_every=timedelta(seconds=config.replan_every_seconds))
            now = at("2025-09-22", 0, 10)
            skipped = planned_ticks = 0
            writes: list[str] = []
            for step in range(90):  # 90 ticks, 97 minutes apart: six days, every hour of the day
                for eng in (engine, plain):
                    what = _write(eng, world, step, now)
                if what:
                    writes.append(what)
                with_memo = sweep(engine=engine, now=now, config=config, memo=memo)
                sweep(engine=plain, now=now, config=config)
                skipped += with_memo.skipped
                planned_ticks += with_memo.campaigns
                assert _keys(engine) == _keys(plain), f"tick {step} at {now.isoformat()}"
                now += timedelta(minutes=97)
            assert len(writes) == 6
            assert len(_keys(engine)) >= 15
            # The memo did skip (most ticks fall between nudge moments) and did re-plan.
            assert skipped > 40 and planned_ticks >= 6 + len(writes)
        finally:
            plain.dispose()


def test_an_idle_sweep_skips_and_each_cause_replans(engine: Engine) -> None:
    config = SchedulerConfig(replan_every_seconds=3600)
    world = build_world(engine, None, deadlines={1: "2025-09-24"}, private_nudges=("财政小李",))
    memo = SweepMemo(replan_every=timedelta(seconds=3600))
    t0 = at("2025-09-23", 9, 30)
    first = sweep(engine=engine, now=t0, config=config, memo=memo)
    assert (first.campaigns, first.skipped) == (1, 0) and first.inserted > 0

    # Nothing written, no nudge moment passed: skipped.
    idle = sweep(engine=engine, now=t0 + timedelta(minutes=5), config=config, memo=memo)
    assert (idle.campaigns, idle.skipped, idle.planned) == (0, 1, 0)

    # Unaudited bookkeeping (a private chat changed) is part of the fingerprint.
    with transaction(engine) as s:
        m = _member(s, world, "财政小李")
        m.private_chat_id = 424242
        s.add(m)
    moved = sweep(engine=engine, now=t0 + timedelta(minutes=6), config=config, memo=memo)
    assert moved.campaigns == 1 and moved.inserted > 0  # the window's reminders, to the new chat
    assert len([k for k in _keys(engine) if k.startswith("chat:424242|")]) == moved.inserted

    # The clock going backwards re-plans; so does replan_every.
    assert sweep(engine=engine, now=t0, config=config, memo=memo).campaigns == 1
    assert sweep(engine=engine, now=t0 + timedelta(minutes=7), config=config, memo=memo).skipped == 1
    assert sweep(engine=engine, now=t0 + timedelta(minutes=61), config=config, memo=memo).campaigns == 1

    # The next day's nudge moment (09:00) re-plans and materialises the deadline-day nudges.
    before = sweep(engine=engine, now=at("2025-09-24", 8, 59), config=config, memo=memo)
    assert before.inserted == 0
    due = sweep(engine=engine, now=at("2025-09-24", 9, 0), config=config, memo=memo)
    assert due.campaigns == 1 and due.inserted > 0

    # A deactivated campaign is not swept at all; replan_every = 0 turns the memo off.
    off = SweepMemo(replan_every=timedelta(0))
    off.remember(world.campaign_id, (), now=at("2025-09-24", 9, 0))
    assert sweep(engine=engine, now=at("2025-09-24", 9, 1), config=config, memo=off).skipped == 0
    with transaction(engine) as s:
        c = s.get(Campaign, world.campaign_id)
        assert c is not None
        c.active = False
        s.add(c)
    assert sweep(engine=engine, now=at("2025-09-24", 9, 2), config=config, memo=memo).campaigns == 0
