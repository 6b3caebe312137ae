"""The console's terminal: prompt_toolkit on a TTY, plain lines on a pipe.

On a terminal, :class:`TtyTerminal` reads with a ``PromptSession`` (line editing,
history in ``var/console-input-history``, a bottom toolbar, Ctrl-C clearing the
line) and prints through ``patch_stdout`` so that messages arriving while you type
appear above the prompt. :class:`Terminal` reads stdin from a daemon thread and
prints plain lines: scripts and tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from qcbot.console.render import Palette


class Terminal:
    """Reads lines and prints; a TTY with prompt_toolkit, or a plain pipe."""

    interactive = False

    def __init__(self, palette: Palette) -> None:
        self.palette = palette

    def print(self, text: str = "") -> None:
        sys.stdout.write(text + "\n")
        sys.stdout.flush()

    async def read(self, prompt: str | Callable[[], str], toolbar: str | None = None) -> str | None:
        """One line, or None at the end of input (a pipe shows no prompt)."""
        if self._lines is None:
            self._lines = self._start_reader()
        line = await self._lines.get()
        return None if line is None else line.rstrip("\r\n")

    _lines: asyncio.Queue[str | None] | None = None

    @staticmethod
    def _start_reader() -> asyncio.Queue[str | None]:
        """stdin in a daemon thread: a pending read never keeps the process from exiting."""
        import threading

        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[str | None] = asyncio.Queue()

        def pump() -> None:
            while True:
                try:
                    line = sys.stdin.readline()
                except (OSError, ValueError):
                    line = ""
                try:
                    loop.call_soon_threadsafe(queue.put_nowait, line or None)
                except RuntimeError:  # the loop is closed
                    return
                if not line:
                    return

        threading.Thread(target=pump, name="console-stdin", daemon=True).start()
        return queue

    def refresh(self) -> None:
        """Redraw the prompt (it shows a reply target that may have changed)."""

    def columns(self) -> int | None:
        """Wrap messages to this width (None: a pipe, one line per line)."""
        return None

    @contextlib.contextmanager
    def active(self):  # noqa: ANN201 - a context manager
        yield


class TtyTerminal(Terminal):
    """prompt_toolkit: line editing, history, incoming messages printed above the prompt."""

    interactive = True

    def __init__(self, palette: Palette, history_file: Path) -> None:
        super().__init__(palette)
        from prompt_toolkit import PromptSession
        from prompt_toolkit.history import FileHistory, InMemoryHistory

        try:
            history_file.parent.mkdir(parents=True, exist_ok=True)
            history: Any = FileHistory(str(history_file))
        except OSError:
            history = InMemoryHistory()
        from prompt_toolkit.key_binding import KeyBindings

        keys = KeyBindings()

        @keys.add("c-c")
        def _interrupt(event: Any) -> None:
            # Like a shell: Ctrl-C drops what was typed; on an empty line it interrupts.
            if event.current_buffer.text:
                event.current_buffer.reset()
            else:
                event.app.exit(exception=KeyboardInterrupt, style="class:aborting")

        self.session: Any = PromptSession(history=history, erase_when_done=True, key_bindings=keys)

    def print(self, text: str = "") -> None:
        from prompt_toolkit.formatted_text import ANSI
        from prompt_toolkit.shortcuts import print_formatted_text

        print_formatted_text(ANSI(text))

    async def read(self, prompt: str | Callable[[], str], toolbar: str | None = None) -> str | None:
        from prompt_toolkit.formatted_text import ANSI

        message = (lambda: ANSI(prompt())) if callable(prompt) else ANSI(prompt)
        try:
            return await self.session.prompt_async(
                message, bottom_toolbar=ANSI(toolbar) if toolbar else None
            )
        except EOFError:
            return None

    def columns(self) -> int | None:
        import shutil

        return max(20, shutil.get_terminal_size().columns - 1)

    def refresh(self) -> None:
        app = self.session.app
        if app.is_running:
            app.invalidate()

    @contextlib.contextmanager
    def active(self):  # noqa: ANN201
        from prompt_toolkit.patch_stdout import patch_stdout

        with patch_stdout(raw=True):
            yield
