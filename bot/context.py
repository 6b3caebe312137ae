"""The glue every handler uses: clock, database, who is asking, and sending replies.

Handlers stay small: they parse the update, then hand a plain function
``fn(session, env) -> Out | list[Out]`` to :meth:`QcContext.act`, which runs it in
ONE transaction in a worker thread (the event loop never blocks on the database),
sends what it returns and remembers what each sent message is about (BotMessage),
so that people can reply to it. A :class:`~models.errors.DomainError` becomes a
short Chinese answer; nothing was written.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, TypeVar

from sqlalchemy.engine import Engine
from sqlmodel import Session
from telegram import (
    ForceReply,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
    ReplyParameters,
    Update,
)
from telegram.constants import MessageLimit
from telegram.error import BadRequest, Forbidden, TelegramError
from telegram.ext import Application, CallbackContext, ExtBot

from bot.polling import seal
from bot.replies import Replies
from infra.config import Settings
from infra.db import transaction
from models.errors import DomainError
from models.members import ChatInfo, Env, UserInfo, resolve
from models.messages import remember
from models.tables import SubjectKind
from models.wording import esc

log = logging.getLogger(__name__)
T = TypeVar("T")
#: A refusal quoting a 10,000-character input must stay under Telegram's 4096 characters,
#: even after HTML escaping (at most 5 characters for one: "&amp;").
MAX_REFUSAL_CHARS = 700


@dataclass(frozen=True, slots=True)
class Subject:
    """What a sent message is about (recorded in BotMessage)."""

    kind: SubjectKind
    id: int | None
    campaign_id: int
    unit_id: int | None = None
    for_member_id: int | None = None


@dataclass(frozen=True, slots=True)
class Menus:
    """Whose command menus an action changed: refreshed (in the background) once it is answered."""

    #: A person who joined, was removed or (re)opened their private chat: their private
    #: chat and their chat-member scope in their campaigns' groups.
    user_id: int | None = None
    #: A group just bound: its coordinators' and leaders' chat-member scopes in it.
    group_chat_id: int | None = None


@dataclass(slots=True)
class Out:
    """One message to send (HTML). ``chat_id=None``: the chat of the update, as a reply."""

    text: str
    buttons: list[list[tuple[str, str]]] | None = None
    subject: Subject | None = None
    chat_id: int | None = None
    force_reply: bool = False
    placeholder: str | None = None
    #: Edit this message (chat_id, message_id) instead of sending a new one.
    edit: tuple[int, int] | None = None
    #: Reply to (quote) the triggering message.
    quote: bool = True
    #: Send this file (a Telegram file_id) just before the text.
    document: str | None = None
    #: The menus this action changed (see :meth:`QcContext.refresh_menus`).
    menus: Menus | None = None


@dataclass(slots=True)
class Answer:
    """The answer to a button press, plus messages to send."""

    text: str
    alert: bool = False
    outs: list[Out] = field(default_factory=list)



def chat_info(update: Update) -> ChatInfo:
    chat = update.effective_chat
    assert chat is not None
    title = chat.title or chat.full_name or None
    return ChatInfo(id=chat.id, type=chat.type, title=title)


def user_info(update: Update) -> UserInfo:
    user = update.effective_user
    assert user is not None
    return UserInfo(id=user.id, name=user.full_name, username=user.username)


def keyboard(rows: list[list[tuple[str, str]]] | None) -> InlineKeyboardMarkup | None:
    if not rows:
        return None
    return InlineKeyboardMarkup(
        [[InlineKeyboardButton(label, callback_data=data) for label, data in row] for row in rows]
    )


def split_html(text: str, limit: int = MessageLimit.MAX_TEXT_LENGTH) -> list[str]:
    """Split on line breaks into chunks of at most ``limit`` characters."""
    if len(text) <= limit:
        return [text]
    chunks: list[str] = []
    current = ""
    for line in text.split("\n"):
        while len(line) > limit:
            if current:
                chunks.append(current)
                current = ""
            chunks.append(line[:limit])
            line = line[limit:]
        candidate = f"{current}\n{line}" if current else line
        if len(candidate) > limit:
            chunks.append(current)
            current = line
        else:
            current = candidate
    if current:
        chunks.append(current)
    return chunks


class QcContext(CallbackContext[ExtBot[None], dict[Any, Any], dict[Any, Any], dict[Any, Any]]):
    """``context`` in every qcbot handler."""

    @property
    def settings(self) -> Settings:
        return self.bot_data["settings"]

    @property
    def engine(self) -> Engine:
        return self.bot_data["engine"]

    def now(self) -> datetime:
        """The current instant (aware), from the injectable clock in ``bot_data``."""
        return self.bot_data["clock"]()

    def today(self) -> date:
        return self.now().astimezone(self.settings.campaign.tz).date()

    def refresh_menus(self, changed: Menus) -> None:
        """Queue a refresh of just the scopes ``changed`` names (``bot.menus.MenuSync``);
        it never waits, and failures are logged there."""
        sync = self.bot_data.get("menus")
        if sync is None:
            return
        if changed.user_id is not None:
            sync.person(changed.user_id)
        if changed.group_chat_id is not None:
            sync.group(changed.group_chat_id)

    async def plan_changed(self) -> None:
        """Tell the scheduler (if any registered a hook) that deadlines moved."""
        for hook in self.bot_data.get("plan_changed_hooks", []):
            result = hook(self.application)
            if asyncio.iscoroutine(result):
                await result

    async def db(self, fn: Callable[[Session], T]) -> T:
        """Run ``fn(session)`` in one transaction in a worker thread."""
        engine, now = self.engine, self.now()

        def work() -> T:
            with transaction(engine) as session:
                result = fn(session)
                seal(session, now=now)  # the update's writes count once (bot.polling)
                return result

        return await asyncio.to_thread(work)

    async def in_env(self, update: Update, fn: Callable[[Session, Env], T]) -> T:
        """Run ``fn(session, env)`` in one transaction, ``env`` saying who is asking."""
        chat, user = chat_info(update), user_info(update)
        slug, now = self.settings.campaign.slug, self.now()

        def work(session: Session) -> T:
            env = resolve(session, chat=chat, user=user, slug=slug, now=now)
            return fn(session, env)

        return await self.db(work)

    async def act(self, update: Update, fn: Callable[[Session, Env], Out | Sequence[Out] | None]) -> None:
        """Do one user action and answer it; DomainErrors become a short Chinese reply."""
        try:
            result = await self.in_env(update, fn)
        except DomainError as err:
            await self.refuse(update, err)
            return
        if result is None:
            return
        outs = [result] if isinstance(result, Out) else list(result)
        self.answer(update, outs)

    def answer(self, update: Update, outs: Sequence[Out]) -> None:
        """Queue ``outs`` for sending (``bot.replies``): the handler returns at once, its slot free."""
        async def send() -> None:
            try:
                await self.deliver(update, outs)
            finally:  # committed: the menus follow even if the answer could not be sent
                for out in outs:
                    if out.menus is not None:
                        self.refresh_menus(out.menus)

        self._replies.submit(self._chat_of(update, outs), send())

    async def refuse(self, update: Update, err: DomainError) -> None:
        """Tell the user why nothing happened (bounded: a refusal may echo what they typed).

        Queued like every answer (``bot.replies``): a refusal never holds a handler's slot."""
        message = update.effective_message
        if message is not None:
            text = err.message
            if len(text) > MAX_REFUSAL_CHARS:
                text = text[: MAX_REFUSAL_CHARS - 1] + "…"
            self._replies.submit(message.chat_id, message.reply_text(f"⚠️ {esc(text)}", do_quote=True))

    def reply(self, update: Update, text: str) -> None:
        """Queue a plain quoted answer to the update's message (``bot.replies``)."""
        message = update.effective_message
        if message is not None:
            self._replies.submit(message.chat_id, message.reply_text(text, do_quote=True))

    def send_later(self, chat_id: int, sending: Coroutine[Any, Any, Any]) -> None:
        """Queue any send to ``chat_id`` behind that chat's earlier answers (``bot.replies``);
        a failure is logged, never reported to the person as a failed action."""
        self._replies.submit(chat_id, sending)

    @property
    def _replies(self) -> Replies:
        return self.bot_data["replies"]  # type: ignore[no-any-return]

    @staticmethod
    def _chat_of(update: Update, outs: Sequence[Out]) -> int:
        """The chat whose queue the answers join: the asker's (else the first one's target)."""
        if update.effective_chat is not None:
            return update.effective_chat.id
        for out in outs:
            if out.chat_id is not None:
                return out.chat_id
            if out.edit is not None:
                return out.edit[0]
        return 0

    async def deliver(self, update: Update | None, outs: Sequence[Out]) -> list[Message]:
        """Send (or edit) each message, then record their subjects in one transaction."""
        sent: list[tuple[Message, Subject]] = []
        messages: list[Message] = []
        origin = update.effective_message if update is not None else None
        chats = {o.chat_id for o in outs if o.chat_id is not None} | {o.edit[0] for o in outs if o.edit}
        if origin is not None:
            chats.add(origin.chat_id)
        done = asyncio.get_running_loop().create_future()
        inflight = self.bot_data.setdefault("deliveries", {})
        for chat in chats:
            inflight.setdefault(chat, set()).add(done)
        try:
            return await self._deliver(origin, outs, sent, messages)
        finally:
            done.set_result(None)
            for chat in chats:
                inflight.get(chat, set()).discard(done)

    async def settled(self, chat_id: int, timeout: float = 3.0) -> None:  # noqa: ASYNC109
        """Wait until what the bot is sending to ``chat_id`` is recorded (BotMessage).

        A reply can reach the bot before the transaction that records what the
        replied-to message is about has committed; waiting here closes that gap.
        """
        pending = list(self.bot_data.get("deliveries", {}).get(chat_id, ()))
        if pending:
            await asyncio.wait(pending, timeout=timeout)

    async def _deliver(
        self, origin: Message | None, outs: Sequence[Out], sent: list[tuple[Message, Subject]],
        messages: list[Message],
    ) -> list[Message]:
        for out in outs:
            try:
                for msg in await self._send_one(origin, out):
                    messages.append(msg)
                    if out.subject is not None:
                        sent.append((msg, out.subject))
            except (Forbidden, BadRequest) as exc:
                # Someone blocked the bot or a chat vanished: the others still get theirs.
                log.warning("could not deliver to chat %s: %s", out.chat_id, exc)
                if isinstance(exc, Forbidden) and out.chat_id is not None:
                    await self._unreachable(out.chat_id, str(exc))
        if sent:
            now = self.now()

            def record(session: Session) -> None:
                for msg, subject in sent:
                    remember(
                        session, campaign_id=subject.campaign_id,
                        chat_id=msg.chat_id, message_id=msg.message_id, kind=subject.kind,
                        subject_id=subject.id, unit_id=subject.unit_id,
                        for_member_id=subject.for_member_id, now=now,
                    )

            await self.db(record)
        return messages

    async def _unreachable(self, chat_id: int, reason: str) -> None:
        """A private chat refused us (blocked): remember it, so nobody counts on it."""

        def mark(session: Session) -> None:
            from sqlmodel import select

            from models.tables import Member

            for m in session.exec(select(Member).where(Member.private_chat_id == chat_id)):
                m.reachable = False
                m.unreachable_reason = reason[:200]

        await self.db(mark)

    async def _send_one(self, origin: Message | None, out: Out) -> list[Message]:
        markup: Any = keyboard(out.buttons)
        if out.force_reply:
            markup = ForceReply(selective=True, input_field_placeholder=out.placeholder)
        if out.edit is not None:
            chat_id, message_id = out.edit
            try:
                edited = await self.bot.edit_message_text(
                    out.text, chat_id=chat_id, message_id=message_id, reply_markup=markup
                )
            except BadRequest as exc:
                if "not modified" in str(exc).lower():
                    return []
                raise
            return [edited] if isinstance(edited, Message) else []
        chunks = split_html(out.text)
        result: list[Message] = []
        if out.document:
            target = out.chat_id if out.chat_id is not None else (origin.chat_id if origin else None)
            if target is not None:
                try:
                    await self.bot.send_document(target, out.document)
                except BadRequest as exc:
                    log.warning("could not re-send document %s: %s", out.document, exc)
        for i, chunk in enumerate(chunks):
            last = i == len(chunks) - 1
            if out.chat_id is None and origin is not None:
                reply = ReplyParameters(message_id=origin.message_id, allow_sending_without_reply=True)
                msg = await self.bot.send_message(
                    origin.chat_id, chunk, reply_parameters=reply if (i == 0 and out.quote) else None,
                    reply_markup=markup if last else None,
                )
            else:
                target = out.chat_id if out.chat_id is not None else (origin.chat_id if origin else None)
                if target is None:
                    raise ValueError("Out without a chat")
                msg = await self.bot.send_message(target, chunk, reply_markup=markup if last else None)
            result.append(msg)
        return result[-1:] if out.subject is not None else result


async def safe_send(app: Application, chat_id: int, text: str) -> Message | None:
    """Send a notice outside of any update; failures are logged, not raised."""
    try:
        return await app.bot.send_message(chat_id, text)
    except TelegramError as exc:
        log.warning("notice to chat %s failed: %s", chat_id, exc)
        return None
