"""The Bot API stand-in, driven through the real python-telegram-bot stack."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import socket
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from telegram import (
    Bot,
    BotCommand,
    ChatMemberUpdated,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
    ReplyParameters,
    Update,
)
from telegram.error import (
    BadRequest,
    EndPointNotFound,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TimedOut,
)
from telegram.ext import (
    AIORateLimiter,
    Application,
    ApplicationBuilder,
    BaseHandler,
    CallbackQueryHandler,
    ChatMemberHandler,
    CommandHandler,
    ContextTypes,
    ExtBot,
    MessageHandler,
    filters,
)
from telegram.request import HTTPXRequest

from standin import BotApiStandin, SimulationError, format_text
from standin.formatting import EntityParseError, parse_html, parse_markdown_v2

pytestmark = [
    pytest.mark.timeout(30),
    # PTB's own RetryAfter constructor reads the deprecated int-typed attribute
    pytest.mark.filterwarnings("ignore:.*retry_after.*:telegram.warnings.PTBDeprecationWarning"),
]

TOKEN = "123456:TEST-token"
REPO = Path(__file__).resolve().parent.parent
# 1x1 transparent PNG
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489"
    "0000000d49444154789c6360000002000001e221bc330000000049454e44ae426082"
)


# ----------------------------------------------------------------------------- helpers


@pytest.fixture
async def api() -> AsyncIterator[BotApiStandin]:
    async with BotApiStandin(token=TOKEN) as standin:
        yield standin


def plain_bot(api: BotApiStandin, token: str | None = None, **request: Any) -> Bot:
    """A ``Bot`` without rate limiter; ``request`` tunes its HTTPXRequest (timeouts)."""
    return Bot(
        token or api.token,
        base_url=api.base_url,
        base_file_url=api.base_file_url,
        request=HTTPXRequest(**request) if request else None,
    )


@asynccontextmanager
async def running_app(
    api: BotApiStandin, *handlers: BaseHandler[Any, Any, Any]
) -> AsyncIterator[Application[Any, Any, Any, Any, Any, Any]]:
    """A polling ``Application`` against the stand-in, stopped cleanly afterwards."""
    app = (
        ApplicationBuilder()
        .token(api.token)
        .base_url(api.base_url)
        .base_file_url(api.base_file_url)
        .build()
    )
    for handler in handlers:
        app.add_handler(handler)
    await app.initialize()
    await app.start()
    assert app.updater is not None
    await app.updater.start_polling(poll_interval=0, timeout=1)
    try:
        yield app
    finally:
        await app.updater.stop()
        await app.stop()
        await app.shutdown()


def keyboard(*data: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup([[InlineKeyboardButton(f"按钮{d}", callback_data=d) for d in data]])


# ----------------------------------------------------------------------------- round trips


async def test_start_in_private_chat_gets_a_reply(api: BotApiStandin) -> None:
    async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.effective_message is not None and update.effective_user is not None
        await update.effective_message.reply_text(f"你好，{update.effective_user.first_name}")

    alice = api.make_user("张三", "zhangsan")
    async with running_app(api, CommandHandler("start", start)):
        sent = await api.send_text(alice, api.private_chat(alice), "/start")
        [reply] = await api.wait_for_bot_messages(alice)

    assert sent["entities"] == [{"type": "bot_command", "offset": 0, "length": 6}]
    assert reply["text"] == "你好，张三"
    assert reply["chat"]["id"] == alice.id
    assert reply["from"]["id"] == api.bot.id
    assert reply["message_id"] > sent["message_id"]
    assert [c.method for c in api.calls][:2] == ["getMe", "deleteWebhook"]


async def test_group_command_with_bot_name_gets_inline_keyboard(api: BotApiStandin) -> None:
    async def status(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.effective_message is not None
        await update.effective_message.reply_text(
            "<b>进度</b>：60%", parse_mode="HTML", reply_markup=keyboard("yes", "no")
        )

    alice = api.make_user("张三")
    group = api.make_group("质量强区工作群")
    assert group.id < 0 and group.type == "supergroup"
    async with running_app(api, CommandHandler("status", status)):
        sent = await api.send_text(alice, group, f"/status@{api.bot.username}")
        [reply] = await api.wait_for_bot_messages(group)

    assert sent["entities"][0]["length"] == len(f"/status@{api.bot.username}")
    assert reply["text"] == "进度：60%"
    assert reply["entities"] == [{"type": "bold", "offset": 0, "length": 2}]
    assert [b["callback_data"] for b in api.buttons(reply)] == ["yes", "no"]
    assert reply["reply_to_message"]["message_id"] == sent["message_id"]  # reply_text quotes


async def test_button_press_is_answered_and_message_edited(api: BotApiStandin) -> None:
    async def ask(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.effective_message is not None
        await update.effective_message.reply_text("确认提交吗？", reply_markup=keyboard("confirm"))

    async def pressed(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        assert query is not None and query.data == "confirm"
        await query.answer("已提交")
        await query.edit_message_text("已提交 ✅")

    alice = api.make_user("张三")
    group = api.make_group("质量强区工作群")
    async with running_app(api, CommandHandler("ask", ask), CallbackQueryHandler(pressed)):
        await api.send_text(alice, group, "/ask")
        [question] = await api.wait_for_bot_messages(group)
        query_id = await api.press_button(alice, question, "confirm")
        await api.wait_until(lambda: question.get("edit_date") is not None, what="edit")
        await api.wait_idle()

    assert api.callback_answers[query_id]["text"] == "已提交"
    assert api.unanswered_callbacks == []
    assert question["text"] == "已提交 ✅"  # the recorded message follows edits
    assert "reply_markup" not in question  # editMessageText without markup drops it
    with pytest.raises(SimulationError, match="no button"):
        await api.press_button(alice, question, "confirm")


async def test_document_upload_is_downloadable_byte_for_byte(api: BotApiStandin) -> None:
    payload = "质量强区 季度报告\n".encode() * 5000 + bytes(range(256))
    received: list[bytes] = []

    async def on_document(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        assert message is not None and message.document is not None
        telegram_file = await message.document.get_file()
        received.append(bytes(await telegram_file.download_as_bytearray()))
        await message.reply_document(
            document=received[-1], filename="回执.bin", caption="已收到 <i>报告</i>",
            parse_mode="HTML",
        )  # fmt: skip

    alice = api.make_user("张三")
    group = api.make_group("质量强区工作群")
    async with running_app(api, MessageHandler(filters.Document.ALL, on_document)):
        sent = await api.send_document(
            alice, group, "报告.pdf", payload, caption="请查收", mime_type="application/pdf"
        )
        [echo] = await api.wait_for_bot_messages(group)

    assert received == [payload]
    assert sent["document"]["file_name"] == "报告.pdf"
    assert echo["document"]["file_name"] == "回执.bin"
    assert echo["document"]["file_size"] == len(payload)
    assert echo["caption"] == "已收到 报告"
    assert echo["caption_entities"] == [{"type": "italic", "offset": 4, "length": 2}]
    bot = plain_bot(api)
    async with bot:
        again = await (await bot.get_file(echo["document"]["file_id"])).download_as_bytearray()
    assert bytes(again) == payload


async def test_photos_round_trip_and_non_images_are_refused(api: BotApiStandin) -> None:
    alice = api.make_user("张三")
    dm = api.private_chat(alice)
    async with plain_bot(api) as bot:
        message = await bot.send_photo(dm.id, PNG, caption="图表")
        assert (message.photo[-1].width, message.photo[-1].height) == (1, 1)
        with pytest.raises(BadRequest, match="Image_process_failed"):
            await bot.send_photo(dm.id, b"not an image")
    sent = await api.send_photo(alice, dm, PNG, caption="现场照片")
    assert sent["photo"][0]["width"] == 1
    assert api.sent_messages(alice)[0]["caption"] == "图表"


async def test_reply_to_a_bot_message_carries_reply_to_message(api: BotApiStandin) -> None:
    seen: list[Message] = []

    async def on_reply(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.effective_message is not None
        seen.append(update.effective_message)
        await context.bot.send_message(
            update.effective_message.chat_id,
            "收到",
            reply_parameters=ReplyParameters(update.effective_message.message_id),
        )

    alice = api.make_user("张三")
    group = api.make_group("质量强区工作群")
    async with running_app(api, MessageHandler(filters.REPLY, on_reply)) as app:
        prompt = await app.bot.send_message(group.id, "请回复本季度完成率")
        api.mark(group)
        answer = await api.send_text(alice, group, "60%", reply_to=prompt.message_id)
        [ack] = await api.wait_for_bot_messages(group)

    [message] = seen
    assert message.reply_to_message is not None
    assert message.reply_to_message.message_id == prompt.message_id
    assert message.reply_to_message.text == "请回复本季度完成率"
    assert ack["reply_to_message"]["message_id"] == answer["message_id"]
    assert "reply_to_message" not in ack["reply_to_message"]  # never nested
    with pytest.raises(SimulationError, match="not found"):
        await api.send_text(alice, group, "?", reply_to=9999)


async def test_message_ids_increase_per_chat(api: BotApiStandin) -> None:
    alice = api.make_user("张三")
    group = api.make_group("群一")
    other = api.make_group("群二")
    async with plain_bot(api) as bot:
        first = await bot.send_message(group.id, "一")
        second = await bot.send_message(group.id, "二")
        elsewhere = await bot.send_message(other.id, "三")
    by_user = await api.send_text(alice, group, "四")
    assert first.message_id < second.message_id < by_user["message_id"]
    assert elsewhere.message_id == 1


# ----------------------------------------------------------------------------- Telegram's validation


@pytest.mark.parametrize(
    ("html", "reason"),
    [
        ("<b>未闭合", "can't find end tag corresponding to start tag b"),
        ("完成率 < 60%", 'unsupported start tag "" at byte offset 10'),
        ("<div>段落</div>", 'unsupported start tag "div" at byte offset 0'),
        ("<b>粗<i>斜</b></i>", "unmatched end tag at byte offset 12"),
        ("<a href=https://example.org>链接</a>", "unexpected end of name token at byte offset 8"),
        ("<span>剧透</span>", 'tag "span" must have class "tg-spoiler"'),
    ],
)
async def test_malformed_html_is_rejected_with_400(
    api: BotApiStandin, html: str, reason: str
) -> None:
    group = api.make_group("质量强区工作群")
    async with plain_bot(api) as bot:
        with pytest.raises(BadRequest) as caught:
            await bot.send_message(group.id, html, parse_mode="HTML")
    assert str(caught.value).lower().startswith("can't parse entities: ")
    assert reason in str(caught.value).lower()
    assert api.sent_messages(group) == []
    [call] = api.calls_to("sendMessage")
    assert call.status == 400
    assert (call.description or "").startswith("Bad Request: can't parse entities")


async def test_wellformed_html_and_markdown_become_entities(api: BotApiStandin) -> None:
    group = api.make_group("质量强区工作群")
    html = (
        '<b>粗体</b> &lt;标签&gt; &amp; <a href="https://example.org/x">链接</a> '
        '<tg-spoiler>隐</tg-spoiler> <pre><code class="language-python">x = 1</code></pre>'
    )
    async with plain_bot(api) as bot:
        message = await bot.send_message(group.id, html, parse_mode="HTML")
        markdown = await bot.send_message(group.id, r"*完成* 60\.5%", parse_mode="MarkdownV2")
        with pytest.raises(BadRequest, match="reserved and must be escaped"):
            await bot.send_message(group.id, "完成 60.5%", parse_mode="MarkdownV2")
    assert message.text == "粗体 <标签> & 链接 隐 x = 1"
    kinds = [(e.type, e.offset, e.length) for e in message.entities]
    assert kinds == [("bold", 0, 2), ("text_link", 10, 2), ("spoiler", 13, 1), ("pre", 15, 5)]
    assert message.entities[1].url == "https://example.org/x"
    assert message.entities[3].language == "python"
    assert markdown.text == "完成 60.5%"


async def test_text_length_and_emptiness_limits(api: BotApiStandin) -> None:
    group = api.make_group("质量强区工作群")
    async with plain_bot(api) as bot:
        await bot.send_message(group.id, "字" * 4096)
        with pytest.raises(BadRequest, match="Message is too long"):
            await bot.send_message(group.id, "字" * 4097)
        with pytest.raises(BadRequest, match="Message is too long"):
            await bot.send_message(group.id, "<b>" + "字" * 4097 + "</b>", parse_mode="HTML")
        with pytest.raises(BadRequest, match="Message text is empty"):
            await bot.send_message(group.id, "  \n ")
        with pytest.raises(BadRequest, match="Message text is empty"):
            await bot.send_message(group.id, "<b></b>", parse_mode="HTML")
        with pytest.raises(BadRequest, match="Message caption is too long"):
            await bot.send_document(group.id, b"x", filename="a.txt", caption="字" * 1025)


async def test_inline_keyboard_limits_and_edit_rules(api: BotApiStandin) -> None:
    group = api.make_group("质量强区工作群")
    async with plain_bot(api) as bot:
        with pytest.raises(BadRequest, match="Button_data_invalid"):
            await bot.send_message(group.id, "x", reply_markup=keyboard("数" * 22))  # 66 bytes
        message = await bot.send_message(group.id, "x", reply_markup=keyboard("a" * 64))
        with pytest.raises(BadRequest, match="Message is not modified"):
            await message.edit_text("x", reply_markup=keyboard("a" * 64))
        edited = await message.edit_reply_markup(reply_markup=keyboard("b"))
        assert isinstance(edited, Message) and edited.reply_markup == keyboard("b")
        assert await message.delete() is True
        with pytest.raises(BadRequest, match="Message to edit not found"):
            await message.edit_text("y")
        with pytest.raises(BadRequest, match="Message to delete not found"):
            await message.delete()
    assert api.sent_messages(group) == []
    assert len(api.sent_messages(group, include_deleted=True)) == 1


async def test_unknown_method_and_bad_token(api: BotApiStandin) -> None:
    async with plain_bot(api) as bot:
        with pytest.raises(EndPointNotFound):
            await asyncio.wait_for(bot.do_api_request("sendTelepathy"), timeout=2)
    with pytest.raises(InvalidToken):
        async with plain_bot(api, token="123456:WRONG"):
            pass
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{api.base_url}{api.token}/sendTelepathy") as response:
            assert response.status == 404
            assert await response.json() == {
                "ok": False,
                "error_code": 404,
                "description": "Not Found",
            }
        async with http.get(f"{api.base_url}123456:WRONG/getMe") as response:
            assert response.status == 401
            assert (await response.json())["description"] == "Unauthorized"


async def test_json_bodies_and_query_strings_are_accepted(api: BotApiStandin) -> None:
    group = api.make_group("质量强区工作群")
    async with aiohttp.ClientSession() as http:
        body = {"chat_id": group.id, "text": "json", "reply_markup": {"inline_keyboard": []}}
        async with http.post(f"{api.base_url}{api.token}/sendMessage", json=body) as response:
            assert (await response.json())["result"]["text"] == "json"
        url = f"{api.base_url}{api.token}/sendMessage?chat_id={group.id}&text=query"
        async with http.get(url) as response:
            assert (await response.json())["result"]["text"] == "query"


async def test_bot_may_not_start_private_conversations(api: BotApiStandin) -> None:
    shy = api.make_user("李四", started_bot=False)
    async with plain_bot(api) as bot:
        with pytest.raises(Forbidden, match="can't initiate conversation"):
            await bot.send_message(shy.id, "你好")
        await api.send_text(shy, api.private_chat(shy), "/start")
        await bot.send_message(shy.id, "你好")
        await api.block_bot(shy)
        with pytest.raises(Forbidden, match="blocked by the user"):
            await bot.send_message(shy.id, "还在吗")
        with pytest.raises(BadRequest, match="Chat not found"):
            await bot.send_message(-100999, "?")


# ----------------------------------------------------------------------------- getUpdates


async def test_get_updates_honours_offset_limit_and_timeout(api: BotApiStandin) -> None:
    alice = api.make_user("张三")
    dm = api.private_chat(alice)
    async with plain_bot(api) as bot:
        assert await bot.get_updates(timeout=0) == ()
        for text in ("一", "二", "三"):
            await api.send_text(alice, dm, text)
        first_two = await bot.get_updates(limit=2, timeout=0)
        assert [u.message.text for u in first_two if u.message] == ["一", "二"]
        unconfirmed = await bot.get_updates(timeout=0)
        assert len(unconfirmed) == 3  # nothing confirmed yet
        rest = await bot.get_updates(offset=unconfirmed[1].update_id + 1, timeout=0)
        assert [u.message.text for u in rest if u.message] == ["三"]
        assert await bot.get_updates(offset=rest[-1].update_id + 1, timeout=0) == ()

        async def later() -> None:
            await asyncio.sleep(0.2)
            await api.send_text(alice, dm, "四")

        task = asyncio.create_task(later())
        waited = await bot.get_updates(offset=rest[-1].update_id + 1, timeout=5)
        await task
        assert [u.message.text for u in waited if u.message] == ["四"]
        assert (await bot.get_webhook_info()).pending_update_count == 1


async def test_raw_edited_and_channel_updates_reach_handlers(api: BotApiStandin) -> None:
    seen: list[str] = []

    async def record(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        kind = "edited" if update.edited_message else "channel" if update.channel_post else "new"
        seen.append(f"{kind}:{message.text if message else None}")

    alice = api.make_user("张三")
    group = api.make_group("质量强区工作群")
    channel = api.make_channel("质量强区通报")
    async with running_app(api, MessageHandler(filters.ALL, record)):
        original = await api.send_text(alice, group, "初稿")
        await api.send_edited_text(original, "定稿")
        await api.send_channel_post(channel, "通报")
        api.enqueue_raw_update({"message": {**original, "text": "原始"}})
        await api.wait_idle()
    assert seen == ["new:初稿", "edited:定稿", "channel:通报", "new:原始"]


async def test_bot_added_and_removed_from_group(api: BotApiStandin) -> None:
    changes: list[tuple[str, str]] = []
    joins: list[int] = []

    async def my_member(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        change = update.my_chat_member
        assert isinstance(change, ChatMemberUpdated)
        changes.append((change.old_chat_member.status, change.new_chat_member.status))

    async def joined(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.effective_message is not None
        joins.extend(u.id for u in update.effective_message.new_chat_members)

    alice = api.make_user("张三")
    group = api.make_group("新群", bot_status="left")
    async with running_app(
        api,
        ChatMemberHandler(my_member, ChatMemberHandler.MY_CHAT_MEMBER),
        MessageHandler(filters.StatusUpdate.NEW_CHAT_MEMBERS, joined),
    ) as app:
        await api.send_text(alice, group, "/status")  # the bot is not there: unseen
        await api.add_bot_to_group(alice, group)
        await api.wait_idle()
        await api.remove_bot_from_group(alice, group)
        await api.wait_idle()
        with pytest.raises(Forbidden, match="kicked from the supergroup chat"):
            await app.bot.send_message(group.id, "还在吗")
    assert changes == [("left", "member"), ("member", "kicked")]
    assert joins == [api.bot.id]


async def test_privacy_mode_filters_group_chatter() -> None:
    async with BotApiStandin(token=TOKEN, privacy_mode=True) as api:
        alice = api.make_user("张三")
        group = api.make_group("质量强区工作群")
        async with plain_bot(api) as bot:
            prompt = await bot.send_message(group.id, "请回复")
            await api.send_text(alice, group, "闲聊")
            await api.send_text(alice, group, "/status")
            await api.send_text(alice, group, "60%", reply_to=prompt.message_id)
            await api.send_text(alice, group, f"@{api.bot.username} 在吗")
            updates = await bot.get_updates(timeout=0)
            assert not (await bot.get_me()).can_read_all_group_messages
    assert [u.message.text for u in updates if u.message] == [
        "/status",
        "60%",
        "@qcbot_test_bot 在吗",
    ]


# ----------------------------------------------------------------------------- flood control


async def test_group_limit_answers_429_with_retry_after(api: BotApiStandin) -> None:
    api.limits.enable(per_group_per_minute=5, window_scale=0.02)
    group = api.make_group("质量强区工作群")
    async with plain_bot(api) as bot:
        for n in range(5):
            await bot.send_message(group.id, f"第{n}条")
        with pytest.raises(RetryAfter) as caught:
            await bot.send_message(group.id, "超限")
    retry_after = caught.value.retry_after
    seconds = retry_after if isinstance(retry_after, int) else retry_after.total_seconds()
    assert seconds >= 1
    assert api.stats.rate_limited == 1
    [refused] = [c for c in api.calls if c.status == 429]
    assert refused.response["parameters"]["retry_after"] >= 1
    assert refused.description is not None and refused.description.startswith("Too Many Requests")
    assert len(api.sent_messages(group)) == 5


async def test_aio_rate_limiter_gets_every_message_through(api: BotApiStandin) -> None:
    api.limits.enable(per_group_per_minute=5, per_private_per_second=1, window_scale=0.01)
    group = api.make_group("质量强区工作群")
    alice = api.make_user("张三")
    bot = ExtBot(
        api.token,
        base_url=api.base_url,
        base_file_url=api.base_file_url,
        rate_limiter=AIORateLimiter(max_retries=10),
    )
    async with bot:
        sends = [bot.send_message(group.id, f"通知{n}") for n in range(12)]
        sends += [bot.send_message(alice.id, f"私信{n}") for n in range(3)]
        results = await asyncio.gather(*sends)
    assert len(results) == 15
    assert sorted(m["text"] for m in api.sent_messages(group)) == sorted(
        f"通知{n}" for n in range(12)
    )
    assert len(api.sent_messages(alice)) == 3
    assert api.stats.rate_limited >= 1  # the limiter really was pushed back and retried


# ----------------------------------------------------------------------------- faults


@pytest.mark.parametrize(
    ("kind", "private", "exception", "message"),
    [
        ("forbidden", True, Forbidden, "Forbidden: bot was blocked by the user"),
        ("forbidden", False, Forbidden, "Forbidden: bot was kicked from the supergroup chat"),
        ("chat_not_found", False, BadRequest, "Chat not found"),
        ("server_error", False, NetworkError, "Internal Server Error"),
        ("bad_gateway", False, NetworkError, "Bad Gateway"),
    ],
)
async def test_injected_errors_map_to_ptb_exceptions(
    api: BotApiStandin,
    kind: str,
    private: bool,
    exception: type[Exception],
    message: str,
) -> None:
    alice = api.make_user("张三")
    chat = api.private_chat(alice) if private else api.make_group("质量强区工作群")
    rule = api.faults.inject(method="sendMessage", chat_id=chat.id, kind=kind)  # type: ignore[arg-type]
    async with plain_bot(api) as bot:
        with pytest.raises(exception) as caught:
            await bot.send_message(chat.id, "一")
        assert type(caught.value) is exception
        assert str(caught.value) == message
        await bot.send_message(chat.id, "二")  # times=1: the next call goes through
    assert rule.fired == 1
    assert [m["text"] for m in api.sent_messages(chat)] == ["二"]
    assert api.stats.faults_fired == 1


async def test_timeout_and_slow_faults(api: BotApiStandin) -> None:
    group = api.make_group("质量强区工作群")
    async with plain_bot(api, read_timeout=0.3) as bot:
        api.faults.inject(method="sendMessage", kind="timeout")
        with pytest.raises(TimedOut):
            await bot.send_message(group.id, "丢失")
        api.faults.inject(method="sendMessage", kind="slow", delay=0.6)
        with pytest.raises(TimedOut):
            await bot.send_message(group.id, "慢但已发出")
        api.faults.inject(method="sendMessage", kind="slow", delay=0.05)
        await bot.send_message(group.id, "稍慢")
    # a timed-out request may still have been executed (later), as with Telegram
    await api.wait_until(lambda: len(api.sent_messages(group)) == 2, what="slow send")
    assert sorted(m["text"] for m in api.sent_messages(group)) == ["慢但已发出", "稍慢"]


async def test_blocked_chat_and_unfiltered_faults(api: BotApiStandin) -> None:
    group = api.make_group("质量强区工作群")
    api.faults.block_chat(group.id)
    async with plain_bot(api) as bot:
        for _ in range(2):
            with pytest.raises(Forbidden, match="kicked from the supergroup chat"):
                await bot.send_message(group.id, "x")
        api.faults.unblock_chat(group.id)
        await bot.send_message(group.id, "x")
        api.faults.inject(kind="server_error", times=2)  # any method but getUpdates
        with pytest.raises(NetworkError):
            await bot.get_chat(group.id)
        assert await bot.get_updates(timeout=0) == ()
        with pytest.raises(NetworkError):
            await bot.send_chat_action(group.id, "typing")
        await bot.send_chat_action(group.id, "typing")


# ----------------------------------------------------------------------------- other methods


async def test_chat_lookups_commands_and_settings_parse_in_ptb(api: BotApiStandin) -> None:
    boss = api.make_user("王五", "wangwu")
    alice = api.make_user("张三")
    group = api.make_group("质量强区工作群", creator=boss, admins=[alice])
    async with plain_bot(api) as bot:
        info = await bot.get_chat(group.id)
        assert (info.id, info.title, info.type) == (group.id, "质量强区工作群", "supergroup")
        member = await bot.get_chat_member(group.id, alice.id)
        assert member.status == "administrator"
        admins = await bot.get_chat_administrators(group.id)
        assert {a.user.id for a in admins} == {boss.id, alice.id}
        assert await bot.get_chat_member_count(group.id) == 3  # boss, alice, the bot
        commands = [BotCommand("status", "查看进度"), BotCommand("report", "提交报告")]
        assert await bot.set_my_commands(commands)
        assert await bot.get_my_commands() == tuple(commands)
        with pytest.raises(BadRequest, match="Bot_command_invalid"):
            await bot.set_my_commands([BotCommand("Bad-Command", "x")])
        assert await bot.delete_my_commands()
        assert await bot.get_my_commands() == ()
        assert await bot.set_my_description("质量强区助手")
        assert (await bot.get_my_description()).description == "质量强区助手"
        assert await bot.set_my_short_description("助手")
        assert await bot.set_chat_menu_button()
        assert await bot.send_chat_action(group.id, "typing")
        assert await bot.leave_chat(group.id)
        [update] = await bot.get_updates(timeout=0)
        assert update.my_chat_member is not None
        assert update.my_chat_member.new_chat_member.status == "left"
        with pytest.raises(BadRequest, match="Bad webhook"):
            await bot.set_webhook("http://insecure.example")
        assert await bot.log_out() and await bot.close()


async def test_files_over_20_megabytes_cannot_be_fetched(api: BotApiStandin) -> None:
    alice = api.make_user("张三")
    big = await api.send_document(
        alice, api.private_chat(alice), "大.zip", b"\0" * (20 * 2**20 + 1)
    )
    async with plain_bot(api) as bot:
        with pytest.raises(BadRequest, match="File is too big"):
            await bot.get_file(big["document"]["file_id"])
        with pytest.raises(BadRequest, match="Invalid file_id"):
            await bot.get_file("nope")


async def test_wait_for_bot_messages_explains_failures(api: BotApiStandin) -> None:
    async def broken(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.effective_message is not None
        await update.effective_message.reply_text("完成率 <60%", parse_mode="HTML")

    alice = api.make_user("张三")
    async with running_app(api, CommandHandler("status", broken)):
        await api.send_text(alice, api.private_chat(alice), "/status")
        with pytest.raises(AssertionError, match="can't parse entities") as caught:
            await api.wait_for_bot_messages(alice, timeout=1.0)
    assert "got 0" in str(caught.value)


# ----------------------------------------------------------------------------- formatting units


@pytest.mark.parametrize(
    ("markup", "error"),
    [
        ("🏟 🏟&lt;<abacaba", "Unclosed start tag at byte offset 13"),
        ("🏟 🏟&lt;<abac aba>", 'Unsupported start tag "abac" at byte offset 13'),
        ("🏟 🏟&lt;<i   =aba>", 'Empty attribute name in the tag "i" at byte offset 13'),
        ("🏟 🏟&lt;</", "Unexpected end tag at byte offset 13"),
        ("🏟 🏟&lt;<i>a</i   ", "Unclosed end tag at byte offset 17"),
        ("&#57311;", "Text contains invalid Unicode characters"),
    ],
)
def test_html_errors_match_telegram(markup: str, error: str) -> None:
    with pytest.raises(EntityParseError) as caught:
        parse_html(markup)
    assert str(caught.value).startswith(error)


@pytest.mark.parametrize(
    ("markup", "error"),
    [
        ("🏟 🏟_abacaba", "Can't find end of Italic entity at byte offset 9"),
        ("🏟 🏟```a ", "Can't find end of PreCode entity at byte offset 9"),
        ("[telegram\\.org](asd\\)", "Can't find end of a URL at byte offset 16"),
        ("a-b", "Character '-' is reserved and must be escaped with the preceding '\\'"),
    ],
)
def test_markdown_v2_errors_match_telegram(markup: str, error: str) -> None:
    with pytest.raises(EntityParseError, match="^" + re.escape(error) + "$"):
        parse_markdown_v2(markup)


def test_entities_use_utf16_offsets_and_text_is_trimmed() -> None:
    formatted = format_text("  🏟<b>粗</b> /status@qcbot_bot #进度 \n", "HTML")
    assert formatted.text == "🏟粗 /status@qcbot_bot #进度"
    assert [(e["type"], e["offset"], e["length"]) for e in formatted.entities] == [
        ("bold", 2, 1),
        ("bot_command", 4, 17),
        ("hashtag", 22, 3),
    ]
    assert format_text("A & B <i>x</i>", "HTML").text == "A & B x"


# ----------------------------------------------------------------------------- standalone runner


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_standalone_runner_serves_until_interrupted() -> None:
    port = _free_port()
    process = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "standin", "--port", str(port), "--token", TOKEN),
        cwd=REPO,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        banner = (await asyncio.wait_for(process.stdout.readline(), 10)).decode()
        assert f"http://127.0.0.1:{port}/bot" in banner
        bot = Bot(TOKEN, base_url=f"http://127.0.0.1:{port}/bot")
        async with bot:
            message = await bot.send_message(-1001234567890, "基准")  # auto-created chat
        assert message.chat.type == "supergroup"
        async with aiohttp.ClientSession() as http:
            async with http.post(f"http://127.0.0.1:{port}/bot{TOKEN}/getMe") as response:
                assert json.loads(await response.text())["result"]["is_bot"] is True
    finally:
        process.send_signal(signal.SIGINT)
        code = await asyncio.wait_for(process.wait(), 10)
    assert code == 0
