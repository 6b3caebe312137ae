"""Importing a seed into the database (:func:`import_seed`), idempotently.

Rows are matched by natural keys (campaign slug, unit name, phase/task-group/category/
task/item number, criterion (item number, criterion number)), so a re-import updates
in place and keeps every id. Nothing is deleted that carries history: a unit dropped
from a task keeps its Assignment (``retired=True``); tasks, items and criteria the seed
no longer lists are kept and reported as stale. Only links without history (ItemUnit,
CriterionUnit) and phases are deleted.

Auditing: importing a new campaign writes one ``seed.import`` audit row (what was
created); re-importing writes one audit row per changed, added or retired row, with
the changed fields before/after, plus one ``seed.import`` summary row. A re-import that
changes nothing writes nothing at all — not even an audit row — so importing twice
leaves the database exactly as it was.

The caller owns the transaction: nothing here commits (``session.flush`` only).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import insert
from sqlmodel import Session, col, select

from models.audit import Actor, record
from models.scoring import format_points
from models.seed.check import check_seed
from models.seed.schema import (
    SLUG_PATTERN,
    Finding,
    SeedDoc,
    SeedError,
    UnitIndex,
    plan_start,
)
from models.tables import (
    Assignment,
    Campaign,
    Criterion,
    CriterionUnit,
    ItemUnit,
    Phase,
    ScoreCategory,
    ScoreItem,
    Task,
    TaskCriterion,
    TaskGroup,
    Unit,
    UnitKind,
)
from models.wording import full_date, phase_name

# ============================================================================ import


#: The parts of a plan as people name them (the counts of an import speak of these, not of tables).
PLAN_PARTS = {
    "campaign": "活动", "phase": "工作阶段", "unit": "责任单位", "taskgroup": "任务组", "task": "任务",
    "assignment": "任务分工", "scorecategory": "评分类别", "scoreitem": "评分项", "criterion": "评分细则",
    "itemunit": "评分项责任单位", "criterionunit": "细则责任单位", "taskcriterion": "任务与细则的关联",
}


@dataclass
class ImportReport:
    """What ``import_seed`` did."""

    campaign_id: int
    slug: str
    created: bool
    date_shift_days: int
    added: Counter[str] = field(default_factory=Counter)
    updated: Counter[str] = field(default_factory=Counter)
    retired: Counter[str] = field(default_factory=Counter)
    unretired: Counter[str] = field(default_factory=Counter)
    removed: Counter[str] = field(default_factory=Counter)
    stale: list[str] = field(default_factory=list)
    changes: list[str] = field(default_factory=list)
    # Ids by entity of the rows retired and of the rows changed (what recorded work a change touches).
    retired_ids: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    changed_ids: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    warnings: list[Finding] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(
            self.created or +self.added or +self.updated or +self.retired
            or +self.unretired or +self.removed
        )

    def summary(self) -> str:
        def counts(c: Counter[str]) -> str:
            return "，".join(f"{PLAN_PARTS.get(k, k)} {v} 条" for k, v in sorted(c.items()) if v) or "无"

        head = "新建" if self.created else ("更新" if self.changed else "无变化")
        lines = [f"活动 {self.slug}：{head}；日期平移 {self.date_shift_days} 天。"]
        if self.changed:
            lines.append(f"新增：{counts(self.added)}")
            if not self.created:
                lines.append(f"修改：{counts(self.updated)}")
                lines.append(f"停用：{counts(self.retired)}；恢复：{counts(self.unretired)}；"
                             f"删除：{counts(self.removed)}")
        for s in self.stale:
            lines.append(f"保留（种子中已没有）：{s}")
        if self.warnings:
            lines.append(f"种子警告 {len(self.warnings)} 条：")
            lines.extend(f"  [{w.code}] {w.message}" for w in self.warnings)
        return "\n".join(lines)


def seed_digest(doc: SeedDoc) -> str:
    """sha256 of the seed's canonical JSON (independent of formatting and key order)."""
    canon = json.dumps(doc.model_dump(mode="json"), ensure_ascii=False, sort_keys=True,
                       separators=(",", ":"))
    return hashlib.sha256(canon.encode("utf-8")).hexdigest()


