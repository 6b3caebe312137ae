"""The store: SQLModel tables of qcbot.

Every row belongs to one campaign (a deployment may run several districts'
campaigns), except chats the bot has seen but that nobody bound yet. Points are
floats on purpose: the official table only uses halves (0.5, 1.5), which binary
floating point represents exactly, and ``seed check`` refuses anything finer.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from enum import Enum, StrEnum
from typing import Any, Protocol, TypeVar

import sqlalchemy as sa
from sqlmodel import JSON, Field, SQLModel

from infra.types import UTCDateTime, utcnow


def enum_type(enum_cls: type[Enum]) -> sa.Enum:
    """A portable enum column: VARCHAR on every backend, members on read."""
    return sa.Enum(
        enum_cls,
        native_enum=False,
        create_constraint=False,
        length=24,
        values_callable=lambda e: [m.value for m in e],
    )


def ts_field(*, nullable: bool = True, index: bool = False, default_now: bool = False) -> Any:
    """An aware timestamp column (see ``UTCDateTime``)."""
    kwargs: dict[str, Any] = {"sa_type": UTCDateTime(), "nullable": nullable, "index": index}
    if default_now:
        kwargs["default_factory"] = utcnow
    else:
        kwargs["default"] = None
    return Field(**kwargs)


class _Row(Protocol):
    @property
    def id(self) -> int | None: ...


_R = TypeVar("_R", bound=_Row)


def saved_id(row: _Row) -> int:
    """``row.id`` of a row read from (or flushed to) the database, where it is never None."""
    if row.id is None:
        raise ValueError(f"{type(row).__name__} has no id yet: it was never flushed")
    return row.id


def by_id(rows: Iterable[_R]) -> dict[int, _R]:
    """Saved rows by their id."""
    return {saved_id(r): r for r in rows}


def table_of(model: type[SQLModel]) -> sa.Table:
    """The Core table of a table model, for Core statements (bulk inserts, plain-row reads)."""
    table = model.__table__  # type: ignore[attr-defined]  # SQLModel sets it on table models, undeclared
    assert isinstance(table, sa.Table), f"{model.__name__} is not a table model"
    return table


# --------------------------------------------------------------------------- enums


class Role(StrEnum):
    coordinator = "coordinator"
    liaison = "liaison"
    leader = "leader"


class ChatKind(StrEnum):
    private = "private"
    group = "group"


class AssignmentState(StrEnum):
    not_started = "not_started"
    in_progress = "in_progress"
    submitted = "submitted"
    approved = "approved"


class AssessmentState(StrEnum):
    none = "none"
    claimed = "claimed"
    verified = "verified"
    rejected = "rejected"


class EvidenceState(StrEnum):
    submitted = "submitted"
    accepted = "accepted"
    returned = "returned"
    withdrawn = "withdrawn"


class OutboxState(StrEnum):
    pending = "pending"
    claimed = "claimed"
    sent = "sent"
    failed = "failed"
    merged = "merged"
    cancelled = "cancelled"


class SubjectKind(StrEnum):
    """What a bot message is about, so that a reply to it can be understood."""

    task = "task"
    assignment = "assignment"
    item = "item"
    criterion = "criterion"
    evidence = "evidence"
    review = "review"
    return_reason = "return_reason"
    nudge = "nudge"
    digest = "digest"
    #: "Which task is this file for?" — asked about a file sent without a reply; ``subject_id``
    #: is the message id of that file (the question replies to it), ``for_member_id`` its sender.
    file = "file"
    #: The plan workbook /plan sent: a workbook replying to it is a new plan (``subject_id``: the
    #: plan.export audit row, which holds the digest of the plan it was taken from).
    plan = "plan"
    #: The change a returned workbook makes, with 确认导入 / 取消 (``subject_id``: its preview's audit row).
    plan_preview = "plan_preview"
    #: A leader's instruction (批示): a liaison's reply to it is its 落实情况.
    instruction = "instruction"
    #: A numbered supervision notice (督办单): a liaison's reply to it is the unit's answer.
    supervision = "supervision"
    #: A unit's card (/unit): a leader's reply to it is an instruction to that unit.
    unit = "unit"


class InstructionState(StrEnum):
    """A 批示: open until the unit answers (answered), then closed by a leader or the coordinator."""

    open = "open"
    answered = "answered"
    closed = "closed"


class SupervisionState(StrEnum):
    """A 督办单 as stored; "overdue" is derived (reply-by date passed while issued)."""

    issued = "issued"
    answered = "answered"
    closed = "closed"


# ------------------------------------------------------------------ campaign plan


class Campaign(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    slug: str = Field(max_length=64, unique=True, index=True)
    name: str = Field(max_length=200)
    district: str = Field(max_length=100)
    doc_number: str | None = Field(default=None, max_length=100)
    doc_title: str | None = Field(default=None, max_length=300)
    doc_date: date | None = None
    issuer: str | None = Field(default=None, max_length=300)
    timezone: str = Field(default="Asia/Shanghai", max_length=64)
    # Dates of the seed were moved by this many days on import (--shift-to).
    date_shift_days: int = 0
    # Totals the document states (category totals live on ScoreCategory).
    stated_base_points: float = 100
    stated_bonus_points: float = 10
    seed_sha256: str | None = Field(default=None, max_length=64)
    seed_warnings: list[dict[str, Any]] = Field(default_factory=list, sa_type=JSON)
    active: bool = True
    created_at: datetime = ts_field(nullable=False, default_now=True)
    updated_at: datetime = ts_field(nullable=False, default_now=True)


class Phase(SQLModel, table=True):
    __table_args__ = (sa.UniqueConstraint("campaign_id", "no"),)

    id: int | None = Field(default=None, primary_key=True)
    campaign_id: int = Field(foreign_key="campaign.id", index=True)
    no: int
    name: str = Field(max_length=200)
    description: str = ""
    start_date: date | None = None
    end_date: date


class UnitKind(StrEnum):
    """What kind of body a responsible unit is (the plan workbook's 类型 column)."""

    bureau = "区直单位"
    subdistrict = "街道"
    stationed = "驻区单位"


class Unit(SQLModel, table=True):
    """A responsible unit (责任单位): a bureau of the district."""

    __table_args__ = (sa.UniqueConstraint("campaign_id", "name"),)

    id: int | None = Field(default=None, primary_key=True)
    campaign_id: int = Field(foreign_key="campaign.id", index=True)
    name: str = Field(max_length=100)
    full_name: str | None = Field(default=None, max_length=200)
    aliases: list[str] = Field(default_factory=list, sa_type=JSON)
    # Member unit of the district's 质量强区 leading group.
    is_member: bool = True
    # The lead office (区市场监管局 / 领导小组办公室).
    is_lead: bool = False
    sort_order: int = 0
    kind: UnitKind = Field(default=UnitKind.bureau, sa_type=enum_type(UnitKind))
    # The plan no longer lists the unit (已撤销): kept with its history, owes nothing new.
    retired: bool = False


class TaskGroup(SQLModel, table=True):
    """One of the "六个一" groups of Annex 1."""

    __table_args__ = (sa.UniqueConstraint("campaign_id", "no"),)

    id: int | None = Field(default=None, primary_key=True)
    campaign_id: int = Field(foreign_key="campaign.id", index=True)
    no: int
    title: str


class Task(SQLModel, table=True):
    __table_args__ = (sa.UniqueConstraint("campaign_id", "no"),)

    id: int | None = Field(default=None, primary_key=True)
    campaign_id: int = Field(foreign_key="campaign.id", index=True)
    group_id: int = Field(foreign_key="taskgroup.id")
    no: int
    title: str
    detail: str = ""
    deadline: date = Field(index=True)
    # The deadline the imported plan gave; ``deadline`` may be extended.
    planned_deadline: date
    # The plan no longer lists the task (已撤销): kept with its history and its units' records.
    retired: bool = False
    # The unit that leads the task (牵头单位): the first the plan lists.
    lead_unit_id: int | None = Field(default=None, foreign_key="unit.id")


class Assignment(SQLModel, table=True):
    """A task as one responsible unit carries it; progress is kept per unit."""

    __table_args__ = (
        sa.UniqueConstraint("task_id", "unit_id"),
        sa.Index("ix_assignment_campaign_state", "campaign_id", "state"),
    )

    id: int | None = Field(default=None, primary_key=True)
    campaign_id: int = Field(foreign_key="campaign.id", index=True)
    task_id: int = Field(foreign_key="task.id", index=True)
    unit_id: int = Field(foreign_key="unit.id", index=True)
    state: AssignmentState = Field(
        default=AssignmentState.not_started, sa_type=enum_type(AssignmentState)
    )
    percent: int = 0
    note: str | None = None
    return_reason: str | None = None
    submitted_at: datetime | None = ts_field()
    approved_at: datetime | None = ts_field()
    # The seed no longer lists this unit for the task; kept, with its history.
    retired: bool = False
    version: int = 0
    updated_at: datetime = ts_field(nullable=False, default_now=True)


class ScoreCategory(SQLModel, table=True):
    __table_args__ = (sa.UniqueConstraint("campaign_id", "no"),)

    id: int | None = Field(default=None, primary_key=True)
    campaign_id: int = Field(foreign_key="campaign.id", index=True)
    no: int
    name: str = Field(max_length=100)
    # The total the document states for the category; None where it states none.
    stated_points: float | None = None
    is_bonus: bool = False


class ScoreItem(SQLModel, table=True):
    __table_args__ = (sa.UniqueConstraint("campaign_id", "no"),)

    id: int | None = Field(default=None, primary_key=True)
    campaign_id: int = Field(foreign_key="campaign.id", index=True)
    category_id: int = Field(foreign_key="scorecategory.id", index=True)
    no: int
    subcategory: str | None = Field(default=None, max_length=100)
    # The item's whole 评分方法 text as the document gives it.
    text: str = ""
    max_points: float
    deadline: date | None = None
    planned_deadline: date | None = None
    deadline_note: str | None = None
    # Assigned to every member unit of the leading group (区质量强区领导小组成员单位).
    all_members: bool = False
    note: str | None = None


class ItemUnit(SQLModel, table=True):
    """Which units are responsible for a score item."""

    item_id: int = Field(foreign_key="scoreitem.id", primary_key=True)
    unit_id: int = Field(foreign_key="unit.id", primary_key=True, index=True)


class Criterion(SQLModel, table=True):
    """A sub-criterion of a score item, worth points when met."""

    __table_args__ = (sa.UniqueConstraint("item_id", "no"),)

    id: int | None = Field(default=None, primary_key=True)
    campaign_id: int = Field(foreign_key="campaign.id", index=True)
    item_id: int = Field(foreign_key="scoreitem.id", index=True)
    no: int
    text: str
    points: float
    # Criteria sharing a tier group are alternatives: only the highest met counts.
    tier_group: str | None = Field(default=None, max_length=32)
    not_attainable: bool = False
    not_attainable_reason: str | None = None
    # How the criterion reads standing alone where the document's clause does not
    # (``及实施情况`` → ``促进质量提升发展政策性文件的实施情况``); ``text`` stays verbatim.
    label: str | None = None

    @property
    def standalone(self) -> str:
        """What a message says of the criterion: its label, else the document's words."""
        return self.label or self.text


class TaskCriterion(SQLModel, table=True):
    """A task of Annex 1 whose work meets a criterion of Annex 2 (approving the task offers
    to claim the criterion with the task's evidence, so nobody reports the same work twice)."""

    task_id: int = Field(foreign_key="task.id", primary_key=True)
    criterion_id: int = Field(foreign_key="criterion.id", primary_key=True, index=True)
    # Proposed by the seed where the texts match (not yet confirmed by the coordinator).
    suggested: bool = True


class CriterionUnit(SQLModel, table=True):
    """Which units owe a sub-criterion (defaults to the item's units)."""

    criterion_id: int = Field(foreign_key="criterion.id", primary_key=True)
    unit_id: int = Field(foreign_key="unit.id", primary_key=True, index=True)


# ------------------------------------------------------------------------ people


class Member(SQLModel, table=True):
    __table_args__ = (sa.UniqueConstraint("campaign_id", "telegram_user_id"),)

    id: int | None = Field(default=None, primary_key=True)
    campaign_id: int = Field(foreign_key="campaign.id", index=True)
    telegram_user_id: int = Field(sa_type=sa.BigInteger, index=True)
    display_name: str = Field(default="", max_length=200)
    username: str | None = Field(default=None, max_length=64)
    role: Role = Field(sa_type=enum_type(Role))
    unit_id: int | None = Field(default=None, foreign_key="unit.id", index=True)
    active: bool = True
    # The private chat with the bot, once the member started it there.
    private_chat_id: int | None = Field(default=None, sa_type=sa.BigInteger)
    private_nudges: bool = False
    reachable: bool = True
    unreachable_reason: str | None = None
    created_at: datetime = ts_field(nullable=False, default_now=True)
    removed_at: datetime | None = ts_field()


class Chat(SQLModel, table=True):
    """A Telegram chat the bot has seen; a group is bound to at most one campaign."""

    id: int | None = Field(default=None, primary_key=True)
    telegram_chat_id: int = Field(sa_type=sa.BigInteger, unique=True, index=True)
    campaign_id: int | None = Field(default=None, foreign_key="campaign.id", index=True)
    kind: ChatKind = Field(sa_type=enum_type(ChatKind))
    title: str | None = Field(default=None, max_length=255)
    bound_at: datetime | None = ts_field()
    # The bot told this unbound chat once that it ignores it.
    ignored_notice_sent: bool = False
    reachable: bool = True
    unreachable_reason: str | None = None
    created_at: datetime = ts_field(nullable=False, default_now=True)


class Invite(SQLModel, table=True):
    """A single-use, expiring code: a deep link for a liaison or the bootstrap code."""

    id: int | None = Field(default=None, primary_key=True)
    campaign_id: int = Field(foreign_key="campaign.id", index=True)
    token: str = Field(max_length=64, unique=True, index=True)
    role: Role = Field(sa_type=enum_type(Role))
    unit_id: int | None = Field(default=None, foreign_key="unit.id")
    created_by_member_id: int | None = Field(default=None, foreign_key="member.id")
    created_at: datetime = ts_field(nullable=False, default_now=True)
    expires_at: datetime = ts_field(nullable=False)
    used_at: datetime | None = ts_field()
    used_by_telegram_id: int | None = Field(default=None, sa_type=sa.BigInteger)
    revoked: bool = False


# -------------------------------------------------------------------- assessment


class Assessment(SQLModel, table=True):
    """The current assessment of one sub-criterion (its history is in the audit log)."""

    id: int | None = Field(default=None, primary_key=True)
    campaign_id: int = Field(foreign_key="campaign.id", index=True)
    criterion_id: int = Field(foreign_key="criterion.id", unique=True)
    state: AssessmentState = Field(
        default=AssessmentState.none, sa_type=enum_type(AssessmentState)
    )
    unit_id: int | None = Field(default=None, foreign_key="unit.id")
    claimed_by_member_id: int | None = Field(default=None, foreign_key="member.id")
    claimed_at: datetime | None = ts_field()
    claim_note: str | None = None
    reviewed_by_member_id: int | None = Field(default=None, foreign_key="member.id")
    reviewed_at: datetime | None = ts_field()
    reason: str | None = None
    version: int = 0
    updated_at: datetime = ts_field(nullable=False, default_now=True)


class Evidence(SQLModel, table=True):
    """A file handed in as evidence, stored content-addressed under storage.dir."""

    __table_args__ = (sa.Index("ix_evidence_campaign_state", "campaign_id", "state"),)

    id: int | None = Field(default=None, primary_key=True)
    campaign_id: int = Field(foreign_key="campaign.id", index=True)
    task_id: int | None = Field(default=None, foreign_key="task.id", index=True)
    item_id: int | None = Field(default=None, foreign_key="scoreitem.id", index=True)
    criterion_id: int | None = Field(default=None, foreign_key="criterion.id", index=True)
    unit_id: int | None = Field(default=None, foreign_key="unit.id", index=True)
    member_id: int | None = Field(default=None, foreign_key="member.id")
    sha256: str = Field(max_length=64, index=True)
    size: int
    mime_type: str | None = Field(default=None, max_length=128)
    file_name: str = Field(max_length=255)
    original_name: str | None = Field(default=None, max_length=1024)
    caption: str | None = None
    telegram_file_id: str | None = Field(default=None, max_length=255)
    telegram_file_unique_id: str | None = Field(default=None, max_length=128, index=True)
    state: EvidenceState = Field(
        default=EvidenceState.submitted, sa_type=enum_type(EvidenceState)
    )
    review_reason: str | None = None
    created_at: datetime = ts_field(nullable=False, default_now=True)
    withdrawn_at: datetime | None = ts_field()
    withdrawn_by_member_id: int | None = Field(default=None, foreign_key="member.id")


class BotMessage(SQLModel, table=True):
    """What a message the bot sent is about, so a reply to it can be routed."""

    __table_args__ = (sa.UniqueConstraint("telegram_chat_id", "message_id"),)

    id: int | None = Field(default=None, primary_key=True)
    campaign_id: int = Field(foreign_key="campaign.id", index=True)
    telegram_chat_id: int = Field(sa_type=sa.BigInteger)
    message_id: int
    subject_kind: SubjectKind = Field(sa_type=enum_type(SubjectKind))
    subject_id: int | None = None
    unit_id: int | None = Field(default=None, foreign_key="unit.id")
    # Who may answer it (e.g. the coordinator who pressed "Return").
    for_member_id: int | None = Field(default=None, foreign_key="member.id")
    created_at: datetime = ts_field(nullable=False, default_now=True)


class HandledUpdate(SQLModel, table=True):
    """A Telegram update whose writes committed, written in the same transaction.

    The bot confirms an update to Telegram only once it was handled, so a crash
    makes Telegram deliver it again; this row keeps the redelivery from applying
    the update's writes twice. ``process`` names the process that handled it (a
    process may write in several transactions for one update).
    """

    update_id: int = Field(sa_type=sa.BigInteger, primary_key=True, sa_column_kwargs={"autoincrement": False})
    process: str = Field(max_length=64)
    handled_at: datetime = ts_field(nullable=False, default_now=True, index=True)


# ------------------------------------------------------------------ time and log


class Snooze(SQLModel, table=True):
    """A nudge about an assignment muted until a date (never past its deadline)."""

    __table_args__ = (sa.UniqueConstraint("assignment_id"),)

    id: int | None = Field(default=None, primary_key=True)
    campaign_id: int = Field(foreign_key="campaign.id", index=True)
    assignment_id: int = Field(foreign_key="assignment.id")
    until: date
    by_member_id: int | None = Field(default=None, foreign_key="member.id")
    created_at: datetime = ts_field(nullable=False, default_now=True)


class Outbox(SQLModel, table=True):
    """A message the bot owes somebody. Claimed before sending, marked after."""

    __table_args__ = (
        sa.Index("ix_outbox_state_due", "state", "due_at"),
        sa.Index("ix_outbox_campaign_state", "campaign_id", "state"),
    )

    id: int | None = Field(default=None, primary_key=True)
    campaign_id: int = Field(foreign_key="campaign.id", index=True)
    # recipient|subject|kind|date: the same nudge is never materialised twice.
    idem_key: str = Field(max_length=255, unique=True)
    telegram_chat_id: int = Field(sa_type=sa.BigInteger, index=True)
    member_id: int | None = Field(default=None, foreign_key="member.id")
    kind: str = Field(max_length=32)
    subject: str | None = Field(default=None, max_length=64)
    payload: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    due_at: datetime = ts_field(nullable=False)
    state: OutboxState = Field(default=OutboxState.pending, sa_type=enum_type(OutboxState))
    attempts: int = 0
    next_attempt_at: datetime | None = ts_field()
    claimed_at: datetime | None = ts_field()
    sent_at: datetime | None = ts_field()
    telegram_message_id: int | None = None
    # Indexed: claim() and every mark_* look up a lead's merged rows by it.
    merged_into_id: int | None = Field(default=None, foreign_key="outbox.id", index=True)
    last_error: str | None = None
    created_at: datetime = ts_field(nullable=False, default_now=True)


class AuditLog(SQLModel, table=True):
    """Append-only: who did what, before and after, when."""

    __table_args__ = (
        sa.Index("ix_auditlog_campaign_at", "campaign_id", "at"),
        # The newest row of a campaign in one index descent: the scheduler's sweep
        # re-plans a campaign only when something was written since (max id moved).
        sa.Index("ix_auditlog_campaign_id", "campaign_id", "id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    campaign_id: int | None = Field(default=None, foreign_key="campaign.id")
    at: datetime = ts_field(nullable=False, default_now=True)
    actor_member_id: int | None = Field(default=None, foreign_key="member.id")
    actor_telegram_id: int | None = Field(default=None, sa_type=sa.BigInteger)
    # "system", "cli", "scheduler" or "telegram"
    actor_kind: str = Field(default="telegram", max_length=16)
    action: str = Field(max_length=64)
    entity: str = Field(max_length=32)
    entity_id: int | None = None
    before: dict[str, Any] | None = Field(default=None, sa_type=JSON)
    after: dict[str, Any] | None = Field(default=None, sa_type=JSON)
    note: str | None = None


# ------------------------------------------------------------------- supervision


class Instruction(SQLModel, table=True):
    """A leader's (or the coordinator's) instruction, 批示, on a task, item or unit."""

    id: int | None = Field(default=None, primary_key=True)
    campaign_id: int = Field(foreign_key="campaign.id", index=True)
    author_member_id: int = Field(foreign_key="member.id")
    text: str
    # What it was written on: "task", "item", "unit" (the ids below say which).
    target_kind: str = Field(max_length=16)
    task_id: int | None = Field(default=None, foreign_key="task.id")
    item_id: int | None = Field(default=None, foreign_key="scoreitem.id")
    # The units that owe a 落实情况 (ids).
    unit_ids: list[int] = Field(default_factory=list, sa_type=JSON)
    answer_by: date
    state: InstructionState = Field(default=InstructionState.open, sa_type=enum_type(InstructionState))
    created_at: datetime = ts_field(nullable=False, default_now=True)
    answered_at: datetime | None = ts_field()
    closed_at: datetime | None = ts_field()
    closed_by_member_id: int | None = Field(default=None, foreign_key="member.id")
    version: int = 0


class InstructionAnswer(SQLModel, table=True):
    """A unit's 落实情况 on an instruction."""

    id: int | None = Field(default=None, primary_key=True)
    campaign_id: int = Field(foreign_key="campaign.id", index=True)
    instruction_id: int = Field(foreign_key="instruction.id", index=True)
    unit_id: int = Field(foreign_key="unit.id")
    member_id: int | None = Field(default=None, foreign_key="member.id")
    text: str
    created_at: datetime = ts_field(nullable=False, default_now=True)


class Supervision(SQLModel, table=True):
    """A numbered supervision notice, 督办单, to one unit about one task."""

    __table_args__ = (sa.UniqueConstraint("campaign_id", "year", "seq"),)

    id: int | None = Field(default=None, primary_key=True)
    campaign_id: int = Field(foreign_key="campaign.id", index=True)
    year: int
    seq: int
    number: str = Field(max_length=64)
    task_id: int = Field(foreign_key="task.id")
    unit_id: int = Field(foreign_key="unit.id")
    reason: str
    reply_by: date
    state: SupervisionState = Field(default=SupervisionState.issued, sa_type=enum_type(SupervisionState))
    issued_by_member_id: int | None = Field(default=None, foreign_key="member.id")
    issued_at: datetime = ts_field(nullable=False, default_now=True)
    answer: str | None = None
    answered_by_member_id: int | None = Field(default=None, foreign_key="member.id")
    answered_at: datetime | None = ts_field()
    closed_at: datetime | None = ts_field()
    closed_by_member_id: int | None = Field(default=None, foreign_key="member.id")
    version: int = 0


class Bulletin(SQLModel, table=True):
    """A 通报 or 月报 as issued: the ranking and score it said, for "movement since the last"."""

    id: int | None = Field(default=None, primary_key=True)
    campaign_id: int = Field(foreign_key="campaign.id", index=True)
    kind: str = Field(max_length=16)  # "bulletin" or "monthly"
    created_at: datetime = ts_field(nullable=False, default_now=True)
    # {"score": float, "units": {unit id: on-time rate or null}}
    snapshot: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
