"""Sending what the outbox holds: claim, send, mark; paced; every outcome recorded.

:func:`dispatch` needs only an engine and an initialised ``telegram.Bot`` (the
Application's bot or a bare one): it claims the due batches (one per chat) in a
committed transaction, sends them through python-telegram-bot, and records each
outcome in its own transaction:

* sent: ``sent_at``, ``telegram_message_id`` and a BotMessage row;
* ``RetryAfter``: the chat is paused for ``retry_after``; short waits are waited
  out in the same run, longer ones reschedule the row (not counted as an attempt);
* network errors, timeouts, 5xx: retried later with exponential backoff, failed
  after ``max_attempts`` with the last error;
* Forbidden / chat not found: the chat or member is marked unreachable (reason
  kept), the rows fail, and the coordinator is told (sent in the same run);
* any other refusal (400): failed with Telegram's description.

The weekly digest is followed by the /status chart (``scheduler.digest_chart``), best
effort: the charts go out after every text of the run, so a chart never delays a
nudge. Each is rendered once its digest went out, one at a time, in a worker process
(:class:`reports.charts.ChartProcess`), so rendering (CPU under the GIL) never stalls
the event loop that sends and paces the texts (BENCHMARKS.md, finding 7).
"""

from __future__ import annotations

import asyncio
import logging
import time
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy.engine import Engine
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, LinkPreviewOptions
from telegram.constants import ParseMode
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    NetworkError,
    RetryAfter,
    TelegramError,
)

from infra.config import SchedulerConfig
from infra.db import read_only
from models.status import campaign_status
from models.tables import Campaign, OutboxState, SubjectKind
from reports.charts import ChartData, ChartProcess, chart_data_from_status
from scheduler import outbox
from scheduler.outbox import Batch
from scheduler.pacing import Pacer

log = logging.getLogger(__name__)

#: Batches sent at the same time (each chat's messages stay in order: one per chat per run).
DEFAULT_CONCURRENCY = 8
_UNREACHABLE_400 = ("chat not found", "user not found", "peer_id_invalid", "chat_write_forbidden")


@dataclass(slots=True)
class DispatchReport:
    claimed: int = 0
    sent: int = 0
    merged: int = 0
    cancelled: int = 0
    retried: int = 0
    failed: int = 0
    unreachable: int = 0
    flood_waits: int = 0
    rescheduled: int = 0
    held: int = 0
    alerts: int = 0
    messages: list[tuple[int, int]] = field(default_factory=list)  # (chat_id, message_id)


