"""Shared fixtures of the scheduler tests: a small campaign, the stand-in, a real Bot.

Imported by the ``test_scheduler_*`` modules (``from tests.test_scheduler_fixtures
import *``); it holds no tests itself.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import select
from telegram import Bot

from infra.config import SchedulerConfig
from infra.db import transaction
from models.tables import (
    Assignment,
    AssignmentState,
    Campaign,
    Chat,
    ChatKind,
    Criterion,
    ItemUnit,
    Member,
    Outbox,
    OutboxState,
    Role,
    ScoreCategory,
    ScoreItem,
    Task,
    TaskGroup,
    Unit,
)
from scheduler import Pacer, dispatch, sweep
from standin import BotApiStandin

SHANGHAI = ZoneInfo("Asia/Shanghai")
TOKEN = "123456:SCHEDULER-TEST"

__all__ = [
    "SHANGHAI",
    "World",
    "api_fixture",
    "at",
    "bot_fixture",
    "build_world",
    "fast_config",
    "outbox_rows",
    "set_state",
    "unresolved",
    "tick",
]


def at(day: date | str, hh: int = 9, mm: int = 0) -> datetime:
    """``day`` at hh:mm Shanghai time, as an aware UTC instant."""
    d = date.fromisoformat(day) if isinstance(day, str) else day
    return datetime.combine(d, time(hh, mm), tzinfo=SHANGHAI).astimezone(UTC)


def fast_config(**overrides: object) -> SchedulerConfig:
    """Defaults, but with backoff and flood waits short enough for tests."""
    values: dict[str, object] = {
        "retry_base_seconds": 1.0,
        "retry_max_seconds": 8.0,
        "flood_wait_max_seconds": 5.0,
        # Counting messages is simpler without the digest's picture (tested on its own).
        "digest_chart": False,
        # ... and without the 通报 it carries (tests/test_supervision.py tests it).
        "digest_bulletin": False,
    }
    values.update(overrides)
    return SchedulerConfig(**values)  # type: ignore[arg-type]


@dataclass
class World:
    """Ids of the campaign built by :func:`build_world` and its stand-in people."""

    campaign_id: int
    group_chat_id: int
    units: dict[str, int] = field(default_factory=dict)
    tasks: dict[int, int] = field(default_factory=dict)  # task no -> id
    assignments: dict[tuple[int, str], int] = field(default_factory=dict)  # (task no, unit) -> id
    members: dict[str, int] = field(default_factory=dict)  # name -> member id
    users: dict[str, int] = field(default_factory=dict)  # name -> telegram user id


CAMPAIGN_CREATED = datetime(2025, 1, 1, tzinfo=UTC)


def build_world(
    engine: Engine,
    api: BotApiStandin | None,
    *,
    deadlines: dict[int, str],
    units_of: dict[int, list[str]] | None = None,
    coordinator_private: bool = True,
    private_nudges: tuple[str, ...] = (),
    slug: str = "test",
) -> World:
    """A campaign with tasks (no -> deadline), units, liaisons, a coordinator and a group.

    Default units: task 1 -> 区财政局, task 2 -> 区商务局, task n -> 区财政局.
    Liaisons: 财政小李 (区财政局), 商务小王 (区商务局); coordinator 监管老张.
    """
    units_of = units_of or {n: ["区财政局"] if n != 2 else ["区商务局"] for n in deadlines}
    people = {"监管老张": None, "财政小李": "区财政局", "商务小王": "区商务局"}
    users: dict[str, int] = {}
    group_id = -100_777
    if api is not None:
        for name in people:
            users[name] = api.make_user(name).id
        group_id = api.make_group("瑶海区质量强区工作群", members=[users[n] for n in people]).id
    else:
        users = {"监管老张": 9001, "财政小李": 9002, "商务小王": 9003}
    with transaction(engine) as s:
        # Created long before the tests' dates: the plan never catches up on days before that.
        c = Campaign(slug=slug, name="测试质量强区", district="测试区", timezone="Asia/Shanghai",
                     created_at=CAMPAIGN_CREATED)
        s.add(c)
        s.flush()
        assert c.id is not None
        world = World(campaign_id=c.id, group_chat_id=group_id, users=users)
        g = TaskGroup(campaign_id=c.id, no=1, title="第一组")
        s.add(g)
        names = sorted({u for us in units_of.values() for u in us} | {"区财政局", "区商务局"})
        for i, name in enumerate(names):
            u = Unit(campaign_id=c.id, name=name, sort_order=i)
            s.add(u)
            s.flush()
            world.units[name] = u.id  # type: ignore[assignment]
        s.flush()
        for no, deadline in sorted(deadlines.items()):
            d = date.fromisoformat(deadline)
            t = Task(campaign_id=c.id, group_id=g.id, no=no, title=f"第{no}项任务：建立质量工作机制", deadline=d, planned_deadline=d)  # type: ignore[arg-type]
            s.add(t)
            s.flush()
            world.tasks[no] = t.id  # type: ignore[assignment]
            for name in units_of[no]:
                a = Assignment(campaign_id=c.id, task_id=t.id, unit_id=world.units[name])  # type: ignore[arg-type]
                s.add(a)
                s.flush()
                world.assignments[(no, name)] = a.id  # type: ignore[assignment]
        # Points at stake: 区商务局 has more open points than 区财政局.
        cat = ScoreCategory(campaign_id=c.id, no=1, name="质量发展促进机制")
        s.add(cat)
        s.flush()
        for no, (unit, pts) in enumerate((("区财政局", 2.0), ("区商务局", 6.0)), start=1):
            item = ScoreItem(campaign_id=c.id, category_id=cat.id, no=no, max_points=pts)  # type: ignore[arg-type]
            s.add(item)
            s.flush()
            s.add(ItemUnit(item_id=item.id, unit_id=world.units[unit]))  # type: ignore[arg-type]
            s.add(Criterion(campaign_id=c.id, item_id=item.id, no=1, text="达到要求", points=pts))  # type: ignore[arg-type]
        for name, unit in people.items():
            tg = users[name]
            m = Member(
                campaign_id=c.id,
                telegram_user_id=tg,
                display_name=name,
                role=Role.coordinator if unit is None else Role.liaison,
                unit_id=world.units[unit] if unit else None,
                private_chat_id=tg if (unit is not None or coordinator_private) else None,
                private_nudges=name in private_nudges,
            )
            s.add(m)
            s.flush()
            world.members[name] = m.id  # type: ignore[assignment]
        s.add(Chat(telegram_chat_id=group_id, campaign_id=c.id, kind=ChatKind.group, title="瑶海区质量强区工作群"))
    return world


def outbox_rows(engine: Engine, **where: object) -> list[Outbox]:
    with transaction(engine) as s:
        q = select(Outbox).order_by(Outbox.id)
        for k, v in where.items():
            q = q.where(getattr(Outbox, k) == v)
        return list(s.exec(q))


def set_state(engine: Engine, assignment_id: int, state: AssignmentState) -> None:
    with transaction(engine) as s:
        a = s.get(Assignment, assignment_id)
        assert a is not None
        a.state = state
        s.add(a)


async def tick(engine: Engine, bot: Bot, now: datetime, config: SchedulerConfig | None = None, pacer: Pacer | None = None):  # type: ignore[no-untyped-def]
    config = config or fast_config()
    sweep(engine=engine, now=now, config=config)
    return await dispatch(engine=engine, bot=bot, now=now, config=config, pacer=pacer)


def unresolved(engine: Engine) -> list[Outbox]:
    """Rows not in a final state."""
    return [r for r in outbox_rows(engine) if r.state in (OutboxState.pending, OutboxState.claimed)]


@pytest.fixture(name="api")
async def api_fixture() -> AsyncIterator[BotApiStandin]:
    async with BotApiStandin(token=TOKEN) as server:
        yield server


@pytest.fixture(name="bot")
async def bot_fixture(api: BotApiStandin) -> AsyncIterator[Bot]:
    b = Bot(token=TOKEN, base_url=api.base_url, base_file_url=api.base_file_url)
    async with b:
        yield b
