"""The outbox: what the bot owes somebody, and what became of it.

Life of a row::

    pending --claim--> claimed --sent--> sent
       ^                  |--429 / network error / 5xx--> pending (next_attempt_at)
       |                  |--too many attempts, Forbidden, chat not found--> failed
       |                  '--lease expired (crash)--> claimed again (at most one duplicate)
       |--merged into another row of the same chat--> merged (merged_into_id)
       '--no longer true (finished, snoozed, deadline moved, opted out)--> cancelled

Every function here opens its own transaction(s) (they are boundaries: the
dispatcher calls them around each network call), so a claim is committed before
the message goes out and a crash between the two costs at most one duplicate.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from infra.config import SchedulerConfig
from infra.db import transaction
from models.audit import Actor, record
from models.messages import remember
from models.tables import (
    AuditLog,
    Campaign,
    Chat,
    Member,
    Outbox,
    OutboxState,
    Role,
    SubjectKind,
)
from scheduler import timing
from scheduler.plan import (
    FINISHED,
    Kind,
    PlanInput,
    Planned,
    effective_snooze,
    idem_key,
    load_plan_input,
    plan,
)
from scheduler.render import Rendered, render_batch
from scheduler.stakes import points_at_stake_by_unit

log = logging.getLogger(__name__)

ACTOR = Actor.scheduler()


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
    table = Outbox.__table__  # type: ignore[attr-defined]
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


def active_campaigns(session: Session, campaign_ids: Iterable[int] | None = None) -> list[Campaign]:
    q = select(Campaign).where(Campaign.active).order_by(Campaign.id)
    if campaign_ids is not None:
        q = q.where(col(Campaign.id).in_(list(campaign_ids)))
    return list(session.exec(q))


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
    audit = AuditLog.__table__  # type: ignore[attr-defined]
    newest = (
        sa.select(sa.func.max(audit.c.id)).where(audit.c.campaign_id == Campaign.__table__.c.id)  # type: ignore[attr-defined]
        .scalar_subquery()
    )
    last: dict[int, Any] = {
        cid: top for cid, top in session.execute(
            sa.select(Campaign.__table__.c.id, newest).where(Campaign.__table__.c.id.in_(ids))  # type: ignore[attr-defined]
        )
    }
    unscoped = session.execute(
        sa.select(sa.func.max(audit.c.id)).where(audit.c.campaign_id.is_(None))
    ).scalar()
    m = Member.__table__  # type: ignore[attr-defined]
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
    ch = Chat.__table__  # type: ignore[attr-defined]
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


# ------------------------------------------------------------------------ claim


@dataclass(slots=True)
class Batch:
    """One message to send: a lead row and the rows merged into it."""

    campaign_id: int
    chat_id: int
    lead_id: int
    row_ids: list[int]
    attempts: int
    claimed_at: datetime
    rendered: Rendered
    member_id: int | None = None

    @property
    def is_private(self) -> bool:
        return self.chat_id > 0


@dataclass(slots=True)
class ClaimReport:
    batches: list[Batch] = field(default_factory=list)
    cancelled: int = 0
    failed: int = 0
    merged: int = 0
    held_quiet: int = 0
    held_backoff: int = 0


def _verdict(row: Outbox, inp: PlanInput, today: date) -> tuple[OutboxState, str] | None:
    """Why ``row`` must not be sent any more (state to put it in, and the reason), or None."""
    chat_id = row.telegram_chat_id
    group = next((c for c in inp.group_chats if c.telegram_chat_id == chat_id), None)
    member = next((m for m in inp.members if m.id == row.member_id), None) if row.member_id else None
    private_owner = next((m for m in inp.members if m.private_chat_id == chat_id), None)
    if group is not None and not group.reachable:
        return OutboxState.failed, f"群组无法送达：{group.unreachable_reason or '未知原因'}"
    if group is None:
        owner = member or private_owner
        if owner is None:
            return OutboxState.cancelled, "该会话已不再属于本活动"
        if not owner.reachable:
            return OutboxState.failed, f"私聊无法送达：{owner.unreachable_reason or '未知原因'}"
        if owner.private_chat_id != chat_id:
            return OutboxState.cancelled, "该成员的私聊会话已变更"
    if member is not None and not member.active:
        return OutboxState.cancelled, "收件人已被移出本活动"
    payload = row.payload or {}
    if row.kind in Kind.assignment_kinds:
        aid = payload.get("assignment_id")
        asg = next((a for a in inp.assignments if a.id == aid), None)
        if asg is None or asg.retired:
            return OutboxState.cancelled, "该单位已不再负责这项任务"
        if asg.state in FINISHED:
            word = "已提交" if asg.state.value == "submitted" else "已审核通过"
            return OutboxState.cancelled, f"发送前任务{word}，无需提醒"
        task = inp.tasks.get(asg.task_id)
        if task is None:
            return OutboxState.cancelled, "任务已删除"
        planned_for = payload.get("deadline")
        if planned_for and planned_for != task.deadline.isoformat():
            return OutboxState.cancelled, f"截止日期已由 {planned_for} 改为 {task.deadline.isoformat()}，按新日期重新安排"
        until = effective_snooze(inp.snoozes.get(asg.id or 0), task.deadline)
        local_day = payload.get("local_date")
        if row.kind == Kind.remind and until is not None and local_day and local_day <= until.isoformat():
            return OutboxState.cancelled, f"提醒已暂缓至 {until.isoformat()}"
        if member is not None and member.role == Role.liaison and group is None:
            if not member.private_nudges:
                return OutboxState.cancelled, "联络员已关闭私聊提醒"
            if member.unit_id != asg.unit_id:
                return OutboxState.cancelled, "联络员已不属于该单位"
        if row.kind == Kind.escalate and member is not None and member.role != Role.coordinator:
            return OutboxState.cancelled, "收件人已不是协调员"
    elif row.kind in Kind.phase_kinds:
        phase = next((p for p in inp.phases if p.id == payload.get("phase_id")), None)
        if phase is None:
            return OutboxState.cancelled, "工作阶段已删除"
        date_now = phase.start_date if row.kind == Kind.phase_start else phase.end_date
        if date_now is None or date_now.isoformat() != payload.get("date"):
            return OutboxState.cancelled, "工作阶段日期已变更"
    return None


def _cancel_inactive(session: Session, campaign_ids: Iterable[int] | None) -> int:
    """Rows still owed by a campaign that was deactivated end cancelled, with the reason."""
    q = (
        select(Outbox)
        .join(Campaign, Campaign.id == Outbox.campaign_id)
        .where(
            sa.not_(Campaign.active),
            col(Outbox.state).in_([OutboxState.pending, OutboxState.claimed, OutboxState.merged]),
        )
    )
    if campaign_ids is not None:
        q = q.where(col(Outbox.campaign_id).in_(list(campaign_ids)))
    rows = list(session.exec(q))
    for row in rows:
        row.state = OutboxState.cancelled
        row.claimed_at = None
        row.last_error = "活动已停用，不再发送"
        session.add(row)
    return len(rows)


def _due_condition(now: datetime, stale: datetime) -> Any:
    """Pending rows that fell due, and claimed rows whose lease ran out."""
    return sa.or_(
        sa.and_(Outbox.state == OutboxState.pending, col(Outbox.due_at) <= now),
        sa.and_(Outbox.state == OutboxState.claimed, col(Outbox.claimed_at) < stale),
    )


def _merged_children(session: Session, lead_ids: list[int], *, lock: bool) -> dict[int, list[Outbox]]:
    """The rows merged into each of ``lead_ids`` (by ``merged_into_id``, indexed).

    The state is checked here rather than in SQL: given ``state = 'merged'`` too,
    SQLite (no statistics) walks the state index over every merged row ever kept.
    """
    out: dict[int, list[Outbox]] = defaultdict(list)
    for start in range(0, len(lead_ids), 500):
        q = select(Outbox).where(col(Outbox.merged_into_id).in_(lead_ids[start:start + 500]))
        if lock:
            q = q.with_for_update()
        for row in session.exec(q.order_by(col(Outbox.id))):
            if row.state == OutboxState.merged and row.merged_into_id is not None:
                out[row.merged_into_id].append(row)
    return out


def claim(
    *,
    engine: Engine,
    now: datetime,
    config: SchedulerConfig | None = None,
    campaign_ids: Iterable[int] | None = None,
) -> ClaimReport:
    """Claim what is due, one batch per chat, one committed transaction per campaign.

    Due: pending rows with ``due_at <= now``, and claimed rows whose lease
    (``lease_seconds``) ran out. Rows that are no longer true are cancelled (or
    failed, for an unreachable chat) with the reason in ``last_error``; the rest
    of a chat's rows are merged into its lead row, which is rendered and marked
    claimed. Nothing is claimed for a campaign outside its allowed moments
    (working day, outside quiet hours); a chat whose retry is backing off waits.
    A transaction per campaign keeps SQLite's write lock short: people's writes
    at 09:00 wait for one campaign's claim, not the province's.
    """
    config = config or SchedulerConfig()
    report = ClaimReport()
    stale = now - timedelta(seconds=config.lease_seconds)
    with transaction(engine) as session:
        report.cancelled += _cancel_inactive(session, campaign_ids)
        wanted = {c.id for c in active_campaigns(session, campaign_ids)}
        with_due = session.exec(
            select(Outbox.campaign_id).where(_due_condition(now, stale)).distinct()
        ).all()
    for campaign_id in sorted(set(with_due) & wanted):
        with transaction(engine) as session:
            campaign = session.get(Campaign, campaign_id)
            if campaign is not None and campaign.active:
                _claim_campaign(session, campaign, now=now, stale=stale, config=config, report=report)
    return report


def _claim_campaign(
    session: Session,
    campaign: Campaign,
    *,
    now: datetime,
    stale: datetime,
    config: SchedulerConfig,
    report: ClaimReport,
) -> None:
    """:func:`claim` for one campaign, in the caller's transaction."""
    tz = timing.zone(campaign.timezone)
    local = timing.local_now(now, tz)
    due_q = (
        select(Outbox)
        .where(Outbox.campaign_id == campaign.id, _due_condition(now, stale))
        .order_by(col(Outbox.id))
        .with_for_update(skip_locked=True)
    )
    due = list(session.exec(due_q))
    if not due:
        return
    if not timing.is_allowed_moment(local, config.quiet_start, config.quiet_end):
        report.held_quiet += len(due)
        return
    inp = load_plan_input(session, campaign)
    today = local.date()
    stakes: dict[int, float] | None = None
    by_chat: dict[int, list[Outbox]] = defaultdict(list)
    for row in due:
        by_chat[row.telegram_chat_id].append(row)
    ready: dict[int, list[Outbox]] = {}
    for chat_id, rows in by_chat.items():
        if any(
            r.state == OutboxState.pending and r.next_attempt_at is not None and r.next_attempt_at > now
            for r in rows
        ):
            report.held_backoff += len(rows)
            continue
        ready[chat_id] = rows
    children = _merged_children(session, [r.id for rows in ready.values() for r in rows], lock=True)  # type: ignore[misc]
    for chat_id, rows in ready.items():
        valid: list[Outbox] = []
        for row in rows + [c for r in rows for c in children.get(r.id or 0, ())]:
            verdict = _verdict(row, inp, today)
            if verdict is None:
                valid.append(row)
                continue
            state, reason = verdict
            row.state = state
            row.last_error = reason
            row.claimed_at = None
            session.add(row)
            if state == OutboxState.cancelled:
                report.cancelled += 1
            else:
                report.failed += 1
        if not valid:
            continue
        lead = min(valid, key=lambda r: r.id or 0)
        for row in valid:
            if row is lead:
                continue
            if row.state != OutboxState.merged or row.merged_into_id != lead.id:
                report.merged += 1
            row.state = OutboxState.merged
            row.merged_into_id = lead.id
            row.claimed_at = None
            row.next_attempt_at = None
            session.add(row)
        if stakes is None:
            stakes = points_at_stake_by_unit(session, inp.campaign_id, today)
        rendered = render_batch(inp=inp, rows=valid, chat_id=chat_id, stakes=stakes, now=now, config=config)
        lead.state = OutboxState.claimed
        lead.claimed_at = now
        lead.attempts += 1
        lead.next_attempt_at = None
        lead.merged_into_id = None
        lead.payload = {**(lead.payload or {}), "render": rendered.to_json()}
        session.add(lead)
        session.flush()
        report.batches.append(
            Batch(
                campaign_id=inp.campaign_id,
                chat_id=chat_id,
                lead_id=lead.id,  # type: ignore[arg-type]
                row_ids=sorted(r.id for r in valid),  # type: ignore[misc]
                attempts=lead.attempts,
                claimed_at=now,
                rendered=rendered,
                member_id=lead.member_id,
            )
        )


