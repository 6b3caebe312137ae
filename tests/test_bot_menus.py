"""Command menus at scale: sent in the background at start-up, refreshed only where they changed.

The stand-in keeps the menu of every scope (``api.commands``) and records every call; a
test that must catch the bot mid-way holds the stand-in's answer to setMyCommands.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import select

from bot.app import build_application, running
from bot.commands import Scope, menu
from bot.demo import add_demo_member
from infra.config import Settings
from infra.db import transaction
from models.permissions import Standing
from models.tables import Campaign, Chat, ChatKind, Role
from standin import BotApiStandin
from tests.harness import FakeClock, Harness

MENU_METHODS = ("setmycommands", "deletemycommands")


def names(role: Standing, scope: Scope) -> list[str]:
    return [c.command for c in menu(role, scope)]


def menu_of(api: BotApiStandin, scope: dict[str, Any]) -> list[str] | None:
    """The command names the stand-in holds for ``scope`` (None: not set, the defaults apply)."""
    stored = api.api.commands.get(json.dumps([scope, ""], sort_keys=True))
    return None if stored is None else [c["command"] for c in stored]


def private(user_id: int) -> dict[str, Any]:
    return {"type": "chat", "chat_id": user_id}


def in_group(chat_id: int, user_id: int) -> dict[str, Any]:
    return {"type": "chat_member", "chat_id": chat_id, "user_id": user_id}


def menu_calls(api: BotApiStandin, since: int = 0) -> list[Any]:
    return [c for c in api.calls[since:] if c.method.lower() in MENU_METHODS]


@contextmanager
def held_menus(api: BotApiStandin) -> Iterator[dict[str, Any]]:
    """The stand-in answers setMyCommands/deleteMyCommands only once ``state["gate"]`` is set."""
    state: dict[str, Any] = {"gate": asyncio.Event(), "waiting": 0}
    originals = {name: getattr(api.api, name) for name in ("set_my_commands", "delete_my_commands")}

    def hold(original: Any) -> Any:  # noqa: ANN401
        async def held(params: Any) -> Any:  # noqa: ANN401
            state["waiting"] += 1
            try:
                await state["gate"].wait()
            finally:
                state["waiting"] -= 1
            return await original(params)

        return held

    for name, original in originals.items():
        setattr(api.api, name, hold(original))
    try:
        yield state
    finally:
        state["gate"].set()
        for name, original in originals.items():
            setattr(api.api, name, original)


async def settle(app: Any) -> None:  # noqa: ANN401
    """Until the menus' task has nothing left to do."""
    await asyncio.wait_for(app.bot_data["menus"].wait_idle(), 10)


def province(engine: Engine, api: BotApiStandin, clock: FakeClock) -> dict[str, Any]:
    """A coordinator and a leader with private chats, and a bound group, in the seeded campaign."""
    coord, leader = api.make_user("王主任"), api.make_user("李局长")
    group = api.make_group("质量强区工作群", members=[coord, leader])
    with transaction(engine) as s:
        cid = s.exec(select(Campaign.id)).one()
        for user, role in ((coord, Role.coordinator), (leader, Role.leader)):
            add_demo_member(s, campaign_id=cid, telegram_user_id=user.id, name=user.full_name, role=role,
                            now=clock(), private_chat_id=user.id)
        s.add(Chat(telegram_chat_id=group.id, campaign_id=cid, kind=ChatKind.group, title=group.title))
    return {"coord": coord, "leader": leader, "group": group}


# ====================================================================== start-up


async def test_updates_are_answered_while_the_menus_are_still_being_sent(
    standin: BotApiStandin, seeded_engine: Engine, bot_settings: Settings, clock: FakeClock
) -> None:
    cast = province(seeded_engine, standin, clock)
    coord, leader, group = cast["coord"], cast["leader"], cast["group"]
    app = build_application(settings=bot_settings, engine=seeded_engine, clock=clock, token=standin.token,
                            base_url=standin.base_url, base_file_url=standin.base_file_url)
    with held_menus(standin) as hold:
        async with running(app, poll_timeout=1):
            # The first menu call is waiting for the stand-in; the bot polls all the same.
            await standin.wait_until(lambda: hold["waiting"] > 0, what="a menu call held")
            chat = standin.private_chat(coord)
            standin.mark(chat)
            await standin.send_text(coord, chat, "/whoami")
            [answer] = await standin.wait_for_bot_messages(chat, count=1)
            assert "协调员" in answer["text"]
            assert menu_calls(standin) == [] and app.bot_data["menus"].running
            hold["gate"].set()
            await settle(app)
            await standin.wait_idle()
            # Once released, every scope got its menu from the one list.
            assert menu_of(standin, {"type": "all_private_chats"}) == names(Standing.liaison_responsible, Scope.private)
            assert menu_of(standin, {"type": "all_group_chats"}) == names(Standing.liaison_responsible, Scope.group)
            assert menu_of(standin, private(coord.id)) == names(Standing.coordinator, Scope.private)
            assert menu_of(standin, private(leader.id)) == names(Standing.leader, Scope.private)
            assert menu_of(standin, in_group(group.id, coord.id)) == names(Standing.coordinator, Scope.group)
            assert menu_of(standin, in_group(group.id, leader.id)) == names(Standing.leader, Scope.group)
            assert all(c.status == 200 for c in menu_calls(standin))


