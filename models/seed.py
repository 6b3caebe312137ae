"""The campaign plan (``data/seed.json``): its schema, its checks, its import.

The seed is a faithful transcription of the district's document (瑶办发〔2021〕25号):
the work phases, the "六个一" task table (Annex 1) and the official acceptance scoring
table (Annex 2). This module

* describes the file with strict pydantic models (:class:`SeedDoc`) and loads it
  (:func:`load_seed`; malformed input raises :class:`SeedError` naming the JSON path);
* checks it (:func:`check_seed`): errors (unknown unit, duplicate number, points that
  are not a multiple of 0.5, phases out of order ...) and warnings (the arithmetic of
  the official table does not add up, a deadline falls outside the phases ...);
* holds THE scoring rule (:func:`item_score`, :func:`attainable_points`), which the
  scoring code imports;
* imports it into the database (:func:`import_seed`), idempotently.

The scoring rule
----------------
The official table is not consistent: some items' sub-criteria add up to more than
the item's points (items 25, 28), one to less (item 19), and a few criteria are
alternatives ("国家级再加2分，省级再加1分，满分4分"). qcbot scores an item as::

    item score = min(item max_points, sum of the met criteria)

where criteria sharing a ``tier_group`` are alternatives and only the highest met one
counts. The best an item can earn from the table (:func:`attainable_points`) is the
score with every criterion met; with this rule the base table's attainable total is
exactly the 100 points the document states, although the items' points add up to 102.
:func:`reachable_points` further leaves out criteria the seed marks ``not_attainable``
for this district (item 10: the district has no statutory metrology institution).

Import
------
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
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from sqlalchemy import insert
from sqlmodel import Session, col, select

from models.audit import Actor, record
from models.errors import DomainError
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
    TaskGroup,
    Unit,
)

__all__ = [
    "SCHEMA_VERSION",
    "POINT_STEP",
    "SeedError",
    "Finding",
    "ImportReport",
    "SeedDoc",
    "CampaignSpec",
    "UnitSpec",
    "UnitGroupSpec",
    "PhaseSpec",
    "TaskGroupSpec",
    "TaskSpec",
    "ScoreCategorySpec",
    "ScoreItemSpec",
    "CriterionSpec",
    "SectionSpec",
    "UnitIndex",
    "load_seed",
    "parse_seed",
    "check_seed",
    "criteria_points",
    "item_score",
    "attainable_points",
    "reachable_points",
    "plan_start",
    "import_seed",
]

SCHEMA_VERSION = 1
# Every point value of the official table is a multiple of this (0.5 and 1.5 exist).
POINT_STEP = 0.5
SLUG_PATTERN = r"^[a-z0-9][a-z0-9-]*$"


# ============================================================================ errors


class SeedError(DomainError):
    """The seed cannot be loaded or imported. ``str(err)`` says where and why (Chinese)."""

    code = "seed_invalid"

    def __init__(self, message: str, *, findings: Sequence[Finding] = ()) -> None:
        super().__init__(message)
        self.findings: list[Finding] = list(findings)


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem ``check_seed`` found.

    ``message`` is Chinese, for the operators, with the item/task numbers and the
    figures on each side. ``where`` is a JSON-path-like locator
    (``score_items[no=25]``). ``no`` is the item/task/category number the finding is
    about (None for totals) and ``figures`` the numbers compared, for programs.
    """

    level: Literal["error", "warning"]
    code: str
    message: str
    where: str
    no: int | None = None
    figures: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# ============================================================================ schema


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


Name = Annotated[str, Field(min_length=1, max_length=100)]
Text = Annotated[str, Field(min_length=1)]
Points = Annotated[float, Field(gt=0)]
No = Annotated[int, Field(ge=1)]


class SourceSpec(_Strict):
    file: Text
    description: str | None = None


class CampaignSpec(_Strict):
    slug: str = Field(pattern=SLUG_PATTERN, max_length=64)
    name: str = Field(min_length=1, max_length=200)
    district: str = Field(min_length=1, max_length=100)
    doc_number: str | None = Field(default=None, max_length=100)
    doc_title: str | None = Field(default=None, max_length=300)
    doc_date: date | None = None
    issuer: str | None = Field(default=None, max_length=300)
    plan_title: str | None = None
    task_table_title: str | None = None
    score_table_title: str | None = None
    timezone: str = Field(default="Asia/Shanghai", max_length=64)
    base_points: float = Field(gt=0)
    bonus_points: float = Field(ge=0)
    lead_unit: Name
    lead_unit_note: str | None = None


