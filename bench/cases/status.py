"""/status through the real handler, and the province overview.

/status: a coordinator of the busiest campaign (most evidence) sends /status in their
private chat through the stand-in (a separate process); the latency is from the moment
the update was queued in the stand-in to the moment the bot's reply (the first text
message quoting it) reached the stand-in, both read on the stand-in's clock. The chart
that follows the text is measured too. One request at a time.

Overview: ``models.status.province_overview`` over every campaign, in a read-only
session, called directly (no handler offers it yet).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlmodel import select

from bench.app_thread import AnchoredClock, BotThread, bench_settings
from bench.cases import Ctx, row
from bench.standin_proc import StandinProcess
from bench.stats import summary
from infra.db import make_engine, read_only
from models.tables import Evidence, Member, Role

TARGET_STATUS_P95_MS = 50.0
TARGET_OVERVIEW_MS = 500.0


def busiest_coordinator(engine: Any) -> tuple[int, int, str]:  # noqa: ANN401
    """(campaign id, coordinator's Telegram id, name) of the campaign with the most evidence."""
    with read_only(engine) as s:
        cid = s.exec(
            select(Evidence.campaign_id).group_by(Evidence.campaign_id)
            .order_by(sa.func.count().desc(), Evidence.campaign_id).limit(1)
        ).one()
        m = s.exec(select(Member).where(Member.campaign_id == cid, Member.role == Role.coordinator,
                                        Member.private_chat_id.is_not(None)).order_by(Member.id)).first()  # type: ignore[union-attr]
        assert m is not None
        return cid, m.telegram_user_id, m.display_name


def run_status(ctx: Ctx, *, samples: int | None = None) -> list[dict[str, Any]]:
    samples = samples or (20 if ctx.quick else 50)
    engine = make_engine(ctx.work_url)
    cid, uid, name = busiest_coordinator(engine)
    settings = bench_settings(db_url=ctx.work_url, storage_dir=Path(ctx.out) / "evidence")
    text_lat: list[float] = []
    chart_lat: list[float] = []
    chunks = 0
    try:
        with StandinProcess.start() as si:
            ctl = si.client()
            ctl.users([{"id": uid, "first_name": name}])
            with BotThread(settings=settings, engine=engine, standin=si, clock=AnchoredClock(ctx.anchor())):
                ctl.calls()  # skip start-up calls
                for i in range(samples + 3):
                    [sent] = ctl.send([{"user_id": uid, "chat_id": uid, "text": "/status"}])
                    mid, t0 = sent["message_id"], sent["enqueued_at"]
                    calls = ctl.wait_calls(
                        lambda got: any(c["method"] == "sendPhoto" for c in got), timeout=60)
                    texts = [c for c in calls if c["method"] == "sendMessage" and c["chat_id"] == uid]
                    first = next(c for c in texts if c["reply_to"] == mid)
                    photo = next(c for c in calls if c["method"] == "sendPhoto")
                    if first["status"] != 200 or (first["text"] or "").startswith("⚠️"):
                        raise RuntimeError(f"/status was refused: {(first['text'] or '')[:200]!r}")
                    if i >= 3:  # the first three warm the caches
                        text_lat.append(first["time"] - t0)
                        chart_lat.append(photo["time"] - t0)
                        chunks = len(texts)
    finally:
        engine.dispose()
    st = summary(text_lat)
    return [
        row("status", f"/status via the real handler, update queued → first reply recorded "
            f"(campaign #{cid}, {chunks} text message(s))", st,
            target=f"p95 ≤ {TARGET_STATUS_P95_MS:g} ms", met=st["p95"] <= TARGET_STATUS_P95_MS,
            campaign_id=cid, samples_ms=[round(x * 1000, 1) for x in text_lat]),
        row("status_chart", "/status: update queued → the chart (sendPhoto) recorded", summary(chart_lat),
            target="(no target)"),
    ]


def run_overview(ctx: Ctx, *, samples: int | None = None) -> list[dict[str, Any]]:
    from models.status import province_overview

    samples = samples or (3 if ctx.quick else 6)
    engine = make_engine(ctx.work_url)
    lat: list[float] = []
    lines = 0
    try:
        for i in range(samples + 1):
            t0 = time.perf_counter()
            with read_only(engine) as s:
                out = province_overview(session=s, today=ctx.spec.today)
            if i:  # the first one warms the connection and the caches
                lat.append(time.perf_counter() - t0)
            lines = len(out)
    finally:
        engine.dispose()
    st = summary(lat)
    return [row("overview", f"province_overview over {lines} campaigns (read-only session)", st,
                target=f"≤ {TARGET_OVERVIEW_MS:g} ms", met=st["p95"] <= TARGET_OVERVIEW_MS, campaigns=lines)]
