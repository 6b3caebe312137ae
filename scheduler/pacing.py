"""Pacing within Telegram's flood limits, and honouring its 429 answers.

Telegram documents roughly 30 messages per second overall, 20 per minute per
group and about one per second per private chat. :class:`Pacer` keeps sliding
windows of what was sent and makes a sender wait until every window has room;
:meth:`Pacer.pause` blocks a chat after Telegram answered ``429 Too Many
Requests`` with ``retry_after``. ``window_scale`` shrinks every window (tests); ``margin`` widens them a little.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable

from qcbot.config import SchedulerConfig

_GLOBAL = 0  # key of the global window (no chat has id 0)


class Pacer:
    def __init__(
        self,
        *,
        global_per_second: int = 30,
        group_per_minute: int = 20,
        private_per_second: int = 1,
        window_scale: float = 1.0,
        margin: float = 0.1,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if window_scale <= 0 or margin < 0:
            raise ValueError("window_scale must be positive and margin not negative")
        # Windows are counted when a request leaves; Telegram counts when it arrives.
        # ``margin`` widens every window (10 % by default) so network jitter cannot
        # push a burst over the limit on Telegram's side.
        stretch = window_scale * (1.0 + margin)
        self._limits = {
            "global": (global_per_second, 1.0 * stretch),
            "group": (group_per_minute, 60.0 * stretch),
            "private": (private_per_second, 1.0 * stretch),
        }
        self._sent: dict[int, deque[float]] = {}
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
        while sent and sent[0] <= now - seconds:
            sent.popleft()
        if len(sent) < limit:
            return 0.0
        return sent[0] + seconds - now

    def delay(self, chat_id: int) -> float:
        """Seconds until one more message to ``chat_id`` fits every window."""
        now = self._clock()
        waits = [
            self._wait(_GLOBAL, "global", now),
            self._wait(chat_id, self.kind_of(chat_id), now),
            self._paused_until.get(chat_id, 0.0) - now,
            self._paused_until.get(_GLOBAL, 0.0) - now,
        ]
        return max(0.0, *waits)

    async def acquire(self, chat_id: int) -> None:
        """Wait until a message to ``chat_id`` may go, then count it."""
        while True:
            wait = self.delay(chat_id)
            if wait <= 0:
                now = self._clock()
                self._sent.setdefault(_GLOBAL, deque()).append(now)
                self._sent.setdefault(chat_id, deque()).append(now)
                return
            self.waited += wait
            await self._sleep(wait)

    def pause(self, chat_id: int, seconds: float) -> None:
        """Telegram said ``retry_after``: nothing more to ``chat_id`` for that long."""
        until = self._clock() + seconds
        self._paused_until[chat_id] = max(self._paused_until.get(chat_id, 0.0), until)
