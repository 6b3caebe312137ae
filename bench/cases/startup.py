"""``qcbot run`` as its own process: time to the first update handled, and peak RSS.

The stand-in runs as ``python -m standin`` (its own process); ``qcbot run`` is started
with the deployment's environment overrides (``QCBOT_BOT_TOKEN``, ``QCBOT_DATABASE_URL``,
``QCBOT_TELEGRAM_BASE_URL``, ``QCBOT_TELEGRAM_BASE_FILE_URL``, ``QCBOT_STORAGE_DIR``,
``QCBOT_CONFIG`` pointing at an empty file) on a copy of the province. A coordinator's
``/help`` is queued *before* the process starts: the start-up time is from spawning the
process to the stand-in recording the reply (imports, migrations check, first poll, the
handler; the menus of every campaign's coordinators and leaders are sent in the background,
the count is of those sent before the reply).

Peak RSS (psutil, sampled every 20 ms) covers the start, then a working minute in
small: five /status (with charts), 100 liaisons' /progress at once, and the scheduler's
first tick (a sweep of every campaign at the real wall-clock time, and dispatch).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import psutil

from bench.cases import Ctx, row
from bench.cases.burst import pick_liaisons
from bench.cases.status import busiest_coordinator
from bench.standin_proc import StandinProcess
from bench.stats import summary
from infra.db import make_engine

TARGET_START_S = 3.0
TARGET_RSS_MB = 250.0


class _RssSampler(threading.Thread):
    def __init__(self, pid: int, every: float = 0.02) -> None:
        super().__init__(daemon=True)
        self.proc = psutil.Process(pid)
        self.every = every
        self.peak = 0
        self.peak_tree = 0  # the bot and its child processes (the chart worker)
        self.done = threading.Event()
        self.trace: list[tuple[float, int]] = []

    def run(self) -> None:
        t0 = time.monotonic()
        while not self.done.is_set():
            try:
                rss = self.proc.memory_info().rss
                children = self.proc.children(recursive=True)
            except psutil.Error:
                return
            tree = rss
            for child in children:
                with contextlib.suppress(psutil.Error):
                    tree += child.memory_info().rss
            self.peak = max(self.peak, rss)
            self.peak_tree = max(self.peak_tree, tree)
            self.trace.append((round(time.monotonic() - t0, 2), rss))
            time.sleep(self.every)

    def coarse(self, points: int = 60) -> list[tuple[float, float]]:
        """The trace in about ``points`` samples (seconds, MB), for the JSON."""
        step = max(1, len(self.trace) // points)
        return [(t, round(rss / 2**20, 1)) for t, rss in self.trace[::step]]


ERROR_PREFIX = "😥"  # bot.handlers.ERROR_TEXT: the error handler's answer (not a reply)


def _status_done(call: dict[str, Any], chat: int, mid: int) -> bool:
    """/status was answered: its chart, a refusal quoting it, or the error handler's text."""
    if call["chat_id"] != chat or call["status"] != 200:
        return False
    text = call["text"] or ""
    return (call["method"] == "sendPhoto" or (call["reply_to"] == mid and text.startswith("⚠️"))
            or text.startswith(ERROR_PREFIX))


def qcbot_command() -> list[str]:
    script = Path(sys.executable).parent / "qcbot"
    return [str(script), "run"] if script.exists() else [sys.executable, "-m", "qcbot.cli", "run"]


def _people_and_files(ctx: Ctx, log_name: str) -> tuple[int, str, list[dict[str, Any]], Path, Path, Path]:
    """The busiest campaign's coordinator (user id, name), 100 liaisons, and the bot's output
    directory, empty configuration file (everything from the environment) and log file."""
    engine = make_engine(ctx.work_url)
    try:
        _, uid, name = busiest_coordinator(engine)
        cast = pick_liaisons(engine, 100)
    finally:
        engine.dispose()
    out = Path(ctx.out)
    out.mkdir(parents=True, exist_ok=True)
    config = out / "qcbot-bench.toml"
    config.write_text("# the bot run by bench/cases/startup.py: defaults, overrides from the environment\n")
    return uid, name, cast, out, config, out / f"{log_name}-{ctx.backend}.log"


