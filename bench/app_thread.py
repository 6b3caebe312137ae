"""The REAL application (``bot.app.build_application``) polling a stand-in process,
run on its own event loop in a background thread of the benchmark process.

The driver (the benchmark) stays synchronous in the main thread and talks to the
stand-in's control channel; the bot only sees the Bot API, as in production.
"""

from __future__ import annotations

import asyncio
import gc
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine

from bench.standin_proc import StandinProcess
from infra.config import Settings


def bench_settings(*, db_url: str, storage_dir: Path, scheduler: bool = False,
                   **sections: dict[str, Any]) -> Settings:
    data: dict[str, Any] = {
        "database": {"url": db_url},
        "storage": {"dir": str(storage_dir)},
        "scheduler": {"enabled": scheduler},
        "logging": {"level": "WARNING"},
    }
    for key, values in sections.items():
        data.setdefault(key, {}).update(values)
    return Settings.model_validate(data)


class AnchoredClock:
    """``anchor`` + real time elapsed since the clock was made (handlers' "now")."""

    def __init__(self, anchor: datetime) -> None:
        import time

        self._t0 = time.monotonic()
        self._mono = time.monotonic
        self.anchor = anchor

    def __call__(self) -> datetime:
        return self.anchor + timedelta(seconds=self._mono() - self._t0)


class BotThread:
    """Start with ``with BotThread(...) as bot:``; the app polls until the block ends."""

    def __init__(self, *, settings: Settings, engine: Engine, standin: StandinProcess,
                 clock: Callable[[], datetime] | None = None) -> None:
        self.settings = settings
        self.engine = engine
        self.standin = standin
        self.clock = clock
        self.loop: asyncio.AbstractEventLoop | None = None
        self.app: Any = None
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, name="qcbot-app", daemon=True)

    def _main(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # surfaced to the driver
            self._error = exc
            self._ready.set()

    async def _serve(self) -> None:
        from bot.app import build_application, running

        self.loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        self.app = build_application(
            settings=self.settings, engine=self.engine, clock=self.clock,
            token=self.standin.token, base_url=self.standin.base_url,
            base_file_url=self.standin.base_file_url,
        )
        async with running(self.app, poll_timeout=10):
            # As bot.serve.run does before serving (qcbot run): the start-up heap out of the
            # cyclic collector's way.
            gc.collect()
            gc.freeze()
            self._ready.set()
            await self._stop.wait()

    def __enter__(self) -> BotThread:
        self._thread.start()
        self._ready.wait(timeout=120)
        if self._error is not None:
            raise RuntimeError("the application did not start") from self._error
        return self

    def __exit__(self, *exc: object) -> None:
        if self.loop is not None and self._stop is not None:
            self.loop.call_soon_threadsafe(self._stop.set)
        # Wait for everything, the scheduler's worker threads included (a claim may run for
        # a minute): the next benchmark replaces this database's file.
        self._thread.join(timeout=900)
        if self._thread.is_alive():
            raise RuntimeError("the application did not stop within 15 minutes")

    def call(self, coro: Any, timeout: float = 600) -> Any:  # noqa: ANN401
        """Run a coroutine on the app's loop and wait for its result."""
        assert self.loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)
