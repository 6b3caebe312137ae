"""Long polling that confirms an update to Telegram only after it was handled.

python-telegram-bot's :class:`~telegram.ext.Updater` asks for the next batch of
updates (which confirms the previous batch to Telegram) as soon as it queued the
current one, while that batch's handlers still run (``concurrent_updates``). A
process killed in between loses those updates: Telegram never sends them again,
so the people who wrote get no answer and their report is not saved.

Here the offset sent to ``getUpdates`` only moves past an update once its
handling finished (:class:`UpdateTracker`, told by :class:`TrackingUpdateProcessor`,
the application's update processor). Updates still being handled are fetched
again by the next poll and skipped; a killed process's unfinished updates are
delivered again to the next one. ``models.inbox`` keeps their writes from being
applied twice. While updates are in flight the poller asks again every
``busy_interval`` seconds (a long poll would wait on updates it already has).

Exactly once: a transaction the bot opens for an update (``QcContext.db``) calls
:func:`seal` before committing; if it wrote (recorded an audit row), the update is
marked handled in the same transaction (``models.inbox``). A new process loads the
marks of the last two days at start-up and does not handle those updates again
(:class:`TrackingUpdateProcessor` answers that they were handled before the restart);
the mark's primary key settles any race.

An update held longer than ``max_hold`` seconds (a handler stuck on the network)
is let go — confirmed — with a warning, so that it cannot hold back the queue:
Telegram returns at most 100 updates past the offset.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
import warnings
from collections.abc import Awaitable, Callable, Iterable, Sequence
from contextvars import ContextVar
from datetime import datetime
from typing import Any

from sqlmodel import Session
from telegram import Message, Update
from telegram.error import InvalidToken, TelegramError
from telegram.ext import SimpleUpdateProcessor, Updater
from telegram.warnings import PTBUserWarning

from models.errors import Conflict
from models.inbox import audited, mark_handled

#: This process, in the marks of ``models.inbox``.
PROCESS = uuid.uuid4().hex
#: The update whose handling the current task (and its worker threads) belongs to.
CURRENT_UPDATE: ContextVar[int | None] = ContextVar("qcbot_update_id", default=None)
#: The answers the current update queued (``bot.replies``): it is handled once they were sent.
PENDING_SENDS: ContextVar[list[asyncio.Future[Any]] | None] = ContextVar("qcbot_pending_sends", default=None)
HANDLED_BEFORE = "这条消息在机器人重启前已经处理并记录，没有重复记录。"

log = logging.getLogger(__name__)
# ``_fetch`` asks for getUpdates as raw JSON on purpose (to decode update by update).
warnings.filterwarnings("ignore", message=r"Please use 'Bot\.getUpdates'", category=PTBUserWarning)


class UpdateTracker:
    """The updates this process fetched and is still handling."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._in_flight: dict[int, float] = {}  # update id -> when it was fetched
        self._seen_up_to = -1  # every id <= this was dispatched here (or let go)
        self._changed = asyncio.Event()
        self._finished: dict[int, asyncio.Event] = {}  # update id -> set when it is done
        #: Updates a previous process already wrote for (loaded at start-up).
        self.handled_before: frozenset[int] = frozenset()

    def load_handled_before(self, update_ids: Iterable[int]) -> None:
        self.handled_before = frozenset(update_ids)

    def begin(self, update_id: int) -> bool:
        """Take ``update_id`` for handling; False when it is already being handled or was."""
        if update_id <= self._seen_up_to and update_id not in self._in_flight:
            return False
        if update_id in self._in_flight:
            return False
        self._in_flight[update_id] = self._clock()
        self._seen_up_to = max(self._seen_up_to, update_id)
        return True

    def take(self, update_id: int) -> bool:
        """Webhook mode: take ``update_id`` unless it is being handled now. Telegram calls in
        any order and calls again only what was not answered, so there is no "seen up to"."""
        if update_id in self._in_flight:
            return False
        self._in_flight[update_id] = self._clock()
        return True

    def done(self, update_id: int) -> None:
        self._in_flight.pop(update_id, None)
        self._changed.set()
        finished = self._finished.pop(update_id, None)
        if finished is not None:
            finished.set()

    async def until_done(self, update_id: int, *, timeout: float) -> bool:  # noqa: ASYNC109
        """Wait until ``update_id`` is not being handled any more (True) or ``timeout`` seconds
        passed (False): the webhook answers Telegram only then."""
        if update_id not in self._in_flight:
            return True
        finished = self._finished.setdefault(update_id, asyncio.Event())
        try:
            await asyncio.wait_for(finished.wait(), timeout)
        except TimeoutError:
            return update_id not in self._in_flight
        return True

    def mine(self, update_id: int) -> bool:
        """Whether this process fetched ``update_id``."""
        return update_id in self._in_flight or update_id <= self._seen_up_to

    @property
    def busy(self) -> bool:
        return bool(self._in_flight)

    def offset(self, *, max_hold: float) -> int | None:
        """The ``getUpdates`` offset: the oldest update still being handled, else one past the newest.

        Updates held longer than ``max_hold`` seconds are let go (logged)."""
        now = self._clock()
        for update_id, since in sorted(self._in_flight.items()):
            if now - since <= max_hold:
                return update_id
            log.warning("update %s still handled after %.0f s: confirmed to Telegram anyway",
                        update_id, now - since)
            self._in_flight.pop(update_id)
        return self._seen_up_to + 1 if self._seen_up_to >= 0 else None

    def mark(self) -> None:
        """Start watching for finished updates (before a poll: none that finishes during it
        is missed by the :meth:`wait` after it)."""
        self._changed.clear()

    async def wait(self, timeout: float) -> None:  # noqa: ASYNC109
        """Until an update finished since :meth:`mark` (at once if one did, or if none is
        being handled), or ``timeout`` seconds."""
        if not self.busy or self._changed.is_set():
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._changed.wait(), timeout)


