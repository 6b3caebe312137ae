"""Telegram updates handled exactly once, across crashes and redelivery.

The poller (``bot.polling``) confirms an update to Telegram only after its
handling finished, so an update that was being handled when the process died is
delivered again. Its writes must not apply twice: the transaction that writes
for an update (one that recorded an audit row) also records the update here,
under the handling process's token, and a later process that meets the update
again finds the row and refuses it. Telegram keeps undelivered updates for 24
hours; rows older than that are pruned.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col

from models.tables import HandledUpdate, table_of

#: Telegram keeps an unconfirmed update for 24 hours; keep the marks a little longer.
KEEP = timedelta(hours=48)


def audited(session: Session) -> bool:
    """Whether this transaction recorded an audit row (``models.audit.record`` says so)."""
    return bool(session.info.get("audited"))


def handled_elsewhere(session: Session, *, update_id: int, process: str) -> bool:
    """Whether another process already committed writes for ``update_id``."""
    owner = session.execute(
        sa.select(col(HandledUpdate.process)).where(col(HandledUpdate.update_id) == update_id)
    ).scalar()
    return owner is not None and owner != process


def mark_handled(session: Session, *, update_id: int, process: str, now: datetime) -> bool:
    """Record that ``process`` wrote for ``update_id`` (in the caller's transaction).

    Returns False when another process holds the mark (its writes won: the caller
    must roll back). The same process marking twice is fine.
    """
    table = table_of(HandledUpdate)
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert(table) if dialect == "postgresql" else sqlite.insert(table)
    session.execute(insert.values(update_id=update_id, process=process, handled_at=now)
                    .on_conflict_do_nothing(index_elements=["update_id"]))
    return not handled_elsewhere(session, update_id=update_id, process=process)


def prune_handled(session: Session, *, now: datetime) -> int:
    """Forget marks older than :data:`KEEP`; returns how many."""
    result = session.exec(sa.delete(HandledUpdate).where(col(HandledUpdate.handled_at) < now - KEEP))
    return int(result.rowcount or 0)


def marked_by_others(session: Session, *, process: str, now: datetime) -> list[int]:
    """Updates another process wrote for in the last :data:`KEEP` (read at start-up)."""
    return [int(x) for x in session.execute(
        sa.select(col(HandledUpdate.update_id)).where(
            col(HandledUpdate.process) != process, col(HandledUpdate.handled_at) >= now - KEEP)
    ).scalars()]