def run_startup(ctx: Ctx) -> list[dict[str, Any]]:
    uid, name, cast, out, config, log_path = _people_and_files(ctx, "qcbot-run")
    with StandinProcess.start() as si:
        ctl = si.client()
        ctl.users([{"id": uid, "first_name": name}] + [{"id": c["user_id"], "first_name": c["name"]} for c in cast])
        env = {
            **os.environ, "QCBOT_BOT_TOKEN": si.token, "QCBOT_DATABASE_URL": ctx.work_url,
            "QCBOT_TELEGRAM_BASE_URL": si.base_url, "QCBOT_TELEGRAM_BASE_FILE_URL": si.base_file_url,
            "QCBOT_STORAGE_DIR": str(out / "evidence"), "QCBOT_CONFIG": str(config),
            "QCBOT_LOG_LEVEL": "WARNING",
        }
        [first] = ctl.send([{"user_id": uid, "chat_id": uid, "text": "/help"}])
        with log_path.open("w") as log:
            t_spawn = time.time()
            proc = subprocess.Popen(qcbot_command(), env=env, stdout=log, stderr=subprocess.STDOUT,
                                    cwd=out, start_new_session=True)
            sampler = _RssSampler(proc.pid)
            sampler.start()
            try:
                calls = ctl.wait_calls(lambda got: any(
                    c["method"] == "sendMessage" and c["reply_to"] == first["message_id"] for c in got), timeout=120)
                reply = next(c for c in calls if c["method"] == "sendMessage" and c["reply_to"] == first["message_id"])
                start_s = reply["time"] - t_spawn
                rss_at_first = sampler.peak
                menus = sum(1 for c in calls if c["method"].lower() in ("setmycommands", "deletemycommands"))
                # A working minute in small.
                for _ in range(5):
                    [m] = ctl.send([{"user_id": uid, "chat_id": uid, "text": "/status"}])
                    ctl.wait_calls(lambda got, mid=m["message_id"]: any(_status_done(c, uid, mid) for c in got),
                                   timeout=120)
                sent = ctl.send([{"user_id": c["user_id"], "chat_id": c["user_id"],
                                  "text": f"/progress {c['task_no']} 50"} for c in cast])
                want = {s["chat_id"] for s in sent}
                seen: set[int] = set()

                def burst_done(got: list[dict[str, Any]]) -> bool:
                    seen.update(c["chat_id"] for c in got if c["method"] == "sendMessage")
                    got.clear()
                    return want <= seen

                ctl.wait_calls(burst_done, timeout=180)
                time.sleep(3 if ctx.quick else 6)  # the scheduler's first tick (at the wall clock)
            finally:
                proc.terminate()
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
                sampler.done.set()
                sampler.join()
        stats = ctl.stats()
    mb = sampler.peak / 2**20
    return [
        row("startup", f"qcbot run: process spawned → first update handled ({menus} menu calls before it)",
            summary([start_s]), target=f"≤ {TARGET_START_S:g} s", met=start_s <= TARGET_START_S,
            seconds=round(start_s, 3), menu_calls=menus),
        row("rss", "peak RSS of qcbot run: start, 5 × /status with chart, 100 × /progress at once, "
            "its first scheduler tick at the real wall-clock time (held in quiet hours)",
            {"n": len(sampler.trace), "median": None, "p95": None, "max": round(mb, 1), "mean": None},
            unit="MB", target=f"≤ {TARGET_RSS_MB:g} MB", met=mb <= TARGET_RSS_MB,
            rss_at_first_update_mb=round(rss_at_first / 2**20, 1), bot_requests=stats["requests"],
            by_method=stats["by_method"], log=str(log_path),
            with_children_mb=round(sampler.peak_tree / 2**20, 1), trace_mb=sampler.coarse()),
    ]


