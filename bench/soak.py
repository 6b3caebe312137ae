"""The fault soak (``make soak``): SIGKILL the bot at random moments, restart it, and
check that nothing promised was lost.

    python -m bench.soak [--kills 20] [--campaigns 40] [--backends sqlite,postgresql] [--seed 1]

Set-up: a synthetic province (``bench.seeder``, 40 campaigns by default) on a fresh copy;
the stand-in runs as its own process (``python -m standin --rate-limits --control-port``)
and outlives every bot; the bot is ``python -m bench.soak_bot`` — the application ``qcbot
run`` builds, with the clock put on working-day mornings of the province — with the
scheduler on (sweep every 5 s, lease 10 s, so that a batch claimed by a killed bot is
sent again soon).

Each kill is one of two kinds, alternating:

* during dispatch: a new simulated morning (every few kills) materialises thousands of
  nudges; the bot is killed at a random moment while it sends them;
* during a burst: 100 liaisons send ``/progress N P soak-<k>-<i>`` at once and the bot is
  killed at a random moment 0–1.5 s later (in the middle of handling them).

After the last kill the bot runs until everything due is sent and every burst message
is answered (the stand-in redelivers the updates a killed bot never confirmed, as
Telegram does), then stops. Checks:

* nudges: every outbox row made during the soak is sent (or merged into a sent one);
  none is left pending, claimed or failed; every sent one reached the stand-in; the
  copies beyond the first (a crash between sending and recording) are counted: at most
  one extra copy of a message per crash it was caught in;
* writes: every ``/progress`` the bot confirmed (its ✅ reply recorded by the stand-in) is
  in the database (its audit row, by the unique note); every one is answered (the bot
  confirms an update to Telegram only once handled, so a killed bot's unfinished updates
  come back to the next one: ``bot.polling``); none is applied twice (a redelivered update
  whose write had committed is answered "处理过" from its mark, ``models.inbox``).

Prints a summary and writes bench/out/soak-<time>.json; exits 1 if anything was lost.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter, defaultdict
from datetime import UTC, date, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from bench import dbs
from bench.cases import TZ
from bench.cases.burst import CONFIRMED, pick_liaisons
from bench.province import OUT, PG_URL, ensure_province, seed_urls
from bench.run import pg_available
from bench.seeder import REPO, ProvinceSpec
from bench.standin_proc import Control, StandinProcess
from bot.polling import HANDLED_BEFORE
from infra.db import make_engine
from models.calendar import is_working_day
from models.tables import AuditLog, Outbox, OutboxState

SOAK_CONFIG = """# bench/soak.py: the scheduler ticks often and re-sends a killed bot's claims soon
[scheduler]
sweep_interval_seconds = 5
lease_seconds = 10
"""


class Timeline:
    """The bot's clock: a working-day morning of the province, advancing in real time."""

    def __init__(self, first: date) -> None:
        self.day = first
        self.anchor = self._morning(first)
        self.t0 = time.time()

    @staticmethod
    def _morning(day: date) -> datetime:
        return datetime(day.year, day.month, day.day, 9, 0, 30, tzinfo=TZ).astimezone(UTC)

    def next_day(self) -> None:
        d = self.day + timedelta(days=1)
        while not is_working_day(d):
            d += timedelta(days=1)
        self.day = d
        self.anchor = self._morning(d)
        self.t0 = time.time()

    def now(self) -> datetime:
        return self.anchor + timedelta(seconds=time.time() - self.t0)

    def env(self) -> dict[str, str]:
        return {"BENCH_CLOCK_ANCHOR": self.anchor.isoformat(), "BENCH_CLOCK_T0": repr(self.t0)}