def _jsonish(v: Any) -> Any:
    return v.isoformat() if isinstance(v, date) else v


#: Fields as the plan workbook names them (a change line says these, never a column name).
FIELD_NAMES = {
    "name": "名称", "full_name": "全称", "aliases": "别名", "is_member": "领导小组成员单位", "is_lead": "牵头单位",
    "kind": "类型", "retired": "撤销", "title": "主要内容", "detail": "工作要求", "deadline": "完成时限",
    "planned_deadline": "计划完成时限", "group_id": "任务组", "text": "内容", "points": "分数",
    "tier_group": "择一组", "not_attainable": "放弃", "not_attainable_reason": "放弃原因", "label": "简称",
    "category_id": "类别", "subcategory": "子类", "max_points": "分数", "deadline_note": "时限说明",
    "all_members": "全体成员单位负责", "note": "备注", "description": "说明", "start_date": "开始日期",
    "end_date": "结束日期", "stated_points": "分值", "is_bonus": "加分项", "district": "地区",
    "doc_number": "文号", "doc_title": "文件标题", "doc_date": "发文日期", "issuer": "发文单位",
    "timezone": "时区", "stated_base_points": "基本分", "stated_bonus_points": "加分",
}
#: Bookkeeping the plan's reader need not hear of (still audited).
_UNSAID = frozenset({"seed_sha256", "seed_warnings", "date_shift_days", "sort_order", "planned_deadline"})


