"""What every action shares: the request, the member, version checks, telling a unit."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime

from sqlmodel import Session

from bot import queries
from bot.context import Out, Subject
from infra.config import Settings
from models import members, wording
from models.errors import Conflict, NotFound, PermissionDenied, StaleVersion
from models.members import Env
from models.messages import lookup
from models.tables import BotMessage, Member


@dataclass(frozen=True, slots=True)
class Req:
    """The request's time and configuration (from the injectable clock)."""

    now: datetime
    today: date
    settings: Settings
    bot_username: str


def member_of(env: Env) -> Member:
    if env.member is None:
        raise PermissionDenied("你还不是本活动的成员。请使用协调员发给你的邀请链接加入。")
    return env.member


def same_campaign(env: Env, campaign_id: int | None, what: str) -> None:
    if env.campaign is None or campaign_id != env.campaign.id:
        raise NotFound(f"没有找到{what}。")


STALE_BUTTON = "这条消息上的按钮已过期（情况已有变化），本次操作未生效。请重新打开查看最新状态。"


@contextmanager
def button_version(version: int | None) -> Iterator[None]:
    """The domain checks a button's version; a stale one is said as a stale button."""
    try:
        yield
    except StaleVersion:
        if version is None:
            raise
        raise Conflict(STALE_BUTTON) from None


def replied_row(session: Session, env: Env, reply_to: int | None) -> BotMessage | None:
    if reply_to is None:
        return None
    row = lookup(session, chat_id=env.chat_info.id, message_id=reply_to)
    if row is None or env.campaign is None or row.campaign_id != env.campaign.id:
        return None
    return row


def reachable_liaisons(session: Session, *, campaign_id: int, unit_id: int) -> list[Member]:
    """A unit's liaisons the bot can write to privately (a private chat known, not blocked)."""
    return [m for m in queries.liaisons_of(session, campaign_id=campaign_id, unit_id=unit_id)
            if m.private_chat_id and m.reachable]


def notify_unit(session: Session, campaign_id: int, unit_id: int | None, text: str, subject: Subject | None) -> list[Out]:
    """Tell a unit's liaisons privately; the bound groups when none can be reached."""
    if unit_id is None:
        return []
    liaisons = reachable_liaisons(session, campaign_id=campaign_id, unit_id=unit_id)
    if liaisons:
        return [Out(text, chat_id=m.private_chat_id, subject=subject) for m in liaisons]
    return [Out(f"【{wording.esc(queries.unit_name(session, unit_id))}】{text}", chat_id=c.telegram_chat_id, subject=subject)
            for c in members.bound_groups(session, campaign_id)]

