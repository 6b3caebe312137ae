"""Fault injection: make chosen Bot API calls fail the ways Telegram's do."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

from .errors import ApiError, bad_request, forbidden

__all__ = ["FaultKind", "FaultRule", "Faults", "forbidden_for", "fault_error"]

FaultKind = Literal["server_error", "forbidden", "chat_not_found", "slow", "bad_gateway", "timeout"]

_DEFAULT_DELAY: dict[str, float] = {"slow": 1.0, "timeout": 3600.0}
_KICKED = {
    "group": "bot was kicked from the group chat",
    "supergroup": "bot was kicked from the supergroup chat",
    "channel": "bot was kicked from the channel chat",
}


def forbidden_for(chat_type: str | None) -> ApiError:
    """The 403 Telegram answers when the bot may no longer write to a chat of that type."""
    return forbidden(_KICKED.get(chat_type or "private", "bot was blocked by the user"))


def fault_error(kind: FaultKind, chat_type: str | None) -> ApiError | None:
    """The error answer of an injected fault; ``None`` for the delaying kinds."""
    if kind == "forbidden":
        return forbidden_for(chat_type)
    if kind == "chat_not_found":
        return bad_request("chat not found")
    if kind == "server_error":
        return ApiError(500, "Internal Server Error")
    if kind == "bad_gateway":
        return ApiError(502, "Bad Gateway")
    return None


@dataclass
class FaultRule:
    """One injected fault.  ``remaining=None`` means it fires until :meth:`Faults.clear`."""

    kind: FaultKind
    method: str | None = None
    chat_id: int | str | None = None
    remaining: int | None = 1
    delay: float = 0.0
    fired: int = 0

    def matches(self, method: str, chat_id: int | str | None) -> bool:
        """Whether this rule applies to a call of ``method`` for ``chat_id``."""
        if self.remaining is not None and self.remaining <= 0:
            return False
        if self.method is None:
            if method.lower() == "getupdates":
                return False
        elif self.method.lower() != method.lower():
            return False
        return self.chat_id is None or str(self.chat_id) == str(chat_id)


class Faults:
    """Registry of injected faults and permanently blocked chats."""

    def __init__(self) -> None:
        self._rules: list[FaultRule] = []
        self._blocked: set[str] = set()

    def inject(
        self,
        method: str | None = None,
        chat_id: int | str | None = None,
        kind: FaultKind = "server_error",
        times: int | None = 1,
        delay: float | None = None,
    ) -> FaultRule:
        """Make the next ``times`` matching calls fail (``times=None``: until cleared).

        ``method=None`` matches every method except ``getUpdates`` (name it explicitly to
        disturb polling).  Kinds: ``forbidden`` (403, blocked/kicked by chat type),
        ``chat_not_found`` (400), ``server_error`` (500), ``bad_gateway`` (502), ``slow``
        (answer normally after ``delay`` seconds, default 1) and ``timeout`` (never answer;
        the connection is dropped after ``delay`` seconds, default an hour, so the client's
        read timeout fires first and nothing is executed).
        """
        if kind not in get_args(FaultKind):
            raise ValueError(f"unknown fault kind {kind!r}")
        rule = FaultRule(
            kind=kind,
            method=method,
            chat_id=chat_id,
            remaining=times,
            delay=_DEFAULT_DELAY.get(kind, 0.0) if delay is None else delay,
        )
        self._rules.append(rule)
        return rule

    def take(self, method: str, chat_id: int | str | None) -> FaultRule | None:
        """Consume and return the first rule matching this call, if any."""
        for rule in self._rules:
            if rule.matches(method, chat_id):
                if rule.remaining is not None:
                    rule.remaining -= 1
                rule.fired += 1
                return rule
        return None

    def block_chat(self, chat_id: int | str) -> None:
        """From now on every write to ``chat_id`` answers 403 (blocked / kicked)."""
        self._blocked.add(str(chat_id))

    def unblock_chat(self, chat_id: int | str) -> None:
        """Undo :meth:`block_chat`."""
        self._blocked.discard(str(chat_id))

    def is_blocked(self, chat_id: int | str | None) -> bool:
        """Whether :meth:`block_chat` was called for ``chat_id``."""
        return chat_id is not None and str(chat_id) in self._blocked

    @property
    def rules(self) -> list[FaultRule]:
        """The injected rules, including spent ones (see ``fired``/``remaining``)."""
        return list(self._rules)

    def clear(self) -> None:
        """Forget all rules and blocked chats."""
        self._rules.clear()
        self._blocked.clear()
