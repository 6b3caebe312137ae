"""The seed checker: every problem of a seed beyond its schema (:func:`check_seed`).

Errors (unknown unit, duplicate number, points that are not a multiple of 0.5,
phases out of order ...) refuse an import; warnings (the arithmetic of the official
table does not add up, a deadline falls outside the phases ...) are stored with the
campaign. The arithmetic is :mod:`models.scoring`'s, the one scoring rule.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from datetime import date, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from models.scoring import attainable_points, criteria_points, reachable_points
from models.seed.schema import (
    POINT_STEP,
    Finding,
    ScoreItemSpec,
    SeedDoc,
    SeedError,
    UnitIndex,
    plan_start,
)
from models.wording import phase_name

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
                att, reach = attainable_points(it.max_points, it.criteria), reachable_points(it.max_points, it.criteria)
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
            att = sum(attainable_points(it.max_points, it.criteria) for it in items)
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
                         f"{phase_name(ph.no)}起始日期 {ph.start} 晚于结束日期 {ph.end}。", no=ph.no)
        if phases[0].start is None:
            self.add("warning", "phase_no_start", f"phases[no={phases[0].no}].start",
                     f"{phase_name(phases[0].no)}没有起始日期，计划起点取发文日期。", no=phases[0].no)
        for prev, cur in zip(phases, phases[1:], strict=False):
            where = f"phases[no={cur.no}]"
            if cur.end < prev.end or (
                cur.start is not None and prev.start is not None and cur.start < prev.start
            ):
                self.add("error", "phase_order", where,
                         f"{phase_name(cur.no)}（{cur.start or '—'}至{cur.end}）排在{phase_name(prev.no)}"
                         f"（{prev.start or '—'}至{prev.end}）之后，日期却更早。", no=cur.no)
                continue
            if cur.start is None:
                continue
            if cur.start < prev.end:
                self.add("warning", "phase_overlap", where,
                         f"{phase_name(cur.no)} {cur.start} 开始，{phase_name(prev.no)} {prev.end} 才结束，两阶段重叠。",
                         no=cur.no)
            elif cur.start > prev.end + timedelta(days=1):
                self.add("warning", "phase_gap", where,
                         f"{phase_name(prev.no)} {prev.end} 结束，{phase_name(cur.no)} {cur.start} 才开始，中间有空档。",
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

    def links(self) -> None:
        """Task ↔ criterion links name a task and a criterion of the plan, once each."""
        doc = self.doc
        tasks = {t.no for t in doc.tasks}
        criteria = {(it.no, c.no) for it in doc.score_items for c in it.criteria}
        seen: Counter[tuple[int, str]] = Counter()
        told: set[object] = set()
        for n, link in enumerate(doc.links):
            where = f"links[{n}]"
            seen[(link.task, link.criterion)] += 1
            if link.task not in tasks and link.task not in told:
                told.add(link.task)
                self.add("error", "unknown_task", where, f"关联中的任务 {link.task} 不存在。", no=link.task)
            if link.criterion_key not in criteria and link.criterion not in told:
                told.add(link.criterion)
                self.add("error", "unknown_criterion", where, f"关联中的细则 {link.criterion} 不存在。",
                         no=link.criterion_key[0])
        for (task, crit), n in seen.items():
            if n > 1:
                self.add("error", "duplicate_link", f"links[task={task},criterion={crit}]",
                         f"任务 {task} 与细则 {crit} 的关联重复出现 {n} 次。", no=task)

    def criterion_points(self) -> None:
        """One criterion can never be worth more than its whole item."""
        for it in self.doc.score_items:
            for c in it.criteria:
                if c.points > it.max_points:
                    self.add("error", "criterion_over_item", f"score_items[no={it.no}].criteria[no={c.no}]",
                             f"第{it.no}项细则 {c.no} 为 {_fmt(c.points)} 分，超过本项分数 {_fmt(it.max_points)} 分。",
                             no=it.no, points=c.points, max_points=it.max_points)

    def run(self) -> list[Finding]:
        self.links()
        self.criterion_points()
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
