"""The synthetic province: 120 districts' campaigns in one database, as a city or
province supervising every district would hold them after a year of use.

Each campaign is imported from ``data/seed.json`` through :func:`models.seed.import_seed`
(the real import: phases, tasks, items, criteria, assignments), under its own district
name and slug, with its dates shifted so that campaigns are spread over every phase
(and some past the plan's end). Then, per campaign, with bulk inserts (``COPY`` on
PostgreSQL, ``executemany`` on SQLite) and explicit ids:

* 3 more units (20 in all, each carrying tasks) and 100 members (2 coordinators,
  3 leaders, 95 liaisons over the 20 units), private chats for most, one bound work group;
* the progress of every assignment and the assessment of criteria, in a mix that
  depends on how far the campaign is and whether the deadline passed;
* evidence (about 200,000 rows in all), the audit log (about 500,000 rows) and a year
  of outbox history (mostly sent, with their BotMessage rows; some failed, merged,
  cancelled) that ends before the scheduler's catch-up window, so that a sweep at
  ``today`` behaves as on a live deployment.

Everything comes from one seeded ``random.Random``: the same arguments build the same
database. Timestamps are aware; "today" is a fixed anchor (default 2026-09-14, a Monday).
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from enum import Enum
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlmodel import Session, select

from bench.names import PROVINCE, District, districts, person
from models.audit import Actor
from models.calendar import is_working_day
from models.seed import import_seed, parse_seed, plan_start
from models.tables import (
    Assessment,
    AssessmentState,
    Assignment,
    AssignmentState,
    AuditLog,
    BotMessage,
    Campaign,
    Chat,
    ChatKind,
    Criterion,
    CriterionUnit,
    Evidence,
    EvidenceState,
    ItemUnit,
    Member,
    Outbox,
    OutboxState,
    Role,
    ScoreItem,
    SubjectKind,
    Task,
    Unit,
)

REPO = Path(__file__).resolve().parent.parent
SEED_PATH = REPO / "data" / "seed.json"
TZ = ZoneInfo("Asia/Shanghai")
DEFAULT_TODAY = date(2026, 9, 14)
#: The plan of data/seed.json lasts 274 days (2021-07-01 .. 2022-04-01).
#: Campaigns are spread over five buckets: the four phases, and past the plan.
PHASE_BUCKETS = ((0, 9), (10, 183), (184, 243), (244, 273), (274, 365))

EXTRA_UNITS = (
    {"name": "区司法局", "full_name": "{full}司法局", "aliases": ["司法局", "{name}司法局"],
     "tasks": [3, 5]},
    {"name": "区应急局", "full_name": "{full}应急管理局", "aliases": ["应急局", "区应急管理局", "应急管理局"],
     "tasks": [5, 14, 19]},
    {"name": "区城管局", "full_name": "{full}城市管理局", "aliases": ["城管局", "区城市管理局", "城市管理局"],
     "tasks": [5, 10, 16]},
)

# Telegram ids of the synthetic people and groups (disjoint from the stand-in's own).
USER_ID_BASE = 7_000_000_000
GROUP_ID_BASE = -1_009_000_000_000


def user_id(campaign_no: int, person_no: int) -> int:
    return USER_ID_BASE + campaign_no * 1000 + person_no


def group_id(campaign_no: int) -> int:
    return GROUP_ID_BASE - campaign_no


@dataclass(frozen=True, slots=True)
class ProvinceSpec:
    campaigns: int = 120
    units: int = 20  # seed's 17 + EXTRA_UNITS
    members: int = 100
    evidence: int = 200_000
    audit: int = 500_000
    outbox_per_working_day: float = 10.0
    history_days: int = 365
    seed: int = 42
    today: date = DEFAULT_TODAY
    #: The scheduler's catch-up window (config: scheduler.catchup_days); history ends before it.
    catchup_days: int = 7

    def scaled(self, factor: float) -> ProvinceSpec:
        """The same province with every bulk volume multiplied by ``factor`` (tests)."""
        return ProvinceSpec(
            campaigns=max(1, round(self.campaigns * factor)), units=self.units,
            members=self.members, evidence=int(self.evidence * factor),
            audit=int(self.audit * factor), outbox_per_working_day=self.outbox_per_working_day,
            history_days=self.history_days, seed=self.seed, today=self.today,
            catchup_days=self.catchup_days,
        )


@dataclass(slots=True)
class SeedReport:
    spec: dict[str, Any]
    backend: str
    seconds: float = 0.0
    import_seconds: float = 0.0
    rows: dict[str, int] = field(default_factory=dict)
    phases: dict[str, int] = field(default_factory=dict)
    coordinator: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> str:
        rows = ", ".join(f"{k} {v:,}" for k, v in sorted(self.rows.items()))
        phases = ", ".join(f"{k}: {v}" for k, v in self.phases.items())
        return (f"synthetic province on {self.backend}: {self.spec['campaigns']} campaigns "
                f"in {self.seconds:.1f} s (imports {self.import_seconds:.1f} s)\n"
                f"  rows: {rows}\n  campaigns by phase: {phases}")


# ====================================================================== seed docs


def district_doc(raw: str, d: District, no: int) -> Any:
    """data/seed.json rewritten for district ``d``, with the three extra units."""
    text = (raw.replace("合肥市瑶海区", d.full).replace("瑶海区", d.name)
            .replace("瑶海", d.name[:-1]).replace("瑶办发〔2021〕25号", f"{d.name[0]}办发〔2021〕{no + 10}号")
            .replace("合肥市", f"{d.city}市"))
    data = json.loads(text)
    data["campaign"]["slug"] = d.slug
    data["campaign"]["name"] = f"{d.name}争创{PROVINCE}质量强县（市、区）"
    data["campaign"]["district"] = d.full
    by_no = {t["no"]: t for t in data["tasks"]}
    for extra in EXTRA_UNITS:
        data["units"].append({
            "name": extra["name"],
            "full_name": extra["full_name"].format(full=d.full),
            "aliases": [a.format(name=d.name) for a in extra["aliases"]],
            "is_member": True, "is_lead": False,
        })
        for t in extra["tasks"]:
            by_no[t]["units"].append(extra["name"])
    return parse_seed(data, origin=f"{SEED_PATH.name} ({d.slug})")


def elapsed_days(spec: ProvinceSpec, rng: random.Random) -> list[int]:
    """Days since the plan started, per campaign: an equal share in each bucket."""
    out = []
    for i in range(spec.campaigns):
        lo, hi = PHASE_BUCKETS[i % len(PHASE_BUCKETS)]
        out.append(rng.randint(lo, hi))
    rng.shuffle(out)
    return out


def phase_label(elapsed: int) -> str:
    for no, (lo, hi) in enumerate(PHASE_BUCKETS, start=1):
        if lo <= elapsed <= hi:
            return f"phase {no}" if no <= 4 else "after the plan"
    return "after the plan"


# ====================================================================== bulk loading


def _copy_value(v: Any) -> Any:
    if isinstance(v, Enum):
        return v.value
    if isinstance(v, dict | list):
        return json.dumps(v, ensure_ascii=False)
    return v


def bulk_insert(conn: Connection, model: Any, rows: Sequence[dict[str, Any]]) -> None:
    """Insert ``rows`` (dicts with every column) into ``model``'s table, fast.

    PostgreSQL: ``COPY ... FROM STDIN`` through psycopg; SQLite: one ``executemany``.
    """
    if not rows:
        return
    table = model.__table__
    if conn.dialect.name == "postgresql":
        cols = [c.name for c in table.columns]
        raw = conn.connection.driver_connection
        with raw.cursor() as cur, cur.copy(
            f'COPY "{table.name}" ({", ".join(cols)}) FROM STDIN'
        ) as copy:
            for r in rows:
                copy.write_row(tuple(_copy_value(r.get(c)) for c in cols))
    else:
        conn.execute(table.insert(), list(rows))


def fix_sequences(conn: Connection, models: Iterable[Any]) -> None:
    """After explicit ids on PostgreSQL: move each id sequence past the largest id."""
    if conn.dialect.name != "postgresql":
        return
    for model in models:
        name = model.__table__.name
        conn.execute(sa.text(
            f"SELECT setval(pg_get_serial_sequence('\"{name}\"', 'id'), "
            f"(SELECT COALESCE(MAX(id), 1) FROM \"{name}\"))"
        ))


class Ids:
    """Explicit ids, continuing after what the database already holds."""

    def __init__(self, conn: Connection, models: Iterable[Any]) -> None:
        self._next: dict[str, int] = {}
        for model in models:
            table = model.__table__
            top = conn.execute(sa.select(sa.func.max(table.c.id))).scalar()
            self._next[table.name] = int(top or 0) + 1

    def take(self, model: Any) -> int:
        name = model.__table__.name
        value = self._next[name]
        self._next[name] = value + 1
        return value


# ====================================================================== one campaign


@dataclass(slots=True)
class _Plan:
    """What import_seed made for one campaign (ids and dates)."""

    no: int
    campaign_id: int
    start: date
    elapsed: int
    units: list[Unit]
    tasks: dict[int, Task]
    assignments: list[Assignment]
    items: dict[int, ScoreItem]
    criteria: list[Criterion]
    criterion_units: dict[int, list[int]]


def _at(day: date, rng: random.Random, *, lo: int = 8, hi: int = 20) -> datetime:
    """An aware instant on ``day`` during office-ish hours (Asia/Shanghai)."""
    return datetime(day.year, day.month, day.day, rng.randint(lo, hi - 1), rng.randint(0, 59),
                    rng.randint(0, 59), tzinfo=TZ).astimezone(UTC)


def _day_between(rng: random.Random, a: date, b: date) -> date:
    if b <= a:
        return a
    return a + timedelta(days=rng.randint(0, (b - a).days))


def _load_plan(session: Session, *, no: int, campaign_id: int, start: date, elapsed: int) -> _Plan:
    units = list(session.exec(select(Unit).where(Unit.campaign_id == campaign_id).order_by(Unit.id)))
    tasks = {t.id: t for t in session.exec(select(Task).where(Task.campaign_id == campaign_id))}
    assignments = list(session.exec(
        select(Assignment).where(Assignment.campaign_id == campaign_id).order_by(Assignment.id)))
    items = {i.id: i for i in session.exec(select(ScoreItem).where(ScoreItem.campaign_id == campaign_id))}
    criteria = list(session.exec(
        select(Criterion).where(Criterion.campaign_id == campaign_id).order_by(Criterion.id)))
    crit_units: dict[int, list[int]] = {}
    ids = [c.id for c in criteria]
    for cu in session.exec(select(CriterionUnit).where(CriterionUnit.criterion_id.in_(ids))):  # type: ignore[union-attr]
        crit_units.setdefault(cu.criterion_id, []).append(cu.unit_id)
    item_units: dict[int, list[int]] = {}
    for iu in session.exec(select(ItemUnit).where(ItemUnit.item_id.in_(list(items)))):  # type: ignore[union-attr]
        item_units.setdefault(iu.item_id, []).append(iu.unit_id)
    for c in criteria:
        if c.id not in crit_units:
            crit_units[c.id] = item_units.get(c.item_id) or []  # type: ignore[index]
    for units_of in crit_units.values():
        units_of.sort()  # the database returns them in any order; the dice must not care
    return _Plan(no=no, campaign_id=campaign_id, start=start, elapsed=elapsed, units=units,
                 tasks=tasks, assignments=assignments, items=items, criteria=criteria,  # type: ignore[arg-type]
                 criterion_units=crit_units)


class _CampaignBuilder:
    """The bulk rows of one campaign."""

    def __init__(self, plan: _Plan, spec: ProvinceSpec, ids: Ids, rng: random.Random,
                 evidence: int, audit: int) -> None:
        self.p = plan
        self.spec = spec
        self.ids = ids
        self.rng = rng
        self.n_evidence = evidence
        self.n_audit = audit
        self.today = spec.today
        self.now = datetime(self.today.year, self.today.month, self.today.day, 9, 0, tzinfo=TZ).astimezone(UTC)
        self.rows: dict[Any, list[dict[str, Any]]] = {
            m: [] for m in (Member, Chat, Assessment, Evidence, AuditLog, Outbox, BotMessage)}
        self.assignment_updates: list[dict[str, Any]] = []
        self.members: list[dict[str, Any]] = []
        self.liaisons_by_unit: dict[int, list[dict[str, Any]]] = {}
        self.coordinators: list[dict[str, Any]] = []
        self.group_chat = group_id(plan.no)
        self._message_ids: dict[int, int] = {}

    # ---------------------------------------------------------------- people

    def people(self) -> None:
        rng, p = self.rng, self.p
        start_at = _at(p.start, rng)
        roles: list[tuple[Role, int | None]] = [(Role.coordinator, None)] * 2 + [(Role.leader, None)] * 3
        n_liaisons = max(0, self.spec.members - len(roles))
        order = [u.id for u in p.units]
        for i in range(n_liaisons):
            roles.append((Role.liaison, order[i % len(order)]))
        for j, (role, unit_id) in enumerate(roles, start=1):
            uid = user_id(p.no, j)
            private = role != Role.liaison or rng.random() < 0.75
            if role == Role.leader and j == 5:
                private = False
            active = role != Role.liaison or rng.random() > 0.03
            created = start_at + timedelta(days=rng.randint(0, min(20, max(0, p.elapsed))), seconds=j)
            m = {
                "id": self.ids.take(Member), "campaign_id": p.campaign_id, "telegram_user_id": uid,
                "display_name": person(rng), "username": f"u{uid}" if rng.random() < 0.6 else None,
                "role": role, "unit_id": unit_id, "active": active,
                "private_chat_id": uid if private else None,
                "private_nudges": bool(private and role == Role.liaison and rng.random() < 0.6),
                "reachable": True, "unreachable_reason": None, "created_at": created,
                "removed_at": None if active else created + timedelta(days=rng.randint(1, 30)),
            }
            self.members.append(m)
            if role == Role.liaison and active:
                self.liaisons_by_unit.setdefault(unit_id, []).append(m)  # type: ignore[arg-type]
            if role == Role.coordinator:
                self.coordinators.append(m)
            if private:
                self.rows[Chat].append({
                    "id": self.ids.take(Chat), "telegram_chat_id": uid, "campaign_id": None,
                    "kind": ChatKind.private, "title": None, "bound_at": None,
                    "ignored_notice_sent": False, "reachable": True, "unreachable_reason": None,
                    "created_at": created,
                })
        self.rows[Member] = self.members
        self.rows[Chat].append({
            "id": self.ids.take(Chat), "telegram_chat_id": self.group_chat, "campaign_id": p.campaign_id,
            "kind": ChatKind.group, "title": "质量强区工作群", "bound_at": start_at + timedelta(hours=2),
            "ignored_notice_sent": False, "reachable": True, "unreachable_reason": None,
            "created_at": start_at + timedelta(hours=1),
        })

    def _liaison(self, unit_id: int | None) -> dict[str, Any] | None:
        pool = self.liaisons_by_unit.get(unit_id or -1)
        return self.rng.choice(pool) if pool else None

    # ---------------------------------------------------------------- progress

    def progress(self) -> None:
        rng, today = self.rng, self.today
        for a in self.p.assignments:
            task = self.p.tasks[a.task_id]
            late = task.deadline < today
            x = rng.random()
            if late:
                state = (AssignmentState.approved if x < 0.55 else AssignmentState.submitted if x < 0.75
                         else AssignmentState.in_progress if x < 0.9 else AssignmentState.not_started)
            else:
                span = max(1, (task.deadline - self.p.start).days)
                done = min(1.0, max(0.0, self.p.elapsed / span))
                state = (AssignmentState.approved if x < 0.1 * done else AssignmentState.submitted if x < 0.2 * done
                         else AssignmentState.in_progress if x < 0.2 + 0.5 * done else AssignmentState.not_started)
            percent = {AssignmentState.approved: 100, AssignmentState.submitted: 100,
                       AssignmentState.not_started: 0}.get(state, rng.choice(range(10, 95, 5)))
            begun = _day_between(rng, self.p.start, min(today, task.deadline))
            submitted_at = approved_at = None
            if state in (AssignmentState.submitted, AssignmentState.approved):
                submitted_at = _at(_day_between(rng, begun, min(today, task.deadline + timedelta(days=10))), rng)
                if state == AssignmentState.approved:
                    approved_at = submitted_at + timedelta(hours=rng.randint(2, 96))
                    if approved_at > self.now:
                        approved_at = self.now - timedelta(minutes=rng.randint(5, 600))
            updated = approved_at or submitted_at or (
                _at(begun, rng) if state != AssignmentState.not_started else _at(self.p.start, rng))
            if updated > self.now:
                updated = self.now - timedelta(minutes=rng.randint(5, 600))
            self.assignment_updates.append({
                "id": a.id, "state": state, "percent": percent,
                "note": "已完成初稿，正在征求意见" if state == AssignmentState.in_progress and rng.random() < 0.3 else None,
                "submitted_at": submitted_at, "approved_at": approved_at,
                "version": {AssignmentState.not_started: 0, AssignmentState.in_progress: rng.randint(1, 4),
                            AssignmentState.submitted: rng.randint(2, 5),
                            AssignmentState.approved: rng.randint(3, 6)}[state],
                "updated_at": updated,
            })

    def assessments(self) -> None:
        rng, p = self.rng, self.p
        for c in p.criteria:
            if c.not_attainable:
                continue
            item = p.items[c.item_id]
            due = item.deadline or (p.start + timedelta(days=183))
            x = rng.random()
            if due < self.today:
                state = (AssessmentState.verified if x < 0.5 else AssessmentState.claimed if x < 0.7
                         else AssessmentState.rejected if x < 0.75 else None)
            else:
                frac = min(1.0, p.elapsed / max(1, (due - p.start).days))
                state = (AssessmentState.verified if x < 0.15 * frac else AssessmentState.claimed if x < 0.3 * frac
                         else None)
            if state is None:
                continue
            units = p.criterion_units.get(c.id) or [p.units[0].id]  # type: ignore[index]
            unit_id = rng.choice(units)
            claimer = self._liaison(unit_id)
            claimed_at = _at(_day_between(rng, p.start, min(self.today, due)), rng)
            reviewed = state in (AssessmentState.verified, AssessmentState.rejected)
            coord = rng.choice(self.coordinators)
            self.rows[Assessment].append({
                "id": self.ids.take(Assessment), "campaign_id": p.campaign_id, "criterion_id": c.id,
                "state": state, "unit_id": unit_id,
                "claimed_by_member_id": claimer["id"] if claimer else None, "claimed_at": claimed_at,
                "claim_note": None, "reviewed_by_member_id": coord["id"] if reviewed else None,
                "reviewed_at": claimed_at + timedelta(hours=rng.randint(1, 72)) if reviewed else None,
                "reason": "材料不全，请补充会议纪要" if state == AssessmentState.rejected else None,
                "version": 2 if reviewed else 1, "updated_at": claimed_at,
            })

    # ---------------------------------------------------------------- evidence

    MIMES = (("application/pdf", ".pdf", 0.5), ("image/jpeg", ".jpg", 0.25),
             ("application/vnd.openxmlformats-officedocument.wordprocessingml.document", ".docx", 0.15),
             ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", ".xlsx", 0.1))
    DOC_NAMES = ("工作方案", "会议纪要", "动员大会照片", "实施意见", "工作总结", "统计报表", "培训签到表",
                 "宣传材料", "检查记录", "整改报告", "质量分析报告", "标准化证书")

    def evidence(self) -> None:
        rng, p = self.rng, self.p
        active = [a for a in p.assignments
                  if self.assignment_updates_by_id[a.id]["state"] != AssignmentState.not_started]
        if not active:
            active = p.assignments
        crits = [c for c in p.criteria if not c.not_attainable]
        seq = 0
        for _ in range(self.n_evidence):
            seq += 1
            digest = hashlib.sha256(f"{self.spec.seed}-{p.no}-{seq}".encode()).hexdigest()
            x = rng.random()
            mime, ext = next(((m, e) for m, e, w in self.MIMES if (x := x - w) < 0), self.MIMES[0][:2])
            name = f"{rng.choice(self.DOC_NAMES)}{rng.randint(1, 40)}{ext}"
            task_id = item_id = criterion_id = None
            if rng.random() < 0.7 or not crits:
                a = rng.choice(active)
                task_id, unit_id = a.task_id, a.unit_id
            else:
                c = rng.choice(crits)
                criterion_id, item_id = c.id, c.item_id
                unit_id = rng.choice(p.criterion_units.get(c.id) or [p.units[0].id])  # type: ignore[index]
            who = self._liaison(unit_id)
            created = _at(_day_between(rng, p.start, self.today - timedelta(days=1)), rng)
            y = rng.random()
            state = (EvidenceState.accepted if y < 0.6 else EvidenceState.submitted if y < 0.85
                     else EvidenceState.returned if y < 0.95 else EvidenceState.withdrawn)
            self.rows[Evidence].append({
                "id": self.ids.take(Evidence), "campaign_id": p.campaign_id, "task_id": task_id,
                "item_id": item_id, "criterion_id": criterion_id, "unit_id": unit_id,
                "member_id": who["id"] if who else None, "sha256": digest,
                "size": int(rng.lognormvariate(12.5, 1.0)) % (20 * 1024 * 1024) + 1000,
                "mime_type": mime, "file_name": name, "original_name": name,
                "caption": None if rng.random() < 0.8 else "补充材料",
                "telegram_file_id": f"BQAC{digest[:40]}", "telegram_file_unique_id": f"AgAD{digest[:16]}",
                "state": state, "review_reason": "请上传盖章版" if state == EvidenceState.returned else None,
                "created_at": created,
                "withdrawn_at": created + timedelta(minutes=10) if state == EvidenceState.withdrawn else None,
                "withdrawn_by_member_id": (who["id"] if who else None) if state == EvidenceState.withdrawn else None,
            })

    # ---------------------------------------------------------------- audit

    AUDIT_ACTIONS = (
        ("assignment.progress", "assignment", 0.30), ("evidence.add", "evidence", 0.25),
        ("assignment.submit", "assignment", 0.08), ("assignment.approve", "assignment", 0.06),
        ("evidence.accept", "evidence", 0.10), ("assessment.claim", "assessment", 0.05),
        ("assessment.verify", "assessment", 0.04), ("nudge.sent", "outbox", 0.10),
        ("member.update", "member", 0.02),
    )

    def audit(self) -> None:
        rng, p = self.rng, self.p
        evid = self.rows[Evidence]
        assess = self.rows[Assessment]
        outbox = [r for r in self.rows[Outbox] if r["state"] == OutboxState.sent]
        for _ in range(self.n_audit):
            x = rng.random()
            action, entity = next(((a, e) for a, e, w in self.AUDIT_ACTIONS if (x := x - w) < 0),
                                  self.AUDIT_ACTIONS[0][:2])
            at = _at(_day_between(rng, p.start, self.today - timedelta(days=1)), rng)
            actor = rng.choice(self.members)
            kind = "telegram"
            before: dict[str, Any] | None = None
            after: dict[str, Any] | None
            if entity == "assignment":
                a = rng.choice(p.assignments)
                eid = a.id
                pct = rng.choice(range(0, 100, 10))
                before = {"state": "in_progress", "percent": pct}
                after = {"state": "submitted" if action == "assignment.submit" else
                         "approved" if action == "assignment.approve" else "in_progress",
                         "percent": min(100, pct + 10)}
            elif entity == "evidence" and evid:
                e = rng.choice(evid)
                eid = e["id"]
                after = {"task_id": e["task_id"], "unit_id": e["unit_id"], "sha256": e["sha256"],
                         "size": e["size"], "file_name": e["file_name"], "state": "submitted"}
            elif entity == "assessment" and assess:
                s = rng.choice(assess)
                eid = s["id"]
                before = {"state": "none"}
                after = {"state": "claimed" if action == "assessment.claim" else "verified"}
            elif entity == "outbox" and outbox:
                o = rng.choice(outbox)
                eid, kind, actor = o["id"], "scheduler", None
                after = {"chat_id": o["telegram_chat_id"], "message_id": o["telegram_message_id"], "rows": 1}
            else:
                m = rng.choice(self.members)
                eid, entity, action = m["id"], "member", "member.update"
                after = {"display_name": m["display_name"]}
            self.rows[AuditLog].append({
                "id": self.ids.take(AuditLog), "campaign_id": p.campaign_id, "at": at,
                "actor_member_id": actor["id"] if actor else None,
                "actor_telegram_id": actor["telegram_user_id"] if actor else None,
                "actor_kind": kind, "action": action, "entity": entity, "entity_id": eid,
                "before": before, "after": after, "note": None,
            })

    # ---------------------------------------------------------------- outbox history

    def outbox(self) -> None:
        """Nudges of past working days, keyed as the scheduler keys them; none pending."""
        rng, p, spec = self.rng, self.p, self.spec
        first = max(p.start, self.today - timedelta(days=spec.history_days))
        last = self.today - timedelta(days=spec.catchup_days + 2)
        private = [m for m in self.members if m["role"] == Role.liaison and m["private_nudges"]]
        day = first
        week_digest: set[date] = set()
        while day <= last:
            if not is_working_day(day):
                day += timedelta(days=1)
                continue
            k = max(0, int(rng.gauss(spec.outbox_per_working_day, spec.outbox_per_working_day / 3)))
            due = datetime(day.year, day.month, day.day, 9, 0, tzinfo=TZ).astimezone(UTC)
            picks = rng.sample(p.assignments, min(k, len(p.assignments)))
            sent_today: dict[int, int] = {}
            monday = day - timedelta(days=day.weekday())
            if monday not in week_digest:
                week_digest.add(monday)
                self._outbox_row(day, due, self.group_chat, None, "digest", f"campaign:{p.campaign_id}",
                                 None, sent_today, key_day=monday)
            for a in picks:
                task = p.tasks[a.task_id]
                kind = "overdue" if task.deadline < day else "remind"
                if private and rng.random() < 0.25:
                    m = rng.choice(private)
                    chat, member_id = m["private_chat_id"], m["id"]
                else:
                    chat, member_id = self.group_chat, None
                self._outbox_row(day, due, chat, member_id, kind, f"assignment:{a.id}", (a, task), sent_today)
            day += timedelta(days=1)

    def _outbox_row(self, day: date, due: datetime, chat: int, member_id: int | None, kind: str,
                    subject: str, asg: tuple[Assignment, Task] | None, sent_today: dict[int, int],
                    *, key_day: date | None = None) -> None:
        rng, p = self.rng, self.p
        x = rng.random()
        lead = sent_today.get(chat)
        if lead is not None and x < 0.15:
            state = OutboxState.merged
        else:
            state = (OutboxState.sent if x < 0.965 else OutboxState.failed if x < 0.985 else OutboxState.cancelled)
        payload: dict[str, Any]
        if asg is not None:
            a, task = asg
            payload = {"assignment_id": a.id, "task_id": task.id, "unit_id": a.unit_id,
                       "deadline": task.deadline.isoformat(), "local_date": day.isoformat()}
            keyed = f"{subject}@{task.deadline.isoformat()}"
            kind_key = f"remind-{rng.choice((7, 3, 1, 0))}" if kind == "remind" else kind
            if kind == "remind":
                payload["offset"] = int(kind_key.split("-")[1])
        else:
            payload = {"week_of": (key_day or day).isoformat(), "local_date": day.isoformat()}
            keyed, kind_key = subject, kind
        key = f"chat:{chat}|{keyed}|{kind_key}|{(key_day or day).isoformat()}"
        oid = self.ids.take(Outbox)
        sent_at = due + timedelta(seconds=rng.randint(1, 900))
        row = {
            "id": oid, "campaign_id": p.campaign_id, "idem_key": key, "telegram_chat_id": chat,
            "member_id": member_id, "kind": kind, "subject": subject, "payload": payload, "due_at": due,
            "state": state, "attempts": 1 if state in (OutboxState.sent, OutboxState.failed) else 0,
            "next_attempt_at": None, "claimed_at": None, "sent_at": None, "telegram_message_id": None,
            "merged_into_id": None, "last_error": None, "created_at": due,
        }
        if state == OutboxState.sent:
            mid = self._message_ids[chat] = self._message_ids.get(chat, 0) + 1
            row["payload"] = {**payload, "render": {
                "text": f"⏰ 任务提醒（{day.isoformat()}）\n请相关单位抓紧推进，按期提交材料。" * 3,
                "keyboard": [], "assignment_ids": [asg[0].id] if asg else [], "subject_kind": "nudge",
                "subject_id": None, "unit_id": asg[0].unit_id if asg else None}}
            row.update(sent_at=sent_at, telegram_message_id=mid, claimed_at=due)
            sent_today[chat] = oid
            self.rows[BotMessage].append({
                "id": self.ids.take(BotMessage), "campaign_id": p.campaign_id, "telegram_chat_id": chat,
                "message_id": mid, "subject_kind": SubjectKind.nudge, "subject_id": oid,
                "unit_id": asg[0].unit_id if asg else None,
                "for_member_id": member_id if chat > 0 else None, "created_at": sent_at,
            })
        elif state == OutboxState.merged:
            row["merged_into_id"] = lead
        elif state == OutboxState.failed:
            row.update(attempts=8, last_error="8 次发送均失败，已放弃：NetworkError: httpx.ConnectError")
        else:
            row["last_error"] = "发送前任务已提交，无需提醒"
        self.rows[Outbox].append(row)

    def build(self) -> None:
        self.people()
        self.progress()
        self.assignment_updates_by_id = {u["id"]: u for u in self.assignment_updates}
        self.assessments()
        self.evidence()
        self.outbox()
        self.audit()


# ====================================================================== the province


def _split(total: int, weights: Sequence[float]) -> list[int]:
    """``total`` split in proportion to ``weights`` (exactly ``total`` in all)."""
    s = sum(weights) or 1.0
    raw = [total * w / s for w in weights]
    out = [math.floor(x) for x in raw]
    for i in sorted(range(len(raw)), key=lambda i: raw[i] - out[i], reverse=True)[: total - sum(out)]:
        out[i] += 1
    return out


def build_province(
    engine: Engine,
    spec: ProvinceSpec = ProvinceSpec(),
    *,
    progress: Callable[[str], None] | None = None,
) -> SeedReport:
    """Fill ``engine``'s (migrated, empty) database with the synthetic province."""
    say = progress or (lambda _msg: None)
    t0 = time.perf_counter()
    backend = engine.dialect.name
    report = SeedReport(spec={**asdict(spec), "today": spec.today.isoformat()}, backend=backend)
    with Session(engine) as s:
        if s.exec(select(Campaign.id).limit(1)).first() is not None:
            raise RuntimeError("the database already holds campaigns: seed an empty database")
    rng = random.Random(spec.seed)
    raw = SEED_PATH.read_text(encoding="utf-8")
    ds = districts(spec.campaigns, seed=spec.seed)
    elapsed = elapsed_days(spec, rng)

    # 1. The plan of each district, through the real import.
    ti = time.perf_counter()
    made: list[tuple[int, int, date, int]] = []
    for no, (d, e) in enumerate(zip(ds, elapsed, strict=True), start=1):
        doc = district_doc(raw, d, no)
        start = spec.today - timedelta(days=e)
        when = datetime(start.year, start.month, start.day, 9, 0, tzinfo=TZ) - timedelta(days=2)
        with Session(engine, expire_on_commit=False) as s:
            import_seed(session=s, doc=doc, now=when, actor=Actor.cli(), shift_to=start, slug=d.slug)
            s.commit()
            cid = s.exec(select(Campaign.id).where(Campaign.slug == d.slug)).one()
        assert plan_start(doc) is not None
        made.append((no, cid, start, e))  # type: ignore[arg-type]
        report.phases[phase_label(e)] = report.phases.get(phase_label(e), 0) + 1
        if no % 20 == 0:
            say(f"  imported {no}/{spec.campaigns} campaigns ({time.perf_counter() - ti:.1f} s)")
    report.import_seconds = time.perf_counter() - ti

    # 2. Bulk rows, one campaign at a time (one transaction each).
    weights = [max(5, e) for (_, _, _, e) in made]
    n_evidence = _split(spec.evidence, weights)
    n_audit = _split(spec.audit, weights)
    bulk_models = (Member, Chat, Assessment, Evidence, AuditLog, Outbox, BotMessage)
    counts: dict[str, int] = {}
    with engine.connect() as conn:
        ids = Ids(conn, bulk_models)
        conn.rollback()
    for k, (no, cid, start, e) in enumerate(made):
        with Session(engine) as s:
            plan = _load_plan(s, no=no, campaign_id=cid, start=start, elapsed=e)
        b = _CampaignBuilder(plan, spec, ids, rng, n_evidence[k], n_audit[k])
        b.build()
        with engine.begin() as conn:
            for model in bulk_models:
                bulk_insert(conn, model, b.rows[model])
                counts[model.__tablename__] = counts.get(model.__tablename__, 0) + len(b.rows[model])
            if b.assignment_updates:
                conn.execute(
                    sa.update(Assignment.__table__).where(Assignment.__table__.c.id == sa.bindparam("_id")),  # type: ignore[attr-defined]
                    [{**{k2: v for k2, v in u.items() if k2 != "id"}, "_id": u["id"]} for u in b.assignment_updates],
                )
        if k == 0:
            coord = b.coordinators[0]
            report.coordinator = {"campaign_id": cid, "slug": ds[0].slug,
                                  "telegram_user_id": coord["telegram_user_id"],
                                  "group_chat_id": b.group_chat}
        if (k + 1) % 20 == 0:
            say(f"  bulk rows for {k + 1}/{len(made)} campaigns ({time.perf_counter() - t0:.1f} s)")
    with engine.begin() as conn:
        fix_sequences(conn, bulk_models)
    if backend == "postgresql":
        with engine.connect() as conn:
            conn = conn.execution_options(isolation_level="AUTOCOMMIT")
            conn.execute(sa.text("ANALYZE"))
    with Session(engine) as s:
        for model in (Campaign, Unit, Task, Assignment, Criterion, Member, Chat, Assessment,
                      Evidence, AuditLog, Outbox, BotMessage):
            report.rows[model.__tablename__] = s.exec(
                select(sa.func.count()).select_from(model)).one()  # type: ignore[arg-type]
    report.seconds = time.perf_counter() - t0
    return report
