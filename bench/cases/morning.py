"""09:00 on a working day: the scheduler's morning run and 100 liaisons at once.

The real application with its scheduler on (first tick one second after start, the
clock at 09:00:30 of the province's "today"): the tick sweeps every campaign (the
catch-up window's nudges), claims them and starts sending under the stand-in's flood
limits. Three seconds after start — while the scheduler sweeps and claims — 100
liaisons send ``/progress`` at once. Reported as for the burst: latency, lost writes,
"database is locked" errors; plus how far the dispatch got meanwhile.
"""

from __future__ import annotations

import logging
import random
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from bench.app_thread import AnchoredClock, BotThread, bench_settings
from bench.cases import Ctx, row
from bench.cases.burst import CONFIRMED, _LockWatch, pick_liaisons
from bench.cases.startup import ERROR_PREFIX
from bench.standin_proc import StandinProcess
from bench.stats import summary
from infra.db import make_engine
from models.tables import Assignment


def run_morning(ctx: Ctx, *, people: int = 100, delay: float = 3.0) -> list[dict[str, Any]]:
    engine = make_engine(ctx.work_url)
    settings = bench_settings(db_url=ctx.work_url, storage_dir=Path(ctx.out) / "evidence", scheduler=True)
    rng = random.Random(11)
    watch = _LockWatch()
    root = logging.getLogger()
    root.addHandler(watch)
    a = Assignment.__table__  # type: ignore[attr-defined]
    latencies: list[float] = []
    lost = confirmed = refused = errors_replied = 0
    notes: list[str] = []
    try:
        cast = pick_liaisons(engine, people)
        with StandinProcess.start(rate_limits=True) as si:
            ctl = si.client()
            ctl.users([{"id": c["user_id"], "first_name": c["name"]} for c in cast])
            clock = AnchoredClock(ctx.anchor(9, 0) + timedelta(seconds=30))
            with BotThread(settings=settings, engine=engine, standin=si, clock=clock):
                started = time.monotonic()
                ctl.calls()
                time.sleep(delay)
                percents = {c["user_id"]: rng.randrange(5, 96) for c in cast}
                sent = ctl.send([{"user_id": c["user_id"], "chat_id": c["user_id"],
                                  "text": f"/progress {c['task_no']} {percents[c['user_id']]} 早上填报"} for c in cast])
                queued = {s["chat_id"]: (s["enqueued_at"], s["message_id"]) for s in sent}
                answers: dict[int, dict[str, Any]] = {}

                def complete(got: list[dict[str, Any]]) -> bool:
                    for call in got:
                        chat = call["chat_id"]
                        if (call["method"] == "sendMessage" and chat in queued and chat not in answers
                                and call["reply_to"] == queued[chat][1]):
                            answers[chat] = call
                        elif call["method"] == "sendMessage" and chat in queued and chat not in answers \
                                and (call["text"] or "").startswith(ERROR_PREFIX):
                            answers[chat] = call  # the error handler's answer (not a reply)
                    got.clear()
                    return len(answers) == len(cast)

                try:
                    ctl.wait_calls(complete, timeout=180)
                except TimeoutError:
                    pass
                burst_done = time.monotonic() - started
                nudges = sum(1 for c in ctl.calls(after=0, methods="sendMessage")
                             if c["status"] == 200 and c["reply_to"] is None)
                with engine.connect() as conn:
                    held = dict(conn.execute(sa.select(a.c.id, a.c.percent).where(
                        a.c.id.in_([c["assignment_id"] for c in cast]))).all())
                for c in cast:
                    call = answers.get(c["user_id"])
                    if call is None:
                        errors_replied += 1
                        continue
                    text = call["text"] or ""
                    latencies.append(call["time"] - queued[c["user_id"]][0])
                    m = CONFIRMED.search(text)
                    if text.startswith("✅") and m:
                        confirmed += 1
                        if held[c["assignment_id"]] != percents[c["user_id"]]:
                            lost += 1
                    elif text.startswith("⚠️"):
                        refused += 1
                        if len(notes) < 5:
                            notes.append(text[:160])
                    else:
                        errors_replied += 1
                        if len(notes) < 5:
                            notes.append(text[:160])
    finally:
        root.removeHandler(watch)
        engine.dispose()
    st = summary(latencies)
    return [row(
        "morning", f"{people} × /progress {delay:g} s into the scheduler's 09:00 run (sweep, claim, dispatch "
        f"under flood limits): queued → answer; confirmed {confirmed}, lost {lost}, locked errors "
        f"{watch.locked}, refusals {refused}, unanswered or error replies {errors_replied}; "
        f"{nudges} nudges sent in the {burst_done:.0f} s it took",
        st, target="0 lost, 0 locked", met=lost == 0 and watch.locked == 0 and errors_replied == 0,
        confirmed=confirmed, lost=lost, locked=watch.locked, refused=refused, error_replies=errors_replied,
        log_errors=watch.errors, log_samples=watch.samples, notes=notes, nudges_meanwhile=nudges,
    )]
