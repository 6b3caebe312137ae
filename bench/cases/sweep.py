"""One scheduler sweep (``scheduler.sweep``) over the whole province.

* catch-up: the first sweep at 09:00:30 on the province's "today", when the nudges
  of the whole catch-up window are due and none is in the outbox yet (the outbox
  history ends before the window) — what a restart after a few days' downtime costs;
* idle: the scheduler's next ticks, a minute apart, with its memo (``SweepMemo``):
  nothing written, no nudge moment passed — what every ``sweep_interval_seconds``
  tick costs on a normal day ("nothing due");
* busy: the same, but 12 of the 120 campaigns had a write since the last tick (a
  liaison's report: one audit row each), so those 12 are planned again;
* full: a sweep without the memo, every campaign planned again, every nudge already
  materialised (after a restart, and every ``replan_every_seconds``);
* 10,000 at once: the 10,000 latest due nudges are taken out of the outbox again,
  and one sweep materialises exactly those 10,000 (the plan work is the same as
  idle; the difference is the inserts).
"""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from bench.cases import Ctx, row
from bench.stats import summary
from infra.config import SchedulerConfig
from infra.db import make_engine
from models.tables import AuditLog, Campaign, Outbox, OutboxState

TARGET_IDLE_MS = 200.0
#: Campaigns written to between two ticks in the "busy" sweep.
BUSY_CAMPAIGNS = 12
TARGET_10K_MS = 5000.0
BURST = 10_000


def _forget_latest(engine: Any, n: int) -> int:  # noqa: ANN401
    """Make the ``n`` newest pending outbox rows unknown to the scheduler again.

    Their idempotency keys are renamed (and the rows cancelled), so that the next sweep
    plans and inserts exactly these ``n`` nudges anew. (Deleting them instead is slow on
    SQLite: every delete checks ``outbox.merged_into_id``, which has no index.)
    """
    table = Outbox.__table__  # type: ignore[attr-defined]
    with engine.begin() as conn:
        ids = [r[0] for r in conn.execute(
            sa.select(table.c.id).where(table.c.state == OutboxState.pending.value)
            .order_by(table.c.due_at.desc(), table.c.id.desc()).limit(n))]
        for i in range(0, len(ids), 500):
            conn.execute(table.update().where(table.c.id.in_(ids[i:i + 500])).values(
                idem_key=sa.func.substr(table.c.idem_key, 1, 200) + "|bench-forgotten-" + sa.cast(table.c.id, sa.String),
                state=OutboxState.cancelled.value, last_error="bench: forgotten, planned again"))
    return len(ids)


def _touch(engine: Any, n: int, *, at: Any) -> None:  # noqa: ANN401
    """One audited write (an audit row) in each of the first ``n`` active campaigns."""
    with engine.begin() as conn:
        ids = [r[0] for r in conn.execute(sa.select(Campaign.__table__.c.id)  # type: ignore[attr-defined]
                                          .where(Campaign.__table__.c.active).order_by("id").limit(n))]  # type: ignore[attr-defined]
        conn.execute(AuditLog.__table__.insert(), [  # type: ignore[attr-defined]
            {"campaign_id": cid, "at": at, "actor_kind": "cli", "action": "bench.touch", "entity": "campaign",
             "entity_id": cid} for cid in ids])


def _check_idle(report: Any, *, skipped: int) -> None:  # noqa: ANN401
    if report.inserted or report.skipped != skipped:
        raise RuntimeError(f"an idle sweep inserted {report.inserted} rows, skipped {report.skipped} "
                           f"campaigns (expected {skipped})")


def run_sweep(ctx: Ctx) -> list[dict[str, Any]]:
    from scheduler import sweep
    from scheduler.sweep import SweepMemo

    engine = make_engine(ctx.work_url)
    config = SchedulerConfig()
    now = ctx.anchor(9, 0) + timedelta(seconds=30)
    try:
        t0 = time.perf_counter()
        first = sweep(engine=engine, now=now, config=config)
        catchup = time.perf_counter() - t0
        busy_n = min(BUSY_CAMPAIGNS, first.campaigns)
        memo = SweepMemo(replan_every=timedelta(seconds=config.replan_every_seconds))
        sweep(engine=engine, now=now, config=config, memo=memo)  # the tick that fills the memo
        planned = first.planned
        idle: list[float] = []
        busy: list[float] = []
        full: list[float] = []
        tick = now
        for _ in range(3 if ctx.quick else 6):
            tick += timedelta(seconds=config.sweep_interval_seconds)
            t0 = time.perf_counter()
            r = sweep(engine=engine, now=tick, config=config, memo=memo)
            idle.append(time.perf_counter() - t0)
            _check_idle(r, skipped=first.campaigns)
            tick += timedelta(seconds=config.sweep_interval_seconds)
            _touch(engine, busy_n, at=tick)
            t0 = time.perf_counter()
            r = sweep(engine=engine, now=tick, config=config, memo=memo)
            busy.append(time.perf_counter() - t0)
            _check_idle(r, skipped=first.campaigns - busy_n)
            t0 = time.perf_counter()
            r = sweep(engine=engine, now=now, config=config)
            full.append(time.perf_counter() - t0)
            _check_idle(r, skipped=0)
        burst: list[float] = []
        inserted: list[int] = []
        if first.inserted >= BURST:
            for _ in range(1 if ctx.quick else 2):
                _forget_latest(engine, BURST)
                t0 = time.perf_counter()
                r = sweep(engine=engine, now=now, config=config)
                burst.append(time.perf_counter() - t0)
                inserted.append(r.inserted)
    finally:
        engine.dispose()
    s_idle, s_burst = summary(idle), summary(burst)
    rows = [
        row("sweep_catchup", f"first sweep at 09:00: the catch-up window's {first.inserted:,} nudges "
            f"materialised ({first.campaigns} campaigns)", summary([catchup]), target="(no target)",
            inserted=first.inserted),
        row("sweep_idle", f"the scheduler's tick with nothing new due: {first.campaigns} campaigns "
            "skipped by the memo (nothing written, no nudge moment passed)",
            s_idle, target=f"≤ {TARGET_IDLE_MS:g} ms", met=s_idle["p95"] <= TARGET_IDLE_MS, planned=planned),
        row("sweep_busy", f"the same tick after writes in {busy_n} campaigns: those planned again "
            "(0 inserted)", summary(busy), target=f"≤ {TARGET_IDLE_MS:g} ms",
            met=summary(busy)["p95"] <= TARGET_IDLE_MS),
        row("sweep_full", f"a sweep without the memo: every campaign planned again ({planned:,} due "
            "nudges, 0 inserted; after a restart and every replan_every_seconds)", summary(full),
            target="(no target)", planned=planned),
    ]
    if burst:
        rows.append(row("sweep_10k", f"sweep when {min(inserted):,} nudges fall due at once", s_burst,
                        target=f"≤ {TARGET_10K_MS / 1000:g} s", met=s_burst["max"] <= TARGET_10K_MS,
                        inserted=inserted))
    else:
        rows.append(row("sweep_10k", f"sweep when 10,000 nudges fall due at once: only {first.inserted:,} "
                        "due in this province, not measured", summary([]), target=f"≤ {TARGET_10K_MS / 1000:g} s"))
    return rows
