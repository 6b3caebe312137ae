"""The living plan: read the campaign's plan as a seed document, change it, apply it.

Every change to the plan goes through ONE engine, the seed importer
(:func:`models.seed.import_seed`): the plan workbook (``qcbot plan import``, or a workbook
sent back to the bot), the coordinator's in-chat edits (add a unit, assign or waive a
criterion, change a task's units) and a re-import of ``data/seed.json`` all do the same
thing with the same rules — nothing recorded is deleted (a task or unit dropped from the
plan is retired, 已撤销, with its history), every change is audited, and a re-import of
what :func:`live_plan` returns changes nothing.

:func:`live_plan` reads the plan as it stands, in the campaign's dates (the deadlines in force);
importing it back is a no-op. :func:`apply` makes a
document the plan and says, in Chinese, what changed and which recorded work each change
touches; the caller commits, or rolls back for a preview (``--dry-run``, the bot's diff
before its confirm button).
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, get_args
from zoneinfo import ZoneInfo

from pydantic import ValidationError
from sqlalchemy import func
from sqlmodel import Session, col, select

from models.audit import Actor
from models.errors import Conflict, DomainError, InvalidInput, NotFound
from models.progress import change_deadline, check_waivable
from models.seed import ImportReport, SeedDoc, import_seed
from models.seed.schema import CriterionSpec, ScoreItemSpec, UnitIndex, UnitSpec
from models.tables import (
    Assessment,
    AssessmentState,
    Assignment,
    AssignmentState,
    AuditLog,
    Campaign,
    Criterion,
    CriterionUnit,
    Evidence,
    ItemUnit,
    Phase,
    ScoreCategory,
    ScoreItem,
    Task,
    TaskCriterion,
    TaskGroup,
    Unit,
)
from models.wording import full_date

#: The note of every plan change's summary audit row (seed.import): how a re-import of the seed
#: knows the coordinator changed the plan since.
PLAN_NOTE = "修改工作计划"
#: Why a deadline moved when the coordinator's workbook moved it (the audit, /task and the notices say it).
DEADLINE_REASON = "按协调员导入的工作计划调整"
#: The name the plan gives "every member unit of the leading group".
ALL_MEMBERS = "区质量强区领导小组成员单位"
#: The other ways a workbook may write it (as data/seed.json does).
ALL_MEMBERS_ALIASES = ("质量强区领导小组成员单位", "领导小组成员单位", "成员单位", "全体成员单位", "各成员单位",
                       "区质量强区领导小组全体成员单位")
#: What a unit can be (区直单位、街道、驻区单位).
UNIT_KINDS: tuple[str, ...] = get_args(UnitSpec.model_fields["kind"].annotation)


def _campaign(session: Session, campaign_id: int) -> Campaign:
    campaign = session.get(Campaign, campaign_id)
    if campaign is None:
        raise NotFound("没有找到这个创建活动。")
    return campaign


def live_plan(*, session: Session, campaign_id: int) -> SeedDoc:
    """The campaign's plan as it stands, as a seed document (retired tasks and units left out), in
    the campaign's own dates (a moved demo campaign's workbook says the dates its screens say)."""
    c = _campaign(session, campaign_id)

    def d(x: date | None) -> date | None:
        return x  # the campaign's own dates (after its shift), as every screen shows them

    units = list(session.exec(select(Unit).where(Unit.campaign_id == campaign_id)
                              .order_by(col(Unit.sort_order), col(Unit.id))))
    names = {u.id: u.name for u in units}
    active = [u for u in units if not u.retired]
    lead = next((u.name for u in active if u.is_lead), active[0].name if active else "")
    phases = session.exec(select(Phase).where(Phase.campaign_id == campaign_id).order_by(col(Phase.no))).all()
    groups = session.exec(select(TaskGroup).where(TaskGroup.campaign_id == campaign_id)
                          .order_by(col(TaskGroup.no))).all()
    tasks = session.exec(select(Task).where(Task.campaign_id == campaign_id, col(Task.retired).is_(False))
                         .order_by(col(Task.no))).all()
    task_units: dict[int, list[str]] = defaultdict(list)
    for a in session.exec(select(Assignment).where(Assignment.campaign_id == campaign_id,
                                                   col(Assignment.retired).is_(False))
                          .order_by(col(Assignment.id))):
        task_units[a.task_id].append(names[a.unit_id])
    categories = session.exec(select(ScoreCategory).where(ScoreCategory.campaign_id == campaign_id)
                              .order_by(col(ScoreCategory.no))).all()
    cat_names = {k.id: k.name for k in categories}
    items = session.exec(select(ScoreItem).where(ScoreItem.campaign_id == campaign_id)
                         .order_by(col(ScoreItem.no))).all()
    item_units: dict[int, list[str]] = defaultdict(list)
    for link in session.exec(select(ItemUnit).join(ScoreItem, col(ItemUnit.item_id) == col(ScoreItem.id))
                             .where(ScoreItem.campaign_id == campaign_id)):
        item_units[link.item_id].append(names[link.unit_id])
    criteria = session.exec(select(Criterion).where(Criterion.campaign_id == campaign_id)
                            .order_by(col(Criterion.item_id), col(Criterion.no))).all()
    crit_units: dict[int, list[str]] = defaultdict(list)
    for cu in session.exec(select(CriterionUnit).join(Criterion, col(CriterionUnit.criterion_id) == col(Criterion.id))
                           .where(Criterion.campaign_id == campaign_id)):
        crit_units[cu.criterion_id].append(names[cu.unit_id])
    by_item: dict[int, list[Criterion]] = defaultdict(list)
    for cr in criteria:
        by_item[cr.item_id].append(cr)
    item_no = {i.id: i.no for i in items}
    crit_key = {cr.id: f"{item_no[cr.item_id]}.{cr.no}" for cr in criteria}
    task_no = {t.id: t.no for t in tasks}
    links = session.exec(select(TaskCriterion).where(col(TaskCriterion.task_id).in_(list(task_no)))
                         .order_by(col(TaskCriterion.task_id), col(TaskCriterion.criterion_id))).all()
    order = {n: i for i, n in enumerate(u.name for u in active)}

    def ordered(unit_names: list[str]) -> list[str]:
        return sorted(dict.fromkeys(unit_names), key=lambda n: order.get(n, len(order)))

    data: dict[str, Any] = {
        "schema_version": 1,
        "campaign": {
            "slug": c.slug, "name": c.name, "district": c.district, "doc_number": c.doc_number,
            "doc_title": c.doc_title, "doc_date": c.doc_date, "issuer": c.issuer, "timezone": c.timezone,
            "base_points": c.stated_base_points, "bonus_points": c.stated_bonus_points, "lead_unit": lead,
        },
        "units": [{"name": u.name, "full_name": u.full_name, "aliases": list(u.aliases or []),
                   "is_member": u.is_member, "is_lead": u.is_lead, "kind": str(u.kind)} for u in active],
        "unit_groups": {ALL_MEMBERS: {"members": "all", "aliases": list(ALL_MEMBERS_ALIASES)}},
        "phases": [{"no": p.no, "name": p.name, "description": p.description, "start": d(p.start_date),
                    "end": d(p.end_date)} for p in phases],
        "task_groups": [{"no": g.no, "title": g.title} for g in groups],
        # The deadline in force (what /task shows); apply() moves a changed one by the one rule.
        "tasks": [{"no": t.no, "group": next(g.no for g in groups if g.id == t.group_id), "title": t.title,
                   "detail": t.detail, "units": _lead_first(task_units.get(t.id or 0, []), names.get(t.lead_unit_id or 0)),
                   "deadline": d(t.deadline)}
                  for t in tasks],
        "score_categories": [{"no": k.no, "name": k.name, "stated_points": k.stated_points,
                              "is_bonus": k.is_bonus} for k in categories],
        "score_items": [{
            "no": i.no, "category": cat_names[i.category_id], "subcategory": i.subcategory,
            "max_points": i.max_points, "text": i.text or None,
            "units": [ALL_MEMBERS] if i.all_members else ordered(item_units.get(i.id or 0, [])),
            "deadline": d(i.planned_deadline), "deadline_note": i.deadline_note, "note": i.note,
            "criteria": [{
                "no": cr.no, "points": cr.points, "text": cr.text, "tier_group": cr.tier_group,
                "units": ordered(crit_units[cr.id or 0]) if crit_units.get(cr.id or 0) else None,
                "not_attainable": cr.not_attainable, "not_attainable_reason": cr.not_attainable_reason,
                "label": cr.label,
            } for cr in by_item.get(i.id or 0, [])],
        } for i in items],
        "links": [{"task": task_no[lk.task_id], "criterion": crit_key[lk.criterion_id], "suggested": lk.suggested}
                  for lk in links],
    }
    return SeedDoc.model_validate_json(json.dumps(data, ensure_ascii=False, default=str))


def _lead_first(units: list[str], lead: str | None) -> list[str]:
    """A task's units with its lead (牵头单位) first: the plan's way of saying which leads."""
    return [lead, *(u for u in units if u != lead)] if lead in units else units


def plan_digest(doc: SeedDoc) -> str:
    """A fingerprint of a plan: a preview is confirmed only while the live plan still has it."""
    canon = json.dumps(doc.model_dump(mode="json"), ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canon.encode("utf-8")).hexdigest()


# ------------------------------------------------------------------ what a change touches


@dataclass
class PlanChange:
    """What applying a plan did (or, in a rolled-back preview, would do)."""

    report: ImportReport
    #: One Chinese line per change (added, changed, retired, removed).
    lines: list[str] = field(default_factory=list)
    #: One Chinese line per recorded piece of work a change touches (kept, never lost).
    touches: list[str] = field(default_factory=list)
    #: Tasks whose deadline in force moved: (task id, the deadline before), for the units' notices.
    moved: list[tuple[int, date]] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.lines)

    def text(self, limit: int = 40) -> str:
        """The change as the coordinator reads it before confirming."""
        if not self.lines:
            return "与现行工作计划相比没有变化。"
        out = [f"共 {len(self.lines)} 处变化："]
        out += [f"{n}. {line}" for n, line in enumerate(self.lines[:limit], 1)]
        if len(self.lines) > limit:
            out.append(f"……另有 {len(self.lines) - limit} 处")
        if self.touches:
            out.append("涉及已有记录（全部保留，不会删除）：")
            out += [f"· {t}" for t in self.touches]
        return "\n".join(out)


def _touches(session: Session, report: ImportReport) -> list[str]:
    """The recorded work behind what the import retired or re-assigned."""
    out: list[str] = []
    for aid in report.retired_ids.get("assignment", []):
        a = session.get(Assignment, aid)
        if a is None:
            continue
        task = session.get(Task, a.task_id)
        unit = session.get(Unit, a.unit_id)
        files = session.exec(select(func.count()).select_from(Evidence).where(
            Evidence.task_id == a.task_id, Evidence.unit_id == a.unit_id)).one()
        if a.state == AssignmentState.not_started and not a.percent and not files:
            continue
        state = {AssignmentState.approved: "已通过", AssignmentState.submitted: "已提交待审核",
                 AssignmentState.in_progress: f"进度 {a.percent}%"}.get(a.state, "未开始")
        out.append(f"任务{task.no if task else '?'}·{unit.name if unit else '?'}：{state}，"
                   f"证明材料 {files} 份（停用后仍可在台账中查到）")
    for cid in report.changed_ids.get("criterion", []):
        crit = session.get(Criterion, cid)
        claim = session.exec(select(Assessment).where(Assessment.criterion_id == cid)).first()
        if crit is None or claim is None or claim.state == AssessmentState.none:
            continue
        item = session.get(ScoreItem, crit.item_id)
        state = {AssessmentState.claimed: "已申报待审核", AssessmentState.verified: "已核定",
                 AssessmentState.rejected: "未通过"}.get(claim.state, str(claim.state))
        out.append(f"细则{item.no if item else '?'}.{crit.no}：{state}")
    return out


def _lines(report: ImportReport) -> list[str]:
    return [line for line in report.changes if line]


def plan_edited(*, session: Session, slug: str) -> str | None:
    """When the coordinator last changed campaign ``slug``'s plan (a workbook, an in-chat edit, a
    workbook-moved deadline), in words; None when they never did (or there is no such campaign)."""
    c = session.exec(select(Campaign).where(Campaign.slug == slug)).first()
    if c is None:
        return None
    last = session.exec(select(AuditLog).where(
        AuditLog.campaign_id == c.id, AuditLog.action == "seed.import", AuditLog.note == PLAN_NOTE,
    ).order_by(col(AuditLog.id).desc())).first()
    if last is None:
        return None
    local = last.at.astimezone(ZoneInfo(c.timezone))
    return f"最近一次在{full_date(local.date())} {local:%H:%M}"


def lock(*, session: Session, campaign_id: int) -> Campaign:
    """Hold the campaign's row until the transaction ends: plan changes queue, one at a time
    (two 确认导入 presses, a /waive racing a workbook), on PostgreSQL as on SQLite."""
    c = session.exec(select(Campaign).where(Campaign.id == campaign_id).with_for_update()
                     .execution_options(populate_existing=True)).first()
    if c is None:
        raise NotFound("没有找到这个创建活动。")
    return c


def apply(*, session: Session, campaign_id: int, doc: SeedDoc, actor: Actor, now: datetime,
          note: str = PLAN_NOTE) -> PlanChange:
    """Make the campaign's plan ``doc`` (validated as ``qcbot seed check`` does), audited; no commit.

    The document must be this campaign's (same slug). Score items and criteria of the official
    table are never dropped (a criterion that does not apply here is waived with a reason instead).
    """
    c = lock(session=session, campaign_id=campaign_id)
    if doc.campaign.slug != c.slug:
        raise InvalidInput(f"这份工作计划属于活动“{doc.campaign.slug}”，不是本活动（{c.slug}）的。")
    items_now = {i.no for i in session.exec(select(ScoreItem).where(ScoreItem.campaign_id == campaign_id))}
    crits_now = {(i.no, cr.no) for cr, i in session.exec(
        select(Criterion, ScoreItem).join(ScoreItem, col(Criterion.item_id) == col(ScoreItem.id))
        .where(Criterion.campaign_id == campaign_id))}
    kept_items = {it.no for it in doc.score_items}
    kept_crits = {(it.no, cr.no) for it in doc.score_items for cr in it.criteria}
    if items_now - kept_items:
        nos = "、".join(str(n) for n in sorted(items_now - kept_items))
        raise InvalidInput(f"评分表是验收标准，不能删除评分项（缺少第 {nos} 项）。"
                           "某条细则本区不适用时，请在“细则”表的“放弃原因”列写明原因。")
    if crits_now - kept_crits:
        nos = "、".join(f"{a}.{b}" for a, b in sorted(crits_now - kept_crits))
        raise InvalidInput(f"评分表是验收标准，不能删除细则（缺少细则 {nos}）。"
                           "本区不适用时，请在“放弃原因”列写明原因。")
    waived = {(it.no, cr.no) for it in doc.score_items for cr in it.criteria if cr.not_attainable}
    for crit, item in session.exec(
            select(Criterion, ScoreItem).join(ScoreItem, col(Criterion.item_id) == col(ScoreItem.id))
            .where(Criterion.campaign_id == campaign_id, col(Criterion.not_attainable).is_(False))
            .with_for_update(of=Criterion)):  # a claim cannot slip in between the guard and the waiver
        if (item.no, crit.no) in waived:
            check_waivable(session=session, criterion=crit, item=item)
    # The plan's task dates are the deadlines in force. One that differs is moved by the one rule of
    # a deadline change (progress.change_deadline: not in the past, within the campaign, audited with
    # its reason); the importer sees the planned date, so it keeps what the plan first said (原定).
    doc = doc.model_copy(deep=True)
    shift = timedelta(days=c.date_shift_days)

    def back(x: date | None) -> date | None:  # the importer re-applies the campaign's shift
        return None if x is None else x - shift

    for p in doc.phases:
        p.start, p.end = back(p.start), back(p.end)  # type: ignore[assignment]
    for it in doc.score_items:
        it.deadline = back(it.deadline)
    for t in doc.tasks:
        t.deadline = back(t.deadline)  # type: ignore[assignment]
    live = {t.no: t for t in session.exec(select(Task).where(Task.campaign_id == campaign_id,
                                                             col(Task.retired).is_(False)))}
    moves: list[tuple[Task, date]] = []
    for spec in doc.tasks:
        row = live.get(spec.no)
        if row is None:
            continue
        if spec.deadline + shift != row.deadline:
            moves.append((row, spec.deadline + shift))
        spec.deadline = row.planned_deadline - shift
    report = import_seed(session=session, doc=doc, now=now, actor=actor, slug=c.slug, note=note)
    change = PlanChange(report=report, lines=_lines(report), touches=_touches(session, report))
    today = now.astimezone(ZoneInfo(c.timezone)).date()
    for row, new in moves:
        old = row.deadline
        try:
            change_deadline(session=session, task_id=row.id, new=new, actor=actor, now=now,  # type: ignore[arg-type]
                            today=today, reason=DEADLINE_REASON)
        except DomainError as err:
            raise InvalidInput(f"任务{row.no}：{err.message}") from None
        change.moved.append((row.id, old))  # type: ignore[arg-type]
        change.lines.append(f"任务{row.no}：完成时限 {full_date(old)} → {full_date(new)}")
    return change


def preview(*, session: Session, campaign_id: int, doc: SeedDoc, actor: Actor, now: datetime) -> PlanChange:
    """What :func:`apply` would change, undone at once (a savepoint rolled back)."""
    savepoint = session.begin_nested()
    try:
        return apply(session=session, campaign_id=campaign_id, doc=doc, actor=actor, now=now)
    finally:
        savepoint.rollback()


# ------------------------------------------------------------------ in-chat edits (coordinator)


def _edited(session: Session, campaign_id: int, actor: Actor, now: datetime,
            edit: Callable[[SeedDoc], None]) -> PlanChange:
    lock(session=session, campaign_id=campaign_id)  # read the plan only once no other change is under way
    doc = live_plan(session=session, campaign_id=campaign_id)
    edit(doc)
    try:
        doc = SeedDoc.model_validate(doc.model_dump(mode="python"), strict=False)
    except ValidationError as exc:
        raise InvalidInput("；".join(str(e["msg"]) for e in exc.errors())) from None
    return apply(session=session, campaign_id=campaign_id, doc=doc, actor=actor, now=now)


def _unit_named(doc: SeedDoc, name: str) -> str:
    """The plan's name for ``name`` (a unit's name or alias); refuses an unknown one."""
    index = UnitIndex.of(doc)
    if name in index.spelling:
        return index.spelling[name]
    for variant in (name.removeprefix("区"), "区" + name):
        if variant in index.spelling:
            return index.spelling[variant]
    raise NotFound(f"没有找到单位“{name[:30]}”（新的单位须先加入工作计划）。")


def add_unit(*, session: Session, campaign_id: int, name: str, kind: str, actor: Actor, now: datetime) -> PlanChange:
    """A new responsible unit (not a member of the leading group unless the workbook says so);
    a retired unit of that name comes back."""
    name = name.replace("\x00", "").strip()
    if not name or len(name) > 100:
        raise InvalidInput("单位名称应为 1 到 100 个字。")
    if kind not in UNIT_KINDS:
        raise InvalidInput(f"单位类型应为{'、'.join(UNIT_KINDS)}之一。")

    def edit(doc: SeedDoc) -> None:
        index = UnitIndex.of(doc)
        if name in index.spelling or name in index.groups:
            raise Conflict(f"已有单位“{index.spelling.get(name, name)}”。")
        doc.units.append(UnitSpec(name=name, kind=kind, is_member=False))  # type: ignore[arg-type]

    return _edited(session, campaign_id, actor, now, edit)


def _criterion(doc: SeedDoc, key: str) -> tuple[ScoreItemSpec, CriterionSpec]:
    try:
        item_no, no = (int(x) for x in key.split("."))
        item = doc.item(item_no)
        return item, next(c for c in item.criteria if c.no == no)
    except (ValueError, KeyError, StopIteration):
        raise NotFound(f"没有细则“{key[:20]}”（写成 项号.细则号，如 10.1）。") from None


def assign_criterion(*, session: Session, campaign_id: int, key: str, units: list[str], actor: Actor,
                     now: datetime) -> PlanChange:
    """Give criterion ``key`` (``10.1``) to ``units`` (a waiver of it is lifted)."""
    def edit(doc: SeedDoc) -> None:
        item, crit = _criterion(doc, key)
        names = [_unit_named(doc, u) for u in units]
        if not names:
            raise InvalidInput("请写明由哪个单位负责。")
        crit.units = list(dict.fromkeys(names))
        crit.not_attainable, crit.not_attainable_reason = False, None
        if item.units and not UnitIndex.of(doc).is_all_members(item.units, doc):
            item.units = list(dict.fromkeys([*item.units, *names]))
        elif not item.units:
            item.units = list(crit.units)

    return _edited(session, campaign_id, actor, now, edit)


def waive_criterion(*, session: Session, campaign_id: int, key: str, reason: str, actor: Actor,
                    now: datetime) -> PlanChange:
    """Give up criterion ``key`` with ``reason``: its points count as lost (已失分), the reason shown."""
    why = " ".join(reason.replace("\x00", "").split())
    if not why:
        raise InvalidInput("请写明放弃的原因（会显示在评分项和台账中）。")
    if len(why) > 200:
        raise InvalidInput("放弃原因不超过 200 个字。")

    def edit(doc: SeedDoc) -> None:
        _, crit = _criterion(doc, key)
        crit.not_attainable, crit.not_attainable_reason = True, why

    return _edited(session, campaign_id, actor, now, edit)


def set_task_units(*, session: Session, campaign_id: int, task_no: int, units: list[str], actor: Actor,
                   now: datetime) -> PlanChange:
    """Task ``task_no`` is carried by ``units`` (the first leads); a unit dropped keeps its record."""
    def edit(doc: SeedDoc) -> None:
        try:
            task = doc.task(task_no)
        except KeyError:
            raise NotFound(f"没有任务 {task_no}（或已撤销）。") from None
        names = list(dict.fromkeys(_unit_named(doc, u) for u in units))
        if not names:
            raise InvalidInput("请写明承担任务的单位。")
        task.units = names

    return _edited(session, campaign_id, actor, now, edit)
