"""The Application: built once from the configuration, the same for `make run`,
the console and the tests (which only point ``telegram.base_url`` elsewhere).

* polling by default (:mod:`bot.polling`), webhook when ``telegram.mode = "webhook"`` (:mod:`bot.webhook`);
* ``PacedRateLimiter`` (python-telegram-bot's ``AIORateLimiter`` for Telegram's flood limits and
  retries on 429, plus the scheduler's Pacer: one budget for nudges and answers);
* ``concurrent_updates`` from the configuration; the campaign's time zone in ``Defaults``;
* every handler registered in ONE place, :func:`register_handlers`, in a deliberate order;
* the menus of every scope, from ``bot.commands.COMMANDS``, sent in the background by
  :class:`bot.menus.MenuSync` (start-up never waits for them);
* ONE error handler; the token never reaches the logs.

Handlers get "now" from ``bot_data["clock"]`` (injectable), never from the system clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Engine
from telegram import LinkPreviewOptions, Update
from telegram.constants import ParseMode
from telegram.ext import (
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    Defaults,
    MessageHandler,
    TypeHandler,
    filters,
)
from telegram.helpers import create_deep_linked_url

from bot import gate, nudges
from bot import handlers as h
from bot.commands import COMMANDS, scoped
from bot.context import QcContext
from bot.menus import MenuSync
from bot.polling import PROCESS, ConfirmAfterHandlingUpdater, TrackingUpdateProcessor, UpdateTracker
from bot.ratelimit import PacedRateLimiter
from bot.replies import Replies
from infra.config import Settings
from infra.db import transaction
from models.inbox import marked_by_others, prune_handled
from models.members import active_campaigns, ensure_bootstrap_code
from scheduler import install as install_scheduler
from scheduler.backups import install_backups
from scheduler.pacing import Pacer

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
StartupHook = Callable[[Application], Any]

#: What /start prints when no coordinator exists (Chinese and English, for the operator).
BOOTSTRAP_BANNER = (
    "尚无协调员。请协调员在与机器人 @{username} 的私聊中发送：/start {code}\n"
    "  或打开链接：{link}\n"
    "  （一次性，{hours} 小时内有效；也可用命令 qcbot admin add-coordinator TELEGRAM_ID 添加）\n"
    "No coordinator yet: send /start {code} to @{username} in a private chat "
    "(or: qcbot admin add-coordinator TELEGRAM_ID)."
)
#: At a later start, while the code is still unused: where it went, and how to make another.
BOOTSTRAP_AGAIN = (
    "尚无协调员。初始化代码已在首次启动时打印（不写入日志）；如已遗失，请运行 "
    "qcbot admin bootstrap-code 生成新代码（旧代码随即作废），或用 qcbot admin add-coordinator TELEGRAM_ID 添加。"
)


# ==================================================================== logging


def protect_logs() -> None:
    """httpx logs every request URL, and a Bot API URL holds the token: quiet it.

    ``infra.logging_setup.configure_logging`` (called by ``qcbot run``) also redacts
    the token from every record; this keeps an application built elsewhere (tests,
    the console) from printing request URLs even without it.
    """
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.WARNING)


class _OneLineBootstrapFailure(logging.Filter):
    """PTB logs a failed start-up (no network) with a full traceback; keep one line.

    The caller (``qcbot run``) prints a clear message for the same failure.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if (record.exc_info or record.exc_text) and "Bootstrap" in record.getMessage():
            if record.exc_info and record.exc_info[1] is not None:
                exc = record.exc_info[1]
                last = f"{type(exc).__name__}: {exc}"
            else:
                last = (record.exc_text or "").strip().splitlines()[-1]
            record.msg = f"{record.getMessage()} ({last})"
            record.args = None
            record.exc_info = None
            record.exc_text = None
        return True


# ================================================================ the handlers