class SectionSpec(_Strict):
    """A prose section of the document (指导思想, 主要目标, 保障措施 ...)."""

    no: str | None = None
    title: str | None = None
    paragraphs: list[Text]


class UnitSpec(_Strict):
    name: Name
    full_name: str | None = Field(default=None, max_length=200)
    aliases: list[Name] = Field(default_factory=list)
    is_member: bool = True
    is_lead: bool = False
    note: str | None = None


class UnitGroupSpec(_Strict):
    """A name that stands for several units ("all" = every member unit)."""

    members: Literal["all"] | list[Name]
    aliases: list[Name] = Field(default_factory=list)
    note: str | None = None


class PhaseSpec(_Strict):
    no: No
    name: str = Field(min_length=1, max_length=200)
    description: str = ""
    start: date | None
    start_note: str | None = None
    end: date
    end_note: str | None = None


class TaskGroupSpec(_Strict):
    no: No
    title: Text
    # The body's (section 三) wording of the group, where it differs.
    detail: str | None = None


class TaskSpec(_Strict):
    no: No
    group: No
    title: Text
    detail: str = ""
    units: list[Name] = Field(min_length=1)
    deadline: date
    note: str | None = None


class ScoreCategorySpec(_Strict):
    no: No
    name: Name
    stated_points: float | None = Field(ge=0)
    is_bonus: bool = False
    note: str | None = None


class CriterionSpec(_Strict):
    no: No
    points: Points
    text: Text
    tier_group: str | None = Field(default=None, min_length=1, max_length=32)
    # Only where the text makes it unambiguous which of the item's units owes it.
    units: list[Name] | None = None
    not_attainable: bool = False
    not_attainable_reason: str | None = None

    @model_validator(mode="after")
    def _reason_goes_with_flag(self) -> CriterionSpec:
        if self.not_attainable and not self.not_attainable_reason:
            raise ValueError("not_attainable 为 true 时必须写 not_attainable_reason")
        if self.not_attainable_reason and not self.not_attainable:
            raise ValueError("写了 not_attainable_reason 却没有 not_attainable: true")
        return self


class ScoreItemSpec(_Strict):
    no: No
    category: Name
    subcategory: str | None = Field(max_length=100)
    max_points: Points
    # The item's whole 评分方法 text, verbatim.
    text: str | None = None
    criteria: list[CriterionSpec] = Field(min_length=1)
    units: list[Name]
    units_note: str | None = None
    deadline: date | None
    deadline_note: str | None = None
    note: str | None = None


class SeedDoc(_Strict):
    schema_version: Literal[1]
    source: SourceSpec | None = None
    notes: list[str] = Field(default_factory=list)
    campaign: CampaignSpec
    sections: list[SectionSpec] = Field(default_factory=list)
    units: list[UnitSpec] = Field(min_length=1)
    unit_groups: dict[Name, UnitGroupSpec]
    phases: list[PhaseSpec] = Field(min_length=1)
    task_groups: list[TaskGroupSpec]
    tasks: list[TaskSpec]
    score_categories: list[ScoreCategorySpec]
    score_items: list[ScoreItemSpec]

    def item(self, no: int) -> ScoreItemSpec:
        for it in self.score_items:
            if it.no == no:
                return it
        raise KeyError(no)

    def task(self, no: int) -> TaskSpec:
        for t in self.tasks:
            if t.no == no:
                return t
        raise KeyError(no)


# ============================================================================ loading


def _json_path(loc: Sequence[int | str], data: Any) -> str:
    """``('score_items', 3, 'criteria', 0)`` -> ``$.score_items[3].criteria[0]`` (+ numbers)."""
    path = "$"
    hints: list[str] = []
    node = data
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
            if isinstance(node, list) and 0 <= part < len(node):
                node = node[part]
                if isinstance(node, dict) and isinstance(node.get("no"), int | str):
                    hints.append(f"no={node['no']}")
            else:
                node = None
        else:
            path += f".{part}"
            node = node.get(part) if isinstance(node, dict) else None
    return f"{path}（{', '.join(hints)}）" if hints else path


def _validation_message(exc: ValidationError, data: Any, origin: str) -> str:
    lines = [f"种子文件 {origin} 不符合格式（{exc.error_count()} 处）："]
    for err in exc.errors():
        where = _json_path(err["loc"], data)
        shown = repr(err.get("input"))
        if len(shown) > 60:
            shown = shown[:57] + "..."
        lines.append(f"  {where}: {err['msg']}（输入 {shown}）")
    return "\n".join(lines)


