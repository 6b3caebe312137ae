"""The simulated Telegram world: users, chats, memberships, messages and files."""

from __future__ import annotations

import copy
import hashlib
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from .errors import bad_request

__all__ = [
    "ChatType",
    "MemberStatus",
    "SimChat",
    "SimUser",
    "StoredFile",
    "World",
]

JsonDict = dict[str, Any]
ChatType = Literal["private", "group", "supergroup", "channel"]
MemberStatus = Literal["creator", "administrator", "member", "restricted", "left", "kicked"]

ACTIVE_STATUSES: frozenset[str] = frozenset({"creator", "administrator", "member", "restricted"})
ADMIN_STATUSES: frozenset[str] = frozenset({"creator", "administrator"})

_ADMIN_RIGHTS: JsonDict = {
    "can_be_edited": False,
    "is_anonymous": False,
    "can_manage_chat": True,
    "can_delete_messages": True,
    "can_manage_video_chats": True,
    "can_restrict_members": True,
    "can_promote_members": False,
    "can_change_info": True,
    "can_invite_users": True,
    "can_post_stories": True,
    "can_edit_stories": True,
    "can_delete_stories": True,
    "can_pin_messages": True,
    "can_post_messages": True,
    "can_edit_messages": True,
}
_RESTRICTED_RIGHTS: JsonDict = {
    "is_member": True,
    "can_change_info": False,
    "can_invite_users": False,
    "can_pin_messages": False,
    "can_send_messages": False,
    "can_send_polls": False,
    "can_send_other_messages": False,
    "can_add_web_page_previews": False,
    "can_manage_topics": False,
    "until_date": 0,
    "can_send_audios": False,
    "can_send_documents": False,
    "can_send_photos": False,
    "can_send_videos": False,
    "can_send_video_notes": False,
    "can_send_voice_notes": False,
    "can_edit_tag": False,
}
_NO_GIFTS: JsonDict = {
    "unlimited_gifts": False,
    "limited_gifts": False,
    "unique_gifts": False,
    "premium_subscription": False,
    "gifts_from_channels": False,
}


@dataclass(frozen=True)
class SimUser:
    """A simulated Telegram account (a person, or the bot itself)."""

    id: int
    first_name: str
    username: str | None = None
    last_name: str | None = None
    language_code: str | None = None
    is_bot: bool = False

    @property
    def full_name(self) -> str:
        """First and last name, as Telegram clients show them."""
        return f"{self.first_name} {self.last_name}" if self.last_name else self.first_name

    def to_api(self) -> JsonDict:
        """The Bot API ``User`` object."""
        data: JsonDict = {"id": self.id, "is_bot": self.is_bot, "first_name": self.first_name}
        for key in ("last_name", "username", "language_code"):
            value = getattr(self, key)
            if value is not None:
                data[key] = value
        return data


@dataclass(frozen=True)
class SimChat:
    """A simulated chat: a private chat with a user, a group, a supergroup or a channel."""

    id: int
    type: ChatType
    title: str | None = None
    username: str | None = None
    first_name: str | None = None
    last_name: str | None = None

    @property
    def is_group(self) -> bool:
        """Groups and supergroups (not channels)."""
        return self.type in ("group", "supergroup")

    def to_api(self) -> JsonDict:
        """The Bot API ``Chat`` object."""
        data: JsonDict = {"id": self.id, "type": self.type}
        for key in ("title", "username", "first_name", "last_name"):
            value = getattr(self, key)
            if value is not None:
                data[key] = value
        return data


@dataclass(frozen=True)
class StoredFile:
    """A file known to the server (uploaded by the bot or sent by a simulated user)."""

    file_id: str
    file_unique_id: str
    file_path: str
    data: bytes
    file_name: str | None = None
    mime_type: str | None = None

    @property
    def size(self) -> int:
        """Size in bytes."""
        return len(self.data)


