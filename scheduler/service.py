"""Wiring into python-telegram-bot: APScheduler (via the JobQueue) wakes us up.

The jobs hold no state. Each tick sweeps (plan -> outbox) and dispatches
(outbox -> Telegram); what is due is always recomputed from the database, so a
missed or late tick only delays messages, never loses them. Every job is added
with ``misfire_grace_time=None`` (APScheduler's default of one second would
silently skip a late run), ``coalesce=True`` (runs missed while the loop was
busy collapse into one) and ``max_instances=1``; an asyncio lock additionally
keeps the sweeper and the cron wake-ups from overlapping.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from apscheduler.triggers.cron import CronTrigger
from sqlalchemy.engine import Engine
from telegram import Bot

from infra.config import SchedulerConfig, Settings
from infra.types import utcnow
from scheduler import timing
from scheduler.dispatch import DispatchReport, dispatch
from scheduler.pacing import Pacer
from scheduler.sweep import SweepMemo, SweepReport, sweep

log = logging.getLogger(__name__)

JOB_KWARGS: dict[str, Any] = {"misfire_grace_time": None, "coalesce": True, "max_instances": 1}
SWEEP_JOB = "qcbot-scheduler-sweep"
DIGEST_JOB = "qcbot-scheduler-digest"
NUDGE_JOB = "qcbot-scheduler-nudge-time"
POKE_JOB = "qcbot-scheduler-poke"


@dataclass(slots=True)
class TickReport:
    sweep: SweepReport
    dispatch: DispatchReport


async def run_once(
    *,
    engine: Engine,
    bot: Bot,
    now: datetime,
    config: SchedulerConfig | None = None,
    pacer: Pacer | None = None,
    campaign_ids: Iterable[int] | None = None,
    memo: SweepMemo | None = None,
) -> TickReport:
    """One tick: materialise what is due at ``now``, then send it."""
    config = config or SchedulerConfig()
    ids = list(campaign_ids) if campaign_ids is not None else None
    swept = await asyncio.to_thread(
        sweep, engine=engine, now=now, config=config, campaign_ids=ids, memo=memo
    )
    sent = await dispatch(engine=engine, bot=bot, now=now, config=config, pacer=pacer, campaign_ids=ids)
    return TickReport(sweep=swept, dispatch=sent)


class SchedulerService:
    """The scheduler as installed in an Application (one per process)."""

    def __init__(
        self,
        *,
        engine: Engine,
        config: SchedulerConfig,
        clock: Callable[[], datetime] = utcnow,
        pacer: Pacer | None = None,
    ) -> None:
        self.engine = engine
        self.config = config
        self.clock = clock
        self.pacer = pacer or Pacer.from_config(config)
        self._lock = asyncio.Lock()
        # Lets an idle sweep skip campaigns whose plan cannot have changed.
        self.memo = SweepMemo(replan_every=timedelta(seconds=config.replan_every_seconds))
        self.ticks = 0
        self.last: TickReport | None = None

    async def tick(self, bot: Bot) -> TickReport:
        async with self._lock:
            report = await run_once(
                engine=self.engine, bot=bot, now=self.clock(), config=self.config, pacer=self.pacer,
                memo=self.memo,
            )
            self.ticks += 1
            self.last = report
            d = report.dispatch
            if d.claimed or report.sweep.inserted:
                log.info(
                    "scheduler: %d new, %d sent, %d merged, %d cancelled, %d retried, %d failed",
                    report.sweep.inserted, d.sent, d.merged, d.cancelled, d.retried, d.failed,
                )
            return report

    def poke(self, application: Any) -> None:
        """Run a tick now (e.g. a deadline moved): registered as a ``plan_changed`` hook."""
        if application.job_queue is not None:
            application.job_queue.run_once(self.job, when=0, name=POKE_JOB, job_kwargs=dict(JOB_KWARGS))

    async def job(self, context: Any) -> None:
        """The JobQueue callback."""
        try:
            await self.tick(context.bot)
        except Exception:  # keep the job alive; the next tick recomputes everything
            log.exception("scheduler tick failed")


def install(
    application: Any,
    *,
    settings: Settings,
    engine: Engine,
    clock: Callable[[], datetime] | None = None,
    first: float = 1.0,
) -> SchedulerService | None:
    """Add the scheduler's jobs to ``application.job_queue``; call it from post_init.

    The clock is ``clock``, else ``application.bot_data["clock"]``, else the
    real UTC time. Returns the service (also in ``bot_data["scheduler"]``), or
    None when ``[scheduler] enabled = false``. A ``plan_changed`` hook makes a
    changed deadline re-plan at once instead of at the next sweep.
    """
    config = settings.scheduler
    if not config.enabled:
        log.info("scheduler disabled by configuration")
        return None
    job_queue = application.job_queue
    if job_queue is None:
        raise RuntimeError("the Application has no JobQueue (install python-telegram-bot[job-queue])")
    clock = clock or application.bot_data.get("clock") or utcnow
    # The application's Pacer, if it has one, also counts the bot's answers (one budget).
    service = SchedulerService(engine=engine, config=config, clock=clock,
                               pacer=application.bot_data.get("pacer"))
    tz = timing.zone(settings.campaign.timezone)
    job_queue.run_repeating(
        service.job,
        interval=config.sweep_interval_seconds,
        first=first,
        name=SWEEP_JOB,
        job_kwargs=dict(JOB_KWARGS),
    )
    crons = [
        (
            NUDGE_JOB,
            CronTrigger(
                hour=config.nudge_time.hour,
                minute=config.nudge_time.minute,
                second=config.nudge_time.second,
                timezone=tz,
            ),
        )
    ]
    if config.digest_time != config.nudge_time:  # otherwise the daily wake-up covers it
        crons.append(
            (
                DIGEST_JOB,
                CronTrigger(
                    day_of_week=config.digest_weekday,
                    hour=config.digest_time.hour,
                    minute=config.digest_time.minute,
                    second=config.digest_time.second,
                    timezone=tz,
                ),
            )
        )
    for name, trigger in crons:
        job_queue.run_custom(service.job, job_kwargs={"trigger": trigger, **JOB_KWARGS}, name=name)
    application.bot_data["scheduler"] = service
    application.bot_data.setdefault("plan_changed_hooks", []).append(service.poke)
    return service
