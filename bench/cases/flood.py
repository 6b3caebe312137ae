"""Outsiders flooding the bot while the coordinator works (issue: hold against a hostile Telegram).

Three outsiders (nobody any campaign knows) each send 5 messages a second for 60 s (15 s with
``--quick``): half of them in their private chat with the bot, half ``/bindgroup`` into a group
of their own the bot was added to. Meanwhile the busiest campaign's coordinator sends ``/whoami``
in their private chat every 2 seconds.

Reported: the coordinator's latency (message queued → the bot's answer sent; the first three
warm the caches), target p95 ≤ 1 s;
and what the outsiders got (``bot.gate``: one short answer an hour for a stranger in private,
silence in an unbound group, their budget; answers wait in per-chat queues, never in a handler).
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from bench.app_thread import AnchoredClock, BotThread, bench_settings
from bench.cases import Ctx, row
from bench.cases.status import busiest_coordinator
from bench.standin_proc import StandinProcess
from bench.stats import summary
from infra.db import make_engine

OUTSIDERS = 3
RATE = 5.0  # messages a second, each
COORDINATOR_EVERY = 2.0  # seconds
WARM_UP = 3  # the first answers warm the caches (as in the /status benchmark)


def run_flood(ctx: Ctx) -> list[dict[str, Any]]:
    seconds = 15.0 if ctx.quick else 60.0
    engine = make_engine(ctx.work_url)
    settings = bench_settings(db_url=ctx.work_url, storage_dir=Path(ctx.out) / "evidence")
    _, coord_id, coord_name = busiest_coordinator(engine)
    outsiders = [{"id": 990_000_001 + i, "first_name": f"外人{i + 1}"} for i in range(OUTSIDERS)]
    groups = [{"id": -1_009_900_000_001 - i, "title": f"外人的群{i + 1}", "members": [o["id"]]}
              for i, o in enumerate(outsiders)]
    latencies: list[float] = []
    flood_sent = 0
    with StandinProcess.start() as si:
        ctl = si.client()
        ctl.users([{"id": coord_id, "first_name": coord_name}, *outsiders])
        ctl.groups(groups)
        with BotThread(settings=settings, engine=engine, standin=si, clock=AnchoredClock(ctx.anchor())):
            ctl.calls()
            stop = threading.Event()

            def flood() -> None:
                nonlocal flood_sent
                tick, n = 1.0 / RATE, 0
                start = time.monotonic()
                while not stop.is_set():
                    batch = []
                    for i, o in enumerate(outsiders):
                        if n % 2:
                            batch.append({"user_id": o["id"], "chat_id": groups[i]["id"], "text": "/bindgroup"})
                        else:
                            batch.append({"user_id": o["id"], "chat_id": o["id"], "text": f"/status 第{n}次"})
                    ctl_flood.send(batch)
                    flood_sent += len(batch)
                    n += 1
                    wait = start + n * tick - time.monotonic()
                    if wait > 0:
                        stop.wait(wait)

            ctl_flood = si.client()
            flooder = threading.Thread(target=flood, name="flood", daemon=True)
            flooder.start()
            try:
                end = time.monotonic() + seconds
                while time.monotonic() < end:
                    [sent] = ctl.send([{"user_id": coord_id, "chat_id": coord_id, "text": "/whoami"}])
                    queued = sent["enqueued_at"]

                    def answered(got: list[dict[str, Any]]) -> bool:
                        return any(c["method"] == "sendMessage" and c["chat_id"] == coord_id for c in got)

                    got = ctl.wait_calls(answered, timeout=30)
                    answer = next(c for c in got if c["method"] == "sendMessage" and c["chat_id"] == coord_id)
                    latencies.append(answer["time"] - queued)
                    time.sleep(max(0.0, COORDINATOR_EVERY - (answer["time"] - queued)))
            finally:
                stop.set()
                flooder.join(timeout=10)
            outsider_calls = [c for c in ctl.calls(after=0)
                              if c["method"] == "sendMessage" and c["chat_id"] in
                              {o["id"] for o in outsiders} | {g["id"] for g in groups}]
    stats = summary(latencies[WARM_UP:])  # seconds in, milliseconds out
    return [row(
        "flood", f"coordinator's /whoami while {OUTSIDERS} outsiders send {RATE:g} msg/s each "
                 f"for {seconds:.0f} s", stats, target="p95 ≤ 1000 ms", met=stats["p95"] <= 1000,
        outsider_messages=flood_sent, answers_to_outsiders=len(outsider_calls),
    )]