# ---------------------------------------------------------------------- results


def _rows_of(session: Session, batch: Batch) -> tuple[Outbox | None, list[Outbox]]:
    lead = session.get(Outbox, batch.lead_id, with_for_update=True)
    return lead, _merged_children(session, [batch.lead_id], lock=False).get(batch.lead_id, [])


def mark_sent(*, engine: Engine, batch: Batch, message_id: int, now: datetime) -> None:
    """The message went out: the lead is sent, a BotMessage row lets replies route."""
    with transaction(engine) as session:
        lead, children = _rows_of(session, batch)
        if lead is None:
            return
        lead.state = OutboxState.sent
        lead.sent_at = now
        lead.telegram_message_id = message_id
        lead.last_error = None
        session.add(lead)
        r = batch.rendered
        remember(
            session,
            campaign_id=batch.campaign_id,
            chat_id=batch.chat_id,
            message_id=message_id,
            kind=r.subject_kind,
            subject_id=r.subject_id if r.subject_kind == SubjectKind.task else lead.id,
            now=now,
            unit_id=r.unit_id,
            for_member_id=batch.member_id if batch.is_private else None,
        )
        record(
            session=session,
            actor=ACTOR,
            action="nudge.sent",
            entity="outbox",
            entity_id=lead.id,
            at=now,
            campaign_id=batch.campaign_id,
            after={
                "chat_id": batch.chat_id,
                "message_id": message_id,
                "rows": len(children) + 1,
                "assignments": r.assignment_ids,
                "attempts": lead.attempts,
            },
        )