class AlreadyHandled(Conflict):
    """Another process already committed this update's writes."""


def seal(session: Session, *, now: datetime) -> None:
    """Call before a transaction for an update commits: if it wrote, mark the update
    handled in it; if another process holds the mark, refuse (the caller rolls back)."""
    update_id = CURRENT_UPDATE.get()
    if update_id is None or not audited(session):
        return
    if not mark_handled(session, update_id=update_id, process=PROCESS, now=now):
        raise AlreadyHandled(HANDLED_BEFORE)


class TrackingUpdateProcessor(SimpleUpdateProcessor):
    """Handles updates concurrently (as ``concurrent_updates=N`` does), tells the tracker
    when each one finished whatever the outcome, and skips updates a previous process
    already wrote for (answering so)."""

    __slots__ = ("tracker",)

    def __init__(self, max_concurrent_updates: int, tracker: UpdateTracker) -> None:
        super().__init__(max_concurrent_updates)
        self.tracker = tracker

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        if not isinstance(update, Update):
            await coroutine
            return
        token = CURRENT_UPDATE.set(update.update_id)
        pending: list[asyncio.Future[Any]] = []
        sends = PENDING_SENDS.set(pending)
        try:
            if update.update_id in self.tracker.handled_before:
                _close(coroutine)
                log.info("update %s was handled before a restart: not again", update.update_id)
                await _say_handled_before(update)
                return
            await coroutine
        finally:
            CURRENT_UPDATE.reset(token)
            PENDING_SENDS.reset(sends)
            if pending:  # the slot is free now; the update is done when its answers are sent
                waiter = asyncio.ensure_future(_done_when_sent(pending, self.tracker, update.update_id))
                _WAITERS.add(waiter)
                waiter.add_done_callback(_WAITERS.discard)
            else:
                self.tracker.done(update.update_id)


_WAITERS: set[asyncio.Future[None]] = set()


async def _done_when_sent(pending: list[asyncio.Future[Any]], tracker: UpdateTracker, update_id: int) -> None:
    try:
        await asyncio.gather(*pending, return_exceptions=True)
    finally:
        tracker.done(update_id)


def _close(coroutine: Awaitable[Any]) -> None:
    close = getattr(coroutine, "close", None)
    if close is not None:
        close()


async def _say_handled_before(update: Update) -> None:
    with contextlib.suppress(TelegramError):
        if update.callback_query is not None:
            await update.callback_query.answer(HANDLED_BEFORE)
        elif isinstance(update.effective_message, Message) and update.message is not None:
            await update.message.reply_text(HANDLED_BEFORE, do_quote=True)


