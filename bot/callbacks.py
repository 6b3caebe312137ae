"""Inline-button payloads: compact, versioned, checked on the server.

``"a:ok:123:v4"`` means “approve assignment 123, which was at version 4 when the
button was drawn”. The bot never trusts a payload: it parses it strictly here,
then checks existence, campaign, permission and version against the database
(``bot.actions``). A forged or stale button changes nothing and gets a clear answer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from models.errors import InvalidInput

#: kind → verbs that kind accepts, and whether the verb needs a version.
VERBS: dict[str, dict[str, bool]] = {
    "a": {"ok": True, "rt": True, "done": True, "ev": False, "open": False},  # assignment
    "c": {"ok": True, "rt": True, "claim": True, "ev": False, "open": False},  # criterion
    "e": {"ok": True, "rt": True},  # evidence (version: 0 while submitted)
    "i": {"rv": False},  # an invite: revoke
    "t": {"wd": True},  # a task: its deadline to the next working day (version: the date shown)
    "m": {"pg": False},  # /mytasks: a page (the id is the page number)
    "f": {"to": False},  # a file sent without a reply: file it for assignment <id>
    "p": {"ok": False, "no": False},  # a plan workbook's change: apply / drop preview <audit id>
    "l": {"cl": True},  # claim criterion <id> linked to the approved assignment <version>
}
_RE = re.compile(r"^([a-z]):([a-z]{1,5}):(\d{1,12})(?::v(\d{1,9}))?$")
FORGED = "按钮无效（可能已过期），本次操作未生效。"
#: Row ids are 32-bit INTEGER columns.
MAX_ID = 2**31 - 1


@dataclass(frozen=True, slots=True)
class Button:
    kind: str
    verb: str
    id: int
    version: int | None = None

    def encode(self) -> str:
        text = f"{self.kind}:{self.verb}:{self.id}"
        if self.version is not None:
            text += f":v{self.version}"
        assert len(text.encode()) <= 64
        return text


def button(kind: str, verb: str, id: int, version: int | None = None) -> str:
    """The callback data for a button (validated against :data:`VERBS`)."""
    needs = VERBS[kind][verb]
    if needs and version is None:
        raise ValueError(f"{kind}:{verb} needs a version")
    return Button(kind, verb, id, version if needs else None).encode()


def parse(data: str | None) -> Button:
    """Parse callback data; anything malformed raises :class:`InvalidInput`."""
    m = _RE.match(data or "")
    if not m:
        raise InvalidInput(FORGED)
    kind, verb, ident, version = m.group(1), m.group(2), int(m.group(3)), m.group(4)
    needs = VERBS.get(kind, {}).get(verb)
    if needs is None or (needs and version is None) or (not needs and version is not None):
        raise InvalidInput(FORGED)
    if ident > MAX_ID:  # no such row, and PostgreSQL refuses to compare an INTEGER with it
        raise InvalidInput(FORGED)
    return Button(kind, verb, ident, int(version) if version is not None else None)