class World:
    """State shared by the Bot API handlers and the simulation helpers."""

    def __init__(self, bot: SimUser, clock: Callable[[], float] = time.time) -> None:
        self.bot = bot
        self.clock = clock
        self.users: dict[int, SimUser] = {bot.id: bot}
        self.chats: dict[int, SimChat] = {}
        self.members: dict[int, dict[int, MemberStatus]] = {}
        self.started: set[int] = set()
        self.blocked_by: set[int] = set()
        self.messages: dict[int, dict[int, JsonDict]] = {}
        self.bot_messages: dict[int, list[JsonDict]] = {}
        self.deleted: set[tuple[int, int]] = set()
        self.files: dict[str, StoredFile] = {}
        self.files_by_path: dict[str, StoredFile] = {}
        self.open_callbacks: dict[str, JsonDict] = {}
        self.callback_answers: dict[str, JsonDict] = {}
        self.reply_keyboards: dict[int, JsonDict] = {}
        self.auto_create_chats = False
        self._message_ids: dict[int, itertools.count[int]] = {}
        self._user_ids = itertools.count(100_000_001)
        self._group_ids = itertools.count(1)
        self._file_ids = itertools.count(1)
        self._callback_ids = itertools.count(1)

    # ----------------------------------------------------------------- people and chats

    def new_user_id(self) -> int:
        """A fresh user id."""
        while True:
            candidate = next(self._user_ids)
            if candidate not in self.users:
                return candidate

    def new_group_id(self, chat_type: ChatType) -> int:
        """A fresh negative id in Telegram's style (-100… for supergroups and channels)."""
        while True:
            n = next(self._group_ids)
            candidate = -(1_000_000_000_000 + n) if chat_type != "group" else -(4_000_000 + n)
            if candidate not in self.chats:
                return candidate

    def add_user(self, user: SimUser) -> SimUser:
        """Register ``user`` (replacing an account with the same id)."""
        self.users[user.id] = user
        return user

    def add_chat(self, chat: SimChat) -> SimChat:
        """Register ``chat``."""
        self.chats[chat.id] = chat
        self.members.setdefault(chat.id, {})
        return chat

    def private_chat(self, user: SimUser) -> SimChat:
        """The private chat between ``user`` and the bot (created on first use)."""
        chat = self.chats.get(user.id)
        if chat is None:
            chat = self.add_chat(
                SimChat(
                    id=user.id,
                    type="private",
                    first_name=user.first_name,
                    last_name=user.last_name,
                    username=user.username,
                )
            )
        return chat

    def find_chat(self, chat_id: int | str | None) -> SimChat | None:
        """The chat for a numeric id or ``@username``; None when unknown."""
        if chat_id is None:
            return None
        if isinstance(chat_id, str):
            name = chat_id.lstrip("@").lower()
            return next(
                (c for c in self.chats.values() if c.username and c.username.lower() == name),
                None,
            )
        chat = self.chats.get(chat_id)
        if chat is None and chat_id in self.users:
            chat = self.private_chat(self.users[chat_id])
        if chat is None and self.auto_create_chats:
            chat = self._auto_chat(chat_id)
        return chat

    def resolve_chat(self, chat_id: int | str) -> SimChat:
        """Like :meth:`find_chat` but answering 400 "chat not found"."""
        chat = self.find_chat(chat_id)
        if chat is None:
            raise bad_request("chat not found")
        return chat

    def _auto_chat(self, chat_id: int) -> SimChat:
        if chat_id > 0:
            user = self.add_user(SimUser(id=chat_id, first_name=f"User {chat_id}"))
            self.started.add(user.id)
            return self.private_chat(user)
        chat = self.add_chat(SimChat(id=chat_id, type="supergroup", title=f"Group {chat_id}"))
        self.members[chat.id][self.bot.id] = "member"
        return chat

    # ----------------------------------------------------------------- membership

    def status(self, chat_id: int, user_id: int) -> MemberStatus:
        """Membership status of a user in a chat (private chats: both sides are members)."""
        chat = self.chats.get(chat_id)
        if chat is not None and chat.type == "private":
            if user_id == self.bot.id and chat.id in self.blocked_by:
                return "kicked"
            return "member" if user_id in (chat.id, self.bot.id) else "left"
        return self.members.get(chat_id, {}).get(user_id, "left")

    def set_status(self, chat_id: int, user_id: int, status: MemberStatus) -> None:
        """Set a membership status in a group, supergroup or channel."""
        self.members.setdefault(chat_id, {})[user_id] = status

    def bot_status(self, chat_id: int) -> MemberStatus:
        """The bot's own status in a chat."""
        return self.status(chat_id, self.bot.id)

    def chat_member(self, chat_id: int, user: SimUser) -> JsonDict:
        """The Bot API ``ChatMember`` object for ``user`` in ``chat_id``."""
        return member_object(user, self.status(chat_id, user.id))

    # ----------------------------------------------------------------- messages

    def new_message(
        self,
        chat: SimChat,
        sender: SimUser | None,
        content: JsonDict,
        reply_to: JsonDict | None = None,
        *,
        by_bot: bool | None = None,
    ) -> JsonDict:
        """Create and store a message; ``sender=None`` posts as the chat (channels).

        ``by_bot`` (default: whether ``sender`` is the bot) files it among the bot's
        messages, which is needed for the bot's own channel posts.
        """
        message_id = next(self._message_ids.setdefault(chat.id, itertools.count(1)))
        message: JsonDict = {"message_id": message_id}
        if sender is not None:
            message["from"] = sender.to_api()
        else:
            message["sender_chat"] = chat.to_api()
        message["chat"] = chat.to_api()
        message["date"] = int(self.clock())
        if reply_to is not None:
            message["reply_to_message"] = reply_copy(reply_to)
        message.update(content)
        self.messages.setdefault(chat.id, {})[message_id] = message
        if by_bot is None:
            by_bot = sender is not None and sender.id == self.bot.id
        if by_bot:
            self.bot_messages.setdefault(chat.id, []).append(message)
        return message

    def message(self, chat_id: int, message_id: int) -> JsonDict | None:
        """A stored (not deleted) message."""
        return self.messages.get(chat_id, {}).get(message_id)

    def delete_message(self, chat_id: int, message_id: int) -> None:
        """Delete a stored message."""
        self.messages.get(chat_id, {}).pop(message_id, None)
        self.deleted.add((chat_id, message_id))

    def is_by_bot(self, message: JsonDict) -> bool:
        """Whether the bot sent ``message`` (including its channel posts)."""
        chat_id = message["chat"]["id"]
        return any(m is message for m in self.bot_messages.get(chat_id, []))

    # ----------------------------------------------------------------- files

    def store_file(
        self, data: bytes, folder: str, file_name: str | None, mime_type: str | None
    ) -> StoredFile:
        """Keep uploaded bytes and give them a file_id, file_unique_id and file_path."""
        n = next(self._file_ids)
        digest = hashlib.sha1(data).hexdigest()[:10]
        suffix = ""
        if file_name and "." in file_name:
            suffix = "." + file_name.rsplit(".", 1)[1]
        stored = StoredFile(
            file_id=f"BQACAgUAAxkBAAI{n:06d}{digest}",
            file_unique_id=f"AgAD{n:06d}",
            file_path=f"{folder}/file_{n}{suffix}",
            data=data,
            file_name=file_name,
            mime_type=mime_type,
        )
        self.files[stored.file_id] = stored
        self.files_by_path[stored.file_path] = stored
        return stored

    # ----------------------------------------------------------------- callbacks

    def new_callback_id(self) -> str:
        """A fresh callback query id."""
        return str(4_000_000_000_000_000_000 + next(self._callback_ids))

    def chat_instance(self, chat_id: int) -> str:
        """A stable ``chat_instance`` for callback queries from ``chat_id``."""
        return str(int(hashlib.sha1(str(chat_id).encode()).hexdigest()[:15], 16))


def reply_copy(message: JsonDict) -> JsonDict:
    """A message as embedded in ``reply_to_message`` (which never nests further)."""
    embedded = copy.deepcopy(message)
    embedded.pop("reply_to_message", None)
    return embedded


def member_object(user: SimUser, status: MemberStatus) -> JsonDict:
    """A Bot API ``ChatMember`` object with every field PTB requires for ``status``."""
    member: JsonDict = {"status": status, "user": user.to_api()}
    if status == "creator":
        member["is_anonymous"] = False
    elif status == "administrator":
        member.update(_ADMIN_RIGHTS)
    elif status == "restricted":
        member.update(_RESTRICTED_RIGHTS)
    elif status == "kicked":
        member["until_date"] = 0
    return member


def full_chat_info(chat: SimChat) -> JsonDict:
    """The Bot API ``ChatFullInfo`` object answered by ``getChat``."""
    return {
        **chat.to_api(),
        "accent_color_id": 0,
        "max_reaction_count": 11,
        "accepted_gift_types": dict(_NO_GIFTS),
    }