class ConfirmAfterHandlingUpdater(Updater):
    """An :class:`~telegram.ext.Updater` whose polling confirms only handled updates.

    ``Application.run_polling`` and ``updater.start_polling`` work as usual (webhook mode is
    :mod:`bot.webhook`). It never goes deaf: fetch errors are retried with a backoff, an
    update the library cannot read is logged raw and skipped, a server that answers a long
    poll at once is asked at most every ``min_poll_interval`` seconds, and a watchdog restarts
    a loop that ended or stopped asking.
    """

    def __init__(
        self, *, tracker: UpdateTracker, busy_interval: float = 0.25, max_hold: float = 120.0,
        min_poll_interval: float = 0.5, watchdog_every: float = 15.0, **kwargs: Any,  # noqa: ANN401
    ) -> None:
        super().__init__(**kwargs)
        self.tracker = tracker
        self.busy_interval = busy_interval
        self.max_hold = max_hold
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self._allowed: Sequence[str] | None = None
        #: A long poll that returns at once with nothing is repeated at most this often.
        self.min_poll_interval = min_poll_interval
        #: When the loop last asked for updates (the watchdog reads it), and its restarts.
        self.last_poll = 0.0
        self.restarts = 0
        self.watchdog_every = watchdog_every
        self._watchdog: asyncio.Task[None] | None = None
        self._poll_args: dict[str, Any] = {}

    async def start_polling(  # type: ignore[override]
        self,
        poll_interval: float = 0.0,
        timeout: float = 10,  # noqa: ASYNC109 (Updater.start_polling's signature)
        bootstrap_retries: int = 0,
        allowed_updates: Sequence[str] | None = None,
        drop_pending_updates: bool | None = None,
        error_callback: Callable[[TelegramError], None] | None = None,
    ) -> asyncio.Queue[object]:
        if error_callback and asyncio.iscoroutinefunction(error_callback):
            raise TypeError("The `error_callback` must not be a coroutine function!")
        if self.running:
            raise RuntimeError("This Updater is already running!")
        if not self._initialized:
            raise RuntimeError("This Updater was not initialized via `Updater.initialize`!")
        self._running = True
        try:
            await self._bootstrap(bootstrap_retries, drop_pending_updates=drop_pending_updates,
                                  webhook_url="", allowed_updates=None)
        except Exception:
            self._running = False
            raise
        self._allowed = allowed_updates
        self._stopping.clear()
        self._poll_args = {"poll_interval": poll_interval, "timeout": _seconds(timeout),
                           "error_callback": error_callback}
        self._task = self._start_poll()
        self._watchdog = asyncio.create_task(self._watch(), name="qcbot:polling-watchdog")
        return self.update_queue

    def _start_poll(self) -> asyncio.Task[None]:
        self.last_poll = asyncio.get_running_loop().time()
        return asyncio.create_task(self._poll(**self._poll_args), name="qcbot:polling")

    async def _watch(self) -> None:
        """The watchdog: a polling loop that ended (other than for a refused token) or that
        has not asked Telegram for a while is restarted, and said so at ERROR."""
        loop = asyncio.get_running_loop()
        stale = self._poll_args["timeout"] + 60.0 + self.max_hold
        while not self._stopping.is_set():
            await self._sleep(self.watchdog_every)
            task = self._task
            if self._stopping.is_set() or task is None:
                return
            if task.done():
                exc = None if task.cancelled() else task.exception()
                if isinstance(exc, InvalidToken):
                    return
                log.error("the polling loop ended (%r): restarted", exc)
                self.restarts += 1
                self._task = self._start_poll()
            elif loop.time() - self.last_poll > stale:
                log.error("the polling loop has not asked for updates for %.0f s: restarted",
                          loop.time() - self.last_poll)
                self.restarts += 1
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
                self._task = self._start_poll()

    async def _poll(
        self, *, poll_interval: float, timeout: int,  # noqa: ASYNC109 (the long poll's, sent to Telegram)
        error_callback: Callable[[TelegramError], None] | None,
    ) -> None:
        """Fetch, decode one by one, queue; never ends but for a refused token or :meth:`stop`.

        Any error while fetching is logged and retried with a backoff; an update the library
        cannot read is logged with its raw JSON and skipped (confirmed), never fetched for ever;
        a server that answers a long poll at once is asked at most every ``min_poll_interval``.
        """
        backoff = 1.0
        loop = asyncio.get_running_loop()
        while self.running and not self._stopping.is_set():
            self.last_poll = loop.time()
            started = loop.time()
            try:
                self.tracker.mark()
                offset = self.tracker.offset(max_hold=self.max_hold)
                busy = self.tracker.busy
                wait = 0 if busy else timeout
                raw = await self._fetch(offset=offset, timeout=wait)
                backoff = 1.0
            except InvalidToken:
                log.error("the bot token was refused; polling stopped")
                raise
            except TelegramError as exc:
                if error_callback is not None:
                    error_callback(exc)
                else:
                    log.warning("polling for updates failed: %s; retrying in %.0f s", exc, backoff)
                await self._sleep(backoff)
                backoff = min(backoff * 2, 30.0)
                continue
            except Exception:  # noqa: BLE001 - whatever it is, the bot must not go deaf
                log.exception("polling for updates failed unexpectedly; retrying in %.0f s", backoff)
                await self._sleep(backoff)
                backoff = min(backoff * 2, 30.0)
                continue
            for update in self._decode(raw):
                if self.tracker.begin(update.update_id):
                    await self.update_queue.put(update)
            if self.tracker.busy:
                await self._until(self.tracker.wait(self.busy_interval))
            elif poll_interval:
                await self._sleep(poll_interval)
            elif wait and not raw and loop.time() - started < self.min_poll_interval:
                # A long poll that came back at once with nothing: the server ignores ``timeout``.
                await self._sleep(self.min_poll_interval - (loop.time() - started))

    async def _fetch(self, *, offset: int | None, timeout: int) -> list[Any]:  # noqa: ASYNC109
        """``getUpdates`` as raw JSON: each update is decoded on its own (:meth:`_decode`)."""
        kwargs: dict[str, Any] = {"timeout": timeout}
        if offset is not None:
            kwargs["offset"] = offset
        if self._allowed is not None:
            kwargs["allowed_updates"] = list(self._allowed)
        result = await self.bot.do_api_request("getUpdates", api_kwargs=kwargs, read_timeout=timeout + 10.0)
        return result if isinstance(result, list) else []

    def _decode(self, raw: list[Any]) -> list[Update]:
        """The updates of a batch; one the library cannot read is logged raw and let go."""
        decoded: list[Update] = []
        for item in raw:
            try:
                update = Update.de_json(item, self.bot)
                if update is None:
                    raise ValueError("empty update")
            except Exception as exc:  # noqa: BLE001 - a malformed update must not stop the others
                update_id = item.get("update_id") if isinstance(item, dict) else None
                log.error("an update the bot cannot read was skipped (%s: %s); raw: %s",
                          type(exc).__name__, exc, json.dumps(item, ensure_ascii=False)[:4000])
                if isinstance(update_id, int) and self.tracker.begin(update_id):
                    self.tracker.done(update_id)  # confirmed with the next poll: not fetched again
                continue
            decoded.append(update)
        return decoded

    async def _sleep(self, seconds: float) -> None:
        await self._until(asyncio.sleep(seconds))

    async def _until(self, waiting: Awaitable[Any]) -> None:
        """Wait for ``waiting`` or for :meth:`stop`, whichever comes first."""
        stop = asyncio.ensure_future(self._stopping.wait())
        other = asyncio.ensure_future(waiting)
        try:
            await asyncio.wait({stop, other}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for fut in (stop, other):
                fut.cancel()

    async def stop(self) -> None:
        """Stop fetching (a long poll in progress is cancelled; its updates stay unconfirmed)."""
        self._stopping.set()
        if self._watchdog is not None:
            self._watchdog.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watchdog
            self._watchdog = None
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, TelegramError):
                await self._task
            self._task = None
        await super().stop()

    async def confirm_handled(self) -> None:
        """Confirm to Telegram what was handled (after the application stopped), so that a
        clean restart does not receive it again."""
        offset = self.tracker.offset(max_hold=self.max_hold)
        if offset is None:
            return
        try:
            await self.bot.get_updates(offset=offset, timeout=0, allowed_updates=self._allowed)
        except TelegramError as exc:
            log.warning("could not confirm the handled updates at shutdown: %s", exc)


def _seconds(timeout: Any) -> int:  # noqa: ANN401
    """``getUpdates``' long-poll timeout: whole seconds (Telegram refuses fractions)."""
    if hasattr(timeout, "total_seconds"):
        timeout = timeout.total_seconds()
    return max(0, int(timeout))