def run_rss_morning(ctx: Ctx) -> list[dict[str, Any]]:
    """Peak RSS of the bot through the 09:00 run: ``python -m bench.soak_bot`` (the
    application ``qcbot run`` builds, clock at 09:00:30 of the province's "today"), the
    stand-in enforcing flood limits: start, 5 × /status with chart, the scheduler's
    catch-up sweep and claim of every campaign, 100 × /progress at once, and dispatch
    until 60 nudges went out."""
    from datetime import timedelta

    from bench.seeder import REPO

    uid, name, cast, out, config, log_path = _people_and_files(ctx, "soak-bot-morning")
    anchor = ctx.anchor(9, 0) + timedelta(seconds=30)
    with StandinProcess.start(rate_limits=True) as si:
        ctl = si.client()
        ctl.users([{"id": uid, "first_name": name}] + [{"id": c["user_id"], "first_name": c["name"]} for c in cast])
        env = {
            **os.environ, "QCBOT_BOT_TOKEN": si.token, "QCBOT_DATABASE_URL": ctx.work_url,
            "QCBOT_TELEGRAM_BASE_URL": si.base_url, "QCBOT_TELEGRAM_BASE_FILE_URL": si.base_file_url,
            "QCBOT_STORAGE_DIR": str(out / "evidence"), "QCBOT_CONFIG": str(config), "QCBOT_LOG_LEVEL": "WARNING",
            "BENCH_CLOCK_ANCHOR": anchor.isoformat(), "BENCH_CLOCK_T0": repr(time.time()),
            "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
        }
        [first] = ctl.send([{"user_id": uid, "chat_id": uid, "text": "/help"}])
        nudges = 0
        with log_path.open("w") as log:
            t0 = time.monotonic()
            proc = subprocess.Popen([sys.executable, "-m", "bench.soak_bot"], env=env, stdout=log,
                                    stderr=subprocess.STDOUT, cwd=out, start_new_session=True)
            sampler = _RssSampler(proc.pid)
            sampler.start()
            try:
                ctl.wait_calls(lambda got: any(c["reply_to"] == first["message_id"] for c in got), timeout=120)
                for _ in range(5):
                    [m] = ctl.send([{"user_id": uid, "chat_id": uid, "text": "/status"}])
                    ctl.wait_calls(lambda got, mid=m["message_id"]: any(_status_done(c, uid, mid) for c in got),
                                   timeout=180)
                ctl.send([{"user_id": c["user_id"], "chat_id": c["user_id"],
                           "text": f"/progress {c['task_no']} 50"} for c in cast])
                counted: list[int] = [0]

                def enough(got: list[dict[str, Any]]) -> bool:
                    counted[0] += sum(1 for c in got if c["method"] == "sendMessage" and c["reply_to"] is None
                                      and c["status"] == 200)
                    got.clear()
                    return counted[0] >= 60

                try:
                    ctl.wait_calls(enough, timeout=240, poll=0.2)
                except TimeoutError:
                    pass
                nudges = counted[0]
            finally:
                proc.terminate()
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
                sampler.done.set()
                sampler.join()
        seconds = time.monotonic() - t0
    mb = sampler.peak / 2**20
    return [row("rss_morning", f"peak RSS of the bot through the 09:00 run ({seconds:.0f} s): start, 5 × /status "
                f"with chart, catch-up sweep and claim of every campaign, 100 × /progress, dispatch ({nudges} nudges)",
                {"n": len(sampler.trace), "median": None, "p95": None, "max": round(mb, 1), "mean": None},
                unit="MB", target=f"≤ {TARGET_RSS_MB:g} MB", met=mb <= TARGET_RSS_MB, nudges=nudges,
                seconds=round(seconds, 1), log=str(log_path),
                with_children_mb=round(sampler.peak_tree / 2**20, 1), trace_mb=sampler.coarse())]
