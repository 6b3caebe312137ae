"""The HTTP server: a loopback stand-in for ``api.telegram.org``."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from aiohttp import web

from .errors import ApiError, not_found
from .faults import FaultRule, Faults, fault_error
from .limits import RateLimits
from .methods import MAX_UPLOAD_BYTES, BotApi, Handler
from .params import Params
from .people import ChatRef, SimulatedPeople
from .updates import UpdateQueue
from .world import SimUser, World

__all__ = ["BotApiStandin", "RecordedCall", "Stats"]

JsonDict = dict[str, Any]
_LOG = logging.getLogger("standin")
_POLL_STEP = 0.01
_UNAUTHORIZED = ApiError(401, "Unauthorized")


@dataclass
class RecordedCall:
    """One Bot API request made by the bot, with the answer it got.

    ``params`` are normalised (ints, bools and JSON objects decoded); uploads appear as
    ``"<upload name (N bytes)>"``.  Empty long polls are not recorded.
    """

    method: str
    params: JsonDict
    time: float
    status: int
    response: JsonDict
    duration: float

    @property
    def ok(self) -> bool:
        """Whether Telegram would have answered ``"ok": true``."""
        return bool(self.response.get("ok"))

    @property
    def result(self) -> Any:
        """The ``result`` of a successful call."""
        return self.response.get("result")

    @property
    def description(self) -> str | None:
        """The error description of a failed call."""
        return self.response.get("description")


@dataclass
class Stats:
    """Counters over the life of the server."""

    requests: int = 0
    errors: int = 0
    rate_limited: int = 0
    faults_fired: int = 0
    updates_fetched: int = 0
    by_method: Counter[str] = field(default_factory=Counter)


class _DropConnection(Exception):
    """Close the connection without answering (the ``timeout`` fault)."""


def _json_response(status: int, payload: JsonDict) -> web.Response:
    body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
    return web.Response(status=status, body=body, content_type="application/json")


class BotApiStandin(SimulatedPeople):
    """A local Telegram Bot API for python-telegram-bot, plus the people it talks to.

    Usage::

        async with BotApiStandin(token="123:TEST") as api:
            app = (ApplicationBuilder().token(api.token).base_url(api.base_url)
                   .base_file_url(api.base_file_url).build())
            alice = api.make_user("张三", "zhangsan")
            await api.send_text(alice, api.private_chat(alice), "/start")
            [reply] = await api.wait_for_bot_messages(alice)

    The server binds ``host`` on ``port`` (0: a free port) when started.
    """

    def __init__(
        self,
        token: str = "123:TEST",
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        bot_username: str = "qcbot_test_bot",
        bot_name: str = "质量强区助手",
        privacy_mode: bool = False,
        auto_create_chats: bool = False,
    ) -> None:
        """``privacy_mode``: in groups where it is not an admin, the bot only receives
        commands, replies to its messages, mentions and service messages.
        ``auto_create_chats``: unknown numeric chat ids are created on first use
        (positive: a user who started the bot; negative: a supergroup with the bot)."""
        self.token = token
        self.host = host
        self._requested_port = port
        self.privacy_mode = privacy_mode
        prefix = token.split(":", 1)[0]
        bot = SimUser(
            id=int(prefix) if prefix.isdigit() else 1,
            first_name=bot_name,
            username=bot_username,
            is_bot=True,
        )
        self.world = World(bot)
        self.world.auto_create_chats = auto_create_chats
        self.updates = UpdateQueue()
        self.limits = RateLimits()
        self.faults = Faults()
        self.stats = Stats()
        self.calls: list[RecordedCall] = []
        self.api = BotApi(
            self.world, self.updates, self.limits, self.faults, privacy_mode=privacy_mode
        )
        self._runner: web.AppRunner | None = None
        self._port: int | None = None
        self._stopping = asyncio.Event()
        self._inflight: Counter[str] = Counter()
        self._last_activity = 0.0
        self._cursors: dict[int, int] = {}
        #: Webhook deliveries: (update_id, HTTP status, or 0 for no answer), in order.
        self.webhook_calls: list[tuple[int, int]] = []
        #: Seconds before a webhook delivery that failed is tried again (Telegram: longer).
        self.webhook_retry_seconds = 0.2
        self._webhook_task: asyncio.Task[None] | None = None

    # ================================================================= lifecycle

    async def start(self) -> BotApiStandin:
        """Bind and start serving; returns ``self``."""
        if self._runner is not None:
            return self
        self._stopping = asyncio.Event()
        runner = web.AppRunner(self._build_app(), access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self._requested_port)
        await site.start()
        self._runner = runner
        self._port = int(runner.addresses[0][1])
        self._last_activity = self._now()
        self._webhook_task = asyncio.create_task(self._webhook_loop(), name="standin:webhook")
        _LOG.info("Bot API stand-in listening on %s", self.base_url)
        return self

    async def stop(self) -> None:
        """Release waiting requests and shut the server down."""
        if self._runner is None:
            return
        self._stopping.set()
        self.updates.close()
        if self._webhook_task is not None:
            self._webhook_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._webhook_task
            self._webhook_task = None
        runner, self._runner = self._runner, None
        await runner.cleanup()

    # ================================================================= webhook

    async def _webhook_loop(self) -> None:
        """While a webhook is set, POST each pending update to it, as Telegram does: with the
        secret in ``X-Telegram-Bot-Api-Secret-Token``; an update is confirmed when the bot
        answers 2xx and delivered again (after ``webhook_retry_seconds``) when it does not."""
        import aiohttp

        inflight: dict[int, asyncio.Task[None]] = {}
        async with aiohttp.ClientSession() as session:
            try:
                while not self._stopping.is_set():
                    hook = self.api.webhook
                    if hook:
                        room = int(hook.get("max_connections") or 40) - len(inflight)
                        for update in self.updates.for_webhook():
                            uid = int(update["update_id"])
                            if room <= 0:
                                break
                            if uid not in inflight:
                                inflight[uid] = asyncio.create_task(self._post_to_webhook(session, hook, update))
                                inflight[uid].add_done_callback(lambda _t, u=uid: inflight.pop(u, None))
                                room -= 1
                    await self.updates.changed(0.05)
            finally:
                for task in list(inflight.values()):
                    task.cancel()

    async def _post_to_webhook(self, session: Any, hook: JsonDict, update: JsonDict) -> None:
        import aiohttp

        uid = int(update["update_id"])
        headers = {"Content-Type": "application/json"}
        if hook.get("secret_token"):
            headers["X-Telegram-Bot-Api-Secret-Token"] = hook["secret_token"]
        status = 0
        try:
            async with session.post(hook["url"], data=json.dumps(update, ensure_ascii=False),
                                    headers=headers, timeout=aiohttp.ClientTimeout(total=120)) as resp:
                status = resp.status
        except (aiohttp.ClientError, TimeoutError, OSError):
            status = 0
        self.webhook_calls.append((uid, status))
        self._last_activity = self._now()
        if 200 <= status < 300:
            self.updates.ack(uid)
            self.stats.updates_fetched += 1
        else:
            await self._pause(self.webhook_retry_seconds)

    async def __aenter__(self) -> BotApiStandin:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    @property
    def port(self) -> int:
        """The bound TCP port."""
        if self._port is None:
            raise RuntimeError("the stand-in is not started")
        return self._port

    @property
    def base_url(self) -> str:
        """For ``ApplicationBuilder().base_url(...)`` (PTB appends the token)."""
        return f"http://{self.host}:{self.port}/bot"

    @property
    def base_file_url(self) -> str:
        """For ``ApplicationBuilder().base_file_url(...)``."""
        return f"http://{self.host}:{self.port}/file/bot"

    @property
    def bot(self) -> SimUser:
        """The bot's own account."""
        return self.world.bot

    # ================================================================= HTTP

    def _build_app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_UPLOAD_BYTES + 4 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._handle_api)
        app.router.add_get("/file/bot{token}/{path:.+}", self._handle_file)
        app.router.add_route("*", "/{tail:.*}", self._handle_unknown)
        return app

    @staticmethod
    def _now() -> float:
        return asyncio.get_running_loop().time()

    async def _handle_unknown(self, request: web.Request) -> web.Response:
        return _json_response(404, not_found().payload())

    async def _handle_file(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return _json_response(401, _UNAUTHORIZED.payload())
        stored = self.world.files_by_path.get(request.match_info["path"])
        if stored is None:
            return _json_response(404, not_found().payload())
        return web.Response(
            body=stored.data, content_type=stored.mime_type or "application/octet-stream"
        )

    async def _handle_api(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return _json_response(401, _UNAUTHORIZED.payload())
        method = request.match_info["method"]
        polling = method.lower() == "getupdates"
        arrived, started = time.time(), self._now()
        self._begin(method, polling)
        params: Params | None = None
        try:
            params = await Params.from_request(request)
            status, payload = 200, {"ok": True, "result": await self._dispatch(method, params)}
        except ApiError as error:
            status, payload = error.error_code, error.payload()
        except _DropConnection:
            status, payload = 0, {"ok": False, "description": "connection dropped (fault)"}
        except web.HTTPRequestEntityTooLarge:
            status, payload = 413, ApiError(413, "Request Entity Too Large").payload()
        except Exception as error:  # a bug in the stand-in: answer loudly, log the trace
            _LOG.exception("stand-in failure in %s", method)
            status = 500
            payload = ApiError(500, f"Internal Server Error: stand-in {error!r}").payload()
        finally:
            self._end(method, polling)
        client_gone = request.transport is None or request.transport.is_closing()
        if not (polling and client_gone):  # a superseded poll nobody waits for any more
            self._record(method, params, arrived, status, payload, self._now() - started)
        if status == 0:
            if request.transport is not None:
                request.transport.abort()
            return web.Response(status=500)
        return _json_response(status, payload)

    async def _dispatch(self, method: str, params: Params) -> Any:
        handler: Handler | None = self.api.lookup(method)
        if handler is None:
            raise not_found()
        rule = self.faults.take(method, params.get("chat_id"))
        if rule is not None:
            await self._apply_fault(rule, params)
        return await handler(params)

    async def _apply_fault(self, rule: FaultRule, params: Params) -> None:
        self.stats.faults_fired += 1
        if rule.kind in ("slow", "timeout"):
            await self._pause(rule.delay)
            if rule.kind == "timeout":
                raise _DropConnection
            return
        chat = self.world.find_chat(params.get("chat_id"))
        error = fault_error(rule.kind, chat.type if chat else None)
        if error is not None:
            raise error

    async def _pause(self, seconds: float) -> None:
        """Sleep, but wake up early when the server stops."""
        try:
            await asyncio.wait_for(self._stopping.wait(), seconds)
        except TimeoutError:
            pass

    def _begin(self, method: str, polling: bool) -> None:
        self.stats.requests += 1
        self.stats.by_method[method] += 1
        if not polling:
            self._inflight[method] += 1
            self._last_activity = self._now()

    def _end(self, method: str, polling: bool) -> None:
        if not polling:
            self._inflight[method] -= 1
            if self._inflight[method] <= 0:
                del self._inflight[method]
            self._last_activity = self._now()

    def _record(
        self,
        method: str,
        params: Params | None,
        arrived: float,
        status: int,
        payload: JsonDict,
        duration: float,
    ) -> None:
        if status != 200:
            self.stats.errors += 1
        if status == 429:
            self.stats.rate_limited += 1
        if method.lower() == "getupdates":
            fetched = payload.get("result") or []
            if status == 200 and not fetched:
                return
            self.stats.updates_fetched += len(fetched)
            self._last_activity = self._now()
        recorded = params.record() if params is not None else {}
        self.calls.append(RecordedCall(method, recorded, arrived, status, payload, duration))
        _LOG.debug("%s %s -> %s", method, recorded, status)

    # ================================================================= inspection

    @staticmethod
    def _chat_id(chat: ChatRef) -> int:
        """A chat's id; a user stands for their private chat (same id)."""
        return chat if isinstance(chat, int) else chat.id

    @property
    def callback_answers(self) -> dict[str, JsonDict]:
        """Answers to callback queries by query id: text, show_alert, url, cache_time."""
        return self.world.callback_answers

    @property
    def unanswered_callbacks(self) -> list[str]:
        """Ids of callback queries the bot has not answered (yet)."""
        return list(self.world.open_callbacks)

    def calls_to(self, method: str) -> list[RecordedCall]:
        """Recorded calls of one method (case-insensitive)."""
        return [c for c in self.calls if c.method.lower() == method.lower()]

    def sent_messages(self, chat: ChatRef, *, include_deleted: bool = False) -> list[JsonDict]:
        """Messages the bot sent in ``chat``, oldest first, as currently edited."""
        chat_id = self._chat_id(chat)
        messages = self.world.bot_messages.get(chat_id, [])
        if include_deleted:
            return list(messages)
        return [m for m in messages if (chat_id, m["message_id"]) not in self.world.deleted]

    def history(self, chat: ChatRef) -> list[JsonDict]:
        """Every stored message of ``chat`` (people's and the bot's), by message_id."""
        stored = self.world.messages.get(self._chat_id(chat), {})
        return [stored[k] for k in sorted(stored)]

    def message(self, chat: ChatRef, message_id: int) -> JsonDict | None:
        """A stored message, or None (never sent, or deleted)."""
        return self.world.message(self._chat_id(chat), message_id)

    def reply_keyboard(self, chat: ChatRef) -> JsonDict | None:
        """The last reply keyboard (or remove_keyboard) the bot sent to ``chat``."""
        return self.world.reply_keyboards.get(self._chat_id(chat))

    # ================================================================= waiting

    def mark(self, chat: ChatRef | None = None) -> None:
        """Consider the bot messages sent so far (in ``chat``, or everywhere) as seen."""
        chat_ids = [self._chat_id(chat)] if chat is not None else list(self.world.bot_messages)
        for chat_id in chat_ids:
            self._cursors[chat_id] = len(self.world.bot_messages.get(chat_id, []))

    async def wait_for_bot_messages(
        self,
        chat: ChatRef,
        count: int = 1,
        timeout: float = 5.0,  # noqa: ASYNC109 - the deadline feeds the failure report
    ) -> list[JsonDict]:
        """Wait for ``count`` new bot messages in ``chat`` and return exactly those.

        "New" means sent after the previous call (or :meth:`mark`) for that chat; extra
        messages are left for the next call.  Raises ``AssertionError`` describing what
        was received, and which bot calls failed, on timeout.
        """
        chat_id = self._chat_id(chat)
        cursor = self._cursors.get(chat_id, 0)
        deadline = self._now() + timeout
        while True:
            messages = self.world.bot_messages.get(chat_id, [])
            if len(messages) - cursor >= count:
                self._cursors[chat_id] = cursor + count
                return messages[cursor : cursor + count]
            if self._now() >= deadline:
                raise AssertionError(
                    self._missing_report(chat_id, count, messages[cursor:], timeout)
                )
            await asyncio.sleep(_POLL_STEP)

    def _missing_report(self, chat_id: int, count: int, got: list[JsonDict], timeout: float) -> str:
        shown = [m.get("text") or m.get("caption") or sorted(m) for m in got]
        failures = [
            f"{c.method} -> {c.status} {c.description}"
            for c in self.calls
            if not c.ok and str(c.params.get("chat_id", chat_id)) == str(chat_id)
        ][-5:]
        report = (
            f"expected {count} new bot message(s) in chat {chat_id} within {timeout}s, "
            f"got {len(got)}: {shown!r}"
        )
        if failures:
            report += f"; failed bot calls: {failures}"
        if self.updates.unfetched:
            report += f"; {self.updates.unfetched} update(s) never fetched (is the bot polling?)"
        return report

    async def wait_until(
        self,
        predicate: Callable[[], bool],
        timeout: float = 5.0,  # noqa: ASYNC109 - the deadline feeds the failure report
        what: str = "condition",
    ) -> None:
        """Wait until ``predicate()`` is true; ``AssertionError`` naming ``what`` otherwise."""
        deadline = self._now() + timeout
        while not predicate():
            if self._now() >= deadline:
                raise AssertionError(f"{what} not reached within {timeout}s")
            await asyncio.sleep(_POLL_STEP)

    async def wait_idle(
        self,
        timeout: float = 5.0,  # noqa: ASYNC109 - the deadline feeds the failure report
        quiet: float = 0.1,
    ) -> None:
        """Wait until the bot fetched every queued update and made no request for ``quiet``
        seconds (long polls excluded)."""
        deadline = self._now() + timeout
        while True:
            now = self._now()
            idle = (
                self.updates.unfetched == 0
                and not self._inflight
                and now - self._last_activity >= quiet
            )
            if idle:
                return
            if now >= deadline:
                raise AssertionError(
                    f"not idle within {timeout}s: {self.updates.unfetched} update(s) not "
                    f"fetched, requests in flight: {dict(self._inflight)}"
                )
            await asyncio.sleep(_POLL_STEP)