def backoff_seconds(attempts: int, config: SchedulerConfig) -> float:
    """Delay before attempt ``attempts + 1``: base * 2**(attempts-1), capped."""
    return min(config.retry_max_seconds, config.retry_base_seconds * 2 ** max(0, attempts - 1))


def mark_retry(
    *, engine: Engine, batch: Batch, error: str, now: datetime, config: SchedulerConfig
) -> OutboxState:
    """A transient failure: back off, or give up after ``max_attempts``."""
    with transaction(engine) as session:
        lead, children = _rows_of(session, batch)
        if lead is None:
            return OutboxState.failed
        if lead.attempts >= config.max_attempts:
            _fail(session, lead, children, f"{lead.attempts} 次发送均失败，已放弃：{error}", now, batch)
            return OutboxState.failed
        lead.state = OutboxState.pending
        lead.claimed_at = None
        lead.next_attempt_at = now + timedelta(seconds=backoff_seconds(lead.attempts, config))
        lead.last_error = f"第 {lead.attempts} 次发送失败：{error}"
        session.add(lead)
        return OutboxState.pending


def mark_flood(*, engine: Engine, batch: Batch, retry_after: float, now: datetime) -> None:
    """Telegram asked us to wait longer than we wait in-run: reschedule (not an attempt)."""
    with transaction(engine) as session:
        lead, _ = _rows_of(session, batch)
        if lead is None:
            return
        lead.state = OutboxState.pending
        lead.claimed_at = None
        lead.attempts = max(0, lead.attempts - 1)
        lead.next_attempt_at = now + timedelta(seconds=retry_after)
        lead.last_error = f"Telegram 限流，{retry_after:g} 秒后重试"
        session.add(lead)


