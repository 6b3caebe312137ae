"""How the console shows a chat: Telegram messages as terminal text.

Pure functions (no I/O): a message dict as the Bot API stand-in stores it (plain
``text`` plus ``entities`` with UTF-16 offsets, which is what the bot's HTML
became) turns into lines with ANSI styles, or into plain text when the output is
not a terminal. Bold, italic, underline, strikethrough and code are styled;
links show their address; inline keyboards become numbered buttons.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Any

JsonDict = dict[str, Any]

RESET = "\x1b[0m"
_STYLE_CODES = {
    "bold": "1",
    "italic": "3",
    "underline": "4",
    "strikethrough": "9",
    "code": "36",
    "pre": "36",
    "spoiler": "2",
    "text_link": "4;34",
    "url": "4;34",
    "text_mention": "1;34",
    "mention": "34",
    "bot_command": "32",
    "blockquote": "2",
}
_ANSI_RE = re.compile(r"\x1b\[[0-9;]*m")


@dataclass(frozen=True, slots=True)
class Palette:
    """Terminal styles, or none (a pipe, ``NO_COLOR``)."""

    color: bool = True

    def wrap(self, codes: str, text: str) -> str:
        return f"\x1b[{codes}m{text}{RESET}" if self.color and text else text

    def bold(self, text: str) -> str:
        return self.wrap("1", text)

    def dim(self, text: str) -> str:
        return self.wrap("2", text)

    def name(self, text: str, *, bot: bool = False, me: bool = False) -> str:
        return self.wrap("1;35" if bot else "1;32" if me else "1;33", text)

    def button(self, text: str) -> str:
        return self.wrap("7", text)

    def warn(self, text: str) -> str:
        return self.wrap("33", text)

    def error(self, text: str) -> str:
        return self.wrap("31", text)

    def accent(self, text: str) -> str:
        return self.wrap("1;36", text)


def strip_ansi(text: str) -> str:
    return _ANSI_RE.sub("", text)


def _utf16_index(text: str) -> list[int]:
    """``index[k]``: the Python index of UTF-16 code unit ``k`` (one past the end too)."""
    index: list[int] = []
    for i, ch in enumerate(text):
        index.append(i)
        if ord(ch) > 0xFFFF:
            index.append(i)
    index.append(len(text))
    return index


def styled_text(text: str, entities: list[JsonDict] | None, palette: Palette) -> str:
    """``text`` with its entities as terminal styles; link addresses appended."""
    if not text:
        return ""
    index = _utf16_index(text)
    n = len(text)
    active: list[set[str]] = [set() for _ in range(n)]
    after: dict[int, list[str]] = {}
    for entity in entities or []:
        try:
            start = index[min(entity["offset"], len(index) - 1)]
            end = index[min(entity["offset"] + entity["length"], len(index) - 1)]
        except (KeyError, TypeError):
            continue
        kind = entity.get("type", "")
        code = _STYLE_CODES.get(kind)
        if code:
            for i in range(start, end):
                active[i].add(code)
        if kind == "text_link":
            url = entity.get("url", "")
            shown = text[start:end]
            if url and not url.startswith("tg://") and url != shown:
                after.setdefault(end, []).append(f" ({url})")
    out: list[str] = []
    current: frozenset[str] = frozenset()
    for i, ch in enumerate(text):
        for extra in after.pop(i, []):
            if current and palette.color:
                out.append(RESET)
                current = frozenset()
            out.append(palette.dim(extra))
        wanted = frozenset(active[i]) if palette.color else frozenset()
        if ch == "\n" and current:
            out.append(RESET)
            current = frozenset()
        elif wanted != current:
            if current:
                out.append(RESET)
            if wanted:
                out.append(f"\x1b[{';'.join(sorted(wanted))}m")
            current = wanted
        out.append(ch)
    if current:
        out.append(RESET)
    for extra in after.pop(n, []):
        out.append(palette.dim(extra))
    return "".join(out)


def human_size(n: int | None) -> str:
    if n is None:
        return "大小未知"
    if n >= 1024 * 1024:
        return f"{n / (1024 * 1024):.1f} MB"
    if n >= 1024:
        return f"{n / 1024:.0f} KB"
    return f"{n} 字节"


def inline_buttons(message: JsonDict) -> list[JsonDict]:
    rows = (message.get("reply_markup") or {}).get("inline_keyboard") or []
    return [b for row in rows for b in row]


def keyboard_lines(message: JsonDict, palette: Palette) -> list[str]:
    """Inline keyboard rows as ``[1 ✅ 完成] [2 📎 交材料]`` (numbered across rows)."""
    rows = (message.get("reply_markup") or {}).get("inline_keyboard") or []
    lines: list[str] = []
    k = 0
    for row in rows:
        cells = []
        for button in row:
            k += 1
            label = f" {k} {button.get('text', '')} "
            if button.get("url"):
                label += f"→ {button['url']} "
            cells.append(palette.button(label))
        lines.append(" ".join(cells))
    return lines


def width(text: str) -> int:
    """Columns ``text`` takes in a terminal (CJK characters take two)."""
    return sum(2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1 for ch in strip_ansi(text))


def pad(text: str, columns: int) -> str:
    return text + " " * max(0, columns - width(text))


def indent(text: str, prefix: str = "  ", columns: int | None = None) -> str:
    """Each line of ``text`` after ``prefix``; wrapped (under the prefix) to ``columns``."""
    out: list[str] = []
    for line in text.split("\n"):
        if not line:
            out.append(line)
            continue
        pieces = wrap_ansi(line, columns - width(prefix)) if columns else [line]
        out.extend(prefix + piece for piece in pieces)
    return "\n".join(out)


def wrap_ansi(line: str, columns: int) -> list[str]:
    """Cut a line with ANSI styles into pieces of at most ``columns`` terminal columns.

    Chinese text has no spaces to break at: it is cut anywhere, as a terminal would,
    but the style in force is closed at the end of a piece and reopened on the next.
    """
    if columns < 8 or width(line) <= columns:
        return [line]
    pieces: list[str] = []
    current: list[str] = []
    used = 0
    style = ""
    pos = 0
    while pos < len(line):
        match = _ANSI_RE.match(line, pos)
        if match:
            code = match.group(0)
            current.append(code)
            style = "" if code == RESET else style + code
            pos = match.end()
            continue
        ch = line[pos]
        w = 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1
        if used + w > columns:
            pieces.append("".join(current) + (RESET if style else ""))
            current, used = ([style] if style else []), 0
        current.append(ch)
        used += w
        pos += 1
    pieces.append("".join(current))
    return pieces
