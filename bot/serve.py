"""Serving: ``qcbot run``'s blocking loop, polling (:mod:`bot.polling`) or webhook (:mod:`bot.webhook`)."""

from __future__ import annotations

import asyncio
import gc
import logging

from telegram import Update
from telegram.ext import Application

from bot.app import _OneLineBootstrapFailure
from bot.webhook import serve_forever
from infra.config import Settings


def run(app: Application) -> None:
    """Block serving updates, polling or webhook per configuration (Ctrl-C stops cleanly)."""
    settings: Settings = app.bot_data["settings"]
    tg = settings.telegram
    ptb_log = logging.getLogger("telegram.ext")
    if not any(isinstance(f, _OneLineBootstrapFailure) for f in ptb_log.filters):
        ptb_log.addFilter(_OneLineBootstrapFailure())
    # Everything alive now (modules, the application) lives as long as the process: move it
    # out of the cyclic collector's way. A full collection then scans only what handlers
    # made since, ~25 ms instead of ~100 ms paused mid-/status (bench/, BENCHMARKS.md).
    gc.collect()
    gc.freeze()
    if tg.mode == "webhook":
        asyncio.run(serve_forever(app, settings))
    else:
        app.run_polling(allowed_updates=Update.ALL_TYPES)
