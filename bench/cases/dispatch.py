"""Dispatch (``scheduler.dispatch``) of 2,000 nudges under Telegram's flood limits.

The morning of a working day: the catch-up sweep at 09:00 materialised the window's
nudges; rows beyond the first 2,000 chats (by id) are set aside (cancelled), so that
the run owes exactly 2,000 messages, each to its own chat (the group chats of the
campaigns and the private chats of liaisons who asked for private nudges), which is
what makes 30/s reachable at all (1/s per private chat, 20/min per group).

The sender is the real application's bot (``build_application(...).bot``: ExtBot with
``AIORateLimiter``), the pacing the scheduler's own ``Pacer``; the stand-in (a separate
process) enforces 30/s overall, 20/min per group and 1/s per private chat, and answers
429 with ``retry_after`` beyond them.

Reported: the sending rate (messages between the first and the last send, over that
time) as a fraction of 30/s; the whole run (claim included); 429s the stand-in sent;
messages lost (a chat owed a message that got none, or a row not sent) and duplicates.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from bench.app_thread import bench_settings
from bench.cases import Ctx, row
from bench.standin_proc import StandinProcess
from infra.config import SchedulerConfig
from infra.db import make_engine
from models.tables import Outbox, OutboxState

LIMIT_PER_SECOND = 30.0
TARGET_FRACTION = 0.90


def _keep_chats(engine: Any, n: int) -> int:  # noqa: ANN401
    """Cancel pending rows of every chat but the first ``n`` (by lowest row id); returns chats kept."""
    t = Outbox.__table__  # type: ignore[attr-defined]
    with engine.begin() as conn:
        firsts = conn.execute(
            sa.select(t.c.telegram_chat_id, sa.func.min(t.c.id).label("first"))
            .where(t.c.state == OutboxState.pending.value).group_by(t.c.telegram_chat_id)
            .order_by(sa.func.min(t.c.id))
        ).all()
        drop = [chat for chat, _ in firsts[n:]]
        for i in range(0, len(drop), 500):
            conn.execute(t.update().where(t.c.state == OutboxState.pending.value,
                                          t.c.telegram_chat_id.in_(drop[i:i + 500]))
                         .values(state=OutboxState.cancelled.value, last_error="bench: set aside"))
        return min(n, len(firsts))


def prepare_outbox(engine: Any, ctx: Ctx, messages: int) -> tuple[int, int]:  # noqa: ANN401
    """Sweep at 09:00:30 and keep ``messages`` chats; (chats, pending rows)."""
    from scheduler import sweep

    sweep(engine=engine, now=ctx.anchor(9, 0) + timedelta(seconds=30), config=SchedulerConfig())
    chats = _keep_chats(engine, messages)
    t = Outbox.__table__  # type: ignore[attr-defined]
    with engine.connect() as conn:
        rows = conn.execute(sa.select(sa.func.count()).where(t.c.state == OutboxState.pending.value)).scalar()
    return chats, int(rows or 0)


async def _dispatch(ctx: Ctx, engine: Any, si: StandinProcess) -> tuple[Any, float]:  # noqa: ANN401
    from bot.app import build_application
    from scheduler import Pacer, dispatch

    settings = bench_settings(db_url=ctx.work_url, storage_dir=Path(ctx.out) / "evidence")
    app = build_application(settings=settings, engine=engine, token=si.token, base_url=si.base_url,
                            base_file_url=si.base_file_url)
    await app.initialize()
    try:
        config = settings.scheduler
        t0 = time.perf_counter()
        report = await dispatch(engine=engine, bot=app.bot, now=ctx.anchor(9, 1), config=config,
                                pacer=Pacer.from_config(config))
        return report, time.perf_counter() - t0
    finally:
        await app.shutdown()


def run_dispatch(ctx: Ctx) -> list[dict[str, Any]]:
    messages = 300 if ctx.quick else 2000
    engine = make_engine(ctx.work_url)
    t = Outbox.__table__  # type: ignore[attr-defined]
    try:
        with engine.connect() as conn:
            before = int(conn.execute(sa.select(sa.func.max(t.c.id))).scalar() or 0)
        chats, pending = prepare_outbox(engine, ctx, messages)
        with engine.connect() as conn:
            expected = {r[0] for r in conn.execute(
                sa.select(t.c.telegram_chat_id).where(t.c.state == OutboxState.pending.value).distinct())}
        with StandinProcess.start(rate_limits=True) as si:
            ctl = si.client()
            ctl.calls()
            report, elapsed = asyncio.run(_dispatch(ctx, engine, si))
            sends = ctl.calls(after=0, methods="sendMessage,sendPhoto,sendDocument")
            stats = ctl.stats()
        # Every message counts against Telegram's limits (the digest's chart too); the
        # nudges themselves are the text messages.
        ok = [c for c in sends if c["status"] == 200]
        texts = [c for c in ok if c["method"] == "sendMessage"]
        per_chat = Counter(int(c["chat_id"]) for c in texts)
        with engine.connect() as conn:
            states = Counter(dict(conn.execute(
                sa.select(t.c.state, sa.func.count()).where(t.c.telegram_chat_id.in_(list(expected)))
                .where(t.c.id > before)
                .group_by(t.c.state)).all()))
            not_sent_chats = {r[0] for r in conn.execute(
                sa.select(t.c.telegram_chat_id).where(t.c.telegram_chat_id.in_(list(expected)), t.c.id > before,
                                                      t.c.state.in_(["pending", "claimed", "failed"])))}
    finally:
        engine.dispose()
    lost = len(expected - set(per_chat)) + len(not_sent_chats - set(per_chat))
    duplicates = sum(n - 1 for n in per_chat.values() if n > 1)
    first, last = (min(c["time"] for c in ok), max(c["time"] for c in ok)) if ok else (0.0, 0.0)
    rate = (len(ok) - 1) / (last - first) if len(ok) > 1 and last > first else 0.0
    overall = len(ok) / elapsed if elapsed else 0.0
    fraction = rate / LIMIT_PER_SECOND
    summ = {"n": len(ok), "median": round(rate, 2), "p95": None, "max": None, "mean": round(overall, 2)}
    return [row(
        "dispatch",
        f"dispatch of {chats:,} nudges ({pending:,} outbox rows, merged per chat; {len(ok) - len(texts)} "
        f"digest charts besides) under the stand-in's flood limits: {rate:.1f} msg/s = {fraction:.0%} of 30/s while sending, "
        f"{overall:.1f} msg/s over the whole run ({elapsed:.1f} s, claim included); "
        f"429s: {stats['rate_limited']}; lost: {lost}; duplicates: {duplicates}",
        summ, unit="msg/s",
        target="≥ 90 % of 30/s, 0 lost", met=fraction >= TARGET_FRACTION and lost == 0,
        fraction=round(fraction, 3), overall_rate=round(overall, 2), seconds=round(elapsed, 2),
        sent=report.sent, merged=report.merged, claimed=report.claimed, failed=report.failed,
        retried=report.retried, flood_waits=report.flood_waits, rescheduled=report.rescheduled,
        rate_limited_429=stats["rate_limited"], lost=lost, duplicates=duplicates,
        outbox_states=dict(states), expected_chats=len(expected),
    )]

