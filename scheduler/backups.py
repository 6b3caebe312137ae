"""The daily backup job: APScheduler wakes us; infra.backup does the work."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Engine
from telegram.ext import ContextTypes

from infra.backup import backup_job
from infra.config import Settings
from scheduler.service import JOB_KWARGS

log = logging.getLogger(__name__)

BACKUP_JOB = "qcbot-daily-backup"


def install_backups(
    application: Any, *, settings: Settings, engine: Engine, clock: Callable[[], datetime]
) -> bool:
    """Add the daily backup at ``backup.time`` (campaign time) when ``backup.enabled``."""
    config = settings.backup
    if not config.enabled:
        return False
    if application.job_queue is None:
        raise RuntimeError("the Application has no JobQueue (install python-telegram-bot[job-queue])")

    async def run(_context: ContextTypes.DEFAULT_TYPE) -> None:
        """Write, verify and prune one backup, off the event loop."""
        try:
            result = await asyncio.to_thread(
                backup_job, engine, settings.storage.dir, config.dir, config.keep,
                key_file=config.key_file, now=clock(),
            )
        except Exception:
            log.exception("daily backup failed")
            return
        log.info("daily backup written: %s", result.path)

    application.job_queue.run_daily(
        run,
        time=config.time.replace(tzinfo=settings.campaign.tz),
        name=BACKUP_JOB,
        job_kwargs=dict(JOB_KWARGS),
    )
    return True
