"""Bot API error answers, shaped like Telegram's."""

from __future__ import annotations

from typing import Any

__all__ = ["ApiError", "bad_request", "forbidden", "not_found", "too_many_requests"]


class ApiError(Exception):
    """An error answer of the Bot API: ``{"ok": false, "error_code": ..., "description": ...}``.

    Raised by method handlers; the server turns it into the HTTP response with the same
    status code, which is how python-telegram-bot picks the exception class it raises.
    """

    def __init__(
        self, error_code: int, description: str, parameters: dict[str, Any] | None = None
    ) -> None:
        super().__init__(description)
        self.error_code = error_code
        self.description = description
        self.parameters = parameters or {}

    def payload(self) -> dict[str, Any]:
        """The JSON body Telegram would send."""
        body: dict[str, Any] = {
            "ok": False,
            "error_code": self.error_code,
            "description": self.description,
        }
        if self.parameters:
            body["parameters"] = dict(self.parameters)
        return body


def bad_request(reason: str) -> ApiError:
    """400 ``Bad Request: <reason>``."""
    return ApiError(400, f"Bad Request: {reason}")


def forbidden(reason: str) -> ApiError:
    """403 ``Forbidden: <reason>``."""
    return ApiError(403, f"Forbidden: {reason}")


def not_found() -> ApiError:
    """404 ``Not Found`` — what Telegram answers for unknown methods."""
    return ApiError(404, "Not Found")


def too_many_requests(retry_after: int) -> ApiError:
    """429 with ``parameters.retry_after``."""
    return ApiError(
        429,
        f"Too Many Requests: retry after {retry_after}",
        {"retry_after": retry_after},
    )
