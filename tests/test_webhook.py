"""Webhook mode end to end: the stand-in POSTs updates to the real application's webhook.

Telegram sends the secret given to setWebhook with every call; a call without it, or with
another, is refused (403) before anything is read, so nobody who reaches the port can post an
update "from" the coordinator. The answer waits until the update was handled, so an update is
delivered again after a crash, and ``models.inbox`` keeps its writes from applying twice.
"""

from __future__ import annotations

import copy
import json
import socket
import stat
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy.engine import Engine
from sqlmodel import select

from bot.app import build_application
from bot.demo import add_demo_member
from bot.polling import HANDLED_BEFORE, PROCESS
from bot.webhook import SECRET_HEADER, WebhookConfigError, serving, webhook_secret
from infra.config import MIN_WEBHOOK_SECRET as MIN_SECRET
from infra.config import Settings
from infra.db import read_only, transaction
from models.tables import (
    Assignment,
    AuditLog,
    Campaign,
    Chat,
    HandledUpdate,
    Member,
    Role,
    Task,
    Unit,
)
from standin import BotApiStandin
from tests.harness import FakeClock

pytestmark = pytest.mark.timeout(60)
SECRET = "s3cret-" + "x" * 40


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def webhook_settings(base: Settings, tmp: Path, *, secret: str = SECRET) -> Settings:
    port = _free_port()
    tg = base.telegram.model_copy(update={
        "mode": "webhook", "webhook_url": f"http://127.0.0.1:{port}/hook/qcbot",
        "webhook_listen": "127.0.0.1", "webhook_port": port,
        "webhook_secret": type(base.telegram.webhook_secret)(secret),
        "webhook_secret_file": tmp / "state" / "webhook-secret",
    })
    return base.model_copy(update={"telegram": tg})


def _app(settings: Settings, engine: Engine, clock: FakeClock, api: BotApiStandin) -> Any:  # noqa: ANN401
    return build_application(settings=settings, engine=engine, clock=clock, token=api.token,
                             base_url=api.base_url, base_file_url=api.base_file_url)


def _liaison(api: BotApiStandin, engine: Engine, clock: FakeClock, name: str = "李四") -> Any:  # noqa: ANN401
    user = api.make_user(name)
    with read_only(engine) as s:
        campaign_id = s.exec(select(Campaign.id)).one()
    with transaction(engine) as s:
        add_demo_member(s, campaign_id=campaign_id, telegram_user_id=user.id, name=name,
                        role=Role.liaison, unit="区财政局", now=clock(), private_chat_id=user.id)
    return user


def _task_no(engine: Engine) -> int:
    with read_only(engine) as s:
        unit = s.exec(select(Unit).where(Unit.name == "区财政局")).one()
        a = s.exec(select(Assignment).where(Assignment.unit_id == unit.id)).first()
        assert a is not None
        return s.get(Task, a.task_id).no  # type: ignore[union-attr]


def _writes(engine: Engine) -> int:
    with read_only(engine) as s:
        return len(s.exec(select(AuditLog.id).where(AuditLog.action == "assignment.progress")).all())


async def _post(url: str, body: dict[str, Any], headers: dict[str, str]) -> int:
    async with aiohttp.ClientSession() as session, session.post(
            url, data=json.dumps(body), headers={"Content-Type": "application/json", **headers}) as resp:
        return resp.status


