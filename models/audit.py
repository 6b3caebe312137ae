"""The append-only audit log. Every write in qcbot records itself here."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from enum import Enum
from typing import Any

from sqlmodel import Session

from models.tables import AuditLog


@dataclass(frozen=True, slots=True)
class Actor:
    """Who did something: a member through Telegram, the CLI, or the scheduler."""

    kind: str  # "telegram", "cli", "scheduler", "system"
    member_id: int | None = None
    telegram_id: int | None = None

    @classmethod
    def cli(cls) -> Actor:
        return cls(kind="cli")

    @classmethod
    def system(cls) -> Actor:
        return cls(kind="system")

    @classmethod
    def scheduler(cls) -> Actor:
        return cls(kind="scheduler")


def _jsonable(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [_jsonable(v) for v in value]
    return value


def snapshot(row: Any, fields: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """The named fields of ``row`` as JSON-ready values, for before/after."""
    return {name: _jsonable(getattr(row, name)) for name in fields}


def record(
    *,
    session: Session,
    actor: Actor,
    action: str,
    entity: str,
    entity_id: int | None,
    at: datetime,
    campaign_id: int | None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    note: str | None = None,
) -> AuditLog:
    """Append one audit row to the session (the caller's transaction commits it)."""
    row = AuditLog(
        campaign_id=campaign_id,
        at=at,
        actor_member_id=actor.member_id,
        actor_telegram_id=actor.telegram_id,
        actor_kind=actor.kind,
        action=action,
        entity=entity,
        entity_id=entity_id,
        before=_jsonable(before) if before is not None else None,
        after=_jsonable(after) if after is not None else None,
        note=note,
    )
    session.add(row)
    session.info["audited"] = True  # models.inbox: this transaction wrote
    return row
