"""Members without the invite dance: for the console, demos and tests.

``add_demo_member`` makes a Telegram user a coordinator, leader or liaison of a
unit (by name or alias) directly in the database, audited as the CLI.
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session

from models import members as mm
from models.audit import Actor
from models.tables import Member, Role


def add_demo_member(
    session: Session,
    *,
    campaign_id: int,
    telegram_user_id: int,
    name: str,
    role: Role | str,
    now: datetime,
    unit: str | None = None,
    username: str | None = None,
    private_chat_id: int | None = None,
) -> Member:
    """Make ``telegram_user_id`` a member; ``unit`` (name or alias) for a liaison."""
    role = Role(role)
    unit_id = None
    if role == Role.liaison:
        if not unit:
            raise ValueError("a liaison needs a unit")
        unit_id = mm.find_unit(session, campaign_id=campaign_id, text=unit).id
    return mm.add_member(
        session, campaign_id=campaign_id, telegram_user_id=telegram_user_id, role=role,
        unit_id=unit_id, name=name, username=username, private_chat_id=private_chat_id,
        actor=Actor.cli(), now=now,
    )
