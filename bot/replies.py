"""Answers go out from a per-chat queue, not from the handler that made them.

Telegram lets a bot send about 20 messages a minute into one group; python-telegram-bot's rate
limiter makes a send wait for that budget. A handler that awaited its answer held one of the
``concurrent_updates`` slots all that time: 45 refusals into one busy group filled every slot, and
the coordinator's private ``/whoami`` waited 56 s. Here a handler hands its answer to
:class:`Replies` and returns, freeing its slot; the answers to one chat go out one after the
other, in the order they were made (an :class:`asyncio.Lock` per chat wakes its waiters in
order), while other chats' answers and other updates go on.

Nothing is lost for it: :class:`bot.polling.TrackingUpdateProcessor` counts an update as handled
(confirmed to Telegram, answered to a webhook call) only once the answers it queued were sent
(:data:`bot.polling.PENDING_SENDS`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

from bot.polling import PENDING_SENDS

log = logging.getLogger(__name__)


class Replies:
    """Per-chat, in-order sending in the background (one instance per application)."""

    def __init__(self) -> None:
        self._locks: dict[int, asyncio.Lock] = {}
        self._users: dict[int, int] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def submit(self, chat_id: int, sending: Coroutine[Any, Any, Any]) -> asyncio.Task[None]:
        """Queue ``sending`` (a coroutine that sends to ``chat_id``) behind that chat's earlier ones."""
        lock = self._locks.get(chat_id)
        if lock is None:
            lock = self._locks[chat_id] = asyncio.Lock()
        self._users[chat_id] = self._users.get(chat_id, 0) + 1

        async def run() -> None:
            try:
                async with lock:
                    await sending
            except asyncio.CancelledError:
                sending.close()  # given up before it ran (drain at a stop): no "never awaited"
                raise
            except Exception:
                log.exception("an answer to chat %s could not be sent", chat_id)
            finally:
                self._users[chat_id] -= 1
                if not self._users[chat_id]:  # nobody else queued: forget the chat
                    del self._users[chat_id]
                    self._locks.pop(chat_id, None)

        task = asyncio.create_task(run(), name=f"qcbot:reply:{chat_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        pending = PENDING_SENDS.get()
        if pending is not None:  # the update counts as handled once this is sent
            pending.append(task)
        return task

    @property
    def queued(self) -> int:
        """Answers not sent yet."""
        return len(self._tasks)

    async def drain(self, timeout: float = 10.0) -> None:  # noqa: ASYNC109
        """Wait (at most ``timeout`` seconds) for every queued answer: a clean stop sends them.

        What is still waiting then is given up (logged): its updates were not confirmed, so
        Telegram delivers them again to the next process, which answers them (``bot.polling``)."""
        if not self._tasks:
            return
        tasks = list(self._tasks)
        _, late = await asyncio.wait(tasks, timeout=timeout)
        if late:
            log.warning("%s answer(s) still waiting for Telegram at shutdown: given up", len(late))
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        self._tasks.difference_update(tasks)  # their done-callbacks may not have run yet
