"""The sweep: plan every active campaign and write what fell due into the outbox.

:func:`sweep` asks :func:`scheduler.plan.plan` for each active campaign and
:func:`materialise` inserts the planned nudges whose idempotency key is new, one
transaction per campaign. A :class:`SweepMemo` skips campaigns whose plan cannot
have changed since the last sweep (:func:`fingerprints`). Claiming and marking
the rows is :mod:`scheduler.outbox`'s.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from infra.config import SchedulerConfig
from infra.db import transaction
from models.members import active_campaigns
from models.tables import AuditLog, Campaign, Chat, Member, Outbox, OutboxState, table_of
from scheduler import timing
from scheduler.plan import Planned, load_plan_input, plan

# ------------------------------------------------------------------ materialise


def materialise(session: Session, planned: Iterable[Planned], *, now: datetime) -> list[int]:
    """Insert the planned nudges whose key is new; returns the ids of the new rows.

    ``INSERT ... ON CONFLICT (idem_key) DO NOTHING`` on SQLite and PostgreSQL:
    a nudge already in the outbox, whatever its state, is never added again.
    """
    planned = list(planned)
    if not planned:
        return []
    # Skip what is surely there already (cheap: one indexed read), then let the
    # unique key settle races with a concurrent sweep.
    earliest = min(p.due_at for p in planned) - timedelta(days=1)
    existing = set(
        session.exec(
            select(Outbox.idem_key).where(
                col(Outbox.campaign_id).in_({p.campaign_id for p in planned}),
                col(Outbox.due_at) >= earliest,
            )
        )
    )
    rows = [
        {
            "campaign_id": p.campaign_id,
            "idem_key": p.key,
            "telegram_chat_id": p.telegram_chat_id,
            "member_id": p.member_id,
            "kind": p.kind,
            "subject": p.subject,
            "payload": p.payload,
            "due_at": p.due_at,
            "state": OutboxState.pending,
            "attempts": 0,
            "created_at": now,
        }
        for p in planned
        if p.key not in existing
    ]
    if not rows:
        return []
    dialect = session.get_bind().dialect.name
    table = table_of(Outbox)
    insert: Any = postgresql.insert(table) if dialect == "postgresql" else sqlite.insert(table)
    # One executemany: SQLAlchemy batches it ("insertmanyvalues", RETURNING kept) with
    # one cached compiled statement; building a 500-row VALUES per chunk cost 3x more.
    stmt = insert.on_conflict_do_nothing(index_elements=["idem_key"]).returning(table.c.id)
    return [int(x) for x in session.execute(stmt, rows).scalars()]


@dataclass(slots=True)
class SweepReport:
    planned: int = 0
    inserted: int = 0
    campaigns: int = 0
    skipped: int = 0

    def __iadd__(self, other: SweepReport) -> SweepReport:
        self.planned += other.planned
        self.inserted += other.inserted
        self.campaigns += other.campaigns
        self.skipped += other.skipped
        return self


Fingerprint = tuple[Any, ...]


def fingerprints(session: Session, campaigns: Iterable[Campaign]) -> dict[int, Fingerprint]:
    """What a campaign's plan depends on, summarised in a few indexed reads.

    Every write that matters to the plan is audited (deadlines, states, snoozes,
    members, bindings, preferences), so the campaign's newest audit row id moves
    when it changes; rows written without a campaign (``campaign_id IS NULL``)
    count for every campaign. Where to reach people is bookkeeping written
    without an audit row (a member's private chat and reachability, a group's
    reachability), so those columns are summed per campaign as well.
    """
    ids = [c.id for c in campaigns if c.id is not None]
    if not ids:
        return {}
    audit = table_of(AuditLog)
    campaign = table_of(Campaign)
    newest = (
        sa.select(sa.func.max(audit.c.id)).where(audit.c.campaign_id == campaign.c.id)
        .scalar_subquery()
    )
    last: dict[int, Any] = {
        cid: top for cid, top in session.execute(
            sa.select(campaign.c.id, newest).where(campaign.c.id.in_(ids))
        )
    }
    unscoped = session.execute(
        sa.select(sa.func.max(audit.c.id)).where(audit.c.campaign_id.is_(None))
    ).scalar()
    m = table_of(Member)
    people: dict[int, Any] = {
        row[0]: tuple(row[1:])
        for row in session.execute(
            sa.select(
                m.c.campaign_id,
                sa.func.count(),
                sa.func.sum(sa.case((m.c.reachable, 1), else_=0)),
                sa.func.sum(sa.func.coalesce(m.c.private_chat_id, 0)),
            ).where(m.c.campaign_id.in_(ids)).group_by(m.c.campaign_id)
        )
    }
    ch = table_of(Chat)
    chats: dict[int, Any] = {
        row[0]: tuple(row[1:])
        for row in session.execute(
            sa.select(
                ch.c.campaign_id,
                sa.func.count(),
                sa.func.sum(sa.case((ch.c.reachable, 1), else_=0)),
                sa.func.sum(ch.c.telegram_chat_id),
            ).where(ch.c.campaign_id.in_(ids)).group_by(ch.c.campaign_id)
        )
    }
    return {
        c.id: (last.get(c.id), unscoped, c.timezone, c.created_at, people.get(c.id), chats.get(c.id))
        for c in campaigns
        if c.id is not None
    }


@dataclass(slots=True)
class SweepMemo:
    """What each campaign's last plan saw (kept by the scheduler between sweeps).

    A campaign is planned again when its :func:`fingerprints` entry changed, when
    a moment at which nudges fall due (``nudge_time`` / ``digest_time`` of a day,
    moved out of quiet hours as :func:`scheduler.timing.due_instant` does) passed
    since its last plan, when the clock went backwards, or when ``replan_every``
    elapsed. Otherwise the plan would list exactly the nudges it listed last time,
    all of them already in the outbox: the sweep skips the campaign.
    """

    replan_every: timedelta = timedelta(seconds=900)
    seen: dict[int, tuple[Fingerprint, datetime]] = field(default_factory=dict)

    def fresh(self, campaign: Campaign, fp: Fingerprint, *, now: datetime, config: SchedulerConfig) -> bool:
        """Whether ``campaign``'s last plan still holds at ``now``."""
        if self.replan_every <= timedelta(0) or campaign.id not in self.seen:
            return False
        last_fp, at = self.seen[campaign.id]
        if last_fp != fp or now < at or now - at >= self.replan_every:
            return False
        return not _due_moment_between(campaign, at, now, config)

    def remember(self, campaign_id: int, fp: Fingerprint, *, now: datetime) -> None:
        self.seen[campaign_id] = (fp, now)