class Soak:
    def __init__(self, backend: str, args: argparse.Namespace, say: Any) -> None:  # noqa: ANN401
        self.backend = backend
        self.args = args
        self.say = say
        self.rng = random.Random(args.seed)
        self.out = OUT / "soak" / backend
        self.out.mkdir(parents=True, exist_ok=True)
        self.proc: subprocess.Popen[bytes] | None = None
        self.kills: list[dict[str, Any]] = []
        self.bursts: dict[str, dict[str, Any]] = {}  # note -> message info
        self.restarts = 0

    # ------------------------------------------------------------------ the bot

    def start_bot(self, si: StandinProcess, ctl: Control, timeline: Timeline) -> None:
        env = {
            **os.environ, **timeline.env(), "QCBOT_BOT_TOKEN": si.token, "QCBOT_DATABASE_URL": self.work_url,
            "QCBOT_TELEGRAM_BASE_URL": si.base_url, "QCBOT_TELEGRAM_BASE_FILE_URL": si.base_file_url,
            "QCBOT_STORAGE_DIR": str(self.out / "evidence"), "QCBOT_CONFIG": str(self.config),
            "QCBOT_LOG_LEVEL": "WARNING",
            "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
        }
        polls = ctl.stats()["by_method"].get("getUpdates", 0)
        log = (self.out / "bot.log").open("ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "bench.soak_bot"], env=env, stdout=log,
                                     stderr=subprocess.STDOUT, cwd=self.out, start_new_session=True)
        log.close()
        self.restarts += 1
        # Up once it polls (menus are sent in the background).
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the bot exited with {self.proc.returncode}; see {self.out / 'bot.log'}")
            if ctl.stats()["by_method"].get("getUpdates", 0) > polls:  # empty polls are not recorded as calls
                return
            time.sleep(0.05)
        raise RuntimeError("the bot did not start polling within 120 s")

    def kill_bot(self, kind: str, timeline: Timeline, **info: Any) -> None:  # noqa: ANN401
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        self.kills.append({"kind": kind, "at": timeline.now().isoformat(), **info})
        self.proc = None

    def stop_bot(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.proc = None

    # ------------------------------------------------------------------ traffic

    def burst(self, ctl: Control, k: int) -> None:
        msgs = []
        for i, c in enumerate(self.cast):
            note = f"soak-{k}-{i}"
            percent = self.rng.randrange(1, 100)
            msgs.append({"user_id": c["user_id"], "chat_id": c["user_id"],
                         "text": f"/progress {c['task_no']} {percent} {note}"})
            self.bursts[note] = {"assignment_id": c["assignment_id"], "percent": percent, "chat_id": c["user_id"]}
        for m, sent in zip(msgs, ctl.send(msgs), strict=True):
            note = m["text"].rsplit(" ", 1)[1]
            self.bursts[note]["message_id"] = sent["message_id"]

    def scheduler_sends(self, ctl: Control, after: int) -> int:
        return sum(1 for c in ctl.calls(after=after, methods="sendMessage")
                   if c["status"] == 200 and c["reply_to"] is None)

    def due_left(self, engine: Any, timeline: Timeline) -> int:  # noqa: ANN401
        t = Outbox.__table__  # type: ignore[attr-defined]
        with engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).where(
                t.c.id > self.outbox_before, t.c.state.in_(["pending", "claimed"]),
                t.c.due_at <= timeline.now())).scalar() or 0)

    def answered(self, ctl: Control) -> set[tuple[int, int]]:
        """(chat, message id) of the messages the bot answered (a reply quoting them)."""
        return {(c["chat_id"], c["reply_to"]) for c in ctl.calls(after=0, methods="sendMessage")
                if c["status"] == 200 and c["reply_to"] is not None}

    # ------------------------------------------------------------------ the soak

    def run(self) -> dict[str, Any]:
        spec = ProvinceSpec(campaigns=self.args.campaigns)
        seed_url, report = ensure_province(self.backend, spec, self.args.pg_url, self.say)
        _, self.work_url = seed_urls(self.backend, report["fingerprint"], self.args.pg_url, work="soak")
        dbs.clone_database(seed_url, self.work_url)
        self.config = self.out / "soak.toml"
        self.config.write_text(SOAK_CONFIG)
        (self.out / "bot.log").write_bytes(b"")
        engine = make_engine(self.work_url)
        t = Outbox.__table__  # type: ignore[attr-defined]
        with engine.connect() as conn:
            self.outbox_before = int(conn.execute(sa.select(sa.func.max(t.c.id))).scalar() or 0)
            self.audit_before = int(conn.execute(sa.select(sa.func.max(AuditLog.__table__.c.id))).scalar() or 0)  # type: ignore[attr-defined]
        self.cast = pick_liaisons(engine, 100)
        timeline = Timeline(spec.today)
        t_start = time.monotonic()
        try:
            with StandinProcess.start(rate_limits=True) as si:
                ctl = si.client()
                ctl.users([{"id": c["user_id"], "first_name": c["name"]} for c in self.cast])
                for k in range(self.args.kills):
                    kind = "dispatch" if k % 2 == 0 else "burst"
                    if kind == "dispatch" and k % 6 == 0 and k:
                        timeline.next_day()  # a new morning: a new wave of nudges
                    mark = ctl.stats()["calls"]
                    self.start_bot(si, ctl, timeline)
                    if kind == "dispatch":
                        # Wait for the dispatch to be under way, then kill at a random moment.
                        deadline = time.monotonic() + 60
                        while self.scheduler_sends(ctl, mark) == 0 and time.monotonic() < deadline:
                            time.sleep(0.1)
                        delay = self.rng.uniform(0.0, 8.0)
                        time.sleep(delay)
                        self.kill_bot(kind, timeline, delay=round(delay, 2), sent_before=self.scheduler_sends(ctl, mark),
                                      due_left=self.due_left(engine, timeline))
                    else:
                        time.sleep(self.rng.uniform(0.5, 3.0))
                        self.burst(ctl, k)
                        delay = self.rng.uniform(0.0, 1.5)
                        time.sleep(delay)
                        self.kill_bot(kind, timeline, delay=round(delay, 2))
                    last = self.kills[-1]
                    self.say(f"  kill {k + 1}/{self.args.kills} ({kind}, {last['delay']} s in; "
                             f"simulated {timeline.now().astimezone(TZ):%m-%d %H:%M})")
                # The last run: drain everything, answer everything.
                self.start_bot(si, ctl, timeline)
                final = len(self.bursts)
                self.burst(ctl, self.args.kills)
                last_burst = {(b["chat_id"], b["message_id"]) for b in list(self.bursts.values())[final:]}
                deadline = time.monotonic() + self.args.drain_timeout
                while time.monotonic() < deadline:
                    pending = self.due_left(engine, timeline)
                    if pending == 0 and last_burst <= self.answered(ctl) and ctl.stats()["unfetched"] == 0:
                        break
                    time.sleep(1.0)
                time.sleep(3.0)  # the last marks and replies settle
                self.stop_bot()
                calls = ctl.calls(after=0, methods="sendMessage")
                stats = ctl.stats()
        finally:
            self.stop_bot()
        result = self.verify(engine, calls, stats)
        result["seconds"] = round(time.monotonic() - t_start, 1)
        engine.dispose()
        if not self.args.keep:
            dbs.drop_database(self.work_url)
        return result

    # ------------------------------------------------------------------ checks

    def verify(self, engine: Any, calls: list[dict[str, Any]], stats: dict[str, Any]) -> dict[str, Any]:  # noqa: ANN401
        t = Outbox.__table__  # type: ignore[attr-defined]
        a = AuditLog.__table__  # type: ignore[attr-defined]
        with engine.connect() as conn:
            rows = conn.execute(sa.select(t.c.id, t.c.telegram_chat_id, t.c.state, t.c.telegram_message_id,
                                          t.c.merged_into_id, t.c.last_error)
                                .where(t.c.id > self.outbox_before)).all()
            # The progress note is the assignment's ``note`` in the audit row's ``after``.
            notes = Counter(
                (after or {}).get("note") for (after,) in conn.execute(
                    sa.select(a.c.after).where(a.c.id > self.audit_before, a.c.action == "assignment.progress")))
        states = Counter(r.state for r in rows)
        by_id = {r.id: r for r in rows}
        sent_leads: dict[int, set[int]] = defaultdict(set)  # chat -> message ids recorded in the DB
        not_sent = []
        for r in rows:
            if r.state == OutboxState.sent.value:
                sent_leads[r.telegram_chat_id].add(r.telegram_message_id)
            elif r.state == OutboxState.merged.value:
                lead = by_id.get(r.merged_into_id)
                if lead is None or lead.state != OutboxState.sent.value:
                    not_sent.append(r.id)
            elif r.state in (OutboxState.pending.value, OutboxState.claimed.value, OutboxState.failed.value):
                not_sent.append(r.id)
        # What reached the stand-in: nudges are the bot's messages that quote nothing.
        recorded: dict[int, list[int]] = defaultdict(list)
        for c in calls:
            if c["status"] == 200 and c["reply_to"] is None and c["chat_id"] in sent_leads:
                recorded[c["chat_id"]].append(c["message_id"])
        missing = sum(len(ids - set(recorded[chat])) for chat, ids in sent_leads.items())
        duplicates = sum(max(0, len(recorded[chat]) - len(ids)) for chat, ids in sent_leads.items())
        max_copies = max((len(recorded[chat]) - len(ids) + 1 for chat, ids in sent_leads.items() if ids), default=0)
        # Writes: every confirmed /progress is in the audit log.
        replies: dict[tuple[int, int], dict[str, Any]] = {}
        for c in calls:  # message ids are per chat; the first reply to each message counts
            if c["status"] == 200 and c["reply_to"] is not None:
                replies.setdefault((c["chat_id"], c["reply_to"]), c)
        confirmed = lost = unanswered = refused = redelivered = 0
        unanswered_last = 0
        lost_notes = []
        for note, b in self.bursts.items():
            reply = replies.get((b["chat_id"], b.get("message_id")))
            if reply is None:
                unanswered += 1
                if note.startswith(f"soak-{self.args.kills}-"):
                    unanswered_last += 1
                continue
            text = reply["text"] or ""
            if (text.startswith("✅") and CONFIRMED.search(text)) or HANDLED_BEFORE in text:
                confirmed += 1
                redelivered += HANDLED_BEFORE in text
                if notes[note] == 0:
                    lost += 1
                    lost_notes.append(note)
            else:
                refused += 1
        applied_twice = sum(1 for n in notes.values() if n > 1)
        dispatch_kills = sum(1 for k in self.kills if k["kind"] == "dispatch")
        # Nothing may be lost: a killed bot's unfinished updates come back to the next one.
        ok = (not not_sent and missing == 0 and lost == 0 and unanswered == 0 and applied_twice == 0)
        return {
            "backend": self.backend, "kills": len(self.kills), "dispatch_kills": dispatch_kills,
            "burst_kills": len(self.kills) - dispatch_kills, "restarts": self.restarts,
            "nudges": {"rows": len(rows), "states": dict(states), "sent_messages": sum(len(v) for v in sent_leads.values()),
                       "not_sent": len(not_sent), "missing_at_standin": missing, "duplicates": duplicates,
                       "max_copies_of_one_message": max_copies, "not_sent_sample": not_sent[:10]},
            "writes": {"sent": len(self.bursts), "confirmed": confirmed, "lost": lost, "lost_sample": lost_notes[:10],
                       "unanswered": unanswered, "unanswered_after_last_restart": unanswered_last,
                       "refused": refused, "applied_twice": applied_twice,
                       "answered_from_mark": redelivered},
            "standin": {"requests": stats["requests"], "rate_limited_429": stats["rate_limited"]},
            "kill_log": self.kills, "ok": ok,
        }