def parse_seed(data: str | bytes | Mapping[str, Any], *, origin: str = "<seed>") -> SeedDoc:
    """Validate seed content (JSON text or an already parsed mapping) into a SeedDoc."""
    if isinstance(data, Mapping):
        text = json.dumps(data, ensure_ascii=False)
        parsed: Any = data
    else:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
        try:
            parsed = json.loads(text)
        except json.JSONDecodeError as exc:
            raise SeedError(
                f"种子文件 {origin} 不是合法的 JSON：第{exc.lineno}行第{exc.colno}列，{exc.msg}"
            ) from None
    try:
        return SeedDoc.model_validate_json(text)
    except ValidationError as exc:
        raise SeedError(_validation_message(exc, parsed, origin)) from None


def load_seed(path: Path | str) -> SeedDoc:
    """Read and validate a seed file. Raises SeedError naming the JSON path on bad input."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise SeedError(f"读不了种子文件 {p}：{exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SeedError(f"种子文件 {p} 不是 UTF-8 编码（第{exc.start}字节）") from None
    return parse_seed(text, origin=str(p))


# ====================================================================== scoring rule


class CriterionLike(Protocol):
    @property
    def points(self) -> float: ...
    @property
    def tier_group(self) -> str | None: ...


class _NotAttainableLike(CriterionLike, Protocol):
    @property
    def not_attainable(self) -> bool: ...


class ItemLike(Protocol):
    @property
    def max_points(self) -> float: ...


def criteria_points(criteria: Iterable[CriterionLike]) -> float:
    """The points ``criteria`` are worth together, before the item's cap.

    Criteria without a tier group add up; among criteria sharing a ``tier_group``
    (alternatives such as 国家级 +2 / 省级 +1) only the highest counts.
    """
    total = 0.0
    best: dict[str, float] = {}
    for c in criteria:
        if c.tier_group is None:
            total += c.points
        else:
            best[c.tier_group] = max(best.get(c.tier_group, 0.0), c.points)
    return total + sum(best.values())


def item_score(*, max_points: float, met: Iterable[CriterionLike]) -> float:
    """THE scoring rule: an item earns its met criteria's points, capped at its max_points."""
    return min(max_points, criteria_points(met))


def _criteria_of(item: ItemLike, criteria: Iterable[Any] | None) -> list[Any]:
    if criteria is not None:
        return list(criteria)
    own = getattr(item, "criteria", None)
    if own is None:
        raise TypeError("pass criteria= for an item without a .criteria attribute")
    return list(own)


def attainable_points(item: ItemLike, criteria: Iterable[CriterionLike] | None = None) -> float:
    """The most an item can earn by the table: ``item_score`` with every criterion met.

    ``item`` is a ``ScoreItemSpec`` (criteria taken from it) or any object with
    ``max_points`` (a ``ScoreItem`` row) together with its ``criteria``.
    """
    return item_score(max_points=item.max_points, met=_criteria_of(item, criteria))


def reachable_points(
    item: ItemLike, criteria: Iterable[_NotAttainableLike] | None = None
) -> float:
    """Like ``attainable_points`` but without the criteria marked ``not_attainable``."""
    crit = [c for c in _criteria_of(item, criteria) if not getattr(c, "not_attainable", False)]
    return item_score(max_points=item.max_points, met=crit)


# ============================================================================ units


@dataclass(frozen=True)
class UnitIndex:
    """Every spelling of a unit (name, alias) or group, and what it stands for."""

    units: tuple[str, ...]  # canonical unit names, seed order
    spelling: dict[str, str]  # any unit name/alias -> unit name
    groups: dict[str, str]  # any group name/alias -> group name
    members: dict[str, tuple[str, ...]]  # group name -> unit names
    conflicts: tuple[tuple[str, str, str], ...]  # (spelling, first target, second target)

    @classmethod
    def of(cls, doc: SeedDoc) -> UnitIndex:
        spelling: dict[str, str] = {}
        groups: dict[str, str] = {}
        conflicts: list[tuple[str, str, str]] = []
        owner: dict[str, str] = {}

        def claim(word: str, target: str) -> bool:
            prev = owner.get(word)
            if prev is not None and prev != target:
                conflicts.append((word, prev, target))
                return False
            owner[word] = target
            return True

        for u in doc.units:
            claim(u.name, u.name)
            spelling.setdefault(u.name, u.name)
        for u in doc.units:
            for a in u.aliases:
                if claim(a, u.name):
                    spelling[a] = u.name
        unit_names = tuple(dict.fromkeys(u.name for u in doc.units))
        members: dict[str, tuple[str, ...]] = {}
        for gname, g in doc.unit_groups.items():
            target = f"group:{gname}"
            for word in (gname, *g.aliases):
                if claim(word, target):
                    groups[word] = gname
            if g.members == "all":
                members[gname] = tuple(u.name for u in doc.units if u.is_member)
            else:
                members[gname] = tuple(
                    dict.fromkeys(spelling[m] for m in g.members if m in spelling)
                )
        return cls(unit_names, spelling, groups, members, tuple(conflicts))

    def known(self, ref: str) -> bool:
        return ref in self.spelling or ref in self.groups

    def resolve(self, refs: Iterable[str]) -> tuple[str, ...]:
        """Unit names for ``refs`` (groups expanded, duplicates dropped, order kept)."""
        out: dict[str, None] = {}
        for ref in refs:
            if ref in self.spelling:
                out[self.spelling[ref]] = None
            elif ref in self.groups:
                for m in self.members[self.groups[ref]]:
                    out[m] = None
            else:
                raise KeyError(ref)
        return tuple(out)

    def is_all_members(self, refs: Iterable[str], doc: SeedDoc) -> bool:
        return any(
            ref in self.groups and doc.unit_groups[self.groups[ref]].members == "all"
            for ref in refs
        )