def register_handlers(app: Application) -> None:
    """Every handler, in ONE place. Order matters!

    group -1: the gate (budgets, strangers, unbound groups and channels stop here: bot.gate);
    group 0, first match wins: commands (from COMMANDS), buttons, text replies,
    files, then unknown commands last.
    """
    app.add_handler(TypeHandler(Update, gate.gate), group=-1)

    fresh = filters.UpdateType.MESSAGE  # edited messages never re-apply a write
    for cmd in COMMANDS:
        app.add_handler(CommandHandler(cmd.name, scoped(cmd), filters=fresh))
    # the scheduler's nudge buttons ("qcn:…") before every other button (/nudges is in COMMANDS)
    app.add_handler(CallbackQueryHandler(nudges.on_nudge_button, pattern=nudges.CALLBACK_PATTERN))
    app.add_handler(CallbackQueryHandler(h.on_button))
    app.add_handler(
        MessageHandler(
            fresh & filters.TEXT & ~filters.COMMAND & (filters.REPLY | filters.ChatType.PRIVATE),
            h.on_text,
        )
    )
    app.add_handler(
        MessageHandler(
            # every file: one replying to nothing gets asked which task it is for (on_file decides)
            fresh & (filters.Document.ALL | filters.PHOTO),
            h.on_file,
        )
    )
    app.add_handler(MessageHandler(fresh & filters.COMMAND, h.on_unknown_command))

    app.add_error_handler(h.on_error)


# ================================================================== lifecycle


async def on_startup(app: Application) -> None:
    """After initialize(): menus (queued, sent in the background), the bootstrap code
    when nobody coordinates, hooks."""
    menus: MenuSync = app.bot_data["menus"]
    menus.start()
    settings: Settings = app.bot_data["settings"]
    engine: Engine = app.bot_data["engine"]
    now = app.bot_data["clock"]()
    ttl = settings.telegram.invite_ttl_hours
    tracker: UpdateTracker = app.bot_data["updates"]

    def codes() -> list[tuple[str, str | None]]:
        out: list[tuple[str, str | None]] = []
        with transaction(engine) as session:
            # Updates a previous process wrote for are not handled again (bot.polling).
            prune_handled(session, now=now)
            tracker.load_handled_before(marked_by_others(session, process=PROCESS, now=now))
            for c in active_campaigns(session):
                if settings.campaign.slug and c.slug != settings.campaign.slug:
                    continue
                code, new = ensure_bootstrap_code(session, campaign_id=c.id, now=now, ttl_hours=ttl)  # type: ignore[arg-type]
                if code:
                    out.append((c.name, code if new else None))
        return out

    for name, code in await asyncio.to_thread(codes):
        if code is None:  # made and shown at an earlier start: never shown (or logged) again
            log.warning("[%s] no coordinator yet; the bootstrap code was printed when it was made", name)
            print(f"[{name}] {BOOTSTRAP_AGAIN}", flush=True)
            continue
        banner = BOOTSTRAP_BANNER.format(
            username=app.bot.username, code=code, hours=ttl,
            link=create_deep_linked_url(app.bot.username, code),
        )
        app.bot_data.setdefault("bootstrap_codes", []).append(code)
        log.warning("[%s] no coordinator yet: a bootstrap code was made and printed (not logged)", name)
        print(f"[{name}] {banner}", flush=True)
    for hook in app.bot_data.get("startup_hooks", []):
        result = hook(app)
        if hasattr(result, "__await__"):
            await result


async def on_stop(app: Application) -> None:
    """After stop(), before shutdown() closes the connection: end the menus' task and
    confirm the handled updates to Telegram (a clean restart does not see them again)."""
    await app.bot_data["replies"].drain()
    await app.bot_data["menus"].stop()
    if isinstance(app.updater, ConfirmAfterHandlingUpdater) and not app.bot_data.get("confirmed"):
        app.bot_data["confirmed"] = True
        with contextlib.suppress(Exception):  # post_shutdown: the connection may be closed
            await app.updater.confirm_handled()


def _default_clock(settings: Settings) -> Clock:
    tz = settings.campaign.tz
    return lambda: datetime.now(tz)


