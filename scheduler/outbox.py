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
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from infra.config import SchedulerConfig
from infra.db import transaction
from models import supervision
from models.audit import Actor, record
from models.members import active_campaigns
from models.messages import remember
from models.tables import (
    Bulletin,
    Campaign,
    Chat,
    Member,
    Outbox,
    OutboxState,
    SubjectKind,
    saved_id,
)
from models.wording import quoted
from reports.official import bulletin_docx, monthly_docx
from reports.supervision import bulletin_data, bulletin_text, monthly_data, monthly_text
from scheduler import timing
from scheduler.plan import Kind, load_plan_input, not_owed, plan_alerts
from scheduler.render import Rendered, render_batch
from scheduler.stakes import points_at_stake_by_unit
from scheduler.sweep import materialise

log = logging.getLogger(__name__)

ACTOR = Actor.scheduler()
#: Rendered subjects that name a row of their own (a reply routes to it), not the outbox row.
SUBJECT_ROWS = frozenset({SubjectKind.task, SubjectKind.instruction, SubjectKind.supervision})


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


def _cancel_inactive(session: Session, campaign_ids: Iterable[int] | None) -> int:
    """Rows still owed by a campaign that was deactivated end cancelled, with the reason."""
    q = (
        select(Outbox)
        .join(Campaign, col(Campaign.id) == col(Outbox.campaign_id))
        .where(
            sa.not_(col(Campaign.active)),
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
        sa.and_(col(Outbox.state) == OutboxState.pending, col(Outbox.due_at) <= now),
        sa.and_(col(Outbox.state) == OutboxState.claimed, col(Outbox.claimed_at) < stale),
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
    texts: dict[str, str] | None = None
    documents: dict[str, tuple[str, bytes]] = {}
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
    children = _merged_children(
        session, [saved_id(r) for rows in ready.values() for r in rows], lock=True
    )
    for chat_id, rows in ready.items():
        valid: list[Outbox] = []
        for row in rows + [c for r in rows for c in children.get(r.id or 0, ())]:
            verdict = not_owed(row, inp, today)
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
        kinds = {r.kind for r in valid}
        if config.digest_bulletin and Kind.digest in kinds:
            kinds.add(Kind.bulletin)
        wanted = kinds & {Kind.bulletin, Kind.monthly} - set(texts or {})
        if wanted:
            written, docs = _reports(session, inp.campaign_id, today, now, valid, wanted=wanted)
            texts = {**(texts or {}), **written}
            documents.update(docs)
        rendered = render_batch(inp=inp, rows=valid, chat_id=chat_id, stakes=stakes, now=now, config=config,
                                texts=texts, documents=documents)
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
                lead_id=saved_id(lead),
                row_ids=sorted(saved_id(r) for r in valid),
                attempts=lead.attempts,
                claimed_at=now,
                rendered=rendered,
                member_id=lead.member_id,
            )
        )


def _reports(session: Session, campaign_id: int, today: date, now: datetime, rows: list[Outbox], *,
             wanted: set[str]) -> tuple[dict[str, str], dict[str, tuple[str, bytes]]]:
    """The ``wanted`` 通报 and 月报 texts and documents owed by ``rows`` (a digest carries the
    通报); each issue is kept (Bulletin) once per week or month, and said again the same."""
    texts: dict[str, str] = {}
    docs: dict[str, tuple[str, bytes]] = {}
    for kind, period_key in ((Kind.bulletin, "week_of"), (Kind.monthly, "month")):
        if kind not in wanted:
            continue
        periods = {str((r.payload or {}).get(period_key)) for r in rows
                   if r.kind == kind or (kind == Kind.bulletin and r.kind == Kind.digest)}
        if not periods:
            continue
        period = max(periods)
        issued = [b for b in session.exec(select(Bulletin).where(
            Bulletin.campaign_id == campaign_id, Bulletin.kind == kind)) if b.snapshot.get("period") == period]
        before_id = issued[0].id if issued else None
        if kind == Kind.bulletin:
            data = bulletin_data(session=session, campaign_id=campaign_id, today=today, before_id=before_id)
            texts[kind] = bulletin_text(data)
            docs[kind] = (f"{data.title}（第{data.issue}期）.docx", bulletin_docx(data))
            snap = data.snapshot()
        else:
            monthly = monthly_data(session=session, campaign_id=campaign_id, today=today, before_id=before_id)
            texts[kind] = monthly_text(monthly)
            docs[kind] = (f"{monthly.title}.docx", monthly_docx(monthly))
            snap = {"score": monthly.score}
        if not issued:
            supervision.issue_bulletin(session=session, campaign_id=campaign_id, kind=kind,
                                       snapshot={**snap, "period": period}, actor=ACTOR, now=now,
                                       after={"period": period})
    return texts, docs


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
            subject_id=r.subject_id if r.subject_kind in SUBJECT_ROWS else lead.id,
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
            names.append(f"群{quoted(str(chat.title or chat_id))}")
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
    planned = plan_alerts(inp, failed_chat_id=batch.chat_id, target=target, reason=reason, now=now)
    if not planned:
        log.warning("chat %s unreachable (%s) and no coordinator can be told", batch.chat_id, reason)
        return []
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