def _due_moment_between(campaign: Campaign, since: datetime, now: datetime, config: SchedulerConfig) -> bool:
    """Whether a moment at which a nudge of ``campaign`` can fall due lies in ``(since, now]``."""
    tz = timing.zone(campaign.timezone)
    first = timing.local_now(since, tz).date() - timedelta(days=2)  # quiet hours move moments forward
    last = timing.local_now(now, tz).date()
    day = first
    while day <= last:
        for moment in {config.nudge_time, config.digest_time}:
            instant = timing.due_instant(day, moment, tz, config.quiet_start, config.quiet_end)
            if since < instant <= now:
                return True
        day += timedelta(days=1)
    return False


def sweep(
    *,
    engine: Engine,
    now: datetime,
    config: SchedulerConfig | None = None,
    campaign_ids: Iterable[int] | None = None,
    memo: SweepMemo | None = None,
) -> SweepReport:
    """Materialise every nudge due at ``now`` into the outbox (one transaction per campaign).

    With a ``memo`` (the scheduler keeps one), campaigns whose plan cannot have
    changed since the last sweep are skipped (see :class:`SweepMemo`).
    """
    config = config or SchedulerConfig()
    report = SweepReport()
    with transaction(engine) as session:
        campaigns = active_campaigns(session, campaign_ids)
        prints = fingerprints(session, campaigns) if memo is not None else {}
    for campaign in campaigns:
        assert campaign.id is not None
        fp = prints.get(campaign.id, ())
        if memo is not None and memo.fresh(campaign, fp, now=now, config=config):
            report.skipped += 1
            continue
        with transaction(engine) as session:
            inp = load_plan_input(session, campaign)
            due = plan(inp, now=now, config=config)
            new = materialise(session, due, now=now)
        if memo is not None:
            memo.remember(campaign.id, fp, now=now)
        report += SweepReport(planned=len(due), inserted=len(new), campaigns=1)
    return report
