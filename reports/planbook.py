"""The plan workbook: the live plan as an Excel file the coordinator edits, and back.

:func:`write_plan` turns a plan (``models.plan.live_plan``, a seed document) into a workbook
of one sheet per part — 单位、阶段、任务组、任务、评分类别、评分项、细则、任务与细则 — plus a
说明 sheet. :func:`read_plan` reads such a workbook back into a seed document, refusing a
wrong column, a duplicate number, an unknown unit, a criterion worth more than its item or a
date that is not a date with the cell named (``任务表 F7：日期格式不对``); it then runs the
checks of ``qcbot seed check`` and names the row of whatever they find.

The workbook holds what the plan holds; what the document says besides (sections, notes) is
not part of the live plan. Dates are the campaign's (what /task and /item show).
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from openpyxl import Workbook, load_workbook
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet
from pydantic import ValidationError

from models.errors import InvalidInput
from models.plan import ALL_MEMBERS
from models.scoring import format_points
from models.seed import SeedDoc, check_seed

#: Sheet → its columns, in order (the header row must read exactly so).
SHEETS: dict[str, tuple[str, ...]] = {
    "单位": ("单位名称", "全称", "别名", "类型", "领导小组成员单位", "牵头单位"),
    "阶段": ("序号", "名称", "开始日期", "结束日期", "说明"),
    "任务组": ("组号", "名称"),
    "任务": ("任务号", "任务组", "主要内容", "工作要求", "牵头单位", "责任单位", "完成时限"),
    "评分类别": ("序号", "名称", "分值", "加分项"),
    "评分项": ("项号", "类别", "子类", "分数", "评分方法", "责任单位", "完成时限", "时限说明", "备注"),
    "细则": ("项号", "细则号", "分数", "细则内容", "简称", "择一组", "责任单位", "放弃原因"),
    "任务与细则": ("任务号", "细则", "状态"),
}
KINDS = ("区直单位", "街道", "驻区单位")
LINK_STATES = {"建议": True, "确认": False}
_LIST_SPLIT = re.compile(r"[、，,；;\n]+")

_GUIDE = (
    "本工作簿是创建活动的现行工作计划。修改后发回机器人（回复机器人发出工作簿的那条消息），"
    "或由运维人员执行 qcbot plan import 文件名.xlsx --dry-run 先查看变化，确认后再导入。",
    "每张表第一行是列名，请勿修改列名和表名；每行一条记录。",
    "多个单位之间用顿号“、”分隔；日期写成 2027年1月31日（或 YYYY-MM-DD 格式）。",
    "删除“任务”表中的一行即撤销该任务（保留其全部记录，显示为已撤销），删除“单位”表中的一行即撤销该单位。",
    "单位改名：直接改“单位名称”，并把原名称写进“别名”列（全称不变时自动识别），该单位的记录随之保留；"
    "任务号是任务的标识，请勿重新编号。",
    "评分项和细则是验收标准，不能删除；某条细则本区不适用时，在“细则”表的“放弃原因”列写明原因（计为已失分）。",
    "“牵头单位”须是该任务的责任单位之一；“类型”填 区直单位、街道 或 驻区单位；“领导小组成员单位”填 是 或 否。",
    f"评分项的“责任单位”填 {ALL_MEMBERS} 表示领导小组全体成员单位。",
    "“任务与细则”表列出完成后可同时申报的细则（如任务7 ↔ 细则7.1）；“状态”填 建议 或 确认。",
)


# ------------------------------------------------------------------------------ writing


def _joined(names: Iterable[str]) -> str:
    return "、".join(names)


def _yes(flag: bool) -> str:
    return "是" if flag else "否"


def write_plan(doc: SeedDoc) -> bytes:
    """The plan ``doc`` as an XLSX workbook (bytes)."""
    wb = Workbook()
    guide = wb.active
    assert guide is not None
    guide.title = "说明"
    guide.append([f"{doc.campaign.name} · 工作计划"])
    guide["A1"].font = Font(bold=True, size=14)
    for line in _GUIDE:
        guide.append([line])
    guide.column_dimensions["A"].width = 110

    rows: dict[str, list[list[Any]]] = {
        "单位": [[u.name, u.full_name, _joined(u.aliases), u.kind, _yes(u.is_member), _yes(u.is_lead)]
                 for u in doc.units],
        "阶段": [[p.no, p.name, p.start, p.end, p.description] for p in doc.phases],
        "任务组": [[g.no, g.title] for g in doc.task_groups],
        "任务": [[t.no, t.group, t.title, t.detail, t.units[0] if t.units else "", _joined(t.units), t.deadline]
                 for t in doc.tasks],
        "评分类别": [[c.no, c.name, c.stated_points, _yes(c.is_bonus)] for c in doc.score_categories],
        "评分项": [[i.no, i.category, i.subcategory, i.max_points, i.text, _joined(i.units), i.deadline,
                    i.deadline_note, i.note] for i in doc.score_items],
        "细则": [[i.no, c.no, c.points, c.text, c.label, c.tier_group, _joined(c.units or ()),
                  c.not_attainable_reason if c.not_attainable else None]
                 for i in doc.score_items for c in i.criteria],
        "任务与细则": [[lk.task, lk.criterion, "建议" if lk.suggested else "确认"] for lk in doc.links],
    }
    head = PatternFill("solid", fgColor="DDEBF7")
    for name, columns in SHEETS.items():
        ws = wb.create_sheet(name)
        ws.append(list(columns))
        for cell in ws[1]:
            cell.font = Font(bold=True)
            cell.fill = head
        for row in rows[name]:
            ws.append([_cell(v) for v in row])
        for n, title in enumerate(columns, 1):
            wide = title in ("主要内容", "工作要求", "评分方法", "细则内容", "说明", "备注", "别名", "责任单位")
            ws.column_dimensions[get_column_letter(n)].width = 40 if wide else max(10, len(title) * 2 + 2)
        for row_cells in ws.iter_rows(min_row=2):
            for cell in row_cells:
                cell.alignment = Alignment(wrap_text=True, vertical="top")
                if isinstance(cell.value, date):
                    cell.number_format = "yyyy-mm-dd"
        ws.freeze_panes = "A2"
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def _cell(v: Any) -> Any:
    if isinstance(v, float) and v.is_integer():
        return int(v)
    return v


# ------------------------------------------------------------------------------ reading


class PlanBookError(InvalidInput):
    """A workbook that cannot become the plan; ``problems`` name the cells (Chinese)."""

    def __init__(self, problems: Sequence[str]) -> None:
        shown = list(problems[:20])
        more = f"\n……另有 {len(problems) - 20} 处" if len(problems) > 20 else ""
        super().__init__("工作簿有以下问题，未导入：\n" + "\n".join(shown) + more)
        self.problems = list(problems)


@dataclass
class _Row:
    sheet: str
    number: int  # the Excel row number
    values: dict[str, Any]

    def cell(self, column: str) -> str:
        return f"{self.sheet}表 {get_column_letter(SHEETS[self.sheet].index(column) + 1)}{self.number}"


class _Reader:
    def __init__(self, data: bytes) -> None:
        try:
            self.wb = load_workbook(io.BytesIO(data), data_only=True, read_only=True)
        except Exception:  # noqa: BLE001 - any unreadable file is the same answer to the user
            raise PlanBookError(["这不是可以读取的 Excel 工作簿（.xlsx）。"]) from None
        self.problems: list[str] = []
        self.where: dict[tuple[str, Any], _Row] = {}

    def bad(self, row: _Row, column: str, what: str) -> None:
        self.problems.append(f"{row.cell(column)}：{what}")

    def sheet(self, name: str) -> list[_Row]:
        if name not in self.wb.sheetnames:
            self.problems.append(f"缺少“{name}”表。")
            return []
        ws: Worksheet = self.wb[name]
        columns = SHEETS[name]
        out: list[_Row] = []
        for n, raw in enumerate(ws.iter_rows(values_only=True), 1):
            values = list(raw) + [None] * max(0, len(columns) - len(raw))
            if n == 1:
                header = [str(v).strip() if v is not None else "" for v in values[:len(columns)]]
                for i, (want, got) in enumerate(zip(columns, header, strict=True)):
                    if want != got:
                        self.problems.append(f"{name}表 {get_column_letter(i + 1)}1：列名应为“{want}”"
                                             + (f"，实为“{got}”" if got else "，此处为空") + "。")
                extra = [str(v) for v in values[len(columns):] if v not in (None, "")]
                if extra:
                    self.problems.append(f"{name}表 {get_column_letter(len(columns) + 1)}1：多出的列“{extra[0]}”。")
                continue
            if all(v in (None, "") for v in values[:len(columns)]):
                continue
            out.append(_Row(name, n, {c: _clean(v) for c, v in zip(columns, values, strict=False)}))
        return out

    # ------------------------------------------------------------ typed cells

    def text(self, row: _Row, column: str, *, required: bool = True) -> str | None:
        v = row.values[column]
        if v is None:
            if required:
                self.bad(row, column, "不能为空")
            return None
        return str(v)

    def integer(self, row: _Row, column: str) -> int | None:
        v = row.values[column]
        if isinstance(v, bool) or v is None:
            self.bad(row, column, "应为正整数" if v is not None else "不能为空")
            return None
        if isinstance(v, float) and v.is_integer():
            v = int(v)
        if isinstance(v, str) and v.isdigit():
            v = int(v)
        if not isinstance(v, int) or v < 1:
            self.bad(row, column, f"应为正整数，实为“{v}”")
            return None
        return v

    def points(self, row: _Row, column: str, *, required: bool = True) -> float | None:
        v = row.values[column]
        if v is None:
            if required:
                self.bad(row, column, "不能为空")
            return None
        try:
            x = float(str(v).removesuffix("分"))
        except ValueError:
            self.bad(row, column, f"应为分数（如 2 或 1.5），实为“{v}”")
            return None
        if x < 0 or (x * 2) != int(x * 2):
            self.bad(row, column, f"分数应为 0.5 的整数倍，实为“{v}”")
            return None
        return x

    def day(self, row: _Row, column: str, *, required: bool = True) -> date | None:
        v = row.values[column]
        if v is None:
            if required:
                self.bad(row, column, "不能为空")
            return None
        if isinstance(v, datetime):
            return v.date()
        if isinstance(v, date):
            return v
        m = re.fullmatch(r"(\d{4})\s*(?:-|/|\.|年)\s*(\d{1,2})\s*(?:-|/|\.|月)\s*(\d{1,2})\s*日?", str(v))
        if m:
            try:
                return date(int(m[1]), int(m[2]), int(m[3]))
            except ValueError:
                self.bad(row, column, f"没有这一天（“{v}”）")
                return None
        self.bad(row, column, f"日期格式不对（“{v}”，应写成 2027年1月31日或 YYYY-MM-DD 格式）")
        return None

    def flag(self, row: _Row, column: str) -> bool:
        v = row.values[column]
        if v in ("是", True, 1, "1"):
            return True
        if v in ("否", None, False, 0, "0"):
            return False
        self.bad(row, column, f"应填“是”或“否”，实为“{v}”")
        return False

    def unique(self, rows: list[_Row], column: str, key: Callable[[_Row], Any], what: str) -> None:
        seen: dict[Any, _Row] = {}
        for row in rows:
            k = key(row)
            if k is None:
                continue
            if k in seen:
                self.bad(row, column, f"{what}重复（已在 {seen[k].cell(column).split(' ')[1]}）")
            else:
                seen[k] = row


def _s(v: Any) -> str | None:
    """A free-text cell as text, whatever Excel made of it (a number, a date)."""
    if v is None:
        return None
    if isinstance(v, datetime | date):
        return f"{v.year}年{v.month}月{v.day}日"
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def _clean(v: Any) -> Any:
    if isinstance(v, str):
        v = v.strip()
        return v or None
    return v


def _names(v: str | None) -> list[str]:
    return [p.strip() for p in _LIST_SPLIT.split(v or "") if p.strip()]


def read_plan(data: bytes, *, base: SeedDoc) -> SeedDoc:
    """The plan a workbook holds, checked; ``base`` (the live plan) gives what the workbook
    does not carry (the campaign's name, document number, aliases of unit groups)."""
    r = _Reader(data)
    units, phases, groups, tasks = r.sheet("单位"), r.sheet("阶段"), r.sheet("任务组"), r.sheet("任务")
    cats, items, crits, links = r.sheet("评分类别"), r.sheet("评分项"), r.sheet("细则"), r.sheet("任务与细则")
    if r.problems:
        raise PlanBookError(r.problems)

    unit_specs: list[dict[str, Any]] = []
    for row in units:
        name = r.text(row, "单位名称")
        kind = row.values["类型"] or "区直单位"
        if kind not in KINDS:
            r.bad(row, "类型", f"应为{'、'.join(KINDS)}之一，实为“{kind}”")
        if name and len(name) > 100:
            r.bad(row, "单位名称", f"不超过 100 个字（现有 {len(name)} 个）")
        if name:
            r.where[("unit", name)] = row
            unit_specs.append({"name": name, "full_name": _s(row.values["全称"]),
                               "aliases": _names(r.text(row, "别名", required=False)), "kind": kind,
                               "is_member": r.flag(row, "领导小组成员单位"), "is_lead": r.flag(row, "牵头单位")})
    r.unique(units, "单位名称", lambda row: row.values["单位名称"], "单位名称")
    # A unit renamed in place (same 全称, or the old name among its 别名) keeps its records: the
    # old name goes into its aliases, which is how the importer knows it is the same unit.
    words = {w for u in unit_specs for w in (u["name"], *u["aliases"])}
    for old in base.units:
        if old.name in words:
            continue
        same = [u for u in unit_specs if old.full_name and u["full_name"] == old.full_name
                and u["name"] not in {b.name for b in base.units}]
        if len(same) == 1:
            same[0]["aliases"] = [*same[0]["aliases"], old.name]
    lead = [u["name"] for u in unit_specs if u["is_lead"]]
    if len(lead) != 1 and units:
        r.problems.append(f"单位表 F列：牵头单位应有且只有一个，现有 {len(lead)} 个。")
    known = ({u["name"] for u in unit_specs} | {a for u in unit_specs for a in u["aliases"]}
             | {u["full_name"] for u in unit_specs if u["full_name"]})
    groups_known = {ALL_MEMBERS, *base.unit_groups, *(a for g in base.unit_groups.values() for a in g.aliases)}

    canonical = {a: u["name"] for u in unit_specs for a in (u["name"], *u["aliases"], u["full_name"] or "")}

    def unit_list(row: _Row, column: str, *, required: bool) -> list[str]:
        names = _names(r.text(row, column, required=required))
        for n in names:
            if n not in known and n not in groups_known:
                r.bad(row, column, f"没有“{n}”这个单位（新单位请先加到“单位”表）")
        return [canonical.get(n, n) for n in names]

    phase_specs = []
    for row in phases:
        no = r.integer(row, "序号")
        start, end = r.day(row, "开始日期", required=False), r.day(row, "结束日期")
        phase_specs.append({"no": no, "name": r.text(row, "名称"), "description": _s(row.values["说明"]) or "",
                            "start": start, "end": end})
    r.unique(phases, "序号", lambda row: row.values["序号"], "阶段序号")

    group_specs = []
    for row in groups:
        no = r.integer(row, "组号")
        group_specs.append({"no": no, "title": r.text(row, "名称")})
    r.unique(groups, "组号", lambda row: row.values["组号"], "任务组号")
    group_nos = {g["no"] for g in group_specs}

    task_specs = []
    for row in tasks:
        no, group = r.integer(row, "任务号"), r.integer(row, "任务组")
        if group is not None and group not in group_nos:
            r.bad(row, "任务组", f"没有第 {group} 组（见“任务组”表）")
        names = unit_list(row, "责任单位", required=True)
        lead_unit = row.values["牵头单位"]
        if lead_unit is not None:
            lead_unit = canonical.get(str(lead_unit), str(lead_unit))
            if lead_unit not in names:
                r.bad(row, "牵头单位", f"“{lead_unit}”不在本任务的责任单位中")
            else:
                names = [lead_unit, *(n for n in names if n != lead_unit)]
        if no is not None:
            r.where[("task", no)] = row
        task_specs.append({"no": no, "group": group, "title": r.text(row, "主要内容"),
                           "detail": _s(row.values["工作要求"]) or "", "units": names,
                           "deadline": r.day(row, "完成时限")})
    r.unique(tasks, "任务号", lambda row: row.values["任务号"], "任务号")

    cat_specs = []
    for row in cats:
        cat_specs.append({"no": r.integer(row, "序号"), "name": r.text(row, "名称"),
                          "stated_points": r.points(row, "分值", required=False),
                          "is_bonus": r.flag(row, "加分项")})
    r.unique(cats, "序号", lambda row: row.values["序号"], "类别序号")
    cat_names = {c["name"] for c in cat_specs}

    item_specs: dict[int, dict[str, Any]] = {}
    for row in items:
        no = r.integer(row, "项号")
        cat = r.text(row, "类别")
        if cat and cat not in cat_names:
            r.bad(row, "类别", f"没有“{cat}”这个类别（见“评分类别”表）")
        spec = {"no": no, "category": cat, "subcategory": _s(row.values["子类"]),
                "max_points": r.points(row, "分数"), "text": _s(row.values["评分方法"]),
                "units": unit_list(row, "责任单位", required=False),
                "deadline": r.day(row, "完成时限", required=False), "deadline_note": _s(row.values["时限说明"]),
                "note": _s(row.values["备注"]), "criteria": []}
        if no is not None:
            r.where[("item", no)] = row
            item_specs.setdefault(no, spec)
    r.unique(items, "项号", lambda row: row.values["项号"], "评分项号")

    for row in crits:
        item_no, no, pts = r.integer(row, "项号"), r.integer(row, "细则号"), r.points(row, "分数")
        item = item_specs.get(item_no) if item_no is not None else None
        if item_no is not None and item is None:
            gone = any(it.no == item_no for it in base.score_items)
            r.bad(row, "项号", f"“评分项”表中没有评分项 {item_no}" + (
                "（评分项是验收标准，不能删除；不适用的细则请填写“放弃原因”）" if gone else "（见“评分项”表）"))
        if item is not None and pts is not None and item["max_points"] is not None and pts > item["max_points"]:
            r.bad(row, "分数", f"{format_points(pts)} 分超过评分项 {item_no} 的分数 "
                              f"{format_points(item['max_points'])} 分")
        reason = _s(row.values["放弃原因"])
        label = _s(row.values["简称"])
        if label is not None and len(label) > 200:
            r.bad(row, "简称", f"不超过 200 个字（现有 {len(label)} 个）")
        names = unit_list(row, "责任单位", required=False)
        if item is not None:
            item["criteria"].append({
                "no": no, "points": pts, "text": r.text(row, "细则内容"), "label": _s(row.values["简称"]),
                "tier_group": None if row.values["择一组"] is None else str(row.values["择一组"]),
                "units": names or None, "not_attainable": reason is not None,
                "not_attainable_reason": None if reason is None else str(reason)})
    r.unique(crits, "细则号", lambda row: (row.values["项号"], row.values["细则号"]), "细则号")

    crit_keys = {f"{i}.{c['no']}" for i, it in item_specs.items() for c in it["criteria"]}
    task_nos = {t["no"] for t in task_specs}
    link_specs = []
    for row in links:
        task_no = r.integer(row, "任务号")
        crit = str(row.values["细则"] or "").strip()
        if task_no is not None and task_no not in task_nos:
            r.bad(row, "任务号", f"没有任务 {task_no}（见“任务”表）")
        if crit not in crit_keys:
            r.bad(row, "细则", f"没有细则“{crit}”（写成 项号.细则号，如 7.1）" if crit else "不能为空")
        state = row.values["状态"] or "建议"
        if state not in LINK_STATES:
            r.bad(row, "状态", f"应填“建议”或“确认”，实为“{state}”")
        link_specs.append({"task": task_no, "criterion": crit, "suggested": LINK_STATES.get(state, True)})
    r.unique(links, "细则", lambda row: (row.values["任务号"], row.values["细则"]), "关联")
    if r.problems:
        raise PlanBookError(r.problems)

    plan: dict[str, Any] = base.model_dump(mode="python")
    plan.update({
        "units": unit_specs, "phases": phase_specs, "task_groups": group_specs, "tasks": task_specs,
        "score_categories": cat_specs, "score_items": list(item_specs.values()), "links": link_specs,
    })
    plan["campaign"]["lead_unit"] = lead[0] if lead else base.campaign.lead_unit
    try:
        doc = SeedDoc.model_validate(plan, strict=False)
    except ValidationError as exc:
        raise PlanBookError([_pydantic_said(r, e) for e in exc.errors()]) from None
    errors = [f for f in check_seed(doc) if f.level == "error"]
    if errors:
        raise PlanBookError([f"{_row_of(r, f.where, f.no)}{f.message}" for f in errors])
    return doc


_SHEET_OF = {"units": "单位", "phases": "阶段", "task_groups": "任务组", "tasks": "任务", "score_categories": "评分类别",
             "score_items": "评分项", "links": "任务与细则"}


def _pydantic_said(r: _Reader, err: Any) -> str:
    """A schema refusal the cell checks did not catch, said in Chinese with its sheet and row."""
    loc = [str(p) for p in err.get("loc", ())]
    sheet = _SHEET_OF.get(loc[0], "工作簿") if loc else "工作簿"
    where = f"{sheet}表 第{int(loc[1]) + 2}行" if len(loc) > 1 and loc[1].isdigit() else f"{sheet}表"
    return f"{where}：内容不符合要求（{'·'.join(loc[2:]) or loc[0] if loc else ''}）"


def _row_of(r: _Reader, where: str, no: int | None) -> str:
    """``任务表 第9行：`` for a finding about task 9 (empty when the row is unknown)."""
    kind = ("task" if where.startswith("tasks") or where.startswith("links") else
            "item" if where.startswith("score_items") else None)
    row = r.where.get((kind, no)) if kind and no is not None else None
    return f"{row.sheet}表 第{row.number}行：" if row else ""
