"""bot.polling: an update is confirmed to Telegram only once it was handled.

Driven through python-telegram-bot's real Application and HTTP stack against the
stand-in, whose update queue keeps an update until a ``getUpdates`` offset passes it
(Telegram's rule). A "crash" is an application abandoned mid-handling: its updater
stops without confirming, its handlers never finish.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import select
from telegram import Update
from telegram.ext import (
    Application,
    ApplicationBuilder,
    ContextTypes,
    ExtBot,
    MessageHandler,
    filters,
)
from telegram.request import HTTPXRequest

from bot.app import build_application, running
from bot.demo import add_demo_member
from bot.polling import (
    HANDLED_BEFORE,
    PROCESS,
    ConfirmAfterHandlingUpdater,
    TrackingUpdateProcessor,
    UpdateTracker,
)
from infra.config import Settings
from infra.db import read_only, transaction
from models.tables import Assignment, AuditLog, Campaign, HandledUpdate, Role, Task, Unit
from standin import BotApiStandin
from tests.harness import FakeClock

pytestmark = pytest.mark.timeout(30)



@pytest.fixture
def api(standin: BotApiStandin) -> BotApiStandin:
    """The harness's stand-in (tests/harness.py), by the name the stand-in tests use."""
    return standin


def build(api: BotApiStandin, handler: Any, *, busy_interval: float = 0.05, max_hold: float = 60.0) -> Application:  # noqa: ANN401
    tracker = UpdateTracker()
    bot = ExtBot(api.token, base_url=api.base_url, base_file_url=api.base_file_url,
                 get_updates_request=HTTPXRequest(connection_pool_size=2))  # as build_application
    updater = ConfirmAfterHandlingUpdater(
        tracker=tracker, bot=bot, update_queue=asyncio.Queue(),
        busy_interval=busy_interval, max_hold=max_hold)
    app = (ApplicationBuilder().updater(updater)
           .concurrent_updates(TrackingUpdateProcessor(16, tracker)).build())
    app.add_handler(MessageHandler(filters.TEXT, handler))
    return app


@asynccontextmanager
async def polling(app: Application, *, crash: bool = False) -> AsyncIterator[Application]:
    await app.initialize()
    await app.start()
    assert isinstance(app.updater, ConfirmAfterHandlingUpdater)
    await app.updater.start_polling(poll_interval=0, timeout=1)
    try:
        yield app
    finally:
        await app.updater.stop()
        if not crash:
            await app.stop()
            await app.updater.confirm_handled()
            await app.shutdown()


