"""One scheduler sweep (``scheduler.sweep``) over the whole province.

* catch-up: the first sweep at 09:00:30 on the province's "today", when the nudges
  of the whole catch-up window are due and none is in the outbox yet (the outbox
  history ends before the window) — what a restart after a few days' downtime costs;
* idle: the same sweep again, every nudge already materialised — what every
  ``sweep_interval_seconds`` tick costs on a normal day ("nothing due");
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
from models.db import make_engine
from models.tables import Outbox, OutboxState
from qcbot.config import SchedulerConfig

TARGET_IDLE_MS = 200.0
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


def run_sweep(ctx: Ctx) -> list[dict[str, Any]]:
    from scheduler import sweep

    engine = make_engine(ctx.work_url)
    config = SchedulerConfig()
    now = ctx.anchor(9, 0) + timedelta(seconds=30)
    try:
        t0 = time.perf_counter()
        first = sweep(engine=engine, now=now, config=config)
        catchup = time.perf_counter() - t0
        idle: list[float] = []
        planned = first.planned
        for _ in range(3 if ctx.quick else 6):
            t0 = time.perf_counter()
            r = sweep(engine=engine, now=now, config=config)
            idle.append(time.perf_counter() - t0)
            if r.inserted:
                raise RuntimeError(f"an idle sweep inserted {r.inserted} rows")
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
        row("sweep_idle", f"sweep with nothing new due ({planned:,} due nudges re-planned, 0 inserted)",
            s_idle, target=f"≤ {TARGET_IDLE_MS:g} ms", met=s_idle["p95"] <= TARGET_IDLE_MS, planned=planned),
    ]
    if burst:
        rows.append(row("sweep_10k", f"sweep when {min(inserted):,} nudges fall due at once", s_burst,
                        target=f"≤ {TARGET_10K_MS / 1000:g} s", met=s_burst["max"] <= TARGET_10K_MS,
                        inserted=inserted))
    else:
        rows.append(row("sweep_10k", f"sweep when 10,000 nudges fall due at once: only {first.inserted:,} "
                        "due in this province, not measured", summary([]), target=f"≤ {TARGET_10K_MS / 1000:g} s"))
    return rows
