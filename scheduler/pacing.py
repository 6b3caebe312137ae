"""Pacing within Telegram's flood limits, and honouring its 429 answers.

Telegram documents roughly 30 messages per second overall, 20 per minute per
group and about one per second per private chat. :class:`Pacer` keeps sliding
windows of what was sent and makes a sender wait until every window has room;
:meth:`Pacer.pause` blocks a chat after Telegram answered ``429 Too Many
Requests`` with ``retry_after``. ``window_scale`` shrinks every window (tests);
``margin`` widens them a little.

Telegram counts a message when its request arrives; the sender only knows when
it asked (:meth:`Pacer.sending` counts it then) and when the answer came back.
The arrival lies between the two, so a message sent through
:meth:`Pacer.sending` is placed in the windows at the moment its answer came
back (while it is in flight: now), never earlier than Telegram may have counted
it. Counting at the moment of asking instead trusts that every request arrives
within ``margin`` of it: a stall of the sender's event loop between the two
(a garbage collection, a thread holding the GIL, a busy CPU) broke that trust,
the earlier message arrived late, the next window opened early, and Telegram
answered 429 (measured: a 139 ms stall with a 10 % margin; python-telegram-bot's
AIORateLimiter then holds every request for ``retry_after`` and lets them go at
once, and one 429 became 100–150 in a 2,000-message run). The price is the round
trip: the windows start up to one round trip later than Telegram's (locally a few
ms; across the internet ~30 per (1.05 s + round trip)).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from infra.config import SchedulerConfig

_GLOBAL = 0  # key of the global window (no chat has id 0)
#: True inside :meth:`Pacer.sending`: the request being made is counted already (the bot's
#: rate limiter, ``bot.ratelimit``, counts every other message in the global window).
PACED: ContextVar[bool] = ContextVar("qcbot_paced", default=False)


@dataclass(slots=True)
class _Send:
    """One message in the windows: counted at ``at``; in flight until ``done``."""

    at: float
    done: bool = True


class Pacer:
    def __init__(
        self,
        *,
        global_per_second: int = 30,
        group_per_minute: int = 20,
        private_per_second: int = 1,
        window_scale: float = 1.0,
        margin: float = 0.05,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if window_scale <= 0 or margin < 0:
            raise ValueError("window_scale must be positive and margin not negative")
        # ``margin`` widens every window (5 % by default) for what the pacing cannot see,
        # e.g. Telegram counting a little differently from a strict sliding window. It no
        # longer has to absorb the delay between asking and arriving (:meth:`sending`
        # counts a message at its answer), so it was lowered from 10 %, which capped the
        # rate at 30 per 1.1 s = 90.9 % of 30/s, right on the 90 % target. Measured against
        # the stand-in (30/s, 20/min per group, 1/s per private chat; 2,000 nudges and
        # 109 digest charts): 95 % of 30/s and 0 429s in 4 runs (3 with the charts, 1
        # without); with two CPU hogs on the 2 cores 75 %, still 0 429s; margin 0.1 gave
        # 91 %, margin 0 99.7 %, 0 429s each.
        stretch = window_scale * (1.0 + margin)
        self._limits = {
            "global": (global_per_second, 1.0 * stretch),
            "group": (group_per_minute, 60.0 * stretch),
            "private": (private_per_second, 1.0 * stretch),
        }
        self._sent: dict[int, deque[_Send]] = {}
        self._paused_until: dict[int, float] = {}
        self._clock = clock
        self._sleep = sleep
        self.waited = 0.0  # seconds spent waiting (for reports)

    @classmethod
    def from_config(cls, config: SchedulerConfig, *, window_scale: float = 1.0) -> Pacer:
        return cls(
            global_per_second=config.pace_global_per_second,
            group_per_minute=config.pace_group_per_minute,
            private_per_second=config.pace_private_per_second,
            window_scale=window_scale,
        )

    @staticmethod
    def kind_of(chat_id: int) -> str:
        """Private chats have positive ids; groups, supergroups and channels negative."""
        return "private" if chat_id > 0 else "group"

    def _wait(self, key: int, window: str, now: float) -> float:
        limit, seconds = self._limits[window]
        sent = self._sent.setdefault(key, deque())
        while sent and sent[0].done and sent[0].at <= now - seconds:
            sent.popleft()
        # A message still in flight may arrive any moment: it counts as sent now.
        times = sorted(s.at if s.done else now for s in sent if not s.done or s.at > now - seconds)
        if len(times) < limit:
            return 0.0
        return times[len(times) - limit] + seconds - now

    def delay(self, chat_id: int, *, only_global: bool = False) -> float:
        """Seconds until one more message to ``chat_id`` fits every window (``only_global``:
        the overall one)."""
        now = self._clock()
        waits = [self._wait(_GLOBAL, "global", now), self._paused_until.get(_GLOBAL, 0.0) - now]
        if not only_global:
            waits += [
                self._wait(chat_id, self.kind_of(chat_id), now),
                self._paused_until.get(chat_id, 0.0) - now,
            ]
        return max(0.0, *waits)

    async def _count(self, chat_id: int, *, in_flight: bool, only_global: bool = False) -> _Send:
        while True:
            wait = self.delay(chat_id, only_global=only_global)
            if wait <= 0:
                send = _Send(self._clock(), done=not in_flight)
                self._sent.setdefault(_GLOBAL, deque()).append(send)
                if not only_global:
                    self._sent.setdefault(chat_id, deque()).append(send)
                return send
            self.waited += wait
            await self._sleep(wait)

    async def acquire(self, chat_id: int) -> None:
        """Wait until a message to ``chat_id`` may go, then count it as sent now."""
        await self._count(chat_id, in_flight=False)

    @asynccontextmanager
    async def sending(self, chat_id: int, *, only_global: bool = False) -> AsyncIterator[None]:
        """``async with pacer.sending(chat_id): await bot.send_...``: wait for room, then
        count the message as in flight until the block ends, and as sent at that moment.

        ``only_global``: wait for and count in the overall window only. The bot's answers to
        people use it (``bot.ratelimit``): they share the 30/s with the nudges, so the nudges
        make room for them, but an answer is not held for a chat's own window (a /status
        and its chart, a two-page report: python-telegram-bot's rate limiter keeps the
        per-group minute)."""
        send = await self._count(chat_id, in_flight=True, only_global=only_global)
        token = PACED.set(True)
        try:
            yield
        finally:
            PACED.reset(token)
            send.at = max(send.at, self._clock())
            send.done = True

    def pause(self, chat_id: int, seconds: float) -> None:
        """Telegram said ``retry_after``: nothing more to ``chat_id`` for that long."""
        until = self._clock() + seconds
        self._paused_until[chat_id] = max(self._paused_until.get(chat_id, 0.0), until)
