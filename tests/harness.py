"""End-to-end fixtures: the Bot API stand-in plus the REAL application.

A pytest plugin (registered in ``tests/conftest.py``). The application is the
one ``qcbot run`` builds (``bot.app.build_application``), only pointed at the
stand-in by configuration, on a fresh database of the backend under test
(SQLite, or a PostgreSQL schema when ``TEST_DATABASE_URL`` is set) holding the
imported seed. Time is a :class:`FakeClock` the test can move.

Fixtures:

* ``standin`` — a started :class:`standin.BotApiStandin` (``api``).
* ``bot_settings`` — :class:`infra.config.Settings` for the test (database, storage dir).
* ``seeded_engine`` — the engine of the fresh database with ``data/seed.json`` imported.
* ``clock`` — a :class:`FakeClock` (default 2021-11-01 10:00 Asia/Shanghai).
* ``harness`` — a running :class:`Harness`: stand-in + application + helpers.

Typical use::

    async def test_something(harness):
        coord = await harness.coordinator("王主任")          # a coordinator who /start-ed
        group = await harness.bound_group(coord)              # a work group, /bindgroup done
        li = await harness.liaison("李四", "区财政局")         # a liaison via an invite link
        [m] = await harness.say(li, group, "/mytasks")
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from bot.app import build_application, running
from bot.demo import add_demo_member
from infra.config import Settings
from infra.db import read_only, transaction
from models.audit import Actor
from models.seed import SeedDoc, import_seed, load_seed
from models.tables import Campaign, Member, Role, Unit
from standin import BotApiStandin, SimChat, SimUser

REPO = Path(__file__).resolve().parent.parent
SEED_PATH = REPO / "data" / "seed.json"
TOKEN = "123456789:" "AAHarnessTokenForTestsOnly_0123456789"  # fake, for the stand-in
TZ = ZoneInfo("Asia/Shanghai")
DEFAULT_NOW = datetime(2021, 11, 1, 10, 0, tzinfo=TZ)
#: Seconds to wait for the bot's answer (the stand-in answers in milliseconds).
WAIT = 5.0

JsonDict = dict[str, Any]


@cache
def seed_doc() -> SeedDoc:
    return load_seed(SEED_PATH)


@dataclass
class FakeClock:
    """An injectable clock: ``bot_data["clock"]`` returns ``clock.now``."""

    now: datetime = DEFAULT_NOW

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now = self.now + timedelta(**delta)
        return self.now

    def set(self, when: datetime) -> None:
        if when.tzinfo is None:
            raise ValueError("aware datetimes only")
        self.now = when


def make_settings(*, db_url: str, storage_dir: Path, **sections: dict[str, Any]) -> Settings:
    """Settings for a test: the given database and storage, no token, scheduler off."""
    data: dict[str, Any] = {
        "database": {"url": db_url},
        "storage": {"dir": str(storage_dir)},
        # A test plays many messages a second as one person: the per-person budget is
        # off here, and tests/test_gate.py tests it.
        "telegram": {"concurrent_updates": 8, "user_budget_per_minute": 0},
        "scheduler": {"enabled": False},
    }
    for key, values in sections.items():
        data.setdefault(key, {}).update(values)
    return Settings.model_validate(data)


def import_default_seed(engine: Engine, *, now: datetime = DEFAULT_NOW) -> int:
    """Import data/seed.json; returns the campaign id."""
    with transaction(engine) as session:
        import_seed(session=session, doc=seed_doc(), now=now, actor=Actor.cli())
        return session.exec(select(Campaign.id)).one()  # type: ignore[return-value]


@dataclass
class Harness:
    """The stand-in, the running application and helpers to play people."""

    api: BotApiStandin
    app: Any
    engine: Engine
    settings: Settings
    clock: FakeClock
    campaign_id: int
    groups: list[SimChat] = field(default_factory=list)
    read_engine: Engine | None = None

    # ------------------------------------------------------------ database

    @contextmanager
    def db(self) -> Iterator[Session]:
        """A session for assertions on what the bot wrote (rows stay readable after it).

        On SQLite it uses an engine without ``BEGIN IMMEDIATE``: a test reading while
        the bot writes must not take the write lock (nor block the event loop on it).
        """
        if self.read_engine is None:
            if self.engine.dialect.name == "sqlite":
                self.read_engine = sa.create_engine(
                    self.engine.url, connect_args={"check_same_thread": False, "timeout": 15}
                )
            else:
                self.read_engine = self.engine
        with Session(self.read_engine, expire_on_commit=False) as session:
            yield session

    def unit(self, name: str) -> Unit:
        with self.db() as s:
            unit = s.exec(select(Unit).where(Unit.campaign_id == self.campaign_id, Unit.name == name)).one()
        return unit

    def member(self, user: SimUser) -> Member | None:
        with self.db() as s:
            return s.exec(
                select(Member).where(Member.campaign_id == self.campaign_id, Member.telegram_user_id == user.id)
            ).first()

    def add_member(self, user: SimUser, role: Role | str, unit: str | None = None, *, private: bool = True) -> Member:
        """Make ``user`` a member directly in the database (no invite)."""
        with transaction(self.engine) as s:
            return add_demo_member(
                s, campaign_id=self.campaign_id, telegram_user_id=user.id, name=user.full_name,
                role=role, unit=unit, username=user.username, now=self.clock(),
                private_chat_id=user.id if private else None,
            )

    # ------------------------------------------------------------ talking

    async def say(
        self, user: SimUser, chat: SimChat | SimUser, text: str, *, reply_to: JsonDict | int | None = None,
        count: int = 1, timeout: float = WAIT,  # noqa: ASYNC109 - passed to the stand-in
    ) -> list[JsonDict]:
        """``user`` writes ``text`` in ``chat``; returns the bot's next ``count`` messages there."""
        target = self.api.private_chat(user) if isinstance(chat, SimUser) else chat
        self.api.mark(target)
        await self.api.send_text(user, target, text, reply_to=reply_to)
        if count == 0:
            await self.api.wait_idle(timeout=timeout)
            return []
        return await self.api.wait_for_bot_messages(target, count=count, timeout=timeout)

    async def send_file(
        self, user: SimUser, chat: SimChat | SimUser, name: str, data: bytes, *,
        reply_to: JsonDict | int | None = None, mime_type: str | None = None, caption: str | None = None,
        count: int = 1,
    ) -> list[JsonDict]:
        target = self.api.private_chat(user) if isinstance(chat, SimUser) else chat
        self.api.mark(target)
        await self.api.send_document(user, target, name, data, reply_to=reply_to, mime_type=mime_type, caption=caption)
        if count == 0:
            await self.api.wait_idle()
            return []
        return await self.api.wait_for_bot_messages(target, count=count, timeout=WAIT)

    async def press(self, user: SimUser, message: JsonDict, data: str, *, strict: bool = True) -> JsonDict:
        """``user`` presses a button; returns the bot's answerCallbackQuery (text, show_alert)."""
        query_id = await self.api.press_button(user, message, data, strict=strict)
        await self.api.wait_until(lambda: query_id in self.api.callback_answers, timeout=WAIT,
                                  what=f"answer to callback {data}")
        return self.api.callback_answers[query_id]

    async def idle(self) -> None:
        await self.api.wait_idle(timeout=WAIT)

    # ------------------------------------------------------------ the story's cast

    async def coordinator(self, name: str = "王主任", username: str | None = "coord") -> SimUser:
        """A coordinator, made with the bootstrap code printed at start-up."""
        user = self.api.make_user(name, username)
        codes = self.app.bot_data.get("bootstrap_codes") or []
        if codes and self.member_count(Role.coordinator) == 0:
            await self.say(user, user, f"/start {codes[-1]}")
        else:
            self.add_member(user, Role.coordinator)
            await self.say(user, user, "/start")
        return user

    def member_count(self, role: Role) -> int:
        with self.db() as s:
            return len(s.exec(select(Member).where(Member.campaign_id == self.campaign_id, Member.role == role,
                                                   Member.active == True)).all())  # noqa: E712

    async def bound_group(self, coordinator: SimUser, title: str = "质量强区工作群") -> SimChat:
        """A work group with the coordinator in it, bound with /bindgroup."""
        group = self.api.make_group(title, members=[coordinator])
        await self.say(coordinator, group, "/bindgroup")
        self.groups.append(group)
        return group

    async def invite_link(self, coordinator: SimUser, target: str) -> str:
        [msg] = await self.say(coordinator, coordinator, f"/invite {target}")
        text = msg["text"]
        start = text.index("https://t.me/")
        return text[start:].split()[0]

    async def second_campaign(self) -> tuple[int, SimUser, SimChat, SimUser]:
        """Campaign B ("second-2022", the plan shifted to 2022) beside the harness's A: A's
        coordinator with a bound group, and B's coordinator added from the server (private chat
        known, no group yet). Returns (B's id, A's coordinator, A's group, B's coordinator)."""
        with transaction(self.engine) as s:
            import_seed(session=s, doc=seed_doc(), now=self.clock(), actor=Actor.cli(), slug="second-2022",
                        shift_to=date(2022, 7, 1))
            second = s.exec(select(Campaign).where(Campaign.slug == "second-2022")).one()
        coord_a = await self.coordinator("甲区主任")
        group_a = await self.bound_group(coord_a, "甲区工作群")
        coord_b = self.api.make_user("乙区主任")
        with transaction(self.engine) as s:
            add_demo_member(s, campaign_id=second.id, telegram_user_id=coord_b.id, name="乙区主任",  # type: ignore[arg-type]
                            role=Role.coordinator, now=self.clock(), private_chat_id=coord_b.id)
        return second.id, coord_a, group_a, coord_b  # type: ignore[return-value]

    async def liaison(self, name: str, unit: str, *, coordinator: SimUser, username: str | None = None) -> SimUser:
        """A liaison of ``unit`` who joined through an /invite deep link."""
        link = await self.invite_link(coordinator, unit)
        token = link.split("start=", 1)[1]
        user = self.api.make_user(name, username)
        [welcome] = await self.say(user, user, f"/start {token}")
        assert "欢迎" in welcome["text"], welcome["text"]
        return user