def summary_line(r: dict[str, Any]) -> str:
    n, w = r["nudges"], r["writes"]
    return (f"{r['backend']}: {r['kills']} kills ({r['dispatch_kills']} during dispatch, {r['burst_kills']} during a burst), "
            f"{r['seconds']:.0f} s — nudges: {n['sent_messages']:,} messages for {n['rows']:,} outbox rows, "
            f"not sent {n['not_sent']}, missing at the stand-in {n['missing_at_standin']}, "
            f"duplicates {n['duplicates']} (≤ {r['kills']} kills; most copies of one message {n['max_copies_of_one_message']}); "
            f"writes: {w['confirmed']:,} confirmed of {w['sent']:,} sent, lost {w['lost']}, "
            f"never answered {w['unanswered']} ({w['unanswered_after_last_restart']} after the last restart), "
            f"applied twice {w['applied_twice']}, answered from a mark after a restart {w['answered_from_mark']}, "
            f"refused {w['refused']}; 429s {r['standin']['rate_limited_429']} — "
            f"{'OK' if r['ok'] else 'FAILED'}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.split("\n\n")[0])
    p.add_argument("--kills", type=int, default=20)
    p.add_argument("--campaigns", type=int, default=40)
    p.add_argument("--backends", default="sqlite,postgresql")
    p.add_argument("--seed", type=int, default=1, help="random seed of the kill moments")
    p.add_argument("--pg-url", default=PG_URL)
    p.add_argument("--drain-timeout", type=float, default=300.0)
    p.add_argument("--keep", action="store_true", help="keep the soak database afterwards")
    args = p.parse_args(argv)

    def say(msg: str) -> None:
        print(msg, flush=True)

    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    if "postgresql" in backends and not pg_available(args.pg_url):
        say(f"PostgreSQL at {args.pg_url} does not answer: skipped.")
        backends.remove("postgresql")
    results = []
    for backend in backends:
        say(f"== fault soak on {backend}: {args.kills} kills ==")
        r = Soak(backend, args, say).run()
        results.append(r)
        say(summary_line(r))
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = OUT / f"soak-{stamp}.json"
    path.write_text(json.dumps({"args": vars(args), "results": results}, ensure_ascii=False, indent=1, default=str))
    (OUT / "soak-latest.json").write_text(path.read_text())
    say("")
    for r in results:
        say(summary_line(r))
    say(f"JSON: {path}")
    return 0 if all(r["ok"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