# ============================================================================ checks


def _fmt(x: float | None) -> str:
    if x is None:
        return "—"
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def _ranges(nos: Iterable[int]) -> str:
    """[1,2,3,5] -> "1–3、5"."""
    s = sorted(set(nos))
    parts: list[str] = []
    i = 0
    while i < len(s):
        j = i
        while j + 1 < len(s) and s[j + 1] == s[j] + 1:
            j += 1
        parts.append(str(s[i]) if i == j else f"{s[i]}–{s[j]}")
        i = j + 1
    return "、".join(parts)


def _on_step(x: float) -> bool:
    return float(x / POINT_STEP).is_integer()


def plan_start(doc: SeedDoc) -> date:
    """The day the plan starts: the first phase's start, else the document's date.

    ``shift_to`` moves the plan so that this day becomes ``shift_to``.
    """
    first = min(doc.phases, key=lambda p: p.no)
    if first.start is not None:
        return first.start
    if doc.campaign.doc_date is not None:
        return doc.campaign.doc_date
    raise SeedError("第一阶段没有起始日期，也没有发文日期，无法确定计划起点")


def _plan_window(doc: SeedDoc) -> tuple[date | None, date]:
    """[plan start, last phase end]: where every deadline should fall."""
    try:
        first: date | None = plan_start(doc)
    except SeedError:
        first = None
    return first, max(p.end for p in doc.phases)