async def test_stopping_while_the_menus_are_sent_is_clean(
    standin: BotApiStandin, seeded_engine: Engine, bot_settings: Settings, clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    province(seeded_engine, standin, clock)
    caplog.set_level(logging.INFO)
    app = build_application(settings=bot_settings, engine=seeded_engine, clock=clock, token=standin.token,
                            base_url=standin.base_url, base_file_url=standin.base_file_url)
    menus = app.bot_data["menus"]
    with held_menus(standin) as hold:
        async with running(app, poll_timeout=1):
            await standin.wait_until(lambda: hold["waiting"] > 0, what="a menu call held")
        # Stopped with a menu call in flight: the task is gone, nothing failed.
        assert not menus.running
    assert not [t for t in asyncio.all_tasks() if t.get_name() == "qcbot-menus"]
    problems = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not problems, [r.getMessage() for r in problems]
    assert "stopped before all were sent" in caplog.text


# ====================================================================== changes


async def _second_campaign(harness: Harness) -> dict[str, Any]:
    """Campaign A (the harness's) and B, each with a coordinator and a bound group."""
    _, coord_a, group_a, coord_b = await harness.second_campaign()
    await harness.say(coord_b, coord_b, "/start")
    group_b = harness.api.make_group("乙区工作群", members=[coord_b])
    await harness.say(coord_b, group_b, "/bindgroup")
    await settle(harness.app)
    await harness.idle()
    return {"coord_a": coord_a, "group_a": group_a, "coord_b": coord_b, "group_b": group_b}


def _key(scope: dict[str, Any]) -> str:
    return json.dumps(scope, sort_keys=True)


def _scopes(calls: list[Any]) -> list[dict[str, Any]]:
    return [c.params["scope"] for c in calls]


async def test_a_join_refreshes_only_the_scopes_of_who_joined(harness: Harness) -> None:
    w = await _second_campaign(harness)
    coord_b, group_b = w["coord_b"], w["group_b"]
    # The one group B's coordinator bound: its coordinator's menu there, nobody else's.
    assert menu_of(harness.api, in_group(group_b.id, coord_b.id)) == names(Standing.coordinator, Scope.group)
    assert menu_of(harness.api, private(coord_b.id)) == names(Standing.coordinator, Scope.private)

    since = len(harness.api.calls)
    [msg] = await harness.say(coord_b, coord_b, "/invite leader")
    token = msg["text"].split("start=", 1)[1].split()[0]
    leader = harness.api.make_user("乙区领导")
    [welcome] = await harness.say(leader, leader, f"/start {token}")
    assert "欢迎" in welcome["text"]
    await settle(harness.app)
    await harness.idle()
    calls = menu_calls(harness.api, since)
    assert {c.method for c in calls} == {"setMyCommands"}
    assert sorted(_scopes(calls), key=_key) == sorted(
        [private(leader.id), in_group(group_b.id, leader.id)], key=_key)
    assert menu_of(harness.api, private(leader.id)) == names(Standing.leader, Scope.private)
    assert menu_of(harness.api, in_group(group_b.id, leader.id)) == names(Standing.leader, Scope.group)
    # Campaign A's people and group were not touched.
    assert not [s for s in _scopes(calls) if w["coord_a"].id in (s.get("chat_id"), s.get("user_id"))
                or s.get("chat_id") == w["group_a"].id]

    # Removed: the same two scopes go back to the defaults, and nothing else is sent.
    since = len(harness.api.calls)
    [done] = await harness.say(coord_b, coord_b, f"/remove {leader.id}")
    assert "已移出" in done["text"]
    await settle(harness.app)
    await harness.idle()
    calls = menu_calls(harness.api, since)
    assert {c.method for c in calls} == {"deleteMyCommands"}
    assert sorted(_scopes(calls), key=_key) == sorted(
        [private(leader.id), in_group(group_b.id, leader.id)], key=_key)
    assert menu_of(harness.api, private(leader.id)) is None
    assert menu_of(harness.api, in_group(group_b.id, leader.id)) is None
    assert menu_of(harness.api, private(coord_b.id)) == names(Standing.coordinator, Scope.private)


async def test_binding_a_group_refreshes_only_that_group(harness: Harness) -> None:
    w = await _second_campaign(harness)
    coord_a = w["coord_a"]
    leader = harness.api.make_user("甲区领导")
    harness.add_member(leader, Role.leader)
    since = len(harness.api.calls)
    group = harness.api.make_group("甲区第二工作群", members=[coord_a, leader])
    [bound] = await harness.say(coord_a, group, "/bindgroup")
    assert "已绑定" in bound["text"]
    await settle(harness.app)
    await harness.idle()
    calls = menu_calls(harness.api, since)
    assert sorted(_scopes(calls), key=_key) == sorted(
        [in_group(group.id, coord_a.id), in_group(group.id, leader.id)], key=_key)
    assert menu_of(harness.api, in_group(group.id, leader.id)) == names(Standing.leader, Scope.group)


async def test_a_liaison_who_coordinates_elsewhere_keeps_the_menu_their_private_chat_resolves_to(
    harness: Harness,
) -> None:
    """One person, two campaigns: the private chat follows the campaign it resolves to."""
    w = await _second_campaign(harness)
    coord_a, coord_b = w["coord_a"], w["coord_b"]
    # Campaign A's coordinator joins campaign B as a liaison; their private chat still
    # resolves to A (the first campaign among their active memberships): coordinator's menu.
    link = await harness.invite_link(coord_b, "区财政局")
    [welcome] = await harness.say(coord_a, coord_a, f"/start {link.split('start=', 1)[1]}")
    assert "欢迎" in welcome["text"]
    await settle(harness.app)
    await harness.idle()
    assert menu_of(harness.api, private(coord_a.id)) == names(Standing.coordinator, Scope.private)
    assert menu_of(harness.api, in_group(w["group_a"].id, coord_a.id)) == names(Standing.coordinator, Scope.group)
    assert menu_of(harness.api, in_group(w["group_b"].id, coord_a.id)) is None
