"""The bot token (and other secrets) never reach a log line; updates are logged without bodies."""

from __future__ import annotations

import io
import logging
import sys
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import httpx
import pytest
from telegram import CallbackQuery, Chat, Document, Message, Update, User

import infra.logging_setup as ls
from infra.config import Settings
from infra.logging_setup import configure_logging, describe_update, redact

SECRET_PART = "AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsawq"
TOKEN = "1234567890:" + SECRET_PART
OTHER_TOKEN = "987654321:" "ZZ-yx_wvUTSRqponmlkjihgfedcba987654"  # token-shaped, fake
WEBHOOK_SECRET = "hook-Secret-4711"
DB_PASSWORD = "db-Pass-0815"
assert len(SECRET_PART) == len(OTHER_TOKEN.split(":")[1]) == 35  # the shape of a real token


def settings(level: str = "INFO", log_bodies: bool = False) -> Settings:
    return Settings.model_validate({
        "telegram": {"token": TOKEN, "webhook_secret": WEBHOOK_SECRET},
        "database": {"url": f"postgresql://qcbot:{DB_PASSWORD}@db.example/qcbot"},
        "logging": {"level": level, "log_bodies": log_bodies},
    })


def assert_clean(text: str) -> None:
    for secret in (TOKEN, SECRET_PART, OTHER_TOKEN, OTHER_TOKEN.split(":")[1], WEBHOOK_SECRET,
                   DB_PASSWORD, SECRET_PART[:20]):
        assert secret not in text, f"{secret!r} leaked into:\n{text}"


@pytest.fixture
def logs() -> Iterator[Callable[..., io.StringIO]]:
    """configure_logging into a buffer; the process's logging is put back afterwards."""
    root = logging.getLogger()
    saved = (list(root.handlers), root.level, logging.getLogRecordFactory(), sys.excepthook,
             threading.excepthook,
             {n: logging.getLogger(n).level for n in (*ls.NOISY_LOGGERS, ls.LIBRARY_LOGGER)},
             ls._active, ls._factory_installed)

    def configure(level: str = "INFO") -> io.StringIO:
        buf = io.StringIO()
        configure_logging(settings(level), stream=buf)
        return buf

    try:
        yield configure
    finally:
        handlers, level, factory, hook, thook, noisy, active, installed = saved
        for h in list(root.handlers):
            root.removeHandler(h)
        for h in handlers:
            root.addHandler(h)
        root.setLevel(level)
        logging.setLogRecordFactory(factory)
        sys.excepthook, threading.excepthook = hook, thook
        for name, lvl in noisy.items():
            logging.getLogger(name).setLevel(lvl)
        ls._active, ls._factory_installed = active, installed


def test_token_in_message_args_and_extras_is_redacted(logs: Callable[..., io.StringIO]) -> None:
    buf = logs()
    log = logging.getLogger("qcbot.test")
    url = f"https://api.telegram.org/bot{TOKEN}/getUpdates"
    log.info(f"starting with token {TOKEN}")
    log.info("calling %s", url)
    log.warning("calling %(url)s for %(who)s", {"url": url, "who": "张三"})
    log.error("object arg %r", httpx.URL(url))
    log.info("url-encoded %s", url.replace(":", "%3A", 1).replace("https%3A", "https:"))
    log.info("a token we were not told about: %s", OTHER_TOKEN)
    log.info("webhook %s, database %s", WEBHOOK_SECRET, f"postgresql://qcbot:{DB_PASSWORD}@db")
    records: list[logging.LogRecord] = []
    collector = logging.Handler()
    collector.emit = records.append  # type: ignore[method-assign]
    log.addHandler(collector)
    try:
        log.info("with extra", extra={"url": url, "payload": {"token": TOKEN}})
    finally:
        log.removeHandler(collector)
    log.info("%d is not a number", "x")  # a broken format string is no way around it
    out = buf.getvalue()
    assert_clean(out)
    assert out.count(ls.REDACTED) == 8
    (extra,) = records  # extras are redacted on the record, for formatters that show them
    assert_clean(extra.url + extra.payload)  # type: ignore[attr-defined]
    assert "starting with token [REDACTED]" in out
    assert "https://api.telegram.org/bot[REDACTED]/getUpdates" in out
    assert "张三" in out and "is not a number" in out


