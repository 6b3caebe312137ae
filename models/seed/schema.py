"""The seed file (``data/seed.json``): its strict schema, loading, and what the document says.

The seed is a faithful transcription of the district's document (瑶办发〔2021〕25号):
the work phases, the "六个一" task table (Annex 1) and the official acceptance scoring
table (Annex 2). :class:`SeedDoc` describes the file with strict pydantic models;
:func:`load_seed` / :func:`parse_seed` load it (malformed input raises
:class:`SeedError` naming the JSON path). :class:`UnitIndex` resolves every spelling
of a unit or unit group; :func:`plan_start` is the day the plan starts.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from models.errors import DomainError

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
    # 区直单位 / 街道 / 驻区单位 (models.tables.UnitKind).
    kind: Literal["区直单位", "街道", "驻区单位"] = "区直单位"
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
    # How the criterion reads standing alone, where the document's clause does not
    # (``及实施情况``); ``text`` stays the document's words.
    label: str | None = Field(default=None, min_length=1, max_length=200)

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


class LinkSpec(_Strict):
    """A task of Annex 1 whose work meets a criterion of Annex 2 (``criterion``: ``"7.1"``)."""

    task: No
    criterion: str = Field(pattern=r"^[1-9][0-9]*\.[1-9][0-9]*$")
    # Proposed where the texts match; the coordinator confirms or removes it in the plan.
    suggested: bool = True

    @property
    def criterion_key(self) -> tuple[int, int]:
        item, no = self.criterion.split(".")
        return int(item), int(no)


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
    # Task ↔ criterion links (see LinkSpec).
    links: list[LinkSpec] = Field(default_factory=list)

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
