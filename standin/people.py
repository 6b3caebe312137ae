"""Simulated people: the users, groups and channels the bot talks to."""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any

from .formatting import auto_entities
from .methods import document_object, image_size, photo_size
from .updates import UpdateQueue
from .world import (
    ACTIVE_STATUSES,
    ADMIN_STATUSES,
    ChatType,
    MemberStatus,
    SimChat,
    SimUser,
    World,
    member_object,
)

__all__ = ["ChatRef", "MessageRef", "SimulatedPeople", "SimulationError", "UserRef"]

JsonDict = dict[str, Any]
UserRef = SimUser | int
# A user stands for their private chat with the bot.
ChatRef = SimChat | SimUser | int
MessageRef = JsonDict | int

_DEFAULT_PHOTO_SIZE = (800, 600)
_SERVICE_KEYS = frozenset(
    {"new_chat_members", "left_chat_member", "new_chat_title", "new_chat_photo", "pinned_message"}
)


class SimulationError(ValueError):
    """A simulated person was asked to do something Telegram would not let them do."""


def buttons(message: JsonDict) -> list[JsonDict]:
    """The inline keyboard buttons of a message, row by row, flattened."""
    rows = (message.get("reply_markup") or {}).get("inline_keyboard", [])
    return [button for row in rows for button in row]


