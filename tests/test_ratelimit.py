"""bot.ratelimit: the bot's answers and the scheduler's nudges share one overall budget.

Through python-telegram-bot's real HTTP stack against the stand-in. The Pacer's windows
are stretched to 10 s so that nothing leaves them while a test runs.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from telegram.ext import ExtBot

from bot.ratelimit import PacedRateLimiter
from scheduler.pacing import Pacer
from standin import BotApiStandin

pytestmark = pytest.mark.timeout(30)



@pytest.fixture
def api(standin: BotApiStandin) -> BotApiStandin:
    """The harness's stand-in (tests/harness.py), by the name the stand-in tests use."""
    return standin


@pytest.fixture
def pacer() -> Pacer:
    return Pacer(global_per_second=3, window_scale=10.0)


@pytest.fixture
async def bot(api: BotApiStandin, pacer: Pacer) -> AsyncIterator[ExtBot]:
    b = ExtBot(api.token, base_url=api.base_url, base_file_url=api.base_file_url,
               rate_limiter=PacedRateLimiter(pacer, max_retries=0))
    async with b:
        yield b


async def test_answers_fill_the_nudges_window(api: BotApiStandin, bot: ExtBot, pacer: Pacer) -> None:
    people = [api.make_user(f"用户{k}") for k in range(4)]
    for person in people[:3]:
        await bot.send_message(person.id, "好的")  # an answer: counted in the overall window
    assert pacer.delay(people[3].id) > 0  # a nudge now waits for room
    # ... and so does a fourth answer (the window is 3 per ~10 s here).
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(bot.send_message(people[3].id, "第四条"), timeout=0.3)
    assert len(api.sent_messages(people[3])) == 0


async def test_a_paced_nudge_is_counted_once(api: BotApiStandin, bot: ExtBot, pacer: Pacer) -> None:
    people = [api.make_user(f"用户{k}") for k in range(3)]
    for person in people[:2]:
        async with pacer.sending(person.id):
            await bot.send_message(person.id, "提醒")
    # Two in the window of three: the limiter did not count them a second time.
    assert pacer.delay(people[2].id, only_global=True) == 0
    await bot.send_message(people[2].id, "好的")
    assert pacer.delay(people[2].id, only_global=True) > 0


async def test_answers_are_not_held_for_a_chats_own_window(api: BotApiStandin, bot: ExtBot, pacer: Pacer) -> None:
    """A /status and its chart go to the same private chat at once: only the overall window
    applies to answers (a nudge to that chat would wait a second)."""
    person = api.make_user("协调员")
    await bot.send_message(person.id, "/status 的文字")
    await asyncio.wait_for(bot.send_message(person.id, "紧接着的图表说明"), timeout=1.0)
    assert len(api.sent_messages(person)) == 2
    # Two of the three overall places used, none of the chat's own (1 per ~10 s here):
    assert pacer.delay(person.id) == 0
