"""Errors the domain raises for the user to read (messages in Simplified Chinese)."""

from __future__ import annotations


class DomainError(Exception):
    """A request the rules refuse. ``str(err)`` is a clear Chinese message; nothing changed."""

    code: str = "refused"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class NotFound(DomainError):
    code = "not_found"


class PermissionDenied(DomainError):
    code = "forbidden"


class InvalidInput(DomainError):
    code = "invalid"


class Conflict(DomainError):
    """The state changed under the user (stale button, concurrent edit)."""

    code = "conflict"


class StaleVersion(Conflict):
    """The row changed since the version the request named (a stale button, a concurrent edit).

    The boundary may say it in its own words (a button: "按钮已过期").
    """

    code = "stale"