def test_token_in_an_exception_is_redacted(logs: Callable[..., io.StringIO]) -> None:
    buf = logs()
    log = logging.getLogger("qcbot.test")

    def reject() -> None:
        raise RuntimeError(f"The token `{TOKEN}` was rejected by the server.")

    try:
        try:
            reject()
        except RuntimeError as inner:
            raise ValueError(f"while polling https://api.telegram.org/bot{TOKEN}/getMe") from inner
    except ValueError:
        log.exception("polling failed for %s", TOKEN)
        log.error("again, as exc_info", exc_info=True, stack_info=True)
    out = buf.getvalue()
    assert_clean(out)
    assert "Traceback" in out and "RuntimeError: The token `[REDACTED]` was rejected" in out
    assert "The above exception was the direct cause" in out and "Stack (most recent call last)" in out


def test_handlers_added_later_only_see_redacted_records(logs: Callable[..., io.StringIO]) -> None:
    logs()
    late = io.StringIO()
    handler = logging.StreamHandler(late)  # e.g. a file handler, or pytest's capture
    handler.setFormatter(logging.Formatter("%(message)s"))
    logging.getLogger().addHandler(handler)
    records: list[logging.LogRecord] = []
    collector = logging.Handler()
    collector.emit = records.append  # type: ignore[method-assign]
    logging.getLogger("qcbot.test").addHandler(collector)
    try:
        try:
            raise RuntimeError(TOKEN)
        except RuntimeError:
            logging.getLogger("qcbot.test").exception("token %s", TOKEN)
    finally:
        logging.getLogger().removeHandler(handler)
        logging.getLogger("qcbot.test").removeHandler(collector)
    assert_clean(late.getvalue())
    assert "RuntimeError: [REDACTED]" in late.getvalue()
    (record,) = records
    assert record.args is None and record.exc_info is None
    assert_clean(record.getMessage() + (record.exc_text or ""))


def test_httpx_request_lines_are_quieted_and_redacted(logs: Callable[..., io.StringIO]) -> None:
    buf = logs("DEBUG")
    transport = httpx.MockTransport(lambda request: httpx.Response(200, json={"ok": True}))
    with httpx.Client(transport=transport) as client:
        client.get(f"https://api.telegram.org/bot{TOKEN}/getMe")
        assert "HTTP Request" not in buf.getvalue()  # INFO of httpx is quieted
        logging.getLogger("httpx").setLevel(logging.INFO)  # someone turns it back on
        client.get(f"https://api.telegram.org/bot{TOKEN}/getMe")
    out = buf.getvalue()
    assert "HTTP Request: GET https://api.telegram.org/bot[REDACTED]/getMe" in out
    assert_clean(out)


def test_message_bodies_stay_out_of_the_log_at_debug(logs: Callable[..., io.StringIO]) -> None:
    """log_bodies = false holds at DEBUG: python-telegram-bot logs whole updates and request
    parameters there ("Processing update …"), which are people's messages."""
    buf = logs("DEBUG")
    logging.getLogger("telegram.ext.Application").debug("Processing update %s", "{'text': '机密：人员名单'}")
    logging.getLogger("telegram.Bot").debug("Calling Bot API endpoint `sendMessage` with parameters `%s`",
                                            {"text": "机密：人员名单"})
    logging.getLogger("bot.handlers").debug("our own debug line")
    logging.getLogger("telegram.ext.Updater").warning("a library warning still shows")
    out = buf.getvalue()
    assert "机密" not in out
    assert "our own debug line" in out and "a library warning still shows" in out


