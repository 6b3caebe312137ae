"""Telegram side of the scheduler: the buttons under a nudge and ``/nudges on|off``.

Handlers only parse, call the domain (``scheduler.snooze``, ``scheduler.prefs``)
in one transaction, and answer; every rule (who may snooze, how far, which
button is stale or forged) lives there. ``bot.app.register_handlers`` adds
:func:`on_nudge_button` (pattern :data:`CALLBACK_PATTERN`) before the generic
button handler; ``/nudges`` is in ``bot.commands.COMMANDS``.
"""

from __future__ import annotations

import logging
from typing import Any

from telegram import Message, ReplyParameters, Update
from telegram.constants import ChatType, ParseMode
from telegram.error import TelegramError
from telegram.ext import ContextTypes

from bot.callbacks import FORGED
from models.errors import DomainError
from models.messages import remember
from models.permissions import Action, check
from models.tables import SubjectKind
from scheduler.prefs import parse_switch, set_private_nudges
from scheduler.snooze import parse_callback, snooze_from_button, task_card_from_button

log = logging.getLogger(__name__)
CALLBACK_PATTERN = r"^qcn:"



def _now(context: ContextTypes.DEFAULT_TYPE) -> Any:
    return context.bot_data["clock"]()


async def on_nudge_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """暂缓1天 / 暂缓3天 / 任务N: validated against the nudge it came from."""
    query = update.callback_query
    assert query is not None
    message = query.message
    user = query.from_user
    if not isinstance(message, Message) or user is None:
        await query.answer(FORGED, show_alert=True)
        return
    now = _now(context)
    chat_id, message_id, data = message.chat_id, message.message_id, query.data or ""
    try:
        press = parse_callback(data)
        if press.op == "snooze":
            result = await context.db(  # type: ignore[attr-defined]
                lambda s: snooze_from_button(
                    s, chat_id=chat_id, message_id=message_id, data=data,
                    telegram_user_id=user.id, now=now,
                ),
            )
            await query.answer(result.message[:200], show_alert=False)
            return
        card = await context.db(  # type: ignore[attr-defined]
            lambda s: task_card_from_button(
                s, chat_id=chat_id, message_id=message_id, data=data,
                telegram_user_id=user.id, now=now,
            ),
        )
    except DomainError as err:
        await query.answer(err.message[:200], show_alert=True)
        return
    await query.answer()
    try:
        sent = await context.bot.send_message(
            chat_id=chat_id, text=card.text, parse_mode=ParseMode.HTML,
            reply_parameters=ReplyParameters(message_id=message_id, allow_sending_without_reply=True),
        )
    except TelegramError as exc:
        log.warning("task card to %s failed: %s", chat_id, exc)
        return
    await context.db(  # type: ignore[attr-defined]
        lambda s: remember(
            s, campaign_id=card.campaign_id, chat_id=chat_id, message_id=sent.message_id,
            kind=SubjectKind.task, subject_id=card.task_id, unit_id=card.unit_id, now=now,
        ),
    )


async def on_nudges(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/nudges on|off: private nudges for a liaison (from the private chat or a group)."""
    message = update.effective_message
    user = update.effective_user
    chat = update.effective_chat
    if message is None or user is None or chat is None:
        return
    private = chat.type == ChatType.PRIVATE
    now = _now(context)
    try:
        # Who may: the permission table (its refusal texts), then the rule's own checks.
        await context.in_env(update, lambda s, env: check(member=env.member, action=Action.nudge_settings))  # type: ignore[attr-defined]
        on = parse_switch(context.args[0] if context.args else None)
        result = await context.db(  # type: ignore[attr-defined]
            lambda s: set_private_nudges(
                s, telegram_user_id=user.id, on=on, now=now,
                private_chat_id=chat.id if private else None,
            ),
        )
    except DomainError as err:
        await context.refuse(update, err)  # type: ignore[attr-defined]  # "⚠️ …", like every refusal
        return
    context.reply(update, result.message)  # type: ignore[attr-defined]

