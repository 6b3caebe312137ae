"""The gate (handler group -1): who gets past it, before any handler runs.

Outsiders cannot make the bot work for them, or make it slow for the people it serves:

* **Everyone** has a budget (a token bucket per Telegram user, ``telegram.user_budget_per_minute``
  and ``user_budget_burst``, :class:`aiolimiter.AsyncLimiter`); what goes over it is dropped
  unanswered and counted in the log (one line per user and minute).
* **A group bound to no campaign** hears one notice (once per chat), and otherwise only a known
  coordinator's ``/bindgroup``; everybody else's messages, commands and buttons there: silence.
* **A stranger in a private chat** (nobody any campaign knows, not even a former member) gets one
  short answer an hour (``telegram.stranger_answers_per_hour``), with their Telegram ID for the
  coordinator; an invite link or the bootstrap code (``/start CODE``) always gets through.
* Channels are ignored.

An update stopped here holds no handler slot and sends at most that one line.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable

from aiolimiter import AsyncLimiter
from telegram import Update
from telegram.constants import ChatMemberStatus, ChatType
from telegram.error import TelegramError
from telegram.ext import ApplicationHandlerStop

from bot.context import QcContext, chat_info
from infra.config import TelegramConfig
from models.members import claim_ignored_notice, coordinates_anywhere, known_person, see_chat

log = logging.getLogger(__name__)

UNBOUND_NOTICE = (
    "ℹ️ 本群尚未绑定到质量强区工作，我暂时不会处理本群的消息。\n"
    "协调员（区市场监管局）可在本群发送 /bindgroup 完成绑定。"
)
STRANGER_TEXT = (
    "你好！我是质量强区工作助手，只为本区质量强区工作的成员服务。\n"
    "你的 Telegram ID：<code>{user_id}</code>\n"
    "请点击协调员发给你的邀请链接加入；如果没有，请联系区市场监管局（领导小组办公室）。"
)
STRANGER_ALERT = "你还不是成员，请使用协调员发给你的邀请链接加入。"
_BINDGROUP = re.compile(r"^/bindgroup(@\w+)?(\s|$)", re.IGNORECASE)
_START_WITH_CODE = re.compile(r"^/start(@\w+)?\s+\S", re.IGNORECASE)
#: Limiters of people not heard from for this long are forgotten.
_IDLE_SECONDS = 3600.0


class Guard:
    """The per-user budgets and the strangers' hourly answers (in memory: a restart forgets)."""

    def __init__(self, tg: TelegramConfig, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_minute = tg.user_budget_per_minute
        self.burst = tg.user_budget_burst
        self.stranger_per_hour = tg.stranger_answers_per_hour
        self._clock = clock
        self._budgets: dict[int, tuple[AsyncLimiter, float]] = {}
        self._strangers: dict[int, tuple[AsyncLimiter, float]] = {}
        self._dropped: dict[int, int] = {}
        self._logged: dict[int, float] = {}
        self._pruned = clock()
        #: Updates dropped for a budget, and stranger messages left unanswered (for the log and tests).
        self.dropped = 0
        self.strangers_ignored = 0

    async def _take(self, table: dict[int, tuple[AsyncLimiter, float]], user_id: int, rate: float,
                    period: float) -> bool:
        """One unit of ``user_id``'s bucket if there is room (never waits for room)."""
        now = self._clock()
        limiter, _ = table.get(user_id) or (AsyncLimiter(rate, period), now)
        table[user_id] = (limiter, now)
        if not limiter.has_capacity():
            return False
        await limiter.acquire()  # returns at once: there is capacity
        return True

    async def within_budget(self, user_id: int) -> bool:
        """Whether this update of ``user_id`` is within their budget (it is counted if so)."""
        self._prune()
        if self.per_minute <= 0:
            return True
        # A bucket of ``burst`` that drains at per_minute/60 a second.
        if await self._take(self._budgets, user_id, self.burst, self.burst * 60.0 / self.per_minute):
            return True
        self.dropped += 1
        self._dropped[user_id] = self._dropped.get(user_id, 0) + 1
        now = self._clock()
        if now - self._logged.get(user_id, -1e9) >= 60:
            self._logged[user_id] = now
            log.warning("user %s is over their budget (%s a minute): %s update(s) dropped so far",
                        user_id, self.per_minute, self._dropped[user_id])
        return False

    async def may_answer_stranger(self, user_id: int) -> bool:
        """Whether a stranger's message gets the one short answer (at most N an hour)."""
        if self.stranger_per_hour > 0 and await self._take(self._strangers, user_id, self.stranger_per_hour, 3600.0):
            return True
        self.strangers_ignored += 1
        return False

    def _prune(self) -> None:
        now = self._clock()
        if now - self._pruned < 300:
            return
        self._pruned = now
        for table in (self._budgets, self._strangers):
            for user_id in [u for u, (_, seen) in table.items() if now - seen > _IDLE_SECONDS]:
                del table[user_id]
        for user_id in [u for u, at in self._logged.items() if now - at > _IDLE_SECONDS]:
            del self._logged[user_id]  # a flood of made-up ids leaves nothing behind
            self._dropped.pop(user_id, None)


def _text(update: Update) -> str:
    msg = update.message
    return (msg.text or "") if msg is not None else ""


async def gate(update: Update, context: QcContext) -> None:
    """Group -1: budgets, strangers in private, unbound groups and channels (module docstring)."""
    guard: Guard = context.bot_data["guard"]
    user = update.effective_user
    if user is not None and not await guard.within_budget(user.id):
        raise ApplicationHandlerStop
    chat = update.effective_chat
    if chat is None:
        return
    if chat.type == ChatType.CHANNEL:
        raise ApplicationHandlerStop
    if chat.type == ChatType.PRIVATE:
        await _private(update, context, guard)
        return
    await _group(update, context)


async def _private(update: Update, context: QcContext, guard: Guard) -> None:
    user = update.effective_user
    if user is None or _START_WITH_CODE.match(_text(update)):
        return  # an invite link or the bootstrap code: the handler decides
    if await context.db(lambda s: known_person(s, user.id)):
        return
    query = update.callback_query
    if query is not None:
        try:
            await query.answer(STRANGER_ALERT, show_alert=True)
        except TelegramError as exc:
            log.info("answer to a stranger's button failed: %s", exc)
    elif update.message is not None and await guard.may_answer_stranger(user.id):
        context.reply(update, STRANGER_TEXT.format(user_id=user.id))
    raise ApplicationHandlerStop


async def _group(update: Update, context: QcContext) -> None:
    chat = update.effective_chat
    assert chat is not None
    user = update.effective_user
    leaving = update.my_chat_member is not None and update.my_chat_member.new_chat_member.status in (
        ChatMemberStatus.LEFT, ChatMemberStatus.BANNED,
    )
    bindgroup = bool(_BINDGROUP.match(_text(update)))
    info, now = chat_info(update), context.now()

    def look(session) -> str:  # noqa: ANN001
        row = see_chat(session, info, now=now, present=not leaving)
        if row.campaign_id is not None:
            return "bound"
        if bindgroup and user is not None and coordinates_anywhere(session, user.id):
            return "bind"
        if leaving or update.edited_message is not None or bindgroup:
            return "quiet"
        return "notice" if claim_ignored_notice(session, row) else "quiet"

    verdict = await context.db(look)
    if verdict in ("bound", "bind"):
        return
    if verdict == "notice":
        context.send_later(chat.id, context.bot.send_message(chat.id, UNBOUND_NOTICE))
    if update.callback_query is not None:  # a button answered costs no message
        try:
            await update.callback_query.answer("本群尚未绑定，操作未生效。")
        except TelegramError as exc:
            log.info("answer to a button in an unbound group failed: %s", exc)
    raise ApplicationHandlerStop
