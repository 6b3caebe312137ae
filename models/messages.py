"""What the bot's messages are about, so that a reply to one can be understood.

Every message the bot sends about a task, an assignment, a score item, a
criterion or an evidence file is remembered here (chat, message id, subject). A
liaison answers by replying to it; :func:`lookup` tells the bot what the reply is
about. A ``return_reason`` prompt refers to the *BotMessage row* of the review
message whose 退回 button was pressed (``subject_id``), which in turn names the
assignment, claim or evidence being returned.
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, select

from models.tables import BotMessage, SubjectKind


def remember(
    session: Session,
    *,
    campaign_id: int,
    chat_id: int,
    message_id: int,
    kind: SubjectKind,
    subject_id: int | None,
    now: datetime,
    unit_id: int | None = None,
    for_member_id: int | None = None,
) -> BotMessage:
    """Record (or update) what bot message ``message_id`` in ``chat_id`` is about."""
    row = lookup(session, chat_id=chat_id, message_id=message_id)
    if row is None:
        row = BotMessage(
            campaign_id=campaign_id, telegram_chat_id=chat_id, message_id=message_id,
            subject_kind=kind, subject_id=subject_id, unit_id=unit_id,
            for_member_id=for_member_id, created_at=now,
        )
        session.add(row)
    else:
        row.campaign_id = campaign_id
        row.subject_kind = kind
        row.subject_id = subject_id
        row.unit_id = unit_id
        row.for_member_id = for_member_id
        row.created_at = now
    session.flush()
    return row


def lookup(session: Session, *, chat_id: int, message_id: int) -> BotMessage | None:
    """What the bot's message ``message_id`` in ``chat_id`` is about, if recorded."""
    return session.exec(
        select(BotMessage).where(
            BotMessage.telegram_chat_id == chat_id, BotMessage.message_id == message_id
        )
    ).first()


def target_of(session: Session, prompt: BotMessage) -> BotMessage | None:
    """For a ``return_reason`` prompt: the review message it refers to."""
    if prompt.subject_kind != SubjectKind.return_reason or prompt.subject_id is None:
        return None
    return session.get(BotMessage, prompt.subject_id)
