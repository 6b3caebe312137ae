"""Webhook mode: Telegram POSTs each update to us, and hears "200" only once it was handled.

* **The secret.** Telegram sends the ``secret_token`` given to ``setWebhook`` in the
  ``X-Telegram-Bot-Api-Secret-Token`` header of every call. A call without it, or with another
  one, gets 403 before its body is read (compared in constant time, :func:`hmac.compare_digest`):
  without this, anyone who can reach the port could post an update "from" the coordinator.
  The secret is at least :data:`infra.config.MIN_WEBHOOK_SECRET` characters: the configured one, or one made at the
  first start and kept in ``telegram.webhook_secret_file`` (mode 0600) (:func:`webhook_secret`).
* **Confirm after handling.** The answer waits until the update's handlers finished (the same
  :class:`bot.polling.UpdateTracker` as polling), so Telegram delivers again an update a killed
  process was still handling; ``models.inbox`` keeps its writes from being applied twice. An
  update still being handled after ``max_hold`` seconds is answered anyway (Telegram would
  otherwise retry it while it runs).
* **A bad update** (JSON the library cannot read as an update) is logged with its raw body and
  answered 200: it is skipped, not retried for ever.

The server is aiohttp's (already a dependency); TLS is terminated in front of it (nginx, Caddy):
``webhook_listen`` defaults to the loopback address.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

from aiohttp import web
from telegram import Update
from telegram.ext import Application

from bot.polling import UpdateTracker
from infra.config import MIN_WEBHOOK_SECRET, WEBHOOK_SECRET_RE, Settings, TelegramConfig
from infra.files import atomic_write

log = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
#: An update is a few KB; Telegram never sends a body near this.
MAX_BODY = 1024 * 1024


class WebhookConfigError(ValueError):
    """The webhook cannot be served safely with this configuration (the message says why)."""


def webhook_secret(tg: TelegramConfig) -> str:
    """The secret Telegram must send: the configured one, else the kept one, else a new one.

    A configured secret shorter than :data:`infra.config.MIN_WEBHOOK_SECRET` characters (or with characters Telegram
    refuses) stops the start: a guessable secret is no secret.
    """
    given = tg.webhook_secret.get_secret_value().strip()
    if given:
        if not WEBHOOK_SECRET_RE.match(given):
            raise WebhookConfigError(
                f"telegram.webhook_secret must be {MIN_WEBHOOK_SECRET}-256 characters of A-Z a-z 0-9 _ - "
                f"(or empty: one is generated and kept in {tg.webhook_secret_file})")
        return given
    path = Path(tg.webhook_secret_file)
    if path.is_file():
        kept = path.read_text(encoding="ascii").strip()
        if WEBHOOK_SECRET_RE.match(kept):
            return kept
        log.warning("the kept webhook secret in %s is unusable: a new one is made", path)
    made = secrets.token_urlsafe(48)[:64]
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, made.encode("ascii"))  # created 0600 (infra.files)
    log.info("a new webhook secret was made and kept in %s (mode 0600)", path)
    return made


class WebhookServer:
    """The HTTP endpoint Telegram posts updates to (see the module docstring)."""

    def __init__(
        self, app: Application, *, tracker: UpdateTracker, secret: str, path: str,
        listen: str = "127.0.0.1", port: int = 8443, max_hold: float = 120.0,
    ) -> None:
        if not WEBHOOK_SECRET_RE.match(secret):
            raise WebhookConfigError(f"the webhook secret must be at least {MIN_WEBHOOK_SECRET} characters")
        self.app = app
        self.tracker = tracker
        self._secret = secret.encode("ascii")
        self.path = "/" + path.strip("/")
        self.listen = listen
        self.port = port
        self.max_hold = max_hold
        self._runner: web.AppRunner | None = None
        #: Calls refused for their secret (counted for the log and the tests).
        self.refused = 0

    @property
    def bound_port(self) -> int:
        """The port actually listened on (``port=0`` picks a free one)."""
        assert self._runner is not None
        site = next(iter(self._runner.sites))
        server = getattr(site, "_server", None)
        sockets = getattr(server, "sockets", None) or []
        return int(sockets[0].getsockname()[1]) if sockets else self.port

    async def start(self) -> None:
        web_app = web.Application(client_max_size=MAX_BODY)
        web_app.router.add_post(self.path, self._post)
        self._runner = web.AppRunner(web_app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.listen, self.port).start()
        log.info("webhook listening on %s:%s%s", self.listen, self.bound_port, self.path)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def _authorised(self, request: web.Request) -> bool:
        given = request.headers.get(SECRET_HEADER, "").encode("ascii", "replace")
        return hmac.compare_digest(given, self._secret)

    async def _post(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            self.refused += 1
            log.warning("webhook call without the right secret from %s: refused (403)", request.remote)
            return web.Response(status=403)
        raw = await request.read()
        try:
            data = json.loads(raw)
            update = Update.de_json(data, self.app.bot)
            if update is None:
                raise ValueError("empty update")
        except Exception as exc:  # noqa: BLE001 - any undecodable body is recorded and skipped
            log.error("webhook: an update the bot cannot read was skipped (%s: %s); raw: %s",
                      type(exc).__name__, exc, raw[:4000].decode("utf-8", "replace"))
            return web.Response(status=200)
        if self.tracker.take(update.update_id):
            await self.app.update_queue.put(update)
        # Answer once handled (here, or by the call that delivered it first).
        if not await self.tracker.until_done(update.update_id, timeout=self.max_hold):
            log.warning("update %s still handled after %.0f s: confirmed to Telegram anyway",
                        update.update_id, self.max_hold)
        return web.Response(status=200)


@contextlib.asynccontextmanager
async def serving(app: Application, settings: Settings, *, port: int | None = None) -> AsyncIterator[WebhookServer]:
    """Run ``app`` in webhook mode inside an async block (``run`` and the tests).

    The same start-up as polling (initialize, the start-up hook, start), then the server, then
    ``setWebhook`` with the secret; on the way out the server stops first (Telegram redelivers
    what was not answered), then the application.
    """
    from bot.app import on_startup, on_stop

    tg = settings.telegram
    if not tg.webhook_url:
        raise WebhookConfigError('telegram.mode = "webhook" needs telegram.webhook_url (the public HTTPS URL)')
    secret = webhook_secret(tg)
    tracker: UpdateTracker = app.bot_data["updates"]
    from urllib.parse import urlsplit

    server = WebhookServer(app, tracker=tracker, secret=secret, path=urlsplit(tg.webhook_url).path,
                           listen=tg.webhook_listen, port=tg.webhook_port if port is None else port)
    await app.initialize()
    try:
        await on_startup(app)
        await app.start()
        await server.start()
        try:
            await app.bot.set_webhook(url=tg.webhook_url, secret_token=secret,
                                      allowed_updates=Update.ALL_TYPES, drop_pending_updates=False)
            yield server
        finally:
            await server.stop()
            if app.running:
                await app.stop()
    finally:
        app.bot_data["confirmed"] = True  # each call was answered once handled: nothing to confirm
        await on_stop(app)
        await app.shutdown()


async def serve_forever(app: Application, settings: Settings) -> None:
    """Webhook mode until SIGINT or SIGTERM (``qcbot run``)."""
    import signal

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    async with serving(app, settings):
        await stop.wait()

