"""The Bot API methods the stand-in serves, with Telegram's validation and errors."""

from __future__ import annotations

import copy
import json
import re
import struct
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from .errors import ApiError, bad_request, forbidden, too_many_requests
from .faults import Faults, forbidden_for
from .formatting import EntityParseError, FormattedText, format_text
from .limits import RateLimits
from .params import Params, UploadedFile
from .updates import PollConflict, UpdateQueue
from .world import (
    ACTIVE_STATUSES,
    ADMIN_STATUSES,
    SimChat,
    StoredFile,
    World,
    full_chat_info,
    member_object,
)

__all__ = ["BotApi", "Handler", "api_method", "document_object", "image_size", "photo_size"]

JsonDict = dict[str, Any]
Handler = Callable[[Params], Awaitable[Any]]
_F = TypeVar("_F", bound=Callable[..., Awaitable[Any]])

MAX_TEXT_LENGTH = 4096
MAX_CAPTION_LENGTH = 1024
MAX_CALLBACK_DATA_BYTES = 64
MAX_DOWNLOAD_BYTES = 20 * 1024 * 1024
MAX_UPLOAD_BYTES = 50 * 1024 * 1024

_NOT_MODIFIED = (
    "message is not modified: specified new message content and reply markup are exactly "
    "the same as a current content and reply markup of the message"
)
_CHAT_ACTIONS = frozenset(
    {
        "typing", "upload_photo", "record_video", "upload_video", "record_voice",
        "upload_voice", "upload_document", "choose_sticker", "find_location",
        "record_video_note", "upload_video_note",
    }
)  # fmt: skip
_BUTTON_ACTIONS = (
    "url", "callback_data", "web_app", "login_url", "switch_inline_query",
    "switch_inline_query_current_chat", "switch_inline_query_chosen_chat", "copy_text",
    "callback_game", "pay",
)  # fmt: skip
_COMMAND_RE = re.compile(r"^[a-z0-9_]{1,32}$")

_REGISTRY: dict[str, str] = {}


def api_method(name: str) -> Callable[[_F], _F]:
    """Register a handler under its Bot API method name (matched case-insensitively)."""

    def register(func: _F) -> _F:
        _REGISTRY[name.lower()] = func.__name__
        return func

    return register


def image_size(data: bytes) -> tuple[int, int] | None:
    """Width and height of a PNG, JPEG, GIF, BMP or WebP image; None if not an image."""
    if data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) >= 24:
        width, height = struct.unpack(">II", data[16:24])
        return width, height
    if data[:4] in (b"GIF8",) and len(data) >= 10:
        width, height = struct.unpack("<HH", data[6:10])
        return width, height
    if data.startswith(b"BM") and len(data) >= 26:
        width, height = struct.unpack("<ii", data[18:26])
        return width, abs(height)
    if data.startswith(b"RIFF") and data[8:12] == b"WEBP":
        return 512, 512
    if data.startswith(b"\xff\xd8"):
        return _jpeg_size(data)
    return None


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    i = 2
    while i + 9 < len(data):
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        (segment_length,) = struct.unpack(">H", data[i + 2 : i + 4])
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            height, width = struct.unpack(">HH", data[i + 5 : i + 9])
            return width, height
        i += 2 + segment_length
    return None


def validate_reply_markup(markup: Any) -> JsonDict | None:
    """Check a ``reply_markup`` like Telegram; returns the inline keyboard to store, if any."""
    if markup is None:
        return None
    if not isinstance(markup, dict):
        raise bad_request("can't parse reply keyboard markup JSON object")
    if "inline_keyboard" not in markup:
        if not any(k in markup for k in ("keyboard", "remove_keyboard", "force_reply")):
            raise bad_request("can't parse reply keyboard markup JSON object")
        return None
    rows = markup["inline_keyboard"]
    if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
        raise bad_request(
            "can't parse inline keyboard button: InlineKeyboardButton must be an Object"
        )
    for row in rows:
        for button in row:
            _validate_button(button)
    if not any(rows):
        return None
    return {"inline_keyboard": copy.deepcopy(rows)}