def retry_after_seconds(exc: RetryAfter) -> float:
    """``RetryAfter.retry_after`` as seconds (an int or a timedelta, by PTB version/setting)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        value = exc.retry_after
    if isinstance(value, timedelta):
        return value.total_seconds()
    return float(value)


def _markup(batch: Batch) -> InlineKeyboardMarkup | None:
    rows = batch.rendered.keyboard
    if not rows:
        return None
    return InlineKeyboardMarkup(
        [[InlineKeyboardButton(b["text"], callback_data=b["callback_data"]) for b in row] for row in rows]
    )


async def dispatch(
    *,
    engine: Engine,
    bot: Bot,
    now: datetime,
    config: SchedulerConfig | None = None,
    pacer: Pacer | None = None,
    campaign_ids: Iterable[int] | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
) -> DispatchReport:
    """Send every due outbox batch once; returns what happened.

    ``now`` is the logical time of the run (it advances with real elapsed time
    while the run waits for flood limits). ``pacer`` should be shared between
    runs so per-minute windows span them; by default each run paces itself.
    """
    config = config or SchedulerConfig()
    pacer = pacer or Pacer.from_config(config)
    ids = list(campaign_ids) if campaign_ids is not None else None
    started = time.monotonic()

    def clock() -> datetime:
        return now + timedelta(seconds=time.monotonic() - started)

    report = DispatchReport()
    gate = asyncio.Semaphore(max(1, concurrency))
    charts = DigestCharts(engine=engine, bot=bot, pacer=pacer) if config.digest_chart else None
    try:
        for _ in range(2):  # a second pass sends the alerts raised by the first
            claimed = await asyncio.to_thread(
                outbox.claim, engine=engine, now=clock(), config=config, campaign_ids=ids
            )
            report.claimed += len(claimed.batches)
            report.merged += claimed.merged
            report.cancelled += claimed.cancelled
            report.failed += claimed.failed
            report.held += claimed.held_quiet + claimed.held_backoff
            alerts_before = report.alerts
            await asyncio.gather(
                *(
                    _send(batch, engine=engine, bot=bot, clock=clock, config=config, pacer=pacer, gate=gate,
                          report=report, charts=charts)
                    for batch in claimed.batches
                )
            )
            if report.alerts == alerts_before:
                break
        if charts is not None:
            await charts.send()  # after every text
    finally:
        if charts is not None:
            await charts.close()
    return report


async def _send(
    batch: Batch,
    *,
    engine: Engine,
    bot: Bot,
    clock: Callable[[], datetime],
    config: SchedulerConfig,
    pacer: Pacer,
    gate: asyncio.Semaphore,
    report: DispatchReport,
    charts: DigestCharts | None = None,
) -> None:
    now = clock
    chat_id = batch.chat_id
    async with gate:
        while True:
            try:
                async with pacer.sending(chat_id):
                    message = await bot.send_message(
                        chat_id=chat_id,
                        text=batch.rendered.text,
                        parse_mode=ParseMode.HTML,
                        reply_markup=_markup(batch),
                        link_preview_options=LinkPreviewOptions(is_disabled=True),
                    )
            except RetryAfter as exc:
                wait = retry_after_seconds(exc)
                pacer.pause(chat_id, wait)
                if wait <= config.flood_wait_max_seconds:
                    report.flood_waits += 1
                    continue
                report.rescheduled += 1
                await asyncio.to_thread(outbox.mark_flood, engine=engine, batch=batch, retry_after=wait, now=now())
                return
            except ChatMigrated as exc:
                # A group became a supergroup: Telegram names the new id. Try it at once.
                new_id = int(exc.new_chat_id)
                log.info("chat %s migrated to %s", chat_id, new_id)
                await asyncio.to_thread(_migrate_chat, engine, chat_id, new_id)
                batch.chat_id = chat_id = new_id
                continue
            except Forbidden as exc:
                await _unreachable(batch, str(exc), engine=engine, now=now(), report=report)
                return
            except BadRequest as exc:
                text = str(exc)
                if any(marker in text.lower() for marker in _UNREACHABLE_400):
                    await _unreachable(batch, text, engine=engine, now=now(), report=report)
                else:
                    report.failed += 1
                    await asyncio.to_thread(
                        outbox.mark_failed, engine=engine, batch=batch, reason=f"Telegram 拒绝了这条消息：{text}", now=now()
                    )
                return
            except (NetworkError, TelegramError) as exc:
                await _retry(batch, f"{type(exc).__name__}: {exc}", engine=engine, now=now(), config=config, report=report)
                return
            except Exception as exc:  # a bug or an unexpected library error: keep the row
                log.exception("sending outbox row %s failed", batch.lead_id)
                await _retry(batch, f"{type(exc).__name__}: {exc}", engine=engine, now=now(), config=config, report=report)
                return
            report.sent += 1
            report.messages.append((chat_id, message.message_id))
            await asyncio.to_thread(
                outbox.mark_sent, engine=engine, batch=batch, message_id=message.message_id, now=now()
            )
            if charts is not None and batch.rendered.subject_kind == SubjectKind.digest:
                charts.owe(chat_id, batch.campaign_id, now())
            for name, data in batch.rendered.documents.items():
                # Best effort, like the chart: the text went out and is marked sent.
                try:
                    async with pacer.sending(chat_id):
                        await bot.send_document(chat_id=chat_id, document=data, filename=name,
                                                caption=f"📄 {name.removesuffix('.docx')}（可直接打印）")
                except Exception:
                    log.warning("the document %s for chat %s was not sent", name, chat_id, exc_info=True)
            return


DIGEST_CHART_CAPTION = "📊 得分（按类别）与各单位任务完成情况"


def _status_chart_data(engine: Engine, campaign_id: int, now: datetime) -> ChartData:
    """The numbers of the campaign's /status chart as of ``now`` (blocking: run it in a thread)."""
    with read_only(engine) as session:
        campaign = session.get(Campaign, campaign_id)
        if campaign is None:
            raise LookupError(f"campaign {campaign_id} not found")
        today = now.astimezone(ZoneInfo(campaign.timezone)).date()
        status = campaign_status(session=session, campaign_id=campaign_id, today=today)
    return chart_data_from_status(status)


