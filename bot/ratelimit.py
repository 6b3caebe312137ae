"""One budget for every message the bot sends: the scheduler's and people's answers.

The scheduler's :class:`~scheduler.pacing.Pacer` keeps its nudges under Telegram's
limits; python-telegram-bot's :class:`~telegram.ext.AIORateLimiter` sees every request
but paces with a token bucket of its own, which lets a second burst through within the
same second. At 09:00, 100 people answering while the nudges went out at 95 % of 30/s
met 190–215 "429 Too Many Requests" in the soak (all retried, nothing lost, but Telegram
punishes repeated floods). :class:`PacedRateLimiter` counts each message the bot sends
outside the Pacer (the answers) in the Pacer's overall window, waiting for room there
first, so the nudges slow down to leave room for the answers.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from telegram.ext import AIORateLimiter

from scheduler.pacing import PACED, Pacer

#: Bot API methods that send a message (they count against the limits).
SENDING = frozenset({
    "sendMessage", "sendPhoto", "sendDocument", "sendMediaGroup", "sendVideo", "sendAudio",
    "sendVoice", "sendAnimation", "sendSticker", "sendLocation", "sendContact", "sendPoll",
    "copyMessage", "forwardMessage",
})


class PacedRateLimiter(AIORateLimiter):
    """:class:`~telegram.ext.AIORateLimiter`, plus the Pacer's overall window for the
    messages the Pacer did not count itself."""

    def __init__(self, pacer: Pacer, **kwargs: Any) -> None:  # noqa: ANN401
        super().__init__(**kwargs)
        self.pacer = pacer

    async def process_request(
        self,
        callback: Callable[..., Coroutine[Any, Any, Any]],
        args: Any,  # noqa: ANN401
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: int | None,
    ) -> Any:  # noqa: ANN401
        chat_id = data.get("chat_id")
        if endpoint in SENDING and not PACED.get() and chat_id is not None:
            async with self.pacer.sending(_chat_key(chat_id), only_global=True):
                return await super().process_request(callback, args, kwargs, endpoint, data, rate_limit_args)
        return await super().process_request(callback, args, kwargs, endpoint, data, rate_limit_args)


def _chat_key(chat_id: Any) -> int:  # noqa: ANN401
    """The Pacer keys chats by integer id; a @channel username is not one (any key will do
    for the overall window)."""
    try:
        return int(chat_id)
    except (TypeError, ValueError):
        return -1
