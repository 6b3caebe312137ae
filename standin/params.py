"""Decoding the parameters of a Bot API request.

python-telegram-bot (``HTTPXRequest``) POSTs ``application/x-www-form-urlencoded`` data
when nothing is uploaded and ``multipart/form-data`` when files are; in both cases
every non-string value arrives JSON-encoded as a string (``"123"``, ``"true"``,
``'{"inline_keyboard": ...}'``).  Other clients send ``application/json`` or query
strings.  :class:`Params` accepts all of these and normalises values by parameter name.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from .errors import bad_request

__all__ = ["Params", "UploadedFile"]

_INT_PARAMS = frozenset(
    {
        "message_id", "user_id", "offset", "limit", "timeout", "message_thread_id",
        "reply_to_message_id", "cache_time", "max_connections", "duration", "width",
        "height", "until_date",
    }
)  # fmt: skip
_CHAT_ID_PARAMS = frozenset({"chat_id", "from_chat_id", "sender_chat_id"})
_BOOL_PARAMS = frozenset(
    {
        "disable_notification", "protect_content", "allow_sending_without_reply",
        "show_alert", "drop_pending_updates", "disable_web_page_preview",
        "disable_content_type_detection", "has_spoiler", "show_caption_above_media",
        "only_if_banned", "revoke_messages", "allow_paid_broadcast", "for_channels",
    }
)  # fmt: skip
_JSON_PARAMS = frozenset(
    {
        "reply_markup", "reply_parameters", "entities", "caption_entities",
        "link_preview_options", "allowed_updates", "commands", "scope", "menu_button",
        "media", "message_ids", "rights",
    }
)  # fmt: skip
_INT_RE = re.compile(r"^-?\d+$")
_ATTACH_PREFIX = "attach://"


@dataclass(frozen=True)
class UploadedFile:
    """A file part of a multipart request."""

    field: str
    filename: str | None
    content_type: str | None
    data: bytes


def _as_int(name: str, value: Any) -> int:
    if isinstance(value, bool):
        raise bad_request(f"invalid {name} specified")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and _INT_RE.match(value.strip()):
        return int(value.strip())
    raise bad_request(f"invalid {name} specified")


def _as_bool(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1"):
        return True
    if text in ("false", "0", ""):
        return False
    raise bad_request(f"invalid {name} specified")


def _as_json(name: str, value: Any) -> Any:
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        if name == "reply_markup":
            raise bad_request("can't parse reply keyboard markup JSON object") from None
        raise bad_request(f"can't parse {name} JSON object") from None


def _as_chat_id(value: Any) -> int | str:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    text = str(value).strip()
    return int(text) if _INT_RE.match(text) else text


def _normalise(name: str, value: Any) -> Any:
    if name in _CHAT_ID_PARAMS:
        return _as_chat_id(value)
    if name in _INT_PARAMS:
        return _as_int(name, value)
    if name in _BOOL_PARAMS:
        return _as_bool(name, value)
    if name in _JSON_PARAMS:
        return _as_json(name, value)
    return value


class Params:
    """The normalised parameters (and uploaded files) of one Bot API call."""

    def __init__(
        self, values: Mapping[str, Any], files: Mapping[str, UploadedFile] | None = None
    ) -> None:
        self.values: dict[str, Any] = {
            name: _normalise(name, value) for name, value in values.items() if value is not None
        }
        self.files: dict[str, UploadedFile] = dict(files or {})

    @classmethod
    async def from_request(cls, request: web.Request) -> Params:
        """Read the query string and the body (form, multipart or JSON) of ``request``."""
        values: dict[str, Any] = dict(request.query)
        files: dict[str, UploadedFile] = {}
        if request.method == "POST" and request.can_read_body:
            if request.content_type == "application/json":
                values.update(await cls._read_json(request))
            else:
                form = await request.post()
                for name, value in form.items():
                    if isinstance(value, web.FileField):
                        files[name] = UploadedFile(
                            name, value.filename, value.content_type, value.file.read()
                        )
                    else:
                        values[name] = value
        return cls(values, files)

    @staticmethod
    async def _read_json(request: web.Request) -> dict[str, Any]:
        raw = await request.read()
        if not raw.strip():
            return {}
        try:
            body = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise bad_request("can't parse JSON encoded request body") from None
        if not isinstance(body, dict):
            raise bad_request("JSON encoded request body must be an object")
        return body

    def has(self, name: str) -> bool:
        """Whether the parameter was sent (and is not null)."""
        return name in self.values

    def get(self, name: str, default: Any = None) -> Any:
        """The normalised value, or ``default``."""
        return self.values.get(name, default)

    def text(self, name: str, default: str | None = None) -> str | None:
        """A string parameter."""
        value = self.values.get(name)
        if value is None:
            return default
        return value if isinstance(value, str) else str(value)

    def integer(self, name: str, default: int | None = None) -> int | None:
        """An integer parameter."""
        value = self.values.get(name)
        return default if value is None else _as_int(name, value)

    def required_int(self, name: str) -> int:
        """An integer parameter that must be present."""
        value = self.integer(name)
        if value is None:
            raise bad_request(f"{name} is empty")
        return value

    def flag(self, name: str) -> bool:
        """A boolean parameter (absent = false)."""
        return bool(self.values.get(name, False))

    def obj(self, name: str) -> Any:
        """A JSON-serialised parameter, decoded."""
        value = self.values.get(name)
        return None if value is None else _as_json(name, value)

    def chat_id(self, name: str = "chat_id") -> int | str:
        """The chat identifier (int id or ``@username``); 400 if missing."""
        value = self.values.get(name)
        if value is None or value == "":
            raise bad_request("chat_id is empty")
        return _as_chat_id(value)

    def input_file(self, name: str) -> UploadedFile | str | None:
        """A file parameter: an upload (by field or ``attach://``), a file_id/URL, or None."""
        if name in self.files:
            return self.files[name]
        value = self.values.get(name)
        if isinstance(value, str) and value.startswith(_ATTACH_PREFIX):
            attached = self.files.get(value[len(_ATTACH_PREFIX) :])
            if attached is None:
                raise bad_request(f"file {value} not found in the request")
            return attached
        return value if isinstance(value, str) and value else None

    def record(self) -> dict[str, Any]:
        """A copy for the call log; uploads appear as ``<upload name (N bytes)>``."""
        recorded = dict(self.values)
        for name, upload in self.files.items():
            recorded[name] = f"<upload {upload.filename or name} ({len(upload.data)} bytes)>"
        return recorded