def _validate_button(button: Any) -> None:
    if not isinstance(button, dict) or not isinstance(button.get("text"), str):
        raise bad_request("can't parse inline keyboard button: Text must be a String")
    actions = [k for k in _BUTTON_ACTIONS if k in button]
    if not actions:
        raise bad_request("text buttons are unallowed in the inline keyboard")
    if "callback_data" in button:
        data = button["callback_data"]
        size = len(data.encode("utf-8")) if isinstance(data, str) else 0
        if not 1 <= size <= MAX_CALLBACK_DATA_BYTES:
            raise bad_request("BUTTON_DATA_INVALID")
    if "url" in button and not _valid_button_url(button["url"]):
        raise bad_request("BUTTON_URL_INVALID")


def _valid_button_url(url: Any) -> bool:
    if not isinstance(url, str):
        return False
    return re.match(r"^(https?|tg)://\S+$", url.strip(), re.IGNORECASE) is not None


class BotApi:
    """Bot API method handlers working on a :class:`World`."""

    def __init__(
        self,
        world: World,
        updates: UpdateQueue,
        limits: RateLimits,
        faults: Faults,
        *,
        privacy_mode: bool = False,
    ) -> None:
        self.privacy_mode = privacy_mode
        self.world = world
        self.updates = updates
        self.limits = limits
        self.faults = faults
        self.webhook: JsonDict | None = None
        self.commands: dict[str, list[JsonDict]] = {}
        self.settings: dict[str, Any] = {}

    def lookup(self, method: str) -> Handler | None:
        """The handler of a method name, or None for unknown methods."""
        attribute = _REGISTRY.get(method.lower())
        return getattr(self, attribute) if attribute else None

    # ================================================================= helpers

    def _resolve_user(self, user_id: int) -> JsonDict | None:
        user = self.world.users.get(user_id)
        return user.to_api() if user else None

    def _format(self, text: str, params: Params, mode_key: str, entities_key: str) -> FormattedText:
        try:
            return format_text(
                text, params.text(mode_key), params.obj(entities_key), self._resolve_user
            )
        except EntityParseError as exc:
            raise bad_request(f"can't parse entities: {exc}") from None
        except ValueError:
            raise bad_request("unsupported parse_mode") from None

    def _message_text(self, params: Params) -> FormattedText:
        text = params.text("text")
        if not text:
            raise bad_request("message text is empty")
        formatted = self._format(text, params, "parse_mode", "entities")
        if not formatted.text:
            raise bad_request("message text is empty")
        if len(formatted.text) > MAX_TEXT_LENGTH:
            raise bad_request("message is too long")
        return formatted

    def _caption(self, params: Params) -> JsonDict:
        caption = params.text("caption")
        if not caption:
            return {}
        formatted = self._format(caption, params, "parse_mode", "caption_entities")
        if len(formatted.text) > MAX_CAPTION_LENGTH:
            raise bad_request("message caption is too long")
        content: JsonDict = {}
        if formatted.text:
            content["caption"] = formatted.text
        if formatted.entities:
            content["caption_entities"] = formatted.entities
        return content

    def _writable_chat(self, params: Params) -> SimChat:
        """The target chat, checked for the bot's right to write there."""
        chat = self.world.resolve_chat(params.chat_id())
        self._check_can_write(chat)
        return chat

    def _check_can_write(self, chat: SimChat) -> None:
        if self.faults.is_blocked(chat.id):
            raise forbidden_for(chat.type)
        if chat.type == "private":
            self._check_private(chat)
            return
        status = self.world.bot_status(chat.id)
        if status == "kicked":
            raise forbidden_for(chat.type)
        if status not in ACTIVE_STATUSES:
            raise forbidden(f"bot is not a member of the {chat.type} chat")
        if chat.type == "channel" and status not in ADMIN_STATUSES:
            raise bad_request("need administrator rights in the channel chat")

    def _check_private(self, chat: SimChat) -> None:
        user = self.world.users.get(chat.id)
        if user is not None and user.is_bot:
            raise forbidden("bot can't send messages to bots")
        if chat.id in self.world.blocked_by:
            raise forbidden("bot was blocked by the user")
        if chat.id not in self.world.started:
            raise forbidden("bot can't initiate conversation with a user")

    def _flood_check(self, chat: SimChat) -> None:
        kind = "private" if chat.type == "private" else "group"
        retry_after = self.limits.acquire(chat.id, kind)
        if retry_after is not None:
            raise too_many_requests(retry_after)

    def _reply_target(self, chat: SimChat, params: Params) -> JsonDict | None:
        reply = params.obj("reply_parameters")
        if not isinstance(reply, dict):
            if not params.has("reply_to_message_id"):
                return None
            reply = {
                "message_id": params.integer("reply_to_message_id"),
                "allow_sending_without_reply": params.flag("allow_sending_without_reply"),
            }
        target_chat = chat
        if reply.get("chat_id") is not None:
            target_chat = self.world.resolve_chat(reply["chat_id"])
        message_id = reply.get("message_id")
        target = None
        if isinstance(message_id, int) or (isinstance(message_id, str) and message_id.isdigit()):
            target = self.world.message(target_chat.id, int(message_id))
        if target is None:
            if reply.get("allow_sending_without_reply"):
                return None
            raise bad_request("message to be replied not found")
        return target

    def _send(self, chat: SimChat, params: Params, content: JsonDict) -> JsonDict:
        """Common tail of the send* methods: markup, reply, flood control, storing."""
        markup = params.obj("reply_markup")
        inline = validate_reply_markup(markup)
        reply_to = self._reply_target(chat, params)
        self._flood_check(chat)
        if inline is not None:
            content["reply_markup"] = inline
        if isinstance(markup, dict) and ("keyboard" in markup or "remove_keyboard" in markup):
            self.world.reply_keyboards[chat.id] = copy.deepcopy(markup)
        if params.flag("protect_content"):
            content["has_protected_content"] = True
        sender = None if chat.type == "channel" else self.world.bot
        return self.world.new_message(chat, sender, content, reply_to, by_bot=True)

    def _upload(self, params: Params, name: str, folder: str) -> StoredFile:
        """The file of an upload parameter: new bytes, or a known file_id."""
        value = params.input_file(name)
        if value is None:
            raise bad_request(f"there is no {name} in the request")
        if isinstance(value, str):
            known = self.world.files.get(value)
            if known is None:
                raise bad_request("wrong file identifier/HTTP URL specified")
            return known
        return self._store_upload(value, folder)

    def _store_upload(self, upload: UploadedFile, folder: str) -> StoredFile:
        if not upload.data:
            raise bad_request("file must be non-empty")
        if len(upload.data) > MAX_UPLOAD_BYTES:
            raise ApiError(413, "Request Entity Too Large")
        return self.world.store_file(upload.data, folder, upload.filename, upload.content_type)

    def _own_message(self, params: Params, action: str) -> tuple[SimChat, JsonDict]:
        if params.has("inline_message_id"):
            raise bad_request("MESSAGE_ID_INVALID")
        chat = self._writable_chat(params)
        message = self.world.message(chat.id, params.required_int("message_id"))
        if message is None:
            raise bad_request(f"message to {action} not found")
        if not self.world.is_by_bot(message):
            raise bad_request(f"message can't be {action}ed")
        return chat, message

    def _apply_edit(self, message: JsonDict, changes: JsonDict) -> JsonDict:
        """Replace fields (None removes one); answer "not modified" if nothing changes."""
        if all(message.get(key) == value for key, value in changes.items()):
            raise bad_request(_NOT_MODIFIED)
        for key, value in changes.items():
            if value is None:
                message.pop(key, None)
            else:
                message[key] = value
        message["edit_date"] = int(self.world.clock())
        return message

    def _my_chat_member_update(self, chat: SimChat, old: str, new: str) -> None:
        bot = self.world.bot
        self.updates.put(
            {
                "my_chat_member": {
                    "chat": chat.to_api(),
                    "from": bot.to_api(),
                    "date": int(self.world.clock()),
                    "old_chat_member": member_object(bot, old),  # type: ignore[arg-type]
                    "new_chat_member": member_object(bot, new),  # type: ignore[arg-type]
                }
            }
        )

    # ================================================================= bot identity & setup

    @api_method("getMe")
    async def get_me(self, params: Params) -> JsonDict:
        """The bot's own ``User``, with the getMe-only capability flags."""
        return {
            **self.world.bot.to_api(),
            "can_join_groups": True,
            "can_read_all_group_messages": not self.privacy_mode,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    @api_method("logOut")
    async def log_out(self, params: Params) -> bool:
        """Accepted and ignored."""
        return True

    @api_method("close")
    async def close(self, params: Params) -> bool:
        """Accepted and ignored."""
        return True

    @api_method("setWebhook")
    async def set_webhook(self, params: Params) -> bool:
        """Record the webhook; the server then POSTs each update to it (getUpdates answers 409).

        Like Telegram, only an HTTPS URL is accepted, except an http:// URL on the loopback
        address (the stand-in's own tests, which have no TLS)."""
        url = params.text("url") or ""
        if not url:
            self.webhook = None
            return True
        lowered = url.lower()
        loopback = lowered.startswith(("http://127.0.0.1:", "http://localhost:", "http://[::1]:"))
        if not (lowered.startswith("https://") or loopback):
            raise bad_request("bad webhook: An HTTPS URL must be provided for webhook")
        if params.flag("drop_pending_updates"):
            self.updates.drop_pending()
        self.webhook = {
            "url": url,
            "max_connections": params.integer("max_connections", 40),
            "allowed_updates": params.obj("allowed_updates"),
            "secret_token": params.text("secret_token"),
        }
        return True

    @api_method("deleteWebhook")
    async def delete_webhook(self, params: Params) -> bool:
        """Remove the webhook; optionally drop pending updates."""
        self.webhook = None
        if params.flag("drop_pending_updates"):
            self.updates.drop_pending()
        return True

    @api_method("getWebhookInfo")
    async def get_webhook_info(self, params: Params) -> JsonDict:
        """Webhook state and the number of pending updates."""
        info: JsonDict = {
            "url": "",
            "has_custom_certificate": False,
            "pending_update_count": self.updates.pending,
        }
        if self.webhook:
            info["url"] = self.webhook["url"]
            info["max_connections"] = self.webhook["max_connections"]
            if self.webhook["allowed_updates"]:
                info["allowed_updates"] = self.webhook["allowed_updates"]
        return info

    @api_method("getUpdates")
    async def get_updates(self, params: Params) -> list[JsonDict]:
        """Long polling: see :class:`~standin.updates.UpdateQueue`."""
        if self.webhook:
            raise ApiError(
                409,
                "Conflict: can't use getUpdates method while webhook is active; "
                "use deleteWebhook to delete the webhook first",
            )
        allowed = params.obj("allowed_updates")
        try:
            return await self.updates.get(
                offset=params.integer("offset"),
                limit=params.integer("limit", 100) or 100,
                wait=float(params.integer("timeout", 0) or 0),
                allowed_updates=allowed if isinstance(allowed, list) else None,
            )
        except PollConflict:
            raise ApiError(
                409,
                "Conflict: terminated by other getUpdates request; make sure that only one "
                "bot instance is running",
            ) from None

    @staticmethod
    def _commands_key(params: Params) -> str:
        scope = params.obj("scope") or {"type": "default"}
        return json.dumps([scope, params.text("language_code") or ""], sort_keys=True)

    @api_method("setMyCommands")
    async def set_my_commands(self, params: Params) -> bool:
        """Validate and store the command list for a scope and language."""
        commands = params.obj("commands")
        if not isinstance(commands, list) or len(commands) > 100:
            raise bad_request("can't parse commands JSON object")
        for command in commands:
            name = command.get("command", "") if isinstance(command, dict) else ""
            if not _COMMAND_RE.match(str(name).lstrip("/")):
                raise bad_request("BOT_COMMAND_INVALID")
            if not 1 <= len(str(command.get("description", ""))) <= 256:
                raise bad_request("BOT_COMMAND_DESCRIPTION_INVALID")
        self.commands[self._commands_key(params)] = [
            {"command": str(c["command"]).lstrip("/"), "description": c["description"]}
            for c in commands
        ]
        return True

    @api_method("getMyCommands")
    async def get_my_commands(self, params: Params) -> list[JsonDict]:
        """The stored command list for a scope and language."""
        return self.commands.get(self._commands_key(params), [])

    @api_method("deleteMyCommands")
    async def delete_my_commands(self, params: Params) -> bool:
        """Forget the command list of a scope and language."""
        self.commands.pop(self._commands_key(params), None)
        return True

    @api_method("setChatMenuButton")
    async def set_chat_menu_button(self, params: Params) -> bool:
        """Store the menu button (per chat or default)."""
        key = f"menu_button:{params.get('chat_id', '')}"
        self.settings[key] = params.obj("menu_button") or {"type": "default"}
        return True

    @api_method("getChatMenuButton")
    async def get_chat_menu_button(self, params: Params) -> JsonDict:
        """The stored menu button."""
        key = f"menu_button:{params.get('chat_id', '')}"
        return self.settings.get(key) or self.settings.get("menu_button:") or {"type": "default"}

    async def _set_text_setting(self, params: Params, name: str, limit: int) -> bool:
        value = params.text(name) or ""
        if len(value) > limit:
            raise bad_request(f"{name} is too long")
        self.settings[f"{name}:{params.text('language_code') or ''}"] = value
        return True

    def _get_text_setting(self, params: Params, name: str) -> JsonDict:
        language = params.text("language_code") or ""
        value = self.settings.get(f"{name}:{language}") or self.settings.get(f"{name}:", "")
        if name == "name" and not value:
            value = self.world.bot.first_name
        return {name: value}

    @api_method("setMyDescription")
    async def set_my_description(self, params: Params) -> bool:
        """Store the bot description."""
        return await self._set_text_setting(params, "description", 512)

    @api_method("getMyDescription")
    async def get_my_description(self, params: Params) -> JsonDict:
        """The stored bot description."""
        return self._get_text_setting(params, "description")

    @api_method("setMyShortDescription")
    async def set_my_short_description(self, params: Params) -> bool:
        """Store the short description."""
        return await self._set_text_setting(params, "short_description", 120)

    @api_method("getMyShortDescription")
    async def get_my_short_description(self, params: Params) -> JsonDict:
        """The stored short description."""
        return self._get_text_setting(params, "short_description")

    @api_method("setMyName")
    async def set_my_name(self, params: Params) -> bool:
        """Store the bot name."""
        return await self._set_text_setting(params, "name", 64)

    @api_method("getMyName")
    async def get_my_name(self, params: Params) -> JsonDict:
        """The stored bot name."""
        return self._get_text_setting(params, "name")

    # ================================================================= messages

    @api_method("sendMessage")
    async def send_message(self, params: Params) -> JsonDict:
        """Send a text message."""
        chat = self._writable_chat(params)
        formatted = self._message_text(params)
        content: JsonDict = {"text": formatted.text}
        if formatted.entities:
            content["entities"] = formatted.entities
        return self._send(chat, params, content)

    @api_method("sendPhoto")
    async def send_photo(self, params: Params) -> JsonDict:
        """Send a photo (upload or file_id); non-images answer IMAGE_PROCESS_FAILED."""
        chat = self._writable_chat(params)
        stored = self._upload(params, "photo", "photos")
        size = image_size(stored.data)
        if size is None or 0 in size:
            raise bad_request("IMAGE_PROCESS_FAILED")
        content: JsonDict = {"photo": [photo_size(stored, size)], **self._caption(params)}
        return self._send(chat, params, content)

    @api_method("sendDocument")
    async def send_document(self, params: Params) -> JsonDict:
        """Send a document (upload or file_id)."""
        chat = self._writable_chat(params)
        stored = self._upload(params, "document", "documents")
        content: JsonDict = {"document": document_object(stored), **self._caption(params)}
        return self._send(chat, params, content)

    @api_method("editMessageText")
    async def edit_message_text(self, params: Params) -> JsonDict:
        """Edit the text of a bot message; omitting reply_markup removes its keyboard."""
        chat, message = self._own_message(params, "edit")
        if "text" not in message:
            raise bad_request("there is no text in the message to edit")
        formatted = self._message_text(params)
        changes = {
            "text": formatted.text,
            "entities": formatted.entities or None,
            "reply_markup": validate_reply_markup(params.obj("reply_markup")),
        }
        self._flood_check(chat)
        return self._apply_edit(message, changes)

    @api_method("editMessageCaption")
    async def edit_message_caption(self, params: Params) -> JsonDict:
        """Edit the caption of a bot message."""
        chat, message = self._own_message(params, "edit")
        if "text" in message:
            raise bad_request("there is no caption in the message to edit")
        caption = self._caption(params)
        changes = {
            "caption": caption.get("caption"),
            "caption_entities": caption.get("caption_entities"),
            "reply_markup": validate_reply_markup(params.obj("reply_markup")),
        }
        self._flood_check(chat)
        return self._apply_edit(message, changes)

    @api_method("editMessageReplyMarkup")
    async def edit_message_reply_markup(self, params: Params) -> JsonDict:
        """Replace (or, when omitted, remove) the inline keyboard of a bot message."""
        chat, message = self._own_message(params, "edit")
        markup = validate_reply_markup(params.obj("reply_markup"))
        self._flood_check(chat)
        return self._apply_edit(message, {"reply_markup": markup})

    @api_method("deleteMessage")
    async def delete_message(self, params: Params) -> bool:
        """Delete a message the bot may delete."""
        chat = self.world.resolve_chat(params.chat_id())
        self._delete(chat, params.required_int("message_id"))
        return True

    @api_method("deleteMessages")
    async def delete_messages(self, params: Params) -> bool:
        """Delete several messages; missing ones are skipped (as Telegram does)."""
        chat = self.world.resolve_chat(params.chat_id())
        ids = params.obj("message_ids")
        if not isinstance(ids, list) or not 1 <= len(ids) <= 100:
            raise bad_request("message identifiers are not specified")
        for message_id in ids:
            if self.world.message(chat.id, int(message_id)) is not None:
                self._delete(chat, int(message_id))
        return True

    def _delete(self, chat: SimChat, message_id: int) -> None:
        message = self.world.message(chat.id, message_id)
        if message is None:
            raise bad_request("message to delete not found")
        may_delete = (
            chat.type == "private"
            or self.world.is_by_bot(message)
            or self.world.bot_status(chat.id) in ADMIN_STATUSES
        )
        if not may_delete:
            raise bad_request("message can't be deleted")
        self.world.delete_message(chat.id, message_id)

    @api_method("answerCallbackQuery")
    async def answer_callback_query(self, params: Params) -> bool:
        """Answer a callback query once; unknown or repeated ids answer 400."""
        query_id = params.text("callback_query_id") or ""
        if query_id not in self.world.open_callbacks:
            raise bad_request(
                "query is too old and response timeout expired or query ID is invalid"
            )
        text = params.text("text")
        if text is not None and len(text) > 200:
            raise bad_request("MESSAGE_TOO_LONG")
        del self.world.open_callbacks[query_id]
        self.world.callback_answers[query_id] = {
            "text": text,
            "show_alert": params.flag("show_alert"),
            "url": params.text("url"),
            "cache_time": params.integer("cache_time", 0),
        }
        return True

    @api_method("sendChatAction")
    async def send_chat_action(self, params: Params) -> bool:
        """Validate the action; nothing is shown to anyone."""
        self._writable_chat(params)
        if params.text("action") not in _CHAT_ACTIONS:
            raise bad_request("wrong parameter action in request")
        return True

    @api_method("pinChatMessage")
    async def pin_chat_message(self, params: Params) -> bool:
        """Pin a message (recorded in the chat settings)."""
        chat = self._writable_chat(params)
        message_id = params.required_int("message_id")
        if self.world.message(chat.id, message_id) is None:
            raise bad_request("message to pin not found")
        self.settings[f"pinned:{chat.id}"] = message_id
        return True

    @api_method("unpinChatMessage")
    async def unpin_chat_message(self, params: Params) -> bool:
        """Unpin the pinned message."""
        chat = self._writable_chat(params)
        self.settings.pop(f"pinned:{chat.id}", None)
        return True

    @api_method("unpinAllChatMessages")
    async def unpin_all_chat_messages(self, params: Params) -> bool:
        """Unpin everything."""
        return await self.unpin_chat_message(params)

    # ================================================================= files

    @api_method("getFile")
    async def get_file(self, params: Params) -> JsonDict:
        """A ``File`` with a download path; bots may not fetch files over 20 MB."""
        stored = self.world.files.get(params.text("file_id") or "")
        if stored is None:
            raise bad_request("invalid file_id")
        if stored.size > MAX_DOWNLOAD_BYTES:
            raise bad_request("file is too big")
        return {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_size": stored.size,
            "file_path": stored.file_path,
        }

    # ================================================================= chats

    @api_method("getChat")
    async def get_chat(self, params: Params) -> JsonDict:
        """The ``ChatFullInfo`` of a known chat."""
        return full_chat_info(self.world.resolve_chat(params.chat_id()))

    @api_method("getChatMember")
    async def get_chat_member(self, params: Params) -> JsonDict:
        """The ``ChatMember`` of a user (status ``left`` for non-members)."""
        chat = self.world.resolve_chat(params.chat_id())
        user = self.world.users.get(params.required_int("user_id"))
        if user is None:
            raise bad_request("user not found")
        return self.world.chat_member(chat.id, user)

    @api_method("getChatAdministrators")
    async def get_chat_administrators(self, params: Params) -> list[JsonDict]:
        """Creator and administrators of a group or channel."""
        chat = self.world.resolve_chat(params.chat_id())
        if chat.type == "private":
            raise bad_request("there are no administrators in the private chat")
        members = self.world.members.get(chat.id, {})
        return [
            member_object(self.world.users[user_id], status)
            for user_id, status in members.items()
            if status in ADMIN_STATUSES and user_id in self.world.users
        ]

    @api_method("getChatMemberCount")
    async def get_chat_member_count(self, params: Params) -> int:
        """Number of current members."""
        chat = self.world.resolve_chat(params.chat_id())
        if chat.type == "private":
            return 2
        members = self.world.members.get(chat.id, {})
        return sum(1 for status in members.values() if status in ACTIVE_STATUSES)

    @api_method("leaveChat")
    async def leave_chat(self, params: Params) -> bool:
        """Leave a group or channel (emits the bot's ``my_chat_member`` update)."""
        chat = self.world.resolve_chat(params.chat_id())
        if chat.type == "private":
            raise bad_request("chat member status can't be changed in private chats")
        old = self.world.bot_status(chat.id)
        if old not in ACTIVE_STATUSES:
            raise forbidden(f"bot is not a member of the {chat.type} chat")
        self.world.set_status(chat.id, self.world.bot.id, "left")
        self._my_chat_member_update(chat, old, "left")
        return True


def photo_size(stored: StoredFile, size: tuple[int, int]) -> JsonDict:
    """A ``PhotoSize`` for stored image bytes."""
    width, height = size
    return {
        "file_id": stored.file_id,
        "file_unique_id": stored.file_unique_id,
        "file_size": stored.size,
        "width": width,
        "height": height,
    }


def document_object(stored: StoredFile) -> JsonDict:
    """A ``Document`` for stored bytes."""
    document: JsonDict = {
        "file_id": stored.file_id,
        "file_unique_id": stored.file_unique_id,
        "file_size": stored.size,
    }
    if stored.file_name:
        document["file_name"] = stored.file_name
    if stored.mime_type:
        document["mime_type"] = stored.mime_type
    return document
