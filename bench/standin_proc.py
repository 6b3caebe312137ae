"""The Bot API stand-in as its own process (``python -m standin --control-port 0``),
and a small client of its control channel (:mod:`standin.control`).

The stand-in runs on its own core, as Telegram runs on its own servers, and outlives
any bot process the fault soak kills.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any

import httpx

TOKEN = "987654321:" "AAStandinBenchToken_0123456789abcdefghij"  # fake, for the local stand-in
_LINE = re.compile(r"base_url=(\S+) base_file_url=(\S+) token=(\S+) control_url=(\S+)")


@dataclass
class StandinProcess:
    proc: subprocess.Popen[str]
    base_url: str
    base_file_url: str
    token: str
    control_url: str

    @classmethod
    def start(cls, *, rate_limits: bool = False, token: str = TOKEN) -> StandinProcess:
        cmd = [sys.executable, "-m", "standin", "--port", "0", "--control-port", "0", "--token", token]
        if rate_limits:
            cmd.append("--rate-limits")
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=None, text=True,
                                start_new_session=True)
        assert proc.stdout is not None
        line = proc.stdout.readline()
        m = _LINE.search(line)
        if not m:
            proc.kill()
            raise RuntimeError(f"the stand-in did not start: {line!r}")
        return cls(proc, m.group(1), m.group(2), m.group(3), m.group(4))

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait()

    def __enter__(self) -> StandinProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def client(self) -> Control:
        return Control(self.control_url)


class Control:
    """Synchronous client of the control channel."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.http = httpx.Client(timeout=60.0)
        self.cursor = 0

    def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        r = self.http.post(f"{self.url}/{path}", json=body)
        r.raise_for_status()
        return r.json()

    def users(self, users: list[dict[str, Any]]) -> None:
        for i in range(0, len(users), 2000):
            self.post("users", {"users": users[i:i + 2000]})

    def groups(self, groups: list[dict[str, Any]]) -> None:
        self.post("groups", {"groups": groups})

    def send(self, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return self.post("send", {"messages": messages})["messages"]

    def limits(self, enabled: bool, window_scale: float = 1.0) -> None:
        self.post("limits", {"enabled": enabled, "window_scale": window_scale})

    def stats(self) -> dict[str, Any]:
        r = self.http.get(f"{self.url}/stats")
        r.raise_for_status()
        return r.json()

    def calls(self, *, after: int | None = None, methods: str = "") -> list[dict[str, Any]]:
        """The bot's calls since the last read (or since ``after``)."""
        start = self.cursor if after is None else after
        r = self.http.get(f"{self.url}/calls", params={"after": start, "methods": methods})
        r.raise_for_status()
        body = r.json()
        if after is None:
            self.cursor = body["next"]
        return body["calls"]

    def wait_calls(self, predicate: Any, *, timeout: float = 30.0, methods: str = "",  # noqa: ANN401
                   poll: float = 0.02) -> list[dict[str, Any]]:
        """Collect new calls until ``predicate(all collected)`` is true."""
        got: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout
        while True:
            got.extend(self.calls(methods=methods))
            if predicate(got):
                return got
            if time.monotonic() > deadline:
                raise TimeoutError(f"stand-in: condition not met within {timeout}s ({len(got)} calls seen)")
            time.sleep(poll)

    def close(self) -> None:
        self.http.close()