class _Checker:
    def __init__(self, doc: SeedDoc) -> None:
        self.doc = doc
        self.out: list[Finding] = []
        self.index = UnitIndex.of(doc)

    def add(
        self,
        level: Literal["error", "warning"],
        code: str,
        where: str,
        message: str,
        *,
        no: int | None = None,
        **figures: float,
    ) -> None:
        self.out.append(Finding(level, code, message, where, no, dict(figures)))

    # -------------------------------------------------------------- pieces

    def duplicates(self) -> None:
        doc = self.doc
        lists: list[tuple[str, str, Sequence[Any]]] = [
            ("phases", "阶段", doc.phases),
            ("task_groups", "任务组", doc.task_groups),
            ("tasks", "任务", doc.tasks),
            ("score_categories", "评分类别", doc.score_categories),
            ("score_items", "评分项", doc.score_items),
        ]
        for key, label, rows in lists:
            for no, n in Counter(r.no for r in rows).items():
                if n > 1:
                    self.add("error", "duplicate_no", f"{key}[no={no}]",
                             f"{label}编号 {no} 重复出现 {n} 次。", no=no)
        for it in doc.score_items:
            for no, n in Counter(c.no for c in it.criteria).items():
                if n > 1:
                    self.add("error", "duplicate_no", f"score_items[no={it.no}].criteria[no={no}]",
                             f"第{it.no}项的细则编号 {no} 重复出现 {n} 次。", no=it.no)
        for name, n in Counter(c.name for c in doc.score_categories).items():
            if n > 1:
                self.add("error", "duplicate_name", f"score_categories[name={name}]",
                         f"评分类别名称“{name}”重复出现 {n} 次（评分项按名称引用类别）。")
        for name, n in Counter(u.name for u in doc.units).items():
            if n > 1:
                self.add("error", "duplicate_unit", f"units[name={name}]",
                         f"责任单位“{name}”重复出现 {n} 次。")

    def units(self) -> None:
        doc, idx = self.doc, self.index
        for word, a, b in idx.conflicts:
            def label(t: str) -> str:
                return f"单位组“{t[6:]}”" if t.startswith("group:") else f"单位“{t}”"
            self.add("error", "alias_conflict", f"units[alias={word}]",
                     f"“{word}”同时指{label(a)}和{label(b)}。")

        def need(ref: str, where: str, what: str, no: int | None = None) -> None:
            if not idx.known(ref):
                self.add("error", "unknown_unit", where,
                         f"{what}的责任单位“{ref}”不在 units、unit_groups 或其别名中。", no=no)

        need(doc.campaign.lead_unit, "campaign.lead_unit", "牵头单位")
        for gname, g in doc.unit_groups.items():
            if g.members != "all":
                for m in g.members:
                    if m not in idx.spelling:
                        self.add("error", "unknown_unit", f"unit_groups[{gname}].members",
                                 f"单位组“{gname}”的成员“{m}”不在 units 或其别名中。")
        for t in doc.tasks:
            for ref in t.units:
                need(ref, f"tasks[no={t.no}].units", f"第{t.no}项任务", t.no)
        for it in doc.score_items:
            for ref in it.units:
                need(ref, f"score_items[no={it.no}].units", f"第{it.no}项评分项", it.no)
            for c in it.criteria:
                for ref in c.units or ():
                    need(ref, f"score_items[no={it.no}].criteria[no={c.no}].units",
                         f"第{it.no}项第{c.no}条细则", it.no)
        leads = [u.name for u in doc.units if u.is_lead]
        lead = idx.spelling.get(doc.campaign.lead_unit)
        if lead is not None and leads != [lead]:
            self.add("error", "lead_unit_mismatch", "units[is_lead]",
                     f"campaign.lead_unit 为“{lead}”，但标 is_lead 的单位是"
                     f"{'、'.join(leads) or '（无）'}。")
        used: set[str] = set()
        for refs in [t.units for t in doc.tasks] + [it.units for it in doc.score_items] + [
            c.units or [] for it in doc.score_items for c in it.criteria
        ]:
            for ref in refs:
                if idx.known(ref):
                    used.update(idx.resolve([ref]))
        for u in doc.units:
            if u.name not in used:
                self.add("warning", "unused_unit", f"units[name={u.name}]",
                         f"责任单位“{u.name}”没有任何任务或评分项。")

    def points(self) -> None:
        doc = self.doc

        def step(x: float | None, where: str, what: str, no: int | None = None) -> None:
            if x is not None and not _on_step(x):
                self.add("error", "bad_points", where,
                         f"{what}为 {x:g} 分，不是 {_fmt(POINT_STEP)} 分的整数倍。", no=no,
                         points=x)

        step(doc.campaign.base_points, "campaign.base_points", "基本分")
        step(doc.campaign.bonus_points, "campaign.bonus_points", "加分")
        for cat in doc.score_categories:
            step(cat.stated_points, f"score_categories[no={cat.no}].stated_points",
                 f"类别“{cat.name}”的分值", cat.no)
        for it in doc.score_items:
            step(it.max_points, f"score_items[no={it.no}].max_points", f"第{it.no}项的分数", it.no)
            for c in it.criteria:
                step(c.points, f"score_items[no={it.no}].criteria[no={c.no}].points",
                     f"第{it.no}项第{c.no}条细则的分值", it.no)

    def references(self) -> None:
        doc = self.doc
        groups = {g.no for g in doc.task_groups}
        for t in doc.tasks:
            if t.group not in groups:
                self.add("error", "unknown_task_group", f"tasks[no={t.no}].group",
                         f"第{t.no}项任务属于任务组 {t.group}，但没有这个任务组。", no=t.no)
        cats = {c.name for c in doc.score_categories}
        for it in doc.score_items:
            if it.category not in cats:
                self.add("error", "unknown_category", f"score_items[no={it.no}].category",
                         f"第{it.no}项的类别“{it.category}”不在 score_categories 中。", no=it.no)
        try:
            ZoneInfo(doc.campaign.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            self.add("error", "bad_timezone", "campaign.timezone",
                     f"时区“{doc.campaign.timezone}”不存在。")

    def items(self) -> None:
        idx = self.index
        for it in self.doc.score_items:
            where = f"score_items[no={it.no}]"
            best = criteria_points(it.criteria)
            if best > it.max_points:
                self.add("warning", "item_over", where,
                         f"第{it.no}项：各细则最高合计{_fmt(best)}分，超过本项分数{_fmt(it.max_points)}分；"
                         f"按评分规则本项最多得{_fmt(it.max_points)}分。",
                         no=it.no, criteria=best, max_points=it.max_points)
            elif best < it.max_points:
                self.add("warning", "item_under", where,
                         f"第{it.no}项：各细则最高合计{_fmt(best)}分，少于本项分数{_fmt(it.max_points)}分；"
                         f"本项最多只能得{_fmt(best)}分。",
                         no=it.no, criteria=best, max_points=it.max_points)
            blocked = [c for c in it.criteria if c.not_attainable]
            if blocked:
                att, reach = attainable_points(it), reachable_points(it)
                reasons = "；".join(dict.fromkeys(c.not_attainable_reason or "" for c in blocked))
                self.add("warning", "item_unreachable", where,
                         f"第{it.no}项：第{_ranges(c.no for c in blocked)}条标为本区不可得"
                         f"（{reasons}），本区本项最多可得{_fmt(reach)}分"
                         f"（本项分数{_fmt(it.max_points)}分，按表可得{_fmt(att)}分）。",
                         no=it.no, reachable=reach, attainable=att, max_points=it.max_points)
            if not it.units and not all(c.not_attainable for c in it.criteria):
                open_ = [c for c in it.criteria if not c.not_attainable and not c.units]
                why = f"（文件写：{it.units_note}）" if it.units_note else ""
                self.add("warning", "item_no_units", f"{where}.units",
                         f"第{it.no}项没有责任单位{why}；第{_ranges(c.no for c in open_)}条"
                         f"（{_fmt(criteria_points(open_))}分）无人负责。",
                         no=it.no, unowned_points=criteria_points(open_))
            if it.deadline is None and not it.deadline_note:
                self.add("warning", "item_no_deadline", f"{where}.deadline",
                         f"第{it.no}项没有完成时限，也没有 deadline_note 说明原因。", no=it.no)
            tiers = Counter(c.tier_group for c in it.criteria if c.tier_group)
            for tier, n in tiers.items():
                if n == 1:
                    self.add("warning", "tier_single", f"{where}.criteria",
                             f"第{it.no}项的择一组“{tier}”只有一条细则。", no=it.no)
            if all(idx.known(r) for r in it.units):
                own = set(idx.resolve(it.units))
                for c in it.criteria:
                    if c.units and all(idx.known(r) for r in c.units):
                        extra = [u for u in idx.resolve(c.units) if u not in own]
                        if extra:
                            self.add("warning", "criterion_unit_outside_item",
                                     f"{where}.criteria[no={c.no}].units",
                                     f"第{it.no}项第{c.no}条细则的责任单位{'、'.join(extra)}"
                                     f"不是本项的责任单位。", no=it.no)

    def totals(self) -> None:
        doc = self.doc
        by_cat: dict[str, list[ScoreItemSpec]] = defaultdict(list)
        for it in doc.score_items:
            by_cat[it.category].append(it)
        base_raw = base_att = bonus_raw = bonus_att = 0.0
        for cat in sorted(doc.score_categories, key=lambda c: c.no):
            items = by_cat.get(cat.name, [])
            where = f"score_categories[no={cat.no}]"
            raw = sum(it.max_points for it in items)
            att = sum(attainable_points(it) for it in items)
            if cat.is_bonus:
                bonus_raw, bonus_att = bonus_raw + raw, bonus_att + att
            else:
                base_raw, base_att = base_raw + raw, base_att + att
            nos = f"第{_ranges(it.no for it in items)}项" if items else "无评分项"
            if not items:
                self.add("warning", "category_empty", where, f"类别“{cat.name}”没有评分项。",
                         no=cat.no)
                continue
            if cat.stated_points is None:
                self.add("warning", "category_no_total", where,
                         f"类别“{cat.name}”（{nos}）文件未写分值；各项分数合计{_fmt(raw)}分，"
                         f"按评分规则最多可得{_fmt(att)}分。",
                         no=cat.no, raw=raw, attainable=att)
                continue
            if raw != cat.stated_points:
                self.add("warning", "category_total_raw", where,
                         f"类别“{cat.name}”（{nos}）各项分数合计{_fmt(raw)}分，"
                         f"与文件所写{_fmt(cat.stated_points)}分不符"
                         f"（按评分规则最多可得{_fmt(att)}分）。",
                         no=cat.no, raw=raw, attainable=att, stated=cat.stated_points)
            if att != cat.stated_points:
                self.add("warning", "category_total_attainable", where,
                         f"类别“{cat.name}”（{nos}）按评分规则最多可得{_fmt(att)}分，"
                         f"与文件所写{_fmt(cat.stated_points)}分不符。",
                         no=cat.no, raw=raw, attainable=att, stated=cat.stated_points)
        c = doc.campaign
        for kind, label, raw, att, stated in (
            ("base", "基本分", base_raw, base_att, c.base_points),
            ("bonus", "加分", bonus_raw, bonus_att, c.bonus_points),
        ):
            if raw != stated:
                self.add("warning", f"{kind}_total_raw", f"campaign.{kind}_points",
                         f"{label}各项分数合计{_fmt(raw)}分，与文件所写{_fmt(stated)}分不符"
                         f"（按评分规则最多可得{_fmt(att)}分）。",
                         raw=raw, attainable=att, stated=stated)
            if att != stated:
                self.add("warning", f"{kind}_total_attainable", f"campaign.{kind}_points",
                         f"{label}各项按评分规则最多可得{_fmt(att)}分，与文件所写{_fmt(stated)}分不符。",
                         raw=raw, attainable=att, stated=stated)

    def phases(self) -> None:
        phases = sorted(self.doc.phases, key=lambda p: p.no)
        for ph in phases:
            if ph.start is not None and ph.start > ph.end:
                self.add("error", "phase_order", f"phases[no={ph.no}]",
                         f"第{ph.no}阶段起始日期 {ph.start} 晚于结束日期 {ph.end}。", no=ph.no)
        if phases[0].start is None:
            self.add("warning", "phase_no_start", f"phases[no={phases[0].no}].start",
                     f"第{phases[0].no}阶段没有起始日期，计划起点取发文日期。", no=phases[0].no)
        for prev, cur in zip(phases, phases[1:], strict=False):
            where = f"phases[no={cur.no}]"
            if cur.end < prev.end or (
                cur.start is not None and prev.start is not None and cur.start < prev.start
            ):
                self.add("error", "phase_order", where,
                         f"第{cur.no}阶段（{cur.start or '—'}至{cur.end}）排在第{prev.no}阶段"
                         f"（{prev.start or '—'}至{prev.end}）之后，日期却更早。", no=cur.no)
                continue
            if cur.start is None:
                continue
            if cur.start < prev.end:
                self.add("warning", "phase_overlap", where,
                         f"第{cur.no}阶段 {cur.start} 开始，第{prev.no}阶段 {prev.end} 才结束，两阶段重叠。",
                         no=cur.no)
            elif cur.start > prev.end + timedelta(days=1):
                self.add("warning", "phase_gap", where,
                         f"第{prev.no}阶段 {prev.end} 结束，第{cur.no}阶段 {cur.start} 才开始，中间有空档。",
                         no=cur.no)

    def deadlines(self) -> None:
        first, last = _plan_window(self.doc)
        if first is None:
            return

        def within(d: date | None, where: str, what: str, no: int) -> None:
            if d is not None and not first <= d <= last:
                self.add("warning", "deadline_outside_phases", where,
                         f"{what}的完成时限 {d} 不在各阶段的时间范围（{first}至{last}）内。", no=no)

        for t in self.doc.tasks:
            within(t.deadline, f"tasks[no={t.no}].deadline", f"第{t.no}项任务", t.no)
        for it in self.doc.score_items:
            within(it.deadline, f"score_items[no={it.no}].deadline", f"第{it.no}项评分项", it.no)

    def run(self) -> list[Finding]:
        self.duplicates()
        self.references()
        self.units()
        self.points()
        self.phases()
        self.deadlines()
        self.items()
        self.totals()
        return self.out


def check_seed(doc: SeedDoc) -> list[Finding]:
    """Every problem of the seed beyond its schema: errors refuse an import, warnings don't.

    Errors: duplicate numbers/names, unknown unit, task group or category, alias
    conflicts, lead unit mismatch, points not a multiple of 0.5, bad time zone, phases
    out of order. Warnings: an item's criteria over/under its points (``item_over``,
    ``item_under``), criteria not attainable here (``item_unreachable``), an item
    without units or deadline, category/base/bonus totals that differ from the stated
    ones (``*_total_raw``: the items' points; ``*_total_attainable``: by the scoring
    rule), a category without a stated total, deadlines outside the phases, phases
    overlapping or leaving a gap, unused units.
    """
    return _Checker(doc).run()


# ============================================================================ import


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
    warnings: list[Finding] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(
            self.created or +self.added or +self.updated or +self.retired
            or +self.unretired or +self.removed
        )

    def summary(self) -> str:
        def counts(c: Counter[str]) -> str:
            return "，".join(f"{k} {v}" for k, v in sorted(c.items()) if v) or "无"

        head = "新建" if self.created else ("更新" if self.changed else "无变化")
        lines = [f"活动 {self.slug}（id {self.campaign_id}）：{head}；日期平移 {self.date_shift_days} 天。"]
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
        shift_to: date | None,
    ) -> None:
        self.s = session
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
            self.audits.append(_Pending(entity, row.id, "seed.update", before, after))
            self.rep.changes.append(f"{label}：改了 {'、'.join(before)}")
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
            self.rep.changes.append(f"新增 {label}")

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
              "is_member": spec.is_member, "is_lead": spec.is_lead, "sort_order": order},
             {"campaign_id": self.cid}, f"单位 {spec.name}")
            for order, spec in enumerate(self.doc.units)
        ]
        self.unit_ids: dict[str, int] = self._upsert(Unit, "unit", specs, matched, ("name",))
        for row in rows:
            if id(row) not in used:
                self.rep.stale.append(f"单位 {row.name}")
        self.unit_names = {u.id: u.name for u in rows}
        self.unit_names.update({i: n for n, i in self.unit_ids.items()})

    def _phases(self) -> None:
        existing = {p.no: p for p in
                    self._existing(select(Phase).where(Phase.campaign_id == self.cid))}
        specs: list[_Spec] = [
            (p.no, {"name": p.name, "description": p.description,
                    "start_date": self._d(p.start), "end_date": self._d(p.end)},
             {"campaign_id": self.cid, "no": p.no}, f"阶段 {p.no}")
            for p in self.doc.phases
        ]
        self._upsert(Phase, "phase", specs, existing, ("no",))
        # Phases carry no history: one the seed dropped is deleted (and audited).
        for no in existing.keys() - {p.no for p in self.doc.phases}:
            row = existing[no]
            self.audits.append(_Pending("phase", row.id, "seed.delete",
                                        {"no": no, "name": row.name}, None))
            self.rep.removed["phase"] += 1
            self.rep.changes.append(f"删除 阶段 {no}")
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
            want = {"group_id": self.group_ids[t.group], "title": t.title, "detail": t.detail,
                    **self._deadlines(row, self._d(t.deadline))}
            if row is not None and row.deadline != row.planned_deadline != want["deadline"]:
                self.rep.changes.append(
                    f"任务 {t.no}：计划时限改为 {want['planned_deadline']}，"
                    f"原延期时限 {row.deadline} 随之改为 {want['deadline']}")
            specs.append((t.no, want, {"campaign_id": self.cid, "no": t.no}, f"任务 {t.no}"))
        self.task_ids = self._upsert(Task, "task", specs, existing, ("no",))
        self.stale_tasks = sorted((r for no, r in existing.items() if no not in self.task_ids),
                                  key=lambda r: r.no)
        for r in self.stale_tasks:
            self.rep.stale.append(f"任务 {r.no}（其承办记录已停用）")

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
            specs.append((it.no, want, {"campaign_id": self.cid, "no": it.no}, f"评分项 {it.no}"))
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
            self.rep.changes.append(f"{label}：责任单位 {'、'.join(b) or '（无）'} → "
                                    f"{'、'.join(a) or '（无）'}")

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
                                  f"任务 {t.no} 的承办单位 {self.unit_names[uid]}"))
                elif r.retired:
                    r.retired = False
                    self.rep.unretired["assignment"] += 1
                    self.audits.append(_Pending("assignment", r.id, "seed.unretire",
                                                {"retired": True}, {"retired": False},
                                                f"种子中第{t.no}项任务重新列入该单位"))
            for uid, r in have.items():
                if uid not in want and not r.retired:
                    self._retire(r, f"种子中第{t.no}项任务已不含{self.unit_names.get(uid, uid)}")
            self._link_audit("task", tid, active_before, want, f"任务 {t.no}")
        self._upsert(Assignment, "assignment", specs, {}, ("task_id", "unit_id"))
        for task in self.stale_tasks:
            for r in by_task.get(task.id or -1, {}).values():
                if not r.retired:
                    self._retire(r, f"种子中已没有第{task.no}项任务")

    def _retire(self, r: Assignment, why: str) -> None:
        r.retired = True
        self.rep.retired["assignment"] += 1
        self.audits.append(_Pending("assignment", r.id, "seed.retire", {"retired": False},
                                    {"retired": True}, why))
        self.rep.changes.append(f"停用承办记录 {r.id}：{why}")

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
        labels = {self.item_ids[it.no]: f"评分项 {it.no}" for it in self.doc.score_items}
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
                        "not_attainable_reason": c.not_attainable_reason}
                specs.append(((iid, c.no), want,
                              {"campaign_id": self.cid, "item_id": iid, "no": c.no},
                              f"评分项 {it.no} 细则 {c.no}"))
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
                labels[cid] = f"评分项 {it.no} 细则 {c.no}"
        self._links(CriterionUnit, "criterion_id", "criterion", have, want, labels)

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
            note="导入种子（新建活动）" if rep.created else "重新导入种子",
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
                     shift_to=shift_to).run()
