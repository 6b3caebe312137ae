"""bot.gate, through the real stack: outsiders cannot make the bot work for them or slow it down.

* an outsider's group: no answer to anyone's /bindgroup but a known coordinator's;
* a stranger in private: one short answer (with their Telegram ID) an hour, then silence;
  their invite link still works;
* every person has a budget; what goes over it is dropped and logged, others are not touched;
* answers wait in a per-chat queue, not in the handler (bot.replies): a busy group's answers
  never hold the slots the coordinator's private command needs.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest
from sqlmodel import select

from bot.gate import STRANGER_TEXT, UNBOUND_NOTICE
from infra.config import Settings
from models.tables import Role
from tests.fuzzing import relax_flood_control, settle
from tests.harness import Harness, make_settings

BUDGET_BURST = 5


@pytest.fixture
def bot_settings(db_url: str, tmp_path: Path) -> Settings:
    """The harness's settings with a small per-person budget (the harness turns it off)."""
    return make_settings(db_url=db_url, storage_dir=tmp_path / "evidence",
                         telegram={"user_budget_per_minute": 60, "user_budget_burst": BUDGET_BURST,
                                   "concurrent_updates": 4})


def _quoting(h: Harness, chat: object, message: dict) -> list[str]:
    return [m.get("text") or "" for m in h.api.sent_messages(chat)  # type: ignore[arg-type]
            if (m.get("reply_to_message") or {}).get("message_id") == message["message_id"]]


async def test_an_outsiders_group_gets_no_answer_to_bindgroup_and_the_coordinator_is_served(harness: Harness) -> None:
    h = harness
    relax_flood_control(h.app)
    coord = await h.coordinator()
    outsider = h.api.make_user("捣乱者")
    their_group = h.api.make_group("外人的群", members=[outsider])
    for _ in range(3):  # within the outsider's budget: the gate, not the budget, silences them
        await h.api.send_text(outsider, their_group, "/bindgroup")
    [me] = await h.say(coord, coord, "/whoami")
    assert "Telegram ID" in me["text"]
    await settle(h.api, h.app)
    assert h.api.sent_messages(their_group) == []  # not even the notice: only /bindgroup was said
    await h.api.send_text(outsider, their_group, "大家好")
    await settle(h.api, h.app)
    assert [m["text"] for m in h.api.sent_messages(their_group)] == [UNBOUND_NOTICE]
    # A coordinator's /bindgroup there still binds it.
    h.api.world.set_status(their_group.id, coord.id, "member")  # type: ignore[arg-type]
    [bound] = await h.say(coord, their_group, "/bindgroup")
    assert "已绑定" in bound["text"]


async def test_a_stranger_gets_one_short_answer_then_silence_and_their_invite_still_works(harness: Harness) -> None:
    h = harness
    coord = await h.coordinator()
    stranger = h.api.make_user("陌生人")
    first = await h.api.send_text(stranger, stranger, "/status")
    await settle(h.api, h.app)
    second = await h.api.send_text(stranger, stranger, "你好")
    third = await h.api.send_text(stranger, stranger, "/whoami")
    await settle(h.api, h.app)
    answers = [_quoting(h, stranger, m) for m in (first, second, third)]
    expected = re.sub(r"</?code>", "", STRANGER_TEXT.format(user_id=stranger.id))
    assert answers == [[expected], [], []]
    token = (await h.invite_link(coord, "区财政局")).split("start=", 1)[1]
    [welcome] = await h.say(stranger, stranger, f"/start {token}")
    assert "欢迎" in welcome["text"]
    [me] = await h.say(stranger, stranger, "/whoami")  # a member now: answered every time
    assert "区财政局" in me["text"]
    assert h.app.bot_data["guard"].strangers_ignored == 2


async def test_a_person_over_their_budget_is_dropped_and_logged_others_are_not(
    harness: Harness, caplog: pytest.LogCaptureFixture,
) -> None:
    h = harness
    relax_flood_control(h.app)
    caplog.set_level(logging.WARNING, logger="bot.gate")
    coord = await h.coordinator()  # one /start of the coordinator's budget
    liaison = h.api.make_user("话痨")
    h.add_member(liaison, Role.liaison, "区财政局")
    sent = [await h.api.send_text(liaison, liaison, "/whoami") for _ in range(12)]
    await settle(h.api, h.app)
    answered = [m for m in sent if _quoting(h, liaison, m)]
    assert len(answered) == BUDGET_BURST
    assert h.app.bot_data["guard"].dropped == 12 - BUDGET_BURST
    assert sum("over their budget" in r.getMessage() for r in caplog.records) == 1  # one line a minute
    [me] = await h.say(coord, coord, "/whoami")  # somebody else is not touched
    assert "Telegram ID" in me["text"]


async def test_answers_to_a_busy_group_do_not_hold_the_handlers(harness: Harness) -> None:
    """Four handler slots; thirty answers for one group, ten more than its budget: the
    coordinator's private command is still handled (bot.replies)."""
    h = harness
    coord = await h.coordinator()
    group = await h.bound_group(coord)
    liaisons = []
    for i in range(8):
        user = h.api.make_user(f"联络员{i}")
        h.add_member(user, Role.liaison, "区财政局")
        liaisons.append(user)
    # Telegram's 20 a minute into one group (the bot's own rate limiter): the answers after the
    # twentieth wait for the budget, in the group's queue.
    for i in range(30):
        await h.api.send_text(liaisons[i % len(liaisons)], group, "/help")
    [me] = await h.say(coord, coord, "/whoami")
    assert "Telegram ID" in me["text"]
    replies = h.app.bot_data["replies"]
    assert replies.queued > 0  # the group's answers are still waiting
    await settle_handlers(h)
    await replies.drain(timeout=0.1)  # (what still waits is given up, as at a stop)
    assert replies.queued == 0


async def settle_handlers(h: Harness) -> None:
    """Until every update was handled (their answers may still wait in the queue)."""
    import asyncio

    for _ in range(500):
        if h.app.update_queue.empty() and h.app.update_processor.current_concurrent_updates == 0:
            return
        await asyncio.sleep(0.01)


async def test_a_private_message_from_another_chat_changes_no_ones_chat(harness: Harness) -> None:
    """A member's private chat is learnt only from a private chat whose id is the sender's:
    an update "from" the coordinator in someone else's chat (forged) changes nothing."""
    from models.tables import Member

    h = harness
    coord = await h.coordinator()
    attacker_chat = 777_000_001
    h.api.enqueue_raw_update({"message": {
        "message_id": 1, "date": 1_700_000_000, "text": "/whoami",
        "entities": [{"type": "bot_command", "offset": 0, "length": 7}],
        "from": {"id": coord.id, "is_bot": False, "first_name": "王主任"},
        "chat": {"id": attacker_chat, "type": "private", "first_name": "attacker"},
    }})
    await settle(h.api, h.app)
    with h.db() as s:
        member = s.exec(select(Member).where(Member.telegram_user_id == coord.id)).one()
        assert member.private_chat_id == coord.id
        assert s.exec(select(Member).where(Member.private_chat_id == attacker_chat)).first() is None
