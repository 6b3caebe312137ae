"""Logging: secrets never reach a log line; users are named by id, not by what they wrote.

:func:`configure_logging` sets up the root logger from ``[logging]`` and makes
every record pass through :class:`RedactingFilter`, which replaces

* the configured bot token, the webhook secret and the database password, and
* anything shaped like a bot token (``123456789:AA…``, 35 characters after the colon)

in the message, its arguments, the exception and stack text and any extra
attribute. It is applied twice: when a record is made (a log record factory,
so handlers added later — a file handler, pytest's capture — see a redacted
message and traceback) and by the handler it installs (which also covers
``extra=`` attributes: Python sets those after the factory ran). ``httpx`` and ``httpcore``
log every request URL, and a Bot API URL contains the token: they are quieted
to WARNING (and redacted anyway). Uncaught exceptions, in the main thread or
any other, go through logging too, instead of printing a raw traceback.

:func:`describe_update` says who did what in an update without the content
(text, captions, file names, button data, names) unless ``log_bodies`` is on.
"""

from __future__ import annotations

import logging
import re
import sys
import threading
from collections.abc import Iterable, Mapping
from typing import IO, Any
from urllib.parse import urlsplit

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from infra.config import Settings

REDACTED = "[REDACTED]"
#: A Telegram bot token: the bot's id, a colon (maybe URL-encoded) and 35 characters.
TOKEN_PATTERN = re.compile(r"[0-9]{8,10}(?::|%3[Aa])[A-Za-z0-9_-]{35}")
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
#: Loggers that print request URLs (which hold the token) at INFO/DEBUG.
NOISY_LOGGERS = ("httpx", "httpcore")
#: python-telegram-bot's loggers, which log message bodies at DEBUG.
LIBRARY_LOGGER = "telegram"
#: Record attributes that are never free text.
_PLAIN_ATTRS = frozenset({
    "name", "levelname", "levelno", "pathname", "filename", "module", "lineno", "funcName",
    "created", "msecs", "relativeCreated", "thread", "threadName", "processName", "process",
    "taskName", "exc_info", "args", "msg", "exc_text", "stack_info",
})