# ====================================================================== fixtures


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def bot_settings(db_url: str, tmp_path: Path) -> Settings:
    return make_settings(db_url=db_url, storage_dir=tmp_path / "evidence")


@pytest.fixture
def seeded_engine(engine: Engine) -> Engine:
    """The fresh database of ``engine`` with data/seed.json imported."""
    import_default_seed(engine)
    return engine


@pytest.fixture
async def standin() -> AsyncIterator[BotApiStandin]:
    async with BotApiStandin(token=TOKEN) as api:
        yield api


@pytest.fixture
async def harness(
    standin: BotApiStandin, seeded_engine: Engine, bot_settings: Settings, clock: FakeClock
) -> AsyncIterator[Harness]:
    """The stand-in and the real application, running; torn down cleanly."""
    app = build_application(
        settings=bot_settings, engine=seeded_engine, clock=clock, token=standin.token,
        base_url=standin.base_url, base_file_url=standin.base_file_url,
    )
    with read_only(seeded_engine) as s:
        campaign_id = s.exec(select(Campaign.id)).one()
    async with running(app, poll_timeout=1):
        h = Harness(api=standin, app=app, engine=seeded_engine, settings=bot_settings, clock=clock,
                    campaign_id=campaign_id)  # type: ignore[arg-type]
        try:
            yield h
        finally:
            if h.read_engine is not None and h.read_engine is not seeded_engine:
                h.read_engine.dispose()
