"""The update queue behind ``getUpdates`` long polling."""

from __future__ import annotations

import asyncio
import copy
from typing import Any

__all__ = ["DEFAULT_ALLOWED_UPDATES", "PollConflict", "UpdateQueue", "update_type"]

JsonDict = dict[str, Any]

# Telegram delivers every update type except these unless they are asked for explicitly.
_OPT_IN_TYPES = frozenset({"chat_member", "message_reaction", "message_reaction_count"})
DEFAULT_ALLOWED_UPDATES = None  # sentinel: "all types but the opt-in ones"


class PollConflict(Exception):
    """A newer ``getUpdates`` request superseded this one (Telegram answers 409)."""


def update_type(update: JsonDict) -> str:
    """The kind of an update: the first key besides ``update_id``."""
    return next((key for key in update if key != "update_id"), "")


class UpdateQueue:
    """Pending updates with Telegram's getUpdates semantics.

    Updates stay queued until confirmed by a later ``getUpdates`` whose ``offset`` is
    greater than their ``update_id``; a long poll returns as soon as something deliverable
    is queued.  Only one poller may wait at a time: a newer request makes the older one
    fail with :class:`PollConflict`, like Telegram's "terminated by other getUpdates".
    """

    def __init__(self, first_update_id: int = 1) -> None:
        self._pending: list[JsonDict] = []
        self._next_id = first_update_id
        self._fetched_upto = first_update_id - 1
        self._allowed: frozenset[str] | None = DEFAULT_ALLOWED_UPDATES
        self._wakeup = asyncio.Event()
        self._generation = 0
        self._closed = False
        self.history: list[JsonDict] = []

    def put(self, update: JsonDict) -> int:
        """Queue a copy of ``update``, assigning ``update_id`` when missing; returns it."""
        queued = copy.deepcopy(update)
        given = queued.get("update_id")
        if isinstance(given, int) and not isinstance(given, bool):
            self._next_id = max(self._next_id, given + 1)
        else:
            given = self._next_id
            self._next_id += 1
            queued = {"update_id": given, **queued}
        self._pending.append(queued)
        self.history.append(queued)
        self._wake()
        return given

    def continue_after(self, update_id: int) -> None:
        """Number the next updates after ``update_id`` (a bot that remembers updates of an
        earlier session must not see those numbers again: Telegram's only grow)."""
        self._next_id = max(self._next_id, update_id + 1)
        self._fetched_upto = max(self._fetched_upto, update_id)

    @property
    def unfetched(self) -> int:
        """Queued updates no ``getUpdates`` has returned yet."""
        return sum(1 for u in self._pending if self._id(u) > self._fetched_upto)

    @property
    def pending(self) -> int:
        """Queued updates not confirmed yet (fetched or not)."""
        return len(self._pending)

    def drop_pending(self) -> None:
        """Forget every queued update (``deleteWebhook(drop_pending_updates=True)``)."""
        if self._pending:
            self._fetched_upto = max(self._fetched_upto, self._id(self._pending[-1]))
        self._pending.clear()

    def close(self) -> None:
        """Release every waiting poller (server shutdown)."""
        self._closed = True
        self._wake()

    async def get(
        self,
        offset: int | None,
        limit: int,
        wait: float,
        allowed_updates: list[str] | None,
    ) -> list[JsonDict]:
        """Serve one ``getUpdates`` call, waiting up to ``wait`` seconds for updates."""
        self._generation += 1
        generation = self._generation
        self._wake()  # an older poller notices it was superseded
        if allowed_updates is not None:
            self._allowed = frozenset(allowed_updates) or DEFAULT_ALLOWED_UPDATES
        if offset is not None:
            self._confirm(offset)
        limit = min(max(limit, 1), 100)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(wait, 0.0)
        while True:
            if generation != self._generation:
                raise PollConflict
            batch = self._deliverable(limit)
            remaining = deadline - loop.time()
            if batch or self._closed or remaining <= 0:
                break
            try:
                await asyncio.wait_for(self._wakeup.wait(), remaining)
            except TimeoutError:
                pass
        if batch:
            self._fetched_upto = max(self._fetched_upto, self._id(batch[-1]))
        return batch

    def for_webhook(self, limit: int = 100) -> list[JsonDict]:
        """The deliverable updates in order, for a webhook delivery (nothing is confirmed)."""
        return self._deliverable(limit)

    def ack(self, update_id: int) -> bool:
        """Confirm one update delivered by webhook (the bot answered 2xx); False if not pending."""
        for i, update in enumerate(self._pending):
            if self._id(update) == update_id:
                del self._pending[i]
                self._fetched_upto = max(self._fetched_upto, update_id)
                return True
        return False

    async def changed(self, timeout: float) -> None:  # noqa: ASYNC109
        """Until an update is queued (or ``timeout`` seconds)."""
        try:
            await asyncio.wait_for(self._wakeup.wait(), timeout)
        except TimeoutError:
            pass

    def _wake(self) -> None:
        self._wakeup.set()
        self._wakeup = asyncio.Event()

    @staticmethod
    def _id(update: JsonDict) -> int:
        return int(update["update_id"])

    def _confirm(self, offset: int) -> None:
        if offset < 0:
            forgotten = self._pending[:offset]
            self._pending = self._pending[offset:]
        else:
            forgotten = [u for u in self._pending if self._id(u) < offset]
            self._pending = [u for u in self._pending if self._id(u) >= offset]
        if forgotten:
            self._fetched_upto = max(self._fetched_upto, self._id(forgotten[-1]))

    def _is_allowed(self, update: JsonDict) -> bool:
        kind = update_type(update)
        if self._allowed is None:
            return kind not in _OPT_IN_TYPES
        return kind in self._allowed

    def _deliverable(self, limit: int) -> list[JsonDict]:
        """The first ``limit`` deliverable updates; filtered-out ones are discarded."""
        kept = [u for u in self._pending if self._is_allowed(u)]
        self._pending = kept
        return kept[:limit]