class Redactor:
    """Replaces secrets and bot-token-shaped strings in text."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        found: set[str] = set()
        for secret in secrets:
            secret = (secret or "").strip()
            if len(secret) >= 4:  # shorter is no secret, and would wreck every line
                found.add(secret)
                found.add(secret.replace(":", "%3A"))
                found.add(secret.replace(":", "%3a"))
        # Longest first, so that a secret containing another is replaced whole.
        self._secrets = sorted(found, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        return TOKEN_PATTERN.sub(REDACTED, text)


_formatter = logging.Formatter()


class RedactingFilter(logging.Filter):
    """Redacts every text a record carries; never drops a record."""

    def __init__(self, redactor: Redactor | None = None) -> None:
        super().__init__()
        self.redactor = redactor or Redactor()

    def filter(self, record: logging.LogRecord) -> bool:
        redact_record(record, self.redactor)
        return True


def redact_record(record: logging.LogRecord, redact: Redactor) -> logging.LogRecord:
    """Format the message with its arguments, then redact it and every other text, in place."""
    try:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: keep what we can, redacted
            message = f"{record.msg!r} % {record.args!r}"
        record.msg = redact(message)
        record.args = None
        if record.exc_info:
            if not record.exc_text:
                record.exc_text = _formatter.formatException(record.exc_info)
            # The exception object itself still holds the secret: only its text travels on.
            record.exc_info = None
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        for key, value in list(vars(record).items()):
            if key in _PLAIN_ATTRS or key.startswith("_"):
                continue
            if isinstance(value, str):
                setattr(record, key, redact(value))
            elif value is not None and not isinstance(value, int | float | bool):
                setattr(record, key, redact(repr(value)))
    except Exception:  # logging must not fail; nor may it leak what it could not redact
        record.msg = "<log record could not be redacted>"
        record.args = None
        record.exc_info = None
        record.exc_text = None
        record.stack_info = None
    return record


# The active redactor, used by the record factory; replaced by each configure_logging call.
_active: Redactor = Redactor()
_factory_installed = False
_lock = threading.Lock()


def redact(text: str) -> str:
    """``text`` with the configured secrets and token-shaped strings replaced.

    For messages that do not go through logging (an error printed by the CLI,
    an export): the secrets known to the last :func:`configure_logging`.
    """
    return _active(text)


def _install_factory() -> None:
    global _factory_installed
    with _lock:
        if _factory_installed:
            return
        previous = logging.getLogRecordFactory()

        def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
            return redact_record(previous(*args, **kwargs), _active)

        logging.setLogRecordFactory(factory)
        _factory_installed = True


def settings_secrets(settings: Settings) -> list[str]:
    """The secrets of the configuration: bot token, webhook secret, database password."""
    secrets = [
        settings.telegram.token.get_secret_value(),
        settings.telegram.webhook_secret.get_secret_value(),
        settings.telegram.proxy_url.get_secret_value(),
    ]
    proxy = urlsplit(settings.telegram.proxy_url.get_secret_value())
    if proxy.password:  # also when it shows alone (an error message quoting the credentials)
        secrets.append(proxy.password)
    try:
        password = make_url(settings.database.url).password
    except ArgumentError:
        password = None
    if password:
        secrets.append(str(password))
    return secrets


def configure_logging(settings: Settings, *, stream: IO[str] | None = None) -> RedactingFilter:
    """Set up logging for the process from ``settings.logging``; returns the filter in use.

    Like ``logging.basicConfig(force=True)``, it replaces the root logger's
    handlers with one stream handler (stderr unless ``stream``). Safe to call
    again: the secrets and level of the last call apply.
    """
    global _active
    redactor = Redactor(settings_secrets(settings))
    _active = redactor
    _install_factory()
    filt = RedactingFilter(redactor)
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(logging.Formatter(FORMAT))
    handler.addFilter(filt)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(settings.logging.level)
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    # python-telegram-bot logs whole updates and request parameters at DEBUG ("Processing
    # update …", "Calling Bot API endpoint … with parameters …"): people's messages. Without
    # log_bodies its loggers stay at INFO whatever the level.
    library = logging.getLogger(LIBRARY_LOGGER)
    library.setLevel(logging.NOTSET if settings.logging.log_bodies else logging.INFO)
    _route_uncaught_exceptions()
    return filt


def _route_uncaught_exceptions() -> None:
    log = logging.getLogger("qcbot.uncaught")

    def excepthook(exc_type: type[BaseException], exc: BaseException, tb: Any) -> None:
        if issubclass(exc_type, KeyboardInterrupt):
            sys.__excepthook__(exc_type, exc, tb)
            return
        log.critical("uncaught exception", exc_info=(exc_type, exc, tb))

    def thread_excepthook(args: threading.ExceptHookArgs) -> None:
        if args.exc_type is SystemExit:
            return
        name = args.thread.name if args.thread is not None else "?"
        exc = args.exc_value if args.exc_value is not None else args.exc_type()
        log.critical("uncaught exception in thread %s", name,
                     exc_info=(args.exc_type, exc, args.exc_traceback))

    sys.excepthook = excepthook
    threading.excepthook = thread_excepthook


# ------------------------------------------------------------------ describe_update

#: Update fields that carry a message, in the order Telegram documents them.
_MESSAGE_KINDS = (
    "message", "edited_message", "channel_post", "edited_channel_post",
    "business_message", "edited_business_message",
)
#: Message fields that say what kind of content it holds (not the content).
_CONTENT_KINDS = (
    "text", "document", "photo", "video", "audio", "voice", "video_note", "sticker", "animation",
    "contact", "location", "venue", "poll", "dice", "new_chat_members", "left_chat_member",
    "new_chat_title", "pinned_message", "migrate_to_chat_id", "group_chat_created",
    "supergroup_chat_created",
)
_MAX_BODY = 300


def _plain(value: Any) -> Any:
    return getattr(value, "value", value)


def _as_dict(update: Any) -> Mapping[str, Any] | None:
    if isinstance(update, Mapping):
        return update
    to_dict = getattr(update, "to_dict", None)
    if callable(to_dict):
        data = to_dict()
        return data if isinstance(data, Mapping) else None
    return None


def _body(value: Any) -> str:
    text = str(_plain(value))
    if len(text) > _MAX_BODY:
        text = text[:_MAX_BODY] + "…"
    return repr(text)


def _who(part: Mapping[str, Any]) -> list[str]:
    out: list[str] = []
    user = part.get("from")
    if isinstance(user, Mapping) and user.get("id") is not None:
        out.append(f"from user {user['id']}")
    chat = part.get("chat")
    if not isinstance(chat, Mapping):
        message = part.get("message")
        chat = message.get("chat") if isinstance(message, Mapping) else None
    if isinstance(chat, Mapping) and chat.get("id") is not None:
        kind = _plain(chat.get("type"))
        out.append(f"in chat {chat['id']}" + (f" ({kind})" if kind else ""))
    return out


def _describe_message(msg: Mapping[str, Any], log_bodies: bool) -> list[str]:
    out = [f"#{msg.get('message_id', '?')}", *_who(msg)]
    content = next((k for k in _CONTENT_KINDS if msg.get(k) not in (None, False, [], "")), None)
    if content == "text":
        out.append(f"text ({len(str(msg['text']))} chars)")
        if log_bodies:
            out.append(f"text={_body(msg['text'])}")
    elif content == "document" and isinstance(msg["document"], Mapping):
        doc = msg["document"]
        out.append(f"document {doc.get('mime_type') or '?'} {doc.get('file_size', '?')} bytes")
        if log_bodies and doc.get("file_name"):
            out.append(f"file_name={_body(doc['file_name'])}")
    elif content is not None:
        out.append(content)
    if msg.get("caption"):
        out.append(f"caption ({len(str(msg['caption']))} chars)")
        if log_bodies:
            out.append(f"caption={_body(msg['caption'])}")
    reply = msg.get("reply_to_message")
    if isinstance(reply, Mapping) and reply.get("message_id") is not None:
        out.append(f"reply to #{reply['message_id']}")
    return out


def describe_update(update: Any, log_bodies: bool = False) -> str:
    """One line about an update for logs: ids and kinds; content only with ``log_bodies``.

    Accepts a ``telegram.Update`` or its dict (``Update.to_dict()`` / raw JSON);
    never raises, so an error handler can always call it.
    """
    try:
        data = _as_dict(update)
        if data is None:
            return f"<{type(update).__name__}>"
        parts = [f"update {data.get('update_id', '?')}"]
        kind = next((k for k in data if k != "update_id"), None)
        if kind is None:
            return parts[0] + " (empty)"
        body = data[kind]
        if kind in _MESSAGE_KINDS and isinstance(body, Mapping):
            parts.append(kind)
            parts += _describe_message(body, log_bodies)
        elif kind == "callback_query" and isinstance(body, Mapping):
            parts.append("callback_query")
            parts += _who(body)
            message = body.get("message")
            if isinstance(message, Mapping) and message.get("message_id") is not None:
                parts.append(f"on #{message['message_id']}")
            if body.get("data") is not None:
                parts.append(f"data ({len(str(body['data']))} chars)")
                if log_bodies:
                    parts.append(f"data={_body(body['data'])}")
        elif kind in ("my_chat_member", "chat_member") and isinstance(body, Mapping):
            parts.append(kind)
            parts += _who(body)
            for side in ("old_chat_member", "new_chat_member"):
                member = body.get(side)
                if isinstance(member, Mapping):
                    user = member.get("user")
                    uid = user.get("id") if isinstance(user, Mapping) else "?"
                    parts.append(f"{side.split('_')[0]}={_plain(member.get('status'))}(user {uid})")
        elif isinstance(body, Mapping):
            parts.append(kind)
            parts += _who(body)
            if log_bodies:
                for field in ("query", "text", "data"):
                    if body.get(field):
                        parts.append(f"{field}={_body(body[field])}")
        else:
            parts.append(kind)
        return redact(" ".join(parts))
    except Exception as exc:  # never let a description break error handling
        return f"<update that could not be described: {type(exc).__name__}>"
