"""Private nudges: a liaison who started the bot privately may opt in (``/nudges on|off``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, col, select

from models.audit import Actor, record
from models.errors import InvalidInput, PermissionDenied
from models.tables import Member, Role

ON_WORDS = frozenset({"on", "开", "开启", "打开", "1", "yes"})
OFF_WORDS = frozenset({"off", "关", "关闭", "0", "no"})


@dataclass(frozen=True, slots=True)
class NudgePrefResult:
    members: list[Member]
    on: bool
    message: str


def parse_switch(arg: str | None) -> bool | None:
    """``on``/``off`` (or 开/关); None when no argument was given (show the state)."""
    if arg is None or not arg.strip():
        return None
    word = arg.strip().lower()
    if word in ON_WORDS:
        return True
    if word in OFF_WORDS:
        return False
    raise InvalidInput("用法：/nudges on 开启私聊提醒，/nudges off 关闭私聊提醒。")


def set_private_nudges(
    session: Session,
    *,
    telegram_user_id: int,
    on: bool | None,
    now: datetime,
    private_chat_id: int | None = None,
    campaign_id: int | None = None,
) -> NudgePrefResult:
    """Turn private nudges on or off for the liaison(s) with this Telegram account.

    ``private_chat_id``: the command came from the private chat with the bot, so
    the bot can write there (recorded; also marks the member reachable again).
    From a group, the member must have started the bot privately before.
    ``on=None`` only reports the current setting. Applies to every active
    liaison membership of the account (or only ``campaign_id``'s).
    """
    q = select(Member).where(Member.telegram_user_id == telegram_user_id, Member.active)
    if campaign_id is not None:
        q = q.where(Member.campaign_id == campaign_id)
    members = list(session.exec(q.order_by(col(Member.id))))
    if not members:
        raise PermissionDenied("你还不是本活动的成员，不能设置提醒。请向协调员索取邀请链接。")
    liaisons = [m for m in members if m.role == Role.liaison]
    if not liaisons:
        raise InvalidInput("私聊提醒供各单位联络员使用；协调员会直接收到逾期督办消息，无需设置。")
    if on is None:
        state = any(m.private_nudges for m in liaisons)
        return NudgePrefResult(
            liaisons, state,
            f"私聊提醒目前{'已开启' if state else '未开启'}。发送 /nudges on 开启，/nudges off 关闭。",
        )
    for m in liaisons:
        if private_chat_id is not None:
            m.private_chat_id = private_chat_id
            m.reachable = True
            m.unreachable_reason = None
        if on and m.private_chat_id is None:
            raise InvalidInput("请先私聊机器人并发送 /start，再开启私聊提醒（机器人不能主动发起私聊）。")
        before = m.private_nudges
        m.private_nudges = on
        session.add(m)
        record(
            session=session,
            actor=Actor(kind="telegram", member_id=m.id, telegram_id=telegram_user_id),
            action="member.private_nudges",
            entity="member",
            entity_id=m.id,
            at=now,
            campaign_id=m.campaign_id,
            before={"private_nudges": before},
            after={"private_nudges": on},
        )
    session.flush()
    if on:
        text = "已开启私聊提醒：本单位任务临近截止或逾期时，机器人会同时私聊提醒你。发送 /nudges off 可关闭。"
    else:
        text = "已关闭私聊提醒；群内提醒不受影响。发送 /nudges on 可重新开启。"
    return NudgePrefResult(liaisons, on, text)