def _said_change(key: str, before: Any, after: Any, unit_names: Mapping[int, str] | None = None) -> str:
    """``完成时限 2021年12月31日 → 2022年1月31日``; long texts just ``主要内容已修改``."""
    name = FIELD_NAMES.get(key, key)
    if key == "lead_unit_id":
        names = unit_names or {}
        return f"牵头单位 {names.get(before, '（无）')} → {names.get(after, '（无）')}"

    def said(v: Any) -> str:
        if v is None or v == "" or v == []:
            return "（无）"
        if isinstance(v, bool):
            return "是" if v else "否"
        if isinstance(v, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", v):
            return full_date(date.fromisoformat(v))
        if isinstance(v, list):
            return "、".join(str(x) for x in v)
        if isinstance(v, float):
            return format_points(v)
        return str(v)

    if key == "retired":
        return "撤销" if after else "恢复"
    if key == "not_attainable":
        return "放弃（计为已失分）" if after else "取消放弃"
    if key == "not_attainable_reason":
        return f"原因：{after}" if after else ""
    if key in ("group_id", "category_id"):
        return f"{name}已调整"
    b, a = said(before), said(after)
    if len(b) > 30 or len(a) > 30:
        return f"{name}已修改"
    return f"{name} {b} → {a}"


@dataclass
class _Pending:
    entity: str
    entity_id: int | None
    action: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    note: str | None = None


# (key, the fields the seed owns, fixed fields set only on creation, label for the report)
_Spec = tuple[Any, dict[str, Any], dict[str, Any], str]


class _Importer:
    """One import. Existing rows are loaded with one query per table and synced in place;
    missing rows are inserted with one bulk INSERT ... RETURNING per table."""

    def __init__(
        self, *, session: Session, doc: SeedDoc, now: datetime, actor: Actor, slug: str,
        shift_to: date | None, note: str | None = None,
    ) -> None:
        self.s = session
        self.note = note
        self.doc = doc
        self.now = now
        self.actor = actor
        self.slug = slug
        self.shift_to = shift_to
        self.index = UnitIndex.of(doc)
        self.audits: list[_Pending] = []
        self.new = False
        self.shift = 0
        self.fresh: set[tuple[str, int]] = set()  # (entity, id) created by this import
        self.unit_names: dict[int, str] = {}

    # ---------------------------------------------------------------- helpers

    def _d(self, d: date | None) -> date | None:
        return None if d is None else d + timedelta(days=self.shift)

    def _existing(self, stmt: Any) -> list[Any]:
        return [] if self.new else list(self.s.exec(stmt).all())

    def _sync(self, row: Any, entity: str, want: Mapping[str, Any], label: str) -> bool:
        """Set ``want`` on an existing row; queue an audit of the changed fields."""
        before: dict[str, Any] = {}
        after: dict[str, Any] = {}
        for k, v in want.items():
            cur = getattr(row, k)
            if cur != v:
                before[k], after[k] = _jsonish(cur), _jsonish(v)
                setattr(row, k, v)
        if before:
            self.rep.updated[entity] += 1
            self.rep.changed_ids[entity].append(row.id)
            self.audits.append(_Pending(entity, row.id, "seed.update", before, after))
            said = [_said_change(k, before[k], after[k], self.unit_names) for k in before if k not in _UNSAID]
            if any(said):
                self.rep.changes.append(f"{label}：{'；'.join(x for x in said if x)}")
        return bool(before)

    def _bulk(self, model: Any, rows: list[dict[str, Any]], key: Sequence[str]) -> dict[Any, int]:
        """INSERT ``rows`` in one statement; return natural key -> new id."""
        if not rows:
            return {}
        # Core INSERT on the table: one executemany (insertmanyvalues, RETURNING) on every
        # backend, where the ORM's bulk INSERT splits rows by which columns are None.
        table = model.__table__
        cols = [table.c.id, *(table.c[k] for k in key)]
        result = self.s.exec(insert(table).returning(*cols), params=rows)
        return {(r[1] if len(key) == 1 else tuple(r[1:])): r[0] for r in result.all()}

    def _upsert(
        self, model: Any, entity: str, specs: list[_Spec], existing: Mapping[Any, Any],
        key: Sequence[str],
    ) -> dict[Any, int]:
        """Sync the existing rows of ``specs``, bulk-insert the others; key -> id."""
        ids: dict[Any, int] = {}
        fresh: list[tuple[Any, dict[str, Any], str]] = []
        values: list[dict[str, Any]] = []
        for k, want, fixed, label in specs:
            row = existing.get(k)
            if row is None:
                values.append(model(**fixed, **want).model_dump(exclude={"id"}))
                fresh.append((k, want, label))
            else:
                self._sync(row, entity, want, label)
                ids[k] = row.id
        created = self._bulk(model, values, key)
        for k, want, label in fresh:
            ids[k] = created[k]
            self._created(entity, created[k], want, label)
        return ids

    def _created(self, entity: str, row_id: int, want: Mapping[str, Any], label: str) -> None:
        self.rep.added[entity] += 1
        self.fresh.add((entity, row_id))
        if not self.new:
            self.audits.append(_Pending(entity, row_id, "seed.create", None,
                                        {k: _jsonish(v) for k, v in want.items()}))
            if entity != "assignment":  # said by its task's line (增加责任单位)
                self.rep.changes.append(f"新增{label}")

    @property
    def rep(self) -> ImportReport:
        return self.report

    # ---------------------------------------------------------------- steps

    def run(self) -> ImportReport:
        doc = self.doc
        findings = check_seed(doc)
        errors = [f for f in findings if f.level == "error"]
        if errors:
            lines = [f"种子有 {len(errors)} 个错误，未导入："]
            lines += [f"  [{f.code}] {f.where}: {f.message}" for f in errors]
            raise SeedError("\n".join(lines), findings=errors)
        warnings = [f for f in findings if f.level == "warning"]

        campaign = self.s.exec(select(Campaign).where(Campaign.slug == self.slug)).first()
        self.new = campaign is None
        if self.shift_to is not None:
            self.shift = (self.shift_to - plan_start(doc)).days
        elif campaign is not None:
            self.shift = campaign.date_shift_days

        c = doc.campaign
        want: dict[str, Any] = {
            "name": c.name, "district": c.district, "doc_number": c.doc_number,
            "doc_title": c.doc_title, "doc_date": c.doc_date, "issuer": c.issuer,
            "timezone": c.timezone, "date_shift_days": self.shift,
            "stated_base_points": c.base_points, "stated_bonus_points": c.bonus_points,
            "seed_sha256": seed_digest(doc),
            "seed_warnings": [w.to_dict() for w in warnings],
        }
        if campaign is None:
            campaign = Campaign(slug=self.slug, created_at=self.now, updated_at=self.now, **want)
            self.s.add(campaign)
            self.s.flush()
        assert campaign.id is not None
        self.campaign = campaign
        self.cid: int = campaign.id
        self.report = ImportReport(campaign_id=self.cid, slug=self.slug, created=self.new,
                                   date_shift_days=self.shift, warnings=warnings)
        if not self.new:
            self._sync(campaign, "campaign", want, "活动")

        self._units()
        self._phases()
        self._task_groups()
        self._categories()
        self._tasks()
        self._items()
        self._assignments()
        self._item_units()
        self._criteria()
        self._criterion_units()
        self._task_criteria()
        self._finish()
        return self.rep

    def _units(self) -> None:
        rows = self._existing(select(Unit).where(Unit.campaign_id == self.cid))
        by_name = {u.name: u for u in rows}
        seed_names = {u.name for u in self.doc.units}
        matched: dict[str, Unit] = {}
        used: set[int] = set()
        for spec in self.doc.units:
            row = by_name.get(spec.name)
            if row is None:
                # A renamed unit: the new seed keeps the old name among its aliases.
                row = next((by_name[a] for a in spec.aliases
                            if a in by_name and a not in seed_names
                            and id(by_name[a]) not in used), None)
            if row is not None:
                matched[spec.name] = row
                used.add(id(row))
        specs: list[_Spec] = [
            (spec.name,
             {"name": spec.name, "full_name": spec.full_name, "aliases": list(spec.aliases),
              "is_member": spec.is_member, "is_lead": spec.is_lead, "sort_order": order,
              "kind": UnitKind(spec.kind), "retired": False},
             {"campaign_id": self.cid}, f"单位“{spec.name}”")
            for order, spec in enumerate(self.doc.units)
        ]
        self.unit_ids: dict[str, int] = self._upsert(Unit, "unit", specs, matched, ("name",))
        for row in rows:
            if id(row) not in used and not row.retired:
                # Kept with its history (已撤销); its task records are retired with it.
                row.retired = True
                self.rep.retired["unit"] += 1
                self.audits.append(_Pending("unit", row.id, "seed.retire", {"retired": False},
                                            {"retired": True}, f"计划中已没有{row.name}"))
                self.rep.changes.append(f"撤销单位“{row.name}”（保留其记录，其承办记录随之停用）")
        self.stale_units = {row.id for row in rows if id(row) not in used}
        self.unit_names = {u.id: u.name for u in rows}
        self.unit_names.update({i: n for n, i in self.unit_ids.items()})

    def _phases(self) -> None:
        existing = {p.no: p for p in
                    self._existing(select(Phase).where(Phase.campaign_id == self.cid))}
        specs: list[_Spec] = [
            (p.no, {"name": p.name, "description": p.description,
                    "start_date": self._d(p.start), "end_date": self._d(p.end)},
             {"campaign_id": self.cid, "no": p.no}, f"{phase_name(p.no)}")
            for p in self.doc.phases
        ]
        self._upsert(Phase, "phase", specs, existing, ("no",))
        # Phases carry no history: one the seed dropped is deleted (and audited).
        for no in existing.keys() - {p.no for p in self.doc.phases}:
            row = existing[no]
            self.audits.append(_Pending("phase", row.id, "seed.delete",
                                        {"no": no, "name": row.name}, None))
            self.rep.removed["phase"] += 1
            self.rep.changes.append(f"删除{phase_name(no)}")
            self.s.delete(row)

    def _task_groups(self) -> None:
        existing = {g.no: g for g in
                    self._existing(select(TaskGroup).where(TaskGroup.campaign_id == self.cid))}
        specs: list[_Spec] = [
            (g.no, {"title": g.title}, {"campaign_id": self.cid, "no": g.no}, f"任务组 {g.no}")
            for g in self.doc.task_groups
        ]
        self.group_ids = self._upsert(TaskGroup, "taskgroup", specs, existing, ("no",))
        for no in sorted(existing.keys() - self.group_ids.keys()):
            self.rep.stale.append(f"任务组 {no}")

    def _categories(self) -> None:
        existing = {c.no: c for c in self._existing(
            select(ScoreCategory).where(ScoreCategory.campaign_id == self.cid))}
        specs: list[_Spec] = [
            (c.no, {"name": c.name, "stated_points": c.stated_points, "is_bonus": c.is_bonus},
             {"campaign_id": self.cid, "no": c.no}, f"评分类别 {c.no}")
            for c in self.doc.score_categories
        ]
        ids = self._upsert(ScoreCategory, "scorecategory", specs, existing, ("no",))
        self.category_ids = {c.name: ids[c.no] for c in self.doc.score_categories}
        for no in sorted(existing.keys() - ids.keys()):
            self.rep.stale.append(f"评分类别 {no}")

    @staticmethod
    def _deadlines(row: Any, planned: date | None) -> dict[str, Any]:
        """The deadline rule. ``planned_deadline`` always follows the seed; ``deadline``
        follows it too, except that a deadline the coordinator extended (deadline !=
        planned_deadline) is kept as long as the seed's planned date did not change."""
        if row is None or row.planned_deadline != planned:
            return {"deadline": planned, "planned_deadline": planned}
        return {"deadline": row.deadline, "planned_deadline": planned}

    def _tasks(self) -> None:
        existing = {t.no: t for t in
                    self._existing(select(Task).where(Task.campaign_id == self.cid))}
        specs: list[_Spec] = []
        for t in self.doc.tasks:
            row = existing.get(t.no)
            lead = self.index.resolve(t.units[:1])
            want = {"group_id": self.group_ids[t.group], "title": t.title, "detail": t.detail,
                    **self._deadlines(row, self._d(t.deadline)), "retired": False,
                    "lead_unit_id": self.unit_ids[lead[0]] if lead else None}
            if (row is not None and row.deadline != row.planned_deadline
                    and row.planned_deadline != want["planned_deadline"]):
                self.rep.changes.append(
                    f"任务{t.no}：计划完成时限改为 {full_date(want['planned_deadline'])}，"
                    f"原调整后的时限 {full_date(row.deadline)} 不再适用")
            specs.append((t.no, want, {"campaign_id": self.cid, "no": t.no}, f"任务{t.no}"))
        self.task_ids = self._upsert(Task, "task", specs, existing, ("no",))
        self.stale_tasks = sorted((r for no, r in existing.items() if no not in self.task_ids),
                                  key=lambda r: r.no)
        for r in self.stale_tasks:
            if not r.retired:
                r.retired = True
                self.rep.retired["task"] += 1
                self.audits.append(_Pending("task", r.id, "seed.retire", {"retired": False},
                                            {"retired": True}, f"计划中已没有第{r.no}项任务"))
                self.rep.changes.append(f"撤销任务{r.no}（保留其记录，各单位的承办记录随之停用）")

    def _items(self) -> None:
        existing = {i.no: i for i in
                    self._existing(select(ScoreItem).where(ScoreItem.campaign_id == self.cid))}
        specs: list[_Spec] = []
        for it in self.doc.score_items:
            row = existing.get(it.no)
            want = {
                "category_id": self.category_ids[it.category],
                "subcategory": it.subcategory,
                "text": it.text or "",
                "max_points": it.max_points,
                **self._deadlines(row, self._d(it.deadline)),
                "deadline_note": it.deadline_note,
                "all_members": self.index.is_all_members(it.units, self.doc),
                "note": it.note,
            }
            specs.append((it.no, want, {"campaign_id": self.cid, "no": it.no}, f"评分项{it.no}"))
        self.item_ids = self._upsert(ScoreItem, "scoreitem", specs, existing, ("no",))
        for no in sorted(existing.keys() - self.item_ids.keys()):
            self.rep.stale.append(f"评分项 {no}")

    def _unit_ids(self, refs: Iterable[str]) -> list[int]:
        return [self.unit_ids[n] for n in self.index.resolve(refs)]

    def _link_audit(self, entity: str, owner_id: int, before: Iterable[int],
                    after: Iterable[int], label: str) -> None:
        if self.new or (entity, owner_id) in self.fresh:
            return
        b = [self.unit_names.get(i, f"#{i}") for i in before]
        a = [self.unit_names.get(i, f"#{i}") for i in after]
        if sorted(b) != sorted(a):
            self.audits.append(_Pending(entity, owner_id, "seed.update", {"units": b}, {"units": a}))
            self.rep.changed_ids[entity].append(owner_id)
            more = [n for n in a if n not in b]
            less = [n for n in b if n not in a]
            said = ([f"增加责任单位 {'、'.join(more)}"] if more else []) + (
                [f"不再由 {'、'.join(less)} 负责"] if less else [])
            self.rep.changes.append(f"{label}：{'；'.join(said)}")

    def _assignments(self) -> None:
        rows = self._existing(select(Assignment).where(Assignment.campaign_id == self.cid))
        by_task: dict[int, dict[int, Assignment]] = defaultdict(dict)
        for r in rows:
            by_task[r.task_id][r.unit_id] = r
        specs: list[_Spec] = []
        for t in self.doc.tasks:
            tid = self.task_ids[t.no]
            want = self._unit_ids(t.units)
            have = by_task.get(tid, {})
            active_before = [u for u, r in have.items() if not r.retired]
            for uid in want:
                r = have.get(uid)
                if r is None:
                    specs.append(((tid, uid), {},
                                  {"campaign_id": self.cid, "task_id": tid, "unit_id": uid,
                                   "updated_at": self.now},
                                  f"任务{t.no}的承办单位“{self.unit_names[uid]}”"))
                elif r.retired:
                    r.retired = False
                    self.rep.unretired["assignment"] += 1
                    self.audits.append(_Pending("assignment", r.id, "seed.unretire",
                                                {"retired": True}, {"retired": False},
                                                f"计划中第{t.no}项任务重新列入该单位"))
            for uid, r in have.items():
                if uid not in want and not r.retired:
                    self._retire(r, f"计划中第{t.no}项任务已不含{self.unit_names.get(uid, uid)}")
            self._link_audit("task", tid, active_before, want, f"任务{t.no}")
        self._upsert(Assignment, "assignment", specs, {}, ("task_id", "unit_id"))
        for task in self.stale_tasks:
            for r in by_task.get(task.id or -1, {}).values():
                if not r.retired:
                    self._retire(r, f"计划中已没有第{task.no}项任务")
        for task_units in by_task.values():
            for uid, r in task_units.items():
                if uid in self.stale_units and not r.retired:
                    self._retire(r, f"计划中已没有{self.unit_names.get(uid, uid)}")

    def _retire(self, r: Assignment, why: str) -> None:
        r.retired = True
        self.rep.retired["assignment"] += 1
        self.rep.retired_ids["assignment"].append(r.id)  # type: ignore[arg-type]
        self.audits.append(_Pending("assignment", r.id, "seed.retire", {"retired": False},
                                    {"retired": True}, why))  # said by its task's or unit's line

    def _links(self, model: Any, owner_col: str, owner_entity: str,
               have: Mapping[int, dict[int, Any]], want: Mapping[int, list[int]],
               labels: Mapping[int, str]) -> None:
        """Make the (owner, unit) link rows of ``model`` equal ``want``."""
        values: list[dict[str, Any]] = []
        for owner_id, units in want.items():
            cur = have.get(owner_id, {})
            for uid in units:
                if uid not in cur:
                    values.append({owner_col: owner_id, "unit_id": uid})
            for uid, r in cur.items():
                if uid not in units:
                    self.s.delete(r)
                    self.rep.removed[model.__tablename__] += 1
            self._link_audit(owner_entity, owner_id, list(cur), units, labels[owner_id])
        if values:
            self.s.exec(insert(model.__table__), params=values)
            self.rep.added[model.__tablename__] += len(values)

    def _item_units(self) -> None:
        rows = self._existing(
            select(ItemUnit).join(ScoreItem, col(ItemUnit.item_id) == col(ScoreItem.id))
            .where(ScoreItem.campaign_id == self.cid))
        have: dict[int, dict[int, ItemUnit]] = defaultdict(dict)
        for r in rows:
            have[r.item_id][r.unit_id] = r
        want = {self.item_ids[it.no]: self._unit_ids(it.units) for it in self.doc.score_items}
        labels = {self.item_ids[it.no]: f"评分项{it.no}" for it in self.doc.score_items}
        self._links(ItemUnit, "item_id", "scoreitem", have, want, labels)

    def _criteria(self) -> None:
        existing = {(r.item_id, r.no): r for r in
                    self._existing(select(Criterion).where(Criterion.campaign_id == self.cid))}
        specs: list[_Spec] = []
        for it in self.doc.score_items:
            iid = self.item_ids[it.no]
            for c in it.criteria:
                want = {"text": c.text, "points": c.points, "tier_group": c.tier_group,
                        "not_attainable": c.not_attainable,
                        "not_attainable_reason": c.not_attainable_reason, "label": c.label}
                specs.append(((iid, c.no), want,
                              {"campaign_id": self.cid, "item_id": iid, "no": c.no},
                              f"细则{it.no}.{c.no}"))
        ids = self._upsert(Criterion, "criterion", specs, existing, ("item_id", "no"))
        self.criterion_ids = {(it.no, c.no): ids[(self.item_ids[it.no], c.no)]
                              for it in self.doc.score_items for c in it.criteria}
        item_no = {i: no for no, i in self.item_ids.items()}
        for key in sorted(existing.keys() - ids.keys()):
            self.rep.stale.append(f"评分项 {item_no.get(key[0], '?')} 细则 {key[1]}")

    def _criterion_units(self) -> None:
        rows = self._existing(
            select(CriterionUnit)
            .join(Criterion, col(CriterionUnit.criterion_id) == col(Criterion.id))
            .where(Criterion.campaign_id == self.cid))
        have: dict[int, dict[int, CriterionUnit]] = defaultdict(dict)
        for r in rows:
            have[r.criterion_id][r.unit_id] = r
        want: dict[int, list[int]] = {}
        labels: dict[int, str] = {}
        for it in self.doc.score_items:
            for c in it.criteria:
                cid = self.criterion_ids[(it.no, c.no)]
                want[cid] = self._unit_ids(c.units or ())
                labels[cid] = f"细则{it.no}.{c.no}"
        self._links(CriterionUnit, "criterion_id", "criterion", have, want, labels)

    def _task_criteria(self) -> None:
        """Make the task ↔ criterion links equal the seed's (links carry no history)."""
        rows = self._existing(
            select(TaskCriterion).join(Task, col(TaskCriterion.task_id) == col(Task.id))
            .where(Task.campaign_id == self.cid))
        have = {(r.task_id, r.criterion_id): r for r in rows}
        want: dict[tuple[int, int], bool] = {}
        for link in self.doc.links:
            key = (self.task_ids[link.task], self.criterion_ids[link.criterion_key])
            want[key] = link.suggested
        task_no = {i: no for no, i in self.task_ids.items()} | {r.id: r.no for r in self.stale_tasks}
        crit_no = {i: f"{a}.{b}" for (a, b), i in self.criterion_ids.items()}

        def label(key: tuple[int, int]) -> str:
            return f"任务{task_no.get(key[0], '?')}与细则{crit_no.get(key[1], '?')}的关联"

        values = []
        for key, suggested in want.items():
            row = have.get(key)
            if row is None:
                values.append({"task_id": key[0], "criterion_id": key[1], "suggested": suggested})
                if not self.new:
                    self.audits.append(_Pending("task", key[0], "seed.link", None,
                                                {"criterion_id": key[1], "suggested": suggested}))
                    self.rep.changes.append(f"新增{label(key)}")
            elif row.suggested != suggested:
                row.suggested = suggested
                self.rep.updated["taskcriterion"] += 1
                self.audits.append(_Pending("task", key[0], "seed.link", {"suggested": not suggested},
                                            {"suggested": suggested}))
                self.rep.changes.append(f"{label(key)}：{'改为建议' if suggested else '已确认'}")
        for key, row in have.items():
            if key not in want:
                self.s.delete(row)
                self.rep.removed["taskcriterion"] += 1
                self.audits.append(_Pending("task", key[0], "seed.unlink", {"criterion_id": key[1]}, None))
                self.rep.changes.append(f"删除{label(key)}")
        if values:
            self.s.exec(insert(TaskCriterion.__table__), params=values)  # type: ignore[attr-defined]
            self.rep.added["taskcriterion"] += len(values)

    def _finish(self) -> None:
        rep = self.rep
        if not rep.changed and not self.audits:
            return
        self.campaign.updated_at = self.now
        for p in self.audits:
            record(session=self.s, actor=self.actor, action=p.action, entity=p.entity,
                   entity_id=p.entity_id, at=self.now, campaign_id=self.cid,
                   before=p.before, after=p.after, note=p.note)
        record(
            session=self.s, actor=self.actor, action="seed.import", entity="campaign",
            entity_id=self.cid, at=self.now, campaign_id=self.cid, before=None,
            after={
                "slug": self.slug, "created": rep.created,
                "seed_sha256": self.campaign.seed_sha256,
                "date_shift_days": rep.date_shift_days, "added": dict(rep.added),
                "updated": dict(rep.updated), "retired": dict(rep.retired),
                "unretired": dict(rep.unretired), "removed": dict(rep.removed),
                "stale": rep.stale, "warnings": len(rep.warnings),
            },
            note=self.note or ("导入种子（新建活动）" if rep.created else "重新导入种子"),
        )
        self.s.flush()


def import_seed(
    *,
    session: Session,
    doc: SeedDoc,
    now: datetime,
    actor: Actor,
    shift_to: date | None = None,
    slug: str | None = None,
    note: str | None = None,
) -> ImportReport:
    """Create or update the campaign ``slug`` (default: the seed's) from ``doc``.

    Refuses (SeedError, listing them) a seed with errors; stores its warnings in
    ``Campaign.seed_warnings``. ``shift_to`` moves every plan date (phases, task and item
    deadlines; not the document's date) by ``shift_to - plan_start(doc)`` days and records
    it in ``Campaign.date_shift_days``; without it a new campaign is not shifted and an
    existing one keeps its shift. Deadlines the coordinator extended survive a re-import
    unless the seed's planned date changed. Only adds and flushes: the caller commits.
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be time-zone aware")
    chosen = slug if slug is not None else doc.campaign.slug
    if not re.fullmatch(SLUG_PATTERN, chosen) or len(chosen) > 64:
        raise SeedError(f"活动标识“{chosen}”不合法：只能用小写字母、数字和连字符，最长64个字符")
    return _Importer(session=session, doc=doc, now=now, actor=actor, slug=chosen,
                     shift_to=shift_to, note=note).run()