def build_application(
    *,
    settings: Settings,
    engine: Engine,
    clock: Clock | None = None,
    token: str | None = None,
    base_url: str | None = None,
    base_file_url: str | None = None,
) -> Application:
    """The bot, wired: handlers, menus, rate limiter, defaults, clock, database.

    ``token``/``base_url``/``base_file_url`` override the configuration (the console
    and the tests point the same application at a local stand-in of the Bot API).
    """
    token = token if token is not None else settings.telegram.token.get_secret_value().strip()
    if not token:
        raise ValueError("no bot token: set QCBOT_BOT_TOKEN or telegram.token")
    protect_logs()
    tracker = UpdateTracker()
    # One budget for the nudges and the answers (bot.ratelimit); the scheduler paces with it.
    pacer = Pacer.from_config(settings.scheduler)
    defaults = Defaults(
        parse_mode=ParseMode.HTML,
        tzinfo=settings.campaign.tz,
        link_preview_options=LinkPreviewOptions(is_disabled=True),
        allow_sending_without_reply=True,
    )
    builder = ApplicationBuilder()
    proxy = settings.telegram.proxy_url.get_secret_value()
    if proxy:  # every Bot API call, the long poll and file downloads (python-telegram-bot's own)
        builder = builder.proxy(proxy).get_updates_proxy(proxy)
    app = (
        builder
        .token(token)
        .base_url(base_url or settings.telegram.base_url)
        .base_file_url(base_file_url or settings.telegram.base_file_url)
        .defaults(defaults)
        .rate_limiter(PacedRateLimiter(pacer, max_retries=3))
        .concurrent_updates(TrackingUpdateProcessor(settings.telegram.concurrent_updates, tracker))
        # A second connection for getUpdates: confirming the handled updates at shutdown
        # must not wait on the long poll that stopping just cancelled.
        .get_updates_connection_pool_size(2)
        .context_types(ContextTypes(context=QcContext))
        .post_init(on_startup)
        .post_stop(on_stop)
        .post_shutdown(on_stop)  # when start-up failed, post_stop is not called
        .build()
    )
    # The builder's Updater confirms a batch of updates as soon as it fetched the next;
    # ours only once each was handled (same bot and queue): nothing is lost in a crash.
    app.updater = ConfirmAfterHandlingUpdater(tracker=tracker, bot=app.bot, update_queue=app.update_queue)
    app.bot_data.update(
        updates=tracker,
        pacer=pacer,
        settings=settings, engine=engine, clock=clock or _default_clock(settings),
        startup_hooks=[], plan_changed_hooks=[],
        menus=MenuSync(app, engine=engine, slug=settings.campaign.slug),
        guard=gate.Guard(settings.telegram),
        replies=Replies(),
    )
    register_handlers(app)
    app.bot_data["startup_hooks"].append(lambda a: install_scheduler(a, settings=settings, engine=engine))
    app.bot_data["startup_hooks"].append(
        lambda a: install_backups(a, settings=settings, engine=engine, clock=a.bot_data["clock"])
    )
    return app


@contextlib.asynccontextmanager
async def running(app: Application, *, poll_timeout: float = 10, poll_interval: float = 0.0) -> AsyncIterator[Application]:
    """Run ``app`` with long polling inside an async block (tests, the console).

    The same start-up as ``run_polling`` (initialize, :func:`on_startup`, start,
    polling) and a graceful stop in reverse order (:func:`on_stop` before shutdown).
    """
    await app.initialize()
    try:
        await on_startup(app)
        await app.updater.start_polling(  # type: ignore[union-attr]
            poll_interval=poll_interval, timeout=poll_timeout, allowed_updates=Update.ALL_TYPES,
            drop_pending_updates=False,
        )
        await app.start()
        try:
            yield app
        finally:
            if app.updater is not None and app.updater.running:
                await app.updater.stop()
            if app.running:
                await app.stop()
    finally:
        await on_stop(app)
        await app.shutdown()