def mark_failed(*, engine: Engine, batch: Batch, reason: str, now: datetime) -> None:
    """A permanent failure that is not about reachability (e.g. a refused message)."""
    with transaction(engine) as session:
        lead, children = _rows_of(session, batch)
        if lead is not None:
            _fail(session, lead, children, reason, now, batch)


def _fail(
    session: Session, lead: Outbox, children: list[Outbox], reason: str, now: datetime, batch: Batch
) -> None:
    for row in [lead, *children]:
        row.state = OutboxState.failed
        row.claimed_at = None
        row.last_error = reason
        session.add(row)
    record(
        session=session,
        actor=ACTOR,
        action="nudge.failed",
        entity="outbox",
        entity_id=lead.id,
        at=now,
        campaign_id=batch.campaign_id,
        after={"chat_id": batch.chat_id, "rows": len(children) + 1, "reason": reason},
    )


def mark_unreachable(*, engine: Engine, batch: Batch, reason: str, now: datetime) -> list[int]:
    """Forbidden / chat not found: the chat (or member) is unreachable, the rows fail,
    and the coordinator(s) are told (new outbox rows, due now). Returns their ids."""
    with transaction(engine) as session:
        lead, children = _rows_of(session, batch)
        if lead is not None:
            _fail(session, lead, children, f"无法送达：{reason}", now, batch)
        target = _mark_chat_unreachable(session, batch.chat_id, reason, now, batch.campaign_id)
        return _alert_coordinators(session, batch, target=target, reason=reason, now=now)