class SimulatedPeople:
    """The human side of the conversations; mixed into :class:`~standin.BotApiStandin`.

    Every action stores the message like Telegram would and, when the bot can see it,
    queues the corresponding update for ``getUpdates``.
    """

    world: World
    updates: UpdateQueue
    privacy_mode: bool

    # ----------------------------------------------------------------- lookups

    def _user(self, user: UserRef) -> SimUser:
        user_id = user.id if isinstance(user, SimUser) else user
        found = self.world.users.get(user_id)
        if found is None:
            raise SimulationError(f"unknown user {user_id}; create it with make_user()")
        return found

    def _chat(self, chat: ChatRef) -> SimChat:
        if isinstance(chat, SimUser):
            return self.world.private_chat(self._user(chat))
        chat_id = chat.id if isinstance(chat, SimChat) else chat
        found = self.world.find_chat(chat_id)
        if found is None:
            raise SimulationError(f"unknown chat {chat_id}; create it with make_group()")
        return found

    def _stored(self, message: MessageRef, chat: ChatRef | None = None) -> JsonDict:
        """The live stored message for a message dict or a message_id (+ chat)."""
        if isinstance(message, dict):
            chat_id = message["chat"]["id"]
            message_id = message["message_id"]
        else:
            if chat is None:
                raise SimulationError("pass chat= when referring to a message by its id")
            chat_id, message_id = self._chat(chat).id, message
        stored = self.world.message(chat_id, message_id)
        if stored is None:
            raise SimulationError(f"message {message_id} not found in chat {chat_id}")
        return stored

    # ----------------------------------------------------------------- creating people

    def make_user(
        self,
        first_name: str,
        username: str | None = None,
        *,
        last_name: str | None = None,
        user_id: int | None = None,
        language_code: str | None = "zh-hans",
        started_bot: bool = True,
    ) -> SimUser:
        """Create a person.  ``started_bot=False``: the bot may not write to them privately
        until they message it (Telegram's "bot can't initiate conversation")."""
        user = SimUser(
            id=user_id if user_id is not None else self.world.new_user_id(),
            first_name=first_name,
            username=username,
            last_name=last_name,
            language_code=language_code,
        )
        self.world.add_user(user)
        if started_bot:
            self.world.started.add(user.id)
        return user

    def make_group(
        self,
        title: str,
        *,
        chat_id: int | None = None,
        supergroup: bool = True,
        username: str | None = None,
        members: Iterable[UserRef] = (),
        admins: Iterable[UserRef] = (),
        creator: UserRef | None = None,
        bot_status: MemberStatus = "member",
    ) -> SimChat:
        """Create a (super)group the bot is in (``bot_status="left"`` for one it is not).

        People who post in it join automatically; ``members``/``admins``/``creator`` make
        memberships explicit (they matter for ``getChatMember`` and admin checks).
        """
        kind: ChatType = "supergroup" if supergroup else "group"
        chat = self.world.add_chat(
            SimChat(
                id=chat_id if chat_id is not None else self.world.new_group_id(kind),
                type=kind,
                title=title,
                username=username,
            )
        )
        self.world.set_status(chat.id, self.world.bot.id, bot_status)
        for user in members:
            self.world.set_status(chat.id, self._user(user).id, "member")
        for user in admins:
            self.world.set_status(chat.id, self._user(user).id, "administrator")
        if creator is not None:
            self.world.set_status(chat.id, self._user(creator).id, "creator")
        return chat

    def make_channel(
        self, title: str, *, chat_id: int | None = None, username: str | None = None
    ) -> SimChat:
        """Create a channel where the bot is an administrator."""
        chat = self.world.add_chat(
            SimChat(
                id=chat_id if chat_id is not None else self.world.new_group_id("channel"),
                type="channel",
                title=title,
                username=username,
            )
        )
        self.world.set_status(chat.id, self.world.bot.id, "administrator")
        return chat

    def private_chat(self, user: UserRef) -> SimChat:
        """The private chat between ``user`` and the bot."""
        return self.world.private_chat(self._user(user))

    def set_member_status(self, chat: ChatRef, user: UserRef, status: MemberStatus) -> None:
        """Change a membership silently (no update); use it to set up a scenario."""
        self.world.set_status(self._chat(chat).id, self._user(user).id, status)

    @staticmethod
    def buttons(message: JsonDict) -> list[JsonDict]:
        """The inline keyboard buttons of a message, flattened."""
        return buttons(message)

    # ----------------------------------------------------------------- posting

    def _ensure_can_post(self, user: SimUser, chat: SimChat) -> None:
        if chat.type == "channel":
            raise SimulationError("people cannot post in channels; use send_channel_post()")
        if chat.type == "private":
            if chat.id != user.id:
                raise SimulationError(f"{user.full_name} cannot post in another user's chat")
            if user.id in self.world.blocked_by:
                raise SimulationError(f"{user.full_name} blocked the bot; call unblock_bot()")
            self.world.started.add(user.id)
            return
        known = self.world.members.get(chat.id, {}).get(user.id)
        if known is None:
            self.world.set_status(chat.id, user.id, "member")
        elif known not in ACTIVE_STATUSES:
            raise SimulationError(f"{user.full_name} is {known} in {chat.title!r}")

    def _post(
        self,
        user: SimUser,
        chat: SimChat,
        content: JsonDict,
        reply_to: MessageRef | None,
    ) -> JsonDict:
        self._ensure_can_post(user, chat)
        target = self._stored(reply_to, chat) if reply_to is not None else None
        message = self.world.new_message(chat, user, content, target)
        self._deliver("message", chat, message)
        return message

    def _bot_sees(self, chat: SimChat, message: JsonDict) -> bool:
        if chat.type == "private":
            return chat.id not in self.world.blocked_by
        status = self.world.bot_status(chat.id)
        if status not in ACTIVE_STATUSES:
            return False
        if chat.type == "channel" or not self.privacy_mode or status in ADMIN_STATUSES:
            return True
        return self._addressed_to_bot(message)

    def _addressed_to_bot(self, message: JsonDict) -> bool:
        """What a bot in privacy mode receives: commands, replies to it, mentions, service."""
        text = message.get("text") or message.get("caption") or ""
        username = (self.world.bot.username or "").lower()
        for entity in message.get("entities") or message.get("caption_entities") or []:
            piece = text.encode("utf-16-le")[
                entity["offset"] * 2 : (entity["offset"] + entity["length"]) * 2
            ].decode("utf-16-le")
            if entity["type"] == "bot_command":
                _, _, addressee = piece.partition("@")
                if not addressee or addressee.lower() == username:
                    return True
            if entity["type"] == "mention" and piece[1:].lower() == username:
                return True
        replied = message.get("reply_to_message") or {}
        if (replied.get("from") or {}).get("id") == self.world.bot.id:
            return True
        return any(key in message for key in _SERVICE_KEYS)

    def _deliver(self, kind: str, chat: SimChat, message: JsonDict) -> None:
        if self._bot_sees(chat, message):
            self.updates.put({kind: copy.deepcopy(message)})

    async def send_text(
        self,
        user: UserRef,
        chat: ChatRef,
        text: str,
        *,
        reply_to: MessageRef | None = None,
        entities: list[JsonDict] | None = None,
    ) -> JsonDict:
        """``user`` writes ``text`` in ``chat``; commands, mentions, hashtags and URLs get
        their entities as in Telegram.  ``reply_to``: a message dict or a message_id."""
        content: JsonDict = {"text": text}
        detected = entities if entities is not None else auto_entities(text)
        if detected:
            content["entities"] = detected
        return self._post(self._user(user), self._chat(chat), content, reply_to)

    async def send_document(
        self,
        user: UserRef,
        chat: ChatRef,
        file_name: str,
        data: bytes,
        *,
        caption: str | None = None,
        mime_type: str | None = None,
        reply_to: MessageRef | None = None,
    ) -> JsonDict:
        """``user`` sends a file; the bot can fetch it with getFile + download."""
        stored = self.world.store_file(data, "documents", file_name, mime_type)
        content: JsonDict = {"document": document_object(stored), **_caption(caption)}
        return self._post(self._user(user), self._chat(chat), content, reply_to)

    async def send_photo(
        self,
        user: UserRef,
        chat: ChatRef,
        data: bytes,
        *,
        caption: str | None = None,
        reply_to: MessageRef | None = None,
    ) -> JsonDict:
        """``user`` sends a photo (dimensions read from PNG/JPEG/GIF/BMP headers)."""
        stored = self.world.store_file(data, "photos", "photo.jpg", "image/jpeg")
        size = image_size(data) or _DEFAULT_PHOTO_SIZE
        content: JsonDict = {"photo": [photo_size(stored, size)], **_caption(caption)}
        return self._post(self._user(user), self._chat(chat), content, reply_to)

    async def send_edited_text(
        self, message: MessageRef, text: str, *, chat: ChatRef | None = None
    ) -> JsonDict:
        """The author edits an earlier message (``edited_message``/``edited_channel_post``)."""
        stored = self._stored(message, chat)
        if self.world.is_by_bot(stored):
            raise SimulationError("people cannot edit the bot's messages")
        stored["text"] = text
        stored.pop("entities", None)
        detected = auto_entities(text)
        if detected:
            stored["entities"] = detected
        stored["edit_date"] = int(self.world.clock())
        target = self._chat(stored["chat"]["id"])
        kind = "edited_channel_post" if target.type == "channel" else "edited_message"
        self._deliver(kind, target, stored)
        return stored

    async def send_channel_post(
        self, channel: ChatRef, text: str, *, entities: list[JsonDict] | None = None
    ) -> JsonDict:
        """A post in a channel (``channel_post`` update; the sender is the channel)."""
        chat = self._chat(channel)
        if chat.type != "channel":
            raise SimulationError(f"{chat.title!r} is not a channel")
        content: JsonDict = {"text": text}
        detected = entities if entities is not None else auto_entities(text)
        if detected:
            content["entities"] = detected
        message = self.world.new_message(chat, None, content)
        self._deliver("channel_post", chat, message)
        return message

    async def press_button(
        self,
        user: UserRef,
        message: MessageRef,
        data: str,
        *,
        chat: ChatRef | None = None,
        strict: bool = True,
    ) -> str:
        """``user`` presses the inline button carrying ``data``; returns the query id.

        With ``strict`` (default) the button must exist on the message's current keyboard,
        as in a real client; ``strict=False`` sends any data (fuzzing, stale keyboards).
        """
        presser = self._user(user)
        stored = self._stored(message, chat)
        if strict:
            offered = [b.get("callback_data") for b in buttons(stored)]
            if data not in offered:
                raise SimulationError(
                    f"message {stored['message_id']} has no button with callback_data "
                    f"{data!r}; it offers {offered}"
                )
        query_id = self.world.new_callback_id()
        query: JsonDict = {
            "id": query_id,
            "from": presser.to_api(),
            "message": copy.deepcopy(stored),
            "chat_instance": self.world.chat_instance(stored["chat"]["id"]),
            "data": data,
        }
        self.world.open_callbacks[query_id] = query
        self.updates.put({"callback_query": query})
        return query_id

    # ----------------------------------------------------------------- membership events

    def _member_update(
        self, kind: str, chat: SimChat, actor: SimUser, who: SimUser, old: str, new: str
    ) -> None:
        self.updates.put(
            {
                kind: {
                    "chat": chat.to_api(),
                    "from": actor.to_api(),
                    "date": int(self.world.clock()),
                    "old_chat_member": member_object(who, old),  # type: ignore[arg-type]
                    "new_chat_member": member_object(who, new),  # type: ignore[arg-type]
                }
            }
        )

    def _service_message(self, actor: SimUser, chat: SimChat, content: JsonDict) -> JsonDict:
        message = self.world.new_message(chat, actor, content)
        self._deliver("message", chat, message)
        return message

    async def add_bot_to_group(self, user: UserRef, chat: ChatRef) -> JsonDict:
        """``user`` adds the bot: a ``my_chat_member`` update and a new_chat_members message."""
        actor, group = self._user(user), self._chat(chat)
        self._ensure_can_post(actor, group)
        bot = self.world.bot
        old = self.world.bot_status(group.id)
        self.world.set_status(group.id, bot.id, "member")
        self._member_update("my_chat_member", group, actor, bot, old, "member")
        joined = bot.to_api()
        return self._service_message(
            actor,
            group,
            {
                "new_chat_participant": joined,
                "new_chat_member": joined,
                "new_chat_members": [joined],
            },
        )

    async def remove_bot_from_group(self, user: UserRef, chat: ChatRef) -> JsonDict:
        """``user`` removes the bot: the bot gets ``my_chat_member`` only."""
        actor, group = self._user(user), self._chat(chat)
        bot = self.world.bot
        old = self.world.bot_status(group.id)
        new: MemberStatus = "left" if group.type == "group" else "kicked"
        self.world.set_status(group.id, bot.id, new)
        self._member_update("my_chat_member", group, actor, bot, old, new)
        left = bot.to_api()
        return self._service_message(
            actor, group, {"left_chat_participant": left, "left_chat_member": left}
        )

    async def add_member(
        self, user: UserRef, chat: ChatRef, *, by: UserRef | None = None
    ) -> JsonDict:
        """``user`` joins (or is added ``by`` someone): a new_chat_members message, plus a
        ``chat_member`` update when the bot is an admin (opt-in via allowed_updates)."""
        member, group = self._user(user), self._chat(chat)
        actor = self._user(by) if by is not None else member
        old = self.world.status(group.id, member.id)
        self.world.set_status(group.id, member.id, "member")
        if self.world.bot_status(group.id) in ADMIN_STATUSES:
            self._member_update("chat_member", group, actor, member, old, "member")
        joined = member.to_api()
        return self._service_message(
            actor,
            group,
            {
                "new_chat_participant": joined,
                "new_chat_member": joined,
                "new_chat_members": [joined],
            },
        )

    async def remove_member(
        self, user: UserRef, chat: ChatRef, *, by: UserRef | None = None
    ) -> JsonDict:
        """``user`` leaves (or is removed ``by`` someone): a left_chat_member message."""
        member, group = self._user(user), self._chat(chat)
        actor = self._user(by) if by is not None else member
        old = self.world.status(group.id, member.id)
        new: MemberStatus = "kicked" if by is not None else "left"
        self.world.set_status(group.id, member.id, new)
        if self.world.bot_status(group.id) in ADMIN_STATUSES:
            self._member_update("chat_member", group, actor, member, old, new)
        gone = member.to_api()
        return self._service_message(
            actor, group, {"left_chat_participant": gone, "left_chat_member": gone}
        )

    async def block_bot(self, user: UserRef) -> None:
        """``user`` blocks the bot: ``my_chat_member`` (kicked); later writes answer 403."""
        person = self._user(user)
        chat = self.world.private_chat(person)
        self.world.blocked_by.add(person.id)
        self._member_update("my_chat_member", chat, person, self.world.bot, "member", "kicked")

    async def unblock_bot(self, user: UserRef) -> None:
        """``user`` unblocks the bot (``my_chat_member`` back to member)."""
        person = self._user(user)
        chat = self.world.private_chat(person)
        self.world.blocked_by.discard(person.id)
        self.world.started.add(person.id)
        self._member_update("my_chat_member", chat, person, self.world.bot, "kicked", "member")

    def enqueue_raw_update(self, update: JsonDict) -> int:
        """Queue any update as is (``update_id`` assigned when missing); returns its id."""
        return self.updates.put(update)


def _caption(caption: str | None) -> JsonDict:
    if not caption:
        return {}
    content: JsonDict = {"caption": caption}
    detected = auto_entities(caption)
    if detected:
        content["caption_entities"] = detected
    return content