async def test_updates_arrive_by_webhook_and_a_call_without_the_secret_changes_nothing(
    standin: BotApiStandin, seeded_engine: Engine, bot_settings: Settings, clock: FakeClock, tmp_path: Path,
) -> None:
    api = standin
    settings = webhook_settings(bot_settings, tmp_path)
    liaison = _liaison(api, seeded_engine, clock)
    coordinator = api.make_user("王主任")
    with read_only(seeded_engine) as s:
        campaign_id = s.exec(select(Campaign.id)).one()
    with transaction(seeded_engine) as s:
        add_demo_member(s, campaign_id=campaign_id, telegram_user_id=coordinator.id, name="王主任",
                        role=Role.coordinator, now=clock(), private_chat_id=coordinator.id)
    no = _task_no(seeded_engine)
    async with serving(_app(settings, seeded_engine, clock, api), settings) as server:
        [hook] = [c for c in api.calls if c.method == "setWebhook"]
        assert hook.params["secret_token"] == SECRET and hook.params["url"] == settings.telegram.webhook_url
        await api.send_text(liaison, liaison, f"/progress {no} 30")
        [ok] = await api.wait_for_bot_messages(liaison, 1)
        assert "30%" in ok["text"]
        assert _writes(seeded_engine) == 1

        # An attacker posts an update "from" the coordinator, with their own chat: refused.
        forged = copy.deepcopy(api.updates.history[-1])
        forged["update_id"] = 999_001
        forged["message"]["from"] = {"id": coordinator.id, "is_bot": False, "first_name": "王主任"}
        forged["message"]["chat"] = {"id": 66_666, "type": "private", "first_name": "attacker"}
        forged["message"]["text"] = "/export"
        url = settings.telegram.webhook_url
        await api.wait_idle()  # the menus and the answer above are all sent
        before = len(api.calls)
        assert await _post(url, forged, {}) == 403
        assert await _post(url, forged, {SECRET_HEADER: "wrong-" + "y" * 40}) == 403
        assert await _post(url, forged, {SECRET_HEADER: SECRET[:-1]}) == 403
        assert server.refused == 3
        await api.wait_idle()
        assert len(api.calls) == before  # nothing was sent to anyone
        with read_only(seeded_engine) as s:
            member = s.exec(select(Member).where(Member.telegram_user_id == coordinator.id)).one()
            assert member.private_chat_id == coordinator.id  # the coordinator's chat is untouched
            assert s.exec(select(Chat).where(Chat.telegram_chat_id == 66_666)).first() is None
            assert s.get(HandledUpdate, 999_001) is None
        # Every update the stand-in delivered was answered 200.
        assert {status for _, status in api.webhook_calls} == {200}


async def test_a_bad_update_is_skipped_and_the_next_one_answered(
    standin: BotApiStandin, seeded_engine: Engine, bot_settings: Settings, clock: FakeClock,
    tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    api = standin
    settings = webhook_settings(bot_settings, tmp_path)
    liaison = _liaison(api, seeded_engine, clock)
    async with serving(_app(settings, seeded_engine, clock, api), settings):
        api.updates.put({"message": {"message_id": "not a number", "chat": "nonsense"}})
        await api.send_text(liaison, liaison, "/whoami")
        [answer] = await api.wait_for_bot_messages(liaison, 1)
        assert "Telegram ID" in answer["text"]
    assert "cannot read was skipped" in caplog.text and "nonsense" in caplog.text
    assert api.updates.pending == 0


async def test_a_restart_loses_no_update_and_applies_none_twice(
    standin: BotApiStandin, seeded_engine: Engine, bot_settings: Settings, clock: FakeClock, tmp_path: Path,
) -> None:
    api = standin
    settings = webhook_settings(bot_settings, tmp_path)
    liaison = _liaison(api, seeded_engine, clock)
    no = _task_no(seeded_engine)
    async with serving(_app(settings, seeded_engine, clock, api), settings):
        await api.send_text(liaison, liaison, f"/progress {no} 40")
        [ok] = await api.wait_for_bot_messages(liaison, 1)
        assert "40%" in ok["text"]
        handled = copy.deepcopy(api.updates.history[-1])
    # The bot is down: Telegram keeps trying to deliver what is sent meanwhile.
    await api.send_text(liaison, liaison, f"/progress {no} 50")
    await api.wait_until(lambda: any(status == 0 for _, status in api.webhook_calls), what="a failed delivery")
    assert api.updates.pending == 1

    # As if the process that wrote the first report had died before answering Telegram.
    with transaction(seeded_engine) as s:
        mark = s.get(HandledUpdate, handled["update_id"])
        assert mark is not None and mark.process == PROCESS
        mark.process = "an-earlier-process"
        s.add(mark)
    api.updates.put(handled)
    async with serving(_app(settings, seeded_engine, clock, api), settings):
        answers = await api.wait_for_bot_messages(liaison, 2)
        texts = sorted(a["text"] for a in answers)
        assert any("50%" in t for t in texts), texts
        assert any(HANDLED_BEFORE in t for t in texts), texts
        await api.wait_idle()
    assert _writes(seeded_engine) == 2  # 40 and 50, the redelivered 40 not again
    assert api.updates.pending == 0


def test_the_secret_is_required_long_and_kept_when_made(bot_settings: Settings, tmp_path: Path) -> None:
    short = webhook_settings(bot_settings, tmp_path, secret="short-secret")
    with pytest.raises(WebhookConfigError, match=str(MIN_SECRET)):
        webhook_secret(short.telegram)
    made_settings = webhook_settings(bot_settings, tmp_path, secret="")
    made = webhook_secret(made_settings.telegram)
    assert len(made) >= MIN_SECRET
    kept = made_settings.telegram.webhook_secret_file
    assert kept.read_text().strip() == made
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    assert webhook_secret(made_settings.telegram) == made  # the same one at the next start