def _mark_chat_unreachable(
    session: Session, chat_id: int, reason: str, now: datetime, campaign_id: int
) -> str:
    """Flag the Chat and the members whose private chat this is; returns how to name it."""
    names: list[str] = []
    chat = session.exec(select(Chat).where(Chat.telegram_chat_id == chat_id)).first()
    if chat is not None:
        if chat.reachable or chat.unreachable_reason != reason:
            record(
                session=session, actor=ACTOR, action="chat.unreachable", entity="chat",
                entity_id=chat.id, at=now, campaign_id=chat.campaign_id,
                before={"reachable": chat.reachable}, after={"reachable": False, "reason": reason},
            )
        chat.reachable = False
        chat.unreachable_reason = reason
        session.add(chat)
        if chat.kind == "group":
            names.append(f"群「{chat.title or chat_id}」")
    for m in session.exec(select(Member).where(Member.private_chat_id == chat_id)):
        if m.reachable or m.unreachable_reason != reason:
            record(
                session=session, actor=ACTOR, action="member.unreachable", entity="member",
                entity_id=m.id, at=now, campaign_id=m.campaign_id,
                before={"reachable": m.reachable}, after={"reachable": False, "reason": reason},
            )
        m.reachable = False
        m.unreachable_reason = reason
        session.add(m)
        if m.campaign_id == campaign_id:
            role = {"coordinator": "协调员", "liaison": "联络员", "leader": "领导"}.get(str(m.role), "成员")
            names.append(f"{role}{m.display_name or m.telegram_user_id}的私聊")
    return "、".join(names) or f"会话 {chat_id}"


def _alert_coordinators(
    session: Session, batch: Batch, *, target: str, reason: str, now: datetime
) -> list[int]:
    campaign = session.get(Campaign, batch.campaign_id)
    if campaign is None:
        return []
    inp = load_plan_input(session, campaign)
    recipients: list[tuple[int, int | None]] = []
    for m in inp.coordinators():
        if m.private_chat_id is not None and m.reachable and m.private_chat_id != batch.chat_id:
            recipients.append((m.private_chat_id, m.id))
    if not recipients:
        recipients = [(g.telegram_chat_id, None) for g in inp.reachable_groups() if g.telegram_chat_id != batch.chat_id]
    if not recipients:
        log.warning("chat %s unreachable (%s) and no coordinator can be told", batch.chat_id, reason)
        return []
    today = timing.local_now(now, inp.tz).date()
    subject = f"chat:{batch.chat_id}"
    planned = [
        Planned(
            key=idem_key(chat_id=chat_id, subject=subject, kind=Kind.alert, local_date=today),
            campaign_id=batch.campaign_id,
            telegram_chat_id=chat_id,
            member_id=member_id,
            kind=Kind.alert,
            subject=subject,
            local_date=today,
            due_at=now,
            payload={
                "failed_chat_id": batch.chat_id,
                "target": target,
                "reason": reason,
                "local_date": today.isoformat(),
            },
        )
        for chat_id, member_id in recipients
    ]
    return materialise(session, planned, now=now)


# ----------------------------------------------------------------------- status


def counts(session: Session, campaign_id: int) -> dict[str, int]:
    """Outbox rows by state for one campaign (for /status)."""
    rows = session.exec(
        select(Outbox.state, sa.func.count())
        .where(Outbox.campaign_id == campaign_id)
        .group_by(Outbox.state)
    ).all()
    out = {s.value: 0 for s in OutboxState}
    for state, n in rows:
        out[str(state)] = int(n)
    return out


def failures(session: Session, campaign_id: int, limit: int = 20) -> list[Outbox]:
    """The most recent failed rows with their reasons."""
    return list(
        session.exec(
            select(Outbox)
            .where(Outbox.campaign_id == campaign_id, Outbox.state == OutboxState.failed)
            .order_by(col(Outbox.id).desc())
            .limit(limit)
        )
    )


def assignments_of_message(session: Session, *, chat_id: int, message_id: int) -> list[int]:
    """Assignment ids a sent nudge message is about (to route a reply to it)."""
    lead = session.exec(
        select(Outbox).where(
            Outbox.telegram_chat_id == chat_id,
            Outbox.telegram_message_id == message_id,
            Outbox.state == OutboxState.sent,
        )
    ).first()
    if lead is None:
        return []
    render = (lead.payload or {}).get("render") or {}
    return [int(x) for x in render.get("assignment_ids", [])]
