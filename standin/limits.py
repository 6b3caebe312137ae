"""Telegram's flood limits, as sliding windows (off until enabled)."""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["RateLimits"]

_GLOBAL = "global"


@dataclass(frozen=True)
class _Window:
    """At most ``limit`` sends per ``seconds``."""

    limit: int
    seconds: float


class RateLimits:
    """Flood control for the sending methods.

    Telegram documents roughly 30 messages per second overall, 20 per minute per group
    and one per second per private chat.  The stand-in enforces them as strict sliding
    windows (stricter than Telegram, which tolerates short bursts in private chats).
    ``window_scale`` shrinks every window so tests need not wait a real minute: with
    ``window_scale=0.05`` "20 per minute" becomes 20 per 3 seconds.  ``retry_after`` is
    always reported in whole seconds, at least 1, as Telegram does.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._windows: dict[str, _Window] = {}
        self._sent: dict[str, deque[float]] = {}
        self.enabled = False

    def enable(
        self,
        *,
        global_per_second: int | None = 30,
        per_group_per_minute: int | None = 20,
        per_private_per_second: int | None = 1,
        window_scale: float = 1.0,
    ) -> None:
        """Turn flood control on; ``None`` switches a single limit off."""
        if window_scale <= 0:
            raise ValueError("window_scale must be positive")
        self._windows = {}
        if global_per_second:
            self._windows[_GLOBAL] = _Window(global_per_second, 1.0 * window_scale)
        if per_group_per_minute:
            self._windows["group"] = _Window(per_group_per_minute, 60.0 * window_scale)
        if per_private_per_second:
            self._windows["private"] = _Window(per_private_per_second, 1.0 * window_scale)
        self._sent.clear()
        self.enabled = True

    def disable(self) -> None:
        """Turn flood control off and forget the history."""
        self.enabled = False
        self._sent.clear()

    def acquire(self, chat_id: int, chat_kind: str) -> int | None:
        """Count one send to ``chat_id``; returns ``retry_after`` seconds if over a limit.

        ``chat_kind`` is ``"group"`` (groups, supergroups and channels) or ``"private"``.
        A refused send is not counted.
        """
        if not self.enabled:
            return None
        now = self._clock()
        keys = [(_GLOBAL, _GLOBAL), (f"{chat_kind}:{chat_id}", chat_kind)]
        waits = [self._wait(key, kind, now) for key, kind in keys if kind in self._windows]
        longest = max(waits, default=0.0)
        if longest > 0:
            return max(1, math.ceil(longest))
        for key, kind in keys:
            if kind in self._windows:
                self._sent.setdefault(key, deque()).append(now)
        return None

    def _wait(self, key: str, kind: str, now: float) -> float:
        """Seconds until the window ``kind`` of ``key`` admits one more send."""
        window = self._windows[kind]
        sent = self._sent.setdefault(key, deque())
        while sent and sent[0] <= now - window.seconds:
            sent.popleft()
        if len(sent) < window.limit:
            return 0.0
        return sent[0] + window.seconds - now