class DigestCharts:
    """The digest charts of one dispatch run: the same picture as /status.

    :meth:`owe` is called once a digest text was delivered and marked sent: the
    campaign's chart (one per campaign and run, as of that moment) starts rendering in
    the worker process, one chart at a time, while the other texts go out. :meth:`send`,
    after every text, sends the charts in the order their digests went out. Best effort:
    a chart that fails is logged and never re-sends or fails its digest.
    """

    def __init__(self, *, engine: Engine, bot: Bot, pacer: Pacer, renderer: ChartProcess | None = None) -> None:
        self._engine = engine
        self._bot = bot
        self._pacer = pacer
        self.renderer = renderer or ChartProcess()
        self._owed: list[tuple[int, int]] = []  # (chat_id, campaign_id)
        self._renders: dict[int, asyncio.Task[Path]] = {}
        self._one_at_a_time = asyncio.Lock()
        self.sent = 0

    def owe(self, chat_id: int, campaign_id: int, now: datetime) -> None:
        self._owed.append((chat_id, campaign_id))
        if campaign_id not in self._renders:
            self._renders[campaign_id] = asyncio.create_task(self._render(campaign_id, now))

    async def _render(self, campaign_id: int, now: datetime) -> Path:
        async with self._one_at_a_time:
            data = await asyncio.to_thread(_status_chart_data, self._engine, campaign_id, now)
            # On disk until sent (a province's Monday: ~100 PNGs of ~130 kB), not in the bot's heap.
            return await self.renderer.render(data)

    async def send(self) -> None:
        owed, self._owed = self._owed, []
        for chat_id, campaign_id in owed:
            try:
                png = await asyncio.to_thread((await self._renders[campaign_id]).read_bytes)
                async with self._pacer.sending(chat_id):
                    await self._bot.send_photo(chat_id=chat_id, photo=png, caption=DIGEST_CHART_CAPTION)
                self.sent += 1
            except Exception:
                log.warning("the digest chart for chat %s was not sent", chat_id, exc_info=True)

    async def close(self) -> None:
        """Stop what is still rendering, end the worker (it removes the files)."""
        renders = list(self._renders.values())
        for task in renders:
            task.cancel()
        await asyncio.gather(*renders, return_exceptions=True)
        await self.renderer.close()


async def _retry(
    batch: Batch, error: str, *, engine: Engine, now: datetime, config: SchedulerConfig, report: DispatchReport
) -> None:
    state = await asyncio.to_thread(outbox.mark_retry, engine=engine, batch=batch, error=error, now=now, config=config)
    if state == OutboxState.failed:
        report.failed += 1
    else:
        report.retried += 1
    log.warning("outbox %s to %s: %s (%s)", batch.lead_id, batch.chat_id, error, state)


async def _unreachable(batch: Batch, reason: str, *, engine: Engine, now: datetime, report: DispatchReport) -> None:
    report.unreachable += 1
    report.failed += 1
    alerts = await asyncio.to_thread(outbox.mark_unreachable, engine=engine, batch=batch, reason=reason, now=now)
    report.alerts += len(alerts)
    log.warning("chat %s unreachable: %s (%d alert(s) queued)", batch.chat_id, reason, len(alerts))


def _migrate_chat(engine: Engine, old_id: int, new_id: int) -> None:
    from sqlmodel import col, select

    from infra.db import transaction
    from models.tables import Chat, Outbox

    with transaction(engine) as session:
        chat = session.exec(select(Chat).where(Chat.telegram_chat_id == old_id)).first()
        clash = session.exec(select(Chat).where(Chat.telegram_chat_id == new_id)).first()
        if chat is not None and clash is None:
            chat.telegram_chat_id = new_id
            session.add(chat)
        for row in session.exec(
            select(Outbox).where(
                Outbox.telegram_chat_id == old_id,
                col(Outbox.state).in_([OutboxState.pending, OutboxState.claimed, OutboxState.merged]),
            )
        ):
            row.telegram_chat_id = new_id
            session.add(row)
