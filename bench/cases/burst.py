"""100 liaisons reporting at the same moment, through the real handlers.

100 liaisons (of the campaigns with the most eligible liaisons first, so they contend
for the same tables and rows' neighbours), each responsible for an unfinished task,
send ``/progress N P`` in their private chats; the stand-in queues the 100 updates at
once (one control call), the application handles them with ``concurrent_updates`` on.
Rounds repeat with new percentages.

Reported: latency (update queued → the bot's confirmation recorded), writes lost (a
confirmation was sent but the assignment does not hold the confirmed percentage),
refusals and error replies, and "database is locked" (or any OperationalError) in a
reply or in the application's log.
"""

from __future__ import annotations

import logging
import random
import re
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from bench.app_thread import AnchoredClock, BotThread, bench_settings
from bench.cases import Ctx, row
from bench.standin_proc import StandinProcess
from bench.stats import summary
from infra.db import make_engine
from models.tables import Assignment, Member, Role, Task

CONFIRMED = re.compile(r"任务(\d+) 进度 (?:\d+% → )?(\d+)%")


class _LockWatch(logging.Handler):
    """Counts log records mentioning a lock error or any OperationalError."""

    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self.locked = 0
        self.errors = 0
        self.samples: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        if record.exc_info and record.exc_info[1] is not None:
            text += f" {record.exc_info[1]!r}"
        if record.levelno >= logging.ERROR:
            self.errors += 1
            if len(self.samples) < 5:
                self.samples.append(text[:500])
        if "database is locked" in text or "OperationalError" in text:
            self.locked += 1


def pick_liaisons(engine: Any, n: int) -> list[dict[str, Any]]:  # noqa: ANN401
    """``n`` liaisons with a private chat, each with a distinct unfinished assignment."""
    a, m, t = Assignment.__table__, Member.__table__, Task.__table__  # type: ignore[attr-defined]
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(m.c.telegram_user_id, m.c.display_name, m.c.campaign_id, a.c.id, t.c.no)
            .join(a, sa.and_(a.c.unit_id == m.c.unit_id, a.c.campaign_id == m.c.campaign_id))
            .join(t, t.c.id == a.c.task_id)
            .where(m.c.role == Role.liaison.value, m.c.active.is_(True), m.c.private_chat_id.is_not(None),
                   a.c.state.in_(["not_started", "in_progress"]), a.c.retired.is_(False))
            .order_by(m.c.campaign_id, m.c.id, a.c.id)
        ).all()
    by_campaign: dict[int, list[Any]] = {}
    for r in rows:
        by_campaign.setdefault(r[2], []).append(r)
    picked: list[dict[str, Any]] = []
    users: set[int] = set()
    assignments: set[int] = set()
    for cid in sorted(by_campaign, key=lambda c: (-len({r[0] for r in by_campaign[c]}), c)):
        for uid, name, _cid, aid, no in by_campaign[cid]:
            if uid in users or aid in assignments:
                continue
            users.add(uid)
            assignments.add(aid)
            picked.append({"user_id": uid, "name": name, "campaign_id": cid, "assignment_id": aid, "task_no": no})
            if len(picked) == n:
                return picked
    return picked


def run_burst(ctx: Ctx, *, people: int = 100) -> list[dict[str, Any]]:
    rounds = 1 if ctx.quick else 2
    engine = make_engine(ctx.work_url)
    settings = bench_settings(db_url=ctx.work_url, storage_dir=Path(ctx.out) / "evidence")
    rng = random.Random(7)
    watch = _LockWatch()
    root = logging.getLogger()
    root.addHandler(watch)
    latencies: list[float] = []
    lost = refused = errors_replied = locked_replies = confirmed = 0
    notes: list[str] = []
    a = Assignment.__table__  # type: ignore[attr-defined]
    try:
        cast = pick_liaisons(engine, people)
        campaigns = len({c["campaign_id"] for c in cast})
        with StandinProcess.start() as si:
            ctl = si.client()
            ctl.users([{"id": c["user_id"], "first_name": c["name"]} for c in cast])
            with BotThread(settings=settings, engine=engine, standin=si, clock=AnchoredClock(ctx.anchor())):
                ctl.calls()
                for rnd in range(rounds):
                    percents = {c["user_id"]: rng.randrange(5, 96) for c in cast}
                    sent = ctl.send([{"user_id": c["user_id"], "chat_id": c["user_id"],
                                      "text": f"/progress {c['task_no']} {percents[c['user_id']]} 第{rnd + 1}轮填报"}
                                     for c in cast])
                    queued = {s["chat_id"]: s["enqueued_at"] for s in sent}
                    answers: dict[int, dict[str, Any]] = {}

                    def complete(got: list[dict[str, Any]], answers: dict[int, dict[str, Any]] = answers,
                                 queued: dict[int, float] = queued) -> bool:
                        for call in got:
                            chat = call["chat_id"]
                            if call["method"] == "sendMessage" and chat in queued and chat not in answers:
                                answers[chat] = call
                        got.clear()
                        return len(answers) == len(cast)

                    ctl.wait_calls(complete, timeout=120)
                    with engine.connect() as conn:
                        held = dict(conn.execute(sa.select(a.c.id, a.c.percent).where(
                            a.c.id.in_([c["assignment_id"] for c in cast]))).all())
                    for c in cast:
                        call = answers[c["user_id"]]
                        text = call["text"] or ""
                        latencies.append(call["time"] - queued[c["user_id"]])
                        if "locked" in text or "OperationalError" in text:
                            locked_replies += 1
                        m = CONFIRMED.search(text)
                        if call["status"] != 200:
                            errors_replied += 1
                        elif m and text.startswith("✅"):
                            confirmed += 1
                            if int(m.group(2)) != percents[c["user_id"]] or held[c["assignment_id"]] != percents[c["user_id"]]:
                                lost += 1
                                notes.append(f"{c['assignment_id']}: confirmed {m.group(2)}%, held {held[c['assignment_id']]}%")
                        elif text.startswith("⚠️"):
                            refused += 1
                            if len(notes) < 5:
                                notes.append(text[:120])
                        else:
                            errors_replied += 1
                            if len(notes) < 5:
                                notes.append(text[:120])
    finally:
        root.removeHandler(watch)
        engine.dispose()
    st = summary(latencies)
    locked = watch.locked + locked_replies
    return [row(
        "burst", f"{people} liaisons send /progress at once ({campaigns} campaigns, {rounds} round(s)): "
        f"update queued → confirmation recorded; confirmed {confirmed}, lost writes {lost}, "
        f"locked errors {locked}, refusals {refused}, error replies {errors_replied}",
        st, target="0 lost, 0 locked", met=lost == 0 and locked == 0 and errors_replied == 0,
        people=people, rounds=rounds, campaigns=campaigns, confirmed=confirmed, lost=lost, locked=locked,
        refused=refused, error_replies=errors_replied, log_errors=watch.errors,
        log_samples=watch.samples, notes=notes[:10],
    )]