async def test_an_update_handled_when_the_bot_died_is_delivered_again(api: BotApiStandin) -> None:
    alice = api.make_user("张三")
    chat = api.private_chat(alice)
    release = asyncio.Event()
    first_seen: list[str] = []

    async def slow(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.effective_message is not None
        text = update.effective_message.text or ""
        first_seen.append(text)
        if text == "慢":
            await release.wait()  # never released: the process "dies" in here
        await update.effective_message.reply_text(f"收到：{text}")

    dead = build(api, slow)
    async with polling(dead, crash=True):
        await api.send_text(alice, chat, "快1")
        await api.wait_for_bot_messages(alice, 1)
        await api.send_text(alice, chat, "慢")
        await api.send_text(alice, chat, "快2")
        await api.wait_for_bot_messages(alice, 1)  # 快2 answered while 慢 still runs
        await api.wait_until(lambda: len(first_seen) == 3, what="three updates handled")
        # The poller kept asking from the unfinished update on: it is not confirmed.
        assert api.updates.pending >= 1
    assert first_seen == ["快1", "慢", "快2"]

    seen_again: list[str] = []

    async def fine(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.effective_message is not None
        seen_again.append(update.effective_message.text or "")
        await update.effective_message.reply_text("重新收到")

    async with polling(build(api, fine)):
        [again] = await api.wait_for_bot_messages(alice, 1)
        await api.wait_idle()
    # 慢 comes back (and, as the oldest unconfirmed, so may what came after it: the
    # application's writes are kept from applying twice by models.inbox, not here).
    assert seen_again[0] == "慢" and "快1" not in seen_again
    assert again["text"] == "重新收到"
    assert api.updates.pending == 0  # confirmed at the clean shutdown


async def test_a_clean_stop_confirms_what_was_handled(api: BotApiStandin) -> None:
    alice = api.make_user("李四")
    chat = api.private_chat(alice)
    handled: list[str] = []

    async def echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.effective_message is not None
        handled.append(update.effective_message.text or "")
        await update.effective_message.reply_text("好")

    async with polling(build(api, echo)):
        for k in range(5):
            await api.send_text(alice, chat, f"第{k}条")
        await api.wait_for_bot_messages(alice, 5)
    assert handled == [f"第{k}" + "条" for k in range(5)]
    assert api.updates.pending == 0
    later: list[str] = []

    async def record(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        later.append("x")

    async with polling(build(api, record)):
        await api.wait_idle()
    assert later == []  # nothing delivered twice after a clean restart


async def test_a_stuck_handler_is_let_go_after_max_hold(api: BotApiStandin) -> None:
    alice = api.make_user("王五")
    chat = api.private_chat(alice)
    never = asyncio.Event()
    handled: list[str] = []

    async def stuck(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.effective_message is not None
        handled.append(update.effective_message.text or "")
        if update.effective_message.text == "卡住":
            await never.wait()

    app = build(api, stuck, max_hold=0.3)
    async with polling(app, crash=True):
        await api.send_text(alice, chat, "卡住")
        await api.send_text(alice, chat, "之后")
        await api.wait_until(lambda: handled == ["卡住", "之后"], what="both handled")
        await api.wait_until(lambda: api.updates.pending == 0, what="the stuck update let go", timeout=5)


def test_the_tracker_offset() -> None:
    clock = [0.0]
    t = UpdateTracker(clock=lambda: clock[0])
    assert t.offset(max_hold=10) is None and not t.busy
    assert t.begin(5) and t.begin(6) and t.begin(7)
    assert not t.begin(6)  # already being handled
    assert t.offset(max_hold=10) == 5
    t.done(6)
    assert t.offset(max_hold=10) == 5 and not t.begin(6)  # finished: never again here
    t.done(5)
    assert t.offset(max_hold=10) == 7
    t.done(7)
    assert t.offset(max_hold=10) == 8 and not t.busy
    assert t.mine(7) and not t.mine(8)
    assert t.begin(9)
    clock[0] = 11.0
    assert t.offset(max_hold=10) == 10  # 9 held too long: let go


# ------------------------------------------------------------- the real application


async def test_a_redelivered_report_is_not_applied_twice(
    standin: BotApiStandin, seeded_engine: Engine, bot_settings: Settings, clock: FakeClock
) -> None:
    """A report handled by a process that died before confirming it comes back to the next
    process: answered, but its write is not applied again (marks loaded at start-up, and
    the mark's key when the first process's mark appears later)."""
    api = standin
    liaison = api.make_user("李四")
    with read_only(seeded_engine) as s:
        campaign_id = s.exec(select(Campaign.id)).one()
    with transaction(seeded_engine) as s:
        add_demo_member(s, campaign_id=campaign_id, telegram_user_id=liaison.id, name="李四",
                        role=Role.liaison, unit="区财政局", now=clock(), private_chat_id=liaison.id)
    chat = api.private_chat(liaison)

    def app() -> Any:  # noqa: ANN401
        return build_application(settings=bot_settings, engine=seeded_engine, clock=clock, token=api.token,
                                 base_url=api.base_url, base_file_url=api.base_file_url)

    def writes() -> int:
        with read_only(seeded_engine) as s:
            return len(s.exec(select(AuditLog.id).where(AuditLog.action == "assignment.progress")).all())

    def task_no() -> int:
        with read_only(seeded_engine) as s:
            unit = s.exec(select(Unit).where(Unit.name == "区财政局")).one()
            a = s.exec(select(Assignment).where(Assignment.unit_id == unit.id)).first()
            assert a is not None
            return s.get(Task, a.task_id).no  # type: ignore[union-attr]

    no = task_no()
    async with running(app(), poll_timeout=1):
        sent = []
        for pct in (40, 50):
            await api.send_text(liaison, chat, f"/progress {no} {pct}")
            sent.append(api.updates.history[-1])
            [ok] = await api.wait_for_bot_messages(chat, 1)
            assert "✅" in ok["text"], ok["text"]
    assert writes() == 2
    first, second = (copy.deepcopy(u) for u in sent)

    def handled_elsewhere(update_id: int) -> None:
        with transaction(seeded_engine) as s:
            mark = s.get(HandledUpdate, update_id)
            assert mark is not None and mark.process == PROCESS
            mark.process = "an-earlier-process"  # as if the process that died had written it
            s.add(mark)

    handled_elsewhere(first["update_id"])
    async with running(app(), poll_timeout=1):
        api.updates.put(first)  # Telegram delivers it again: it was never confirmed
        [again] = await api.wait_for_bot_messages(chat, 1)
        assert again["text"] == HANDLED_BEFORE
        # The second one's mark appears only now (the earlier process's commit raced us):
        handled_elsewhere(second["update_id"])
        api.updates.put(second)
        [refused] = await api.wait_for_bot_messages(chat, 1)
        assert HANDLED_BEFORE in refused["text"]
        await api.send_text(liaison, chat, f"/progress {no} 60")  # a new report still works
        [ok] = await api.wait_for_bot_messages(chat, 1)
        assert "✅" in ok["text"]
    assert writes() == 3


# ------------------------------------------------------------------ never deaf (issue 14)


async def test_an_update_the_library_cannot_read_is_logged_raw_and_the_next_is_answered(
    api: BotApiStandin, caplog: pytest.LogCaptureFixture,
) -> None:
    seen: list[str] = []

    async def echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.effective_message is not None
        seen.append(update.effective_message.text or "")
        await update.effective_message.reply_text("收到")

    alice = api.make_user("张三")
    chat = api.private_chat(alice)
    async with polling(build(api, echo)):
        api.updates.put({"message": {"message_id": "不是数字", "chat": "也不是会话", "date": "?"}})
        await api.send_text(alice, chat, "你好")
        [answer] = await api.wait_for_bot_messages(alice, 1)
        await api.wait_idle()
    assert answer["text"] == "收到" and seen == ["你好"]
    assert "cannot read was skipped" in caplog.text and "也不是会话" in caplog.text
    assert api.updates.pending == 0  # the bad one was confirmed, not fetched for ever


async def test_a_server_that_ignores_the_long_poll_timeout_is_asked_a_few_times_a_second(
    api: BotApiStandin, monkeypatch: pytest.MonkeyPatch,
) -> None:
    original = api.updates.get

    async def at_once(offset: int | None, limit: int, wait: float, allowed_updates: list[str] | None) -> list[Any]:
        return await original(offset, limit, 0.0, allowed_updates)  # ignores ``timeout``

    monkeypatch.setattr(api.updates, "get", at_once)

    async def nothing(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        return None

    app = build(api, nothing)
    async with polling(app):
        before = api.stats.by_method["getUpdates"]
        await asyncio.sleep(2.0)
        polls = api.stats.by_method["getUpdates"] - before
    # Without the floor this was ~500 a second; with it, about 2 a second.
    assert 1 <= polls <= 8, polls


async def test_the_watchdog_restarts_a_polling_loop_that_ended(
    api: BotApiStandin, caplog: pytest.LogCaptureFixture,
) -> None:
    async def echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.effective_message is not None
        await update.effective_message.reply_text("还在")

    app = build(api, echo)
    updater = app.updater
    assert isinstance(updater, ConfirmAfterHandlingUpdater)
    updater.watchdog_every = 0.05
    alice = api.make_user("李四")
    async with polling(app):
        task = updater._task  # noqa: SLF001 - the loop, as a bug would leave it: ended
        assert task is not None
        task.cancel()
        await api.wait_until(lambda: updater.restarts == 1, what="the watchdog's restart")
        await api.send_text(alice, api.private_chat(alice), "在吗")
        [answer] = await api.wait_for_bot_messages(alice, 1)
    assert answer["text"] == "还在"
    assert "the polling loop ended" in caplog.text


async def test_polling_goes_on_after_an_unexpected_error(
    api: BotApiStandin, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.effective_message is not None
        await update.effective_message.reply_text("收到")

    app = build(api, echo)
    updater = app.updater
    assert isinstance(updater, ConfirmAfterHandlingUpdater)
    real = updater._fetch  # noqa: SLF001
    failures = iter([RuntimeError("a bug in a library")])

    async def flaky(**kwargs: Any) -> list[Any]:  # noqa: ANN401
        for exc in failures:
            raise exc
        return await real(**kwargs)

    monkeypatch.setattr(updater, "_fetch", flaky)
    monkeypatch.setattr("bot.polling.ConfirmAfterHandlingUpdater._sleep", _no_sleep)
    alice = api.make_user("王五")
    async with polling(app):
        await api.send_text(alice, api.private_chat(alice), "你好")
        [answer] = await api.wait_for_bot_messages(alice, 1)
    assert answer["text"] == "收到"
    assert "polling for updates failed unexpectedly" in caplog.text


async def _no_sleep(self: Any, seconds: float) -> None:  # noqa: ANN401
    await asyncio.sleep(0)