def test_level_comes_from_settings(logs: Callable[..., io.StringIO]) -> None:
    buf = logs("WARNING")
    logging.getLogger("qcbot.test").info("not shown")
    logging.getLogger("qcbot.test").warning("shown")
    assert "not shown" not in buf.getvalue() and "WARNING qcbot.test: shown" in buf.getvalue()


def test_uncaught_exceptions_go_through_the_filter(logs: Callable[..., io.StringIO]) -> None:
    buf = logs()

    def crash() -> None:
        raise RuntimeError(f"token {TOKEN}")

    thread = threading.Thread(target=crash, name="poller")
    thread.start()
    thread.join()
    try:
        raise KeyError(TOKEN)
    except KeyError:
        sys.excepthook(*sys.exc_info())  # type: ignore[arg-type]
    out = buf.getvalue()
    assert "uncaught exception in thread poller" in out and "RuntimeError: token [REDACTED]" in out
    assert "CRITICAL qcbot.uncaught: uncaught exception" in out
    assert_clean(out)


def test_redact_for_text_outside_logging(logs: Callable[..., io.StringIO]) -> None:
    logs()
    assert redact(f"错误：{TOKEN} / {OTHER_TOKEN} / {WEBHOOK_SECRET}") == "错误：[REDACTED] / [REDACTED] / [REDACTED]"
    assert redact("nothing secret: 12345:abc") == "nothing secret: 12345:abc"


# ------------------------------------------------------------------ describe_update


def _update(text: str | None = None, **kwargs: object) -> Update:
    msg = Message(
        message_id=7, date=datetime(2026, 3, 2, tzinfo=UTC),
        chat=Chat(-1001234567890, Chat.SUPERGROUP, title="质量强区工作群"),
        from_user=User(42, "张三", False, username="zhangsan"), text=text, **kwargs,
    )
    return Update(5, message=msg)


def test_describe_update_names_ids_not_bodies() -> None:
    body = "我们局的材料明天交，联系电话 13800000000"
    update = _update(body)
    line = describe_update(update, log_bodies=False)
    assert line == (
        f"update 5 message #7 from user 42 in chat -1001234567890 (supergroup) text ({len(body)} chars)"
    )
    assert describe_update(update.to_dict(), False) == line
    assert "13800000000" not in line and "张三" not in line and "zhangsan" not in line
    assert "质量强区工作群" not in line

    verbose = describe_update(update, log_bodies=True)
    assert verbose.startswith(line) and "13800000000" in verbose


def test_describe_update_documents_callbacks_and_oddities() -> None:
    doc = _update(caption="2021年台账", document=Document("fid", "uid", file_name="张三的台账.pdf",
                                                     mime_type="application/pdf", file_size=12345))
    line = describe_update(doc, False)
    assert "document application/pdf 12345 bytes" in line and "caption (7 chars)" in line
    assert "台账" not in line
    assert "file_name='张三的台账.pdf'" in describe_update(doc, True)

    message = _update("按钮").message
    assert message is not None
    cq = Update(6, callback_query=CallbackQuery("q1", User(43, "李四", False), "inst",
                                                message=message, data="approve:17"))
    assert describe_update(cq, False) == (
        "update 6 callback_query from user 43 in chat -1001234567890 (supergroup) on #7 data (10 chars)"
    )
    assert "data='approve:17'" in describe_update(cq, True)

    assert describe_update({"update_id": 9, "message": {"text": f"my token is {TOKEN}"}}, True).count(TOKEN) == 0
    assert describe_update(None, True) == "<NoneType>"
    assert describe_update({"update_id": 1}, False) == "update 1 (empty)"
    assert describe_update({"update_id": 1, "message": "weird"}, False) == "update 1 message"
    assert describe_update({"update_id": 2, "poll_answer": {"user": {"id": 1}, "option_ids": [0]}}, False) == (
        "update 2 poll_answer"
    )
