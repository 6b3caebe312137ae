"""The status as Chinese messages for Telegram (HTML parse mode).

Pure rendering of :mod:`models.status` objects; nothing is computed here that the
status does not already say. Every message is at most :data:`MAX_MESSAGE` long
(counted in UTF-16 code units of the HTML source, which is never less than what
Telegram counts after parsing) and a longer report is split between lines —
never inside a tag or an entity; a ``<pre>`` table split in two is closed and
reopened. Every string that comes from users or the database is escaped with
``html.escape``; user-written texts (notes, reasons) are shortened first.

Numbers are points as people write them: ``1.5``, ``2`` (not ``2.0``).
"""

from __future__ import annotations

import html
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date

from models.labels import ASSESSMENT_NAMES, STATE_NAMES
from models.status import (
    LABEL_LATE_REVIEW,
    LIGHT_ICONS,
    AssignmentStatus,
    CampaignStatus,
    CriterionStatus,
    Gap,
    ItemStatus,
    ItemView,
    Light,
    Milestone,
    OverviewLine,
    PhaseStatus,
    TaskView,
    UnitView,
    phase_label,
)
from models.tables import AssessmentState, AssignmentState
from models.wording import (
    LOST,
    calendar_gap,
    day,
    esc,
    full_date,
    item_due,
    month_day,
    points,
    short,
)

MAX_MESSAGE = 4096
#: How many gaps /status lists.
TOP_GAPS = 8
#: How many overdue / due-soon lines /status lists before "…另有 N 项".
MAX_LIST = 25

STATE_ICONS = {
    AssignmentState.not_started: "⬜",
    AssignmentState.in_progress: "🔄",
    AssignmentState.submitted: "📤",
    AssignmentState.approved: "✅",
}
ASSESSMENT_ICONS = {
    AssessmentState.none: "⬜",
    AssessmentState.claimed: "⏳",
    AssessmentState.verified: "✅",
    AssessmentState.rejected: "❌",
}
NOT_ATTAINABLE_ICON = "🚫"
ALL_MEMBERS = "领导小组全体成员单位"


# ===================================================================== helpers










def left(days: int | None) -> str:
    """How far a deadline is: ``剩5天``, ``今天截止``, ``逾期3天``."""
    if days is None:
        return "无截止日期"
    if days > 0:
        return f"剩{days}天"
    if days == 0:
        return "今天截止"
    return f"逾期{-days}天"


def names(units: Iterable[object], limit: int = 6) -> str:
    """Unit names (or units) joined with 、 (escaped); ``（无责任单位）`` for none."""
    all_names = [u if isinstance(u, str) else str(getattr(u, "name", u)) for u in units]
    if not all_names:
        return "（无责任单位）"
    shown = "、".join(all_names[:limit])
    if len(all_names) > limit:
        shown += f" 等{len(all_names)}个单位"
    return esc(shown)


def nos(numbers: Sequence[int]) -> str:
    """``1–3、5``: numbers with runs collapsed."""
    out: list[str] = []
    run: list[int] = []
    for n in sorted(set(numbers)):
        if run and n == run[-1] + 1:
            run.append(n)
            continue
        if run:
            out.append(str(run[0]) if len(run) == 1 else f"{run[0]}–{run[-1]}")
        run = [n]
    if run:
        out.append(str(run[0]) if len(run) == 1 else f"{run[0]}–{run[-1]}")
    return "、".join(out)


def width(text: str) -> int:
    """Columns ``text`` takes in a monospace font (CJK and full-width count 2)."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def pad(text: str, cols: int, *, right: bool = False) -> str:
    fill = " " * max(0, cols - width(text))
    return fill + text if right else text + fill


def clip(text: str, cols: int) -> str:
    """Cut ``text`` to at most ``cols`` columns."""
    out, used = "", 0
    for ch in text:
        w = width(ch)
        if used + w > cols:
            break
        out += ch
        used += w
    return out


# ================================================================= pagination


@dataclass(frozen=True, slots=True)
class Pre:
    """A monospace block; its lines are plain text (escaped when rendered)."""

    lines: tuple[str, ...]


Block = str | Pre


def tg_len(text: str) -> int:
    """Length as Telegram counts it (UTF-16 code units)."""
    return len(text.encode("utf-16-le")) // 2


_TAG = re.compile(r"<[^>]*>")


def _split_long_line(line: str, limit: int) -> list[str]:
    """A line longer than a message: as plain text, cut between characters."""
    plain = html.unescape(_TAG.sub("", line))
    pieces: list[str] = []
    cur = ""
    for ch in plain:
        if tg_len(esc(cur + ch)) > limit:
            pieces.append(esc(cur))
            cur = ""
        cur += ch
    if cur:
        pieces.append(esc(cur))
    return pieces


def paginate(blocks: Iterable[Block], limit: int = MAX_MESSAGE) -> list[str]:
    """Join blocks into messages of at most ``limit``, splitting only between lines.

    A ``str`` block is one or more lines of HTML, each complete in itself (every
    tag it opens it closes). A :class:`Pre` block may be split between its lines;
    each part is its own ``<pre>…</pre>``.
    """
    atoms: list[str] = []
    for b in blocks:
        if isinstance(b, Pre):
            rows = [esc(x) for x in b.lines]
            cur: list[str] = []
            for row in rows:
                candidate = "<pre>" + "\n".join([*cur, row]) + "</pre>"
                if cur and tg_len(candidate) > limit:
                    atoms.append("<pre>" + "\n".join(cur) + "</pre>")
                    cur = []
                cur.append(row)
            if cur:
                block = "<pre>" + "\n".join(cur) + "</pre>"
                atoms.extend([block] if tg_len(block) <= limit else _split_long_line(block, limit))
        else:
            for line in b.split("\n"):
                atoms.extend([line] if tg_len(line) <= limit else _split_long_line(line, limit))
    messages: list[str] = []
    current = ""
    for atom in atoms:
        candidate = atom if not current else current + "\n" + atom
        if tg_len(candidate) <= limit:
            current = candidate
            continue
        if current.strip():
            messages.append(current.strip("\n"))
        current = atom
    if current.strip():
        messages.append(current.strip("\n"))
    return messages or [""]


# ================================================================ fragments


def headline(st: CampaignStatus) -> list[str]:
    h = st.headline
    base, bonus = h.base, h.bonus
    lines = [
        f"<b>当前得分</b> 已核定 <b>{points(base.verified)}</b> / 自评 {points(base.claimed)}"
        f" / 满分 {points(base.max_points)} ＋ 加分 {points(bonus.verified)}/{points(bonus.max_points)}"
        + (f"（自评 {points(bonus.claimed)}）" if bonus.claimed != bonus.verified else ""),
        f"最多还能得 {points(base.reachable)} 分（评分表可得 {points(base.attainable)} 分，{LOST} {points(base.lost)} 分）"
        f" · 尚可争取 {points(base.open)} 分 · 待核定 {points(base.pending)} 分",
    ]
    if base.lost_late:
        lines.append(f"其中逾期失分 {points(base.lost_late)}（补报后仍可挽回）")
    if base.pending or bonus.pending:
        lines.append(f"若已申报的全部核定：基本分 {points(base.claimed)}，加分 {points(bonus.claimed)}")
    return lines


def phase_line(ph: PhaseStatus) -> list[str]:
    today = ph.today
    if ph.state == "during" and ph.current is not None:
        p = ph.current
        line = (f"📅 {phase_label(p.no)}“{esc(p.name)}”（至{day(p.end_date, today)}，"
                f"{left((p.end_date - today).days)}）")
    elif ph.state == "before" and ph.next is not None:
        line = f"📅 创建工作尚未开始（{phase_label(ph.next.no)}{day(ph.next.start_date, today)}开始）" \
            if ph.next.start_date else "📅 创建工作尚未开始"
    elif ph.state == "between" and ph.next is not None:
        line = f"📅 阶段间隙（{phase_label(ph.next.no)}“{esc(ph.next.name)}”将开始）"
    elif ph.state == "after":
        line = "📅 各阶段均已结束"
    else:
        line = "📅 未设定工作阶段"
    out = [line]
    m = ph.next_milestone
    if m is not None:
        out.append("⏭ 下一节点：" + milestone_text(m, today))
    return out


def milestone_text(m: Milestone, today: date) -> str:
    when = "今天" if m.days_left == 0 else (
        f"{day(m.date, today)}（还有{m.days_left}天，{m.working_days_left}个工作日）")
    what: list[str] = [esc(e) for e in m.phase_events]
    if m.task_nos:
        what.append(f"任务{nos(m.task_nos)}截止")
    if m.item_nos:
        what.append(f"评分项{nos(m.item_nos)}到期")
    return when + ("：" + "；".join(what) if what else "")


def category_table(st: CampaignStatus) -> Pre:
    name_cols = 16
    rows = [pad("类别", name_cols) + pad("核定", 5, right=True) + pad("自评", 5, right=True)
            + pad("满分", 5, right=True)]

    def row(label: str, verified: float, claimed: float, mx: float, extra: str = "") -> str:
        return (pad(clip(label, name_cols), name_cols) + pad(points(verified), 5, right=True)
                + pad(points(claimed), 5, right=True) + pad(points(mx), 5, right=True) + extra)

    for c in st.categories:
        if not c.is_bonus:
            rows.append(row(c.name, c.verified, c.claimed, c.max_points,
                            f" 可得{points(c.attainable)}" if c.attainable != c.max_points else ""))
    rows.append(row("基本分合计", st.base.verified, st.base.claimed, st.base.max_points))
    for c in st.categories:
        if c.is_bonus:
            rows.append(row(c.name, c.verified, c.claimed, c.max_points,
                            f" 可得{points(c.attainable)}" if c.attainable != c.max_points else ""))
    return Pre(tuple(rows))


def assignment_line(a: AssignmentStatus, today: date, *, unit: bool = True,
                    task: bool = True) -> str:
    icon = LIGHT_ICONS[a.light] if a.light != Light.green else STATE_ICONS[a.state]
    parts = []
    if task:
        parts.append(f"任务{a.task_no} {esc(short(a.task_title, 18))}")
    if unit:
        parts.append(esc(a.unit_name))
    state = STATE_NAMES[a.state]
    if a.state == AssignmentState.in_progress:
        state += f" {a.percent}%"
    if a.light_label:
        state += f"（{a.light_label}）"
    parts.append(state)
    if a.state != AssignmentState.approved:
        parts.append(f"{day(a.deadline, today)}截止，{left(a.days_left)}")
    return f"{icon} " + " · ".join(parts)


def gap_line(n: int, g: Gap, today: date) -> str:
    when = f"{day(g.deadline, today)}（{left(g.days_left)}）" if g.deadline else "无截止日期"
    owing = ALL_MEMBERS if g.all_members else names(g.units, 3)
    line = (f"{n}. 评分项{g.item_no} {esc(short(g.title, 12))} <b>{points(g.points)}分</b> · {when}"
            f" · {owing}")
    if g.missing_evidence:
        line += f" · 缺材料：细则{nos(g.missing_evidence)}"
    return line


def criterion_line(c: CriterionStatus, *, with_units: bool = False, text_limit: int = 30) -> str:
    if c.not_attainable:
        state = f"{NOT_ATTAINABLE_ICON} 本区无法达到"
        if c.not_attainable_reason:
            state += f"：{esc(short(c.not_attainable_reason, 40))}"
    else:
        state = f"{ASSESSMENT_ICONS[c.state]} {ASSESSMENT_NAMES[c.state]}"
        if c.claimed_by is not None and c.state != AssessmentState.none:
            state += f"（{esc(c.claimed_by.name)}）"
        if c.state == AssessmentState.rejected and c.reason:
            state += f"：{esc(short(c.reason, 60))}"
    line = f"{c.label} {esc(short(c.text, text_limit))}（{points(c.points)}分）{state}"
    if c.evidence_count:
        line += f" 📎{c.evidence_count}"
    elif not c.not_attainable and c.state != AssessmentState.verified:
        line += " · 缺材料"
    if with_units:
        line += f" · {names(c.units, 3)}"
    return line


def _owners(i: ItemStatus) -> str:
    return ALL_MEMBERS if i.all_members else names(i.units, 4)


def _capped(lines: list[str], limit: int = MAX_LIST) -> list[str]:
    if len(lines) <= limit:
        return lines
    return [*lines[:limit], f"……另有 {len(lines) - limit} 项"]


# ================================================================== reports


def render_status(status: CampaignStatus) -> list[str]:
    """/status: headline, phase, categories, overdue, due soon, gaps, failed deliveries."""
    st = status
    today = st.today
    blocks: list[Block] = [
        f"<b>📊 {esc(st.campaign.name)}</b>",
        f"截至{full_date(today)}",
        *phase_line(st.phase),
        *([calendar_gap(st.calendar_gaps)] if st.calendar_gaps else []),
        "",
        *headline(st),
        "",
        "<b>各类别得分</b>",
        category_table(st),
    ]
    red = [f"🔴 任务{t.no} {esc(short(t.title, 18))}（{day(t.deadline, today)}截止，"
           f"{left(t.days_left)}）：{names(a.unit_name for a in t.late_units)}"
           for t in st.overdue_tasks]
    red += [f"🔴 评分项{i.no} {esc(short(i.title, 12))}（{day(i.deadline, today)}到期，"
            f"逾期失分 {points(i.score.lost_late)}）：{_owners(i)}"
            for i in st.overdue_items if i.deadline is not None]
    if red:
        blocks += ["", f"<b>🔴 逾期（{len(red)}）</b>", *_capped(red)]
    soon = [f"🟡 任务{a.task_no} {esc(short(a.task_title, 18))} · {esc(a.unit_name)}"
            f"（{day(a.deadline, today)}截止，剩{a.working_days_left}个工作日）"
            for a in st.due_soon]
    soon += [f"🟡 评分项{i.no} {esc(short(i.title, 12))} 尚可争取 {points(i.open)}分"
             f"（{day(i.deadline, today)}到期，剩{i.working_days_left}个工作日）：{_owners(i)}"
             for i in st.due_soon_items if i.deadline is not None]
    if soon:
        blocks += ["", f"<b>🟡 临近截止（{len(soon)}）</b>", *_capped(soon)]
    if st.late_review:
        blocks += ["", f"<b>⏳ {LABEL_LATE_REVIEW}（{len(st.late_review)}）</b>", *_capped([
            f"⏳ 任务{a.task_no} · {esc(a.unit_name)}（{day(a.deadline, today)}截止）"
            for a in st.late_review])]
    if st.gaps:
        top = st.gaps[:TOP_GAPS]
        late = sum(g.lost_late for g in st.gaps)
        # The same points as the headline's 尚可争取, plus those lost only for being late (补报可挽回).
        blocks += ["", f"<b>🎯 最值得争取的分（共 {len(st.gaps)} 项，"
                       f"{points(sum(g.points for g in st.gaps))} 分"
                       + (f"，含逾期待补报 {points(late)} 分" if late else "") + "）</b>",
                   *[gap_line(n, g, today) for n, g in enumerate(top, start=1)]]
        if len(st.gaps) > len(top):
            blocks.append(f"……另有 {len(st.gaps) - len(top)} 项，见 /unit 或 /item")
    if st.bonus_unclaimed:
        blocks += ["", "<b>➕ 加分项未申报</b>：评分项"
                   + nos([i.no for i in st.bonus_unclaimed])
                   + f"（可得 {points(sum(i.possible for i in st.bonus_unclaimed))} 分）"]
    if st.unowned_criteria:
        blocks += ["", "<b>⚠️ 无责任单位的细则</b>："
                   + "、".join(c.label for c in st.unowned_criteria) + "（请协调员指定或放弃）"]
    if st.failed_outbox:
        blocks += ["", f"<b>📮 有 {st.failed_outbox} 条消息投递失败</b>，请协调员检查群组和联络员的私聊设置。"]
    return paginate(blocks)


def render_unit(view: UnitView) -> list[str]:
    """/unit: one unit's tasks, the criteria it owes and its points at stake."""
    u, today = view.unit, view.today
    blocks: list[Block] = [
        f"<b>🏢 {esc(u.name)}</b>（截至 {month_day(today)}）",
        f"任务 {u.assignments} 项：已通过 {u.approved} · 已提交 {u.submitted} · 进行中 {u.in_progress}"
        f" · 未开始 {u.not_started}" + (f" · 🔴{u.red}" if u.red else "")
        + (f" · 🟡{u.yellow}" if u.yellow else ""),
    ]
    if view.assignments:
        blocks += ["", "<b>任务</b>"]
        for a in view.assignments:
            blocks.append(assignment_line(a, today, unit=False))
            if a.return_reason and a.state != AssignmentState.approved:
                blocks.append(f"　↩️ 退回原因：{esc(short(a.return_reason, 100))}")
    if view.criteria:
        blocks += ["", "<b>负责的评分细则</b>"]
        blocks += [criterion_line(c) for c in view.criteria]
    if view.gaps:
        bonus = sum(g.points for g in view.gaps if g.is_bonus)
        blocks += ["", f"<b>🎯 尚可争取 {points(u.points_at_stake)} 分</b>"
                       + (f"（含加分项 {points(bonus)} 分）" if bonus else "")]
        blocks += [gap_line(n, g, today) for n, g in enumerate(view.gaps, start=1)]
    elif not view.assignments and not view.criteria:
        blocks += ["", "该单位目前没有承担任务或评分细则。"]
    return paginate(blocks)


def render_item(view: ItemView) -> list[str]:
    """/item N: a score item, its criteria, units and points."""
    i, today = view.item, view.today
    when = item_due(i.deadline, i.deadline_basis, today)
    if i.deadline is not None:
        when += f"，{left(i.days_left)}"
    icon = LIGHT_ICONS[i.light]
    blocks: list[Block] = [
        f"<b>评分项 {i.no} · {esc(i.title)}</b>（{esc(i.category_name)}"
        + ("，加分项" if i.is_bonus else "") + "）",
        f"满分 {points(i.max_points)} · 可得 {points(i.attainable)} · 已核定 <b>{points(i.verified)}</b>"
        f" · 自评 {points(i.claimed)}" + (f" · {LOST} {points(i.lost)}" if i.lost else ""),
        f"{icon} 完成时限：{when}" + (f"（{i.light_label}）" if i.light_label else ""),
        f"责任单位：{ALL_MEMBERS if i.all_members else names(i.units, 8)}",
        "",
        "<b>评分细则</b>",
    ]
    for c in i.criteria:
        line = criterion_line(c, text_limit=60)
        if c.units != i.units:
            line += f" · {names(c.units, 3)}"
        blocks.append(line)
    if i.attainable < i.max_points:
        blocks.append(f"注：细则合计最多 {points(i.attainable)} 分，低于本项分数 {points(i.max_points)} 分。")
    if i.evidence_count:
        blocks.append(f"📎 本项另有 {i.evidence_count} 份材料未指定细则")
    if view.gap is not None:
        g = view.gap
        blocks.append(f"🎯 尚可争取 {points(g.points)} 分"
                      + (f"，缺材料：细则{nos(g.missing_evidence)}" if g.missing_evidence else ""))
    if i.note:
        blocks += ["", f"说明：{esc(short(i.note, 300))}"]
    return paginate(blocks)


def render_task(view: TaskView) -> list[str]:
    """/task N: a task and every responsible unit's progress."""
    t, today = view.task, view.today
    done = sum(1 for a in t.assignments if a.state == AssignmentState.approved)
    blocks: list[Block] = [
        f"<b>任务 {t.no}</b> {esc(short(t.title, 200))}",
        f"{LIGHT_ICONS[t.light]} 截止 {day(t.deadline, today)}（{left(t.days_left)}"
        + (f"；已调整，原定 {day(t.planned_deadline, today)}"
           if t.planned_deadline != t.deadline else "") + "）"
        + f" · 已通过 {done}/{len(t.assignments)}" + (" ✅ 已完成" if t.done else ""),
        "",
    ]
    for a in t.assignments:
        blocks.append(assignment_line(a, today, task=False))
        if a.note:
            blocks.append(f"　📝 {esc(short(a.note, 100))}")
        if a.return_reason and a.state != AssignmentState.approved:
            blocks.append(f"　↩️ 退回原因：{esc(short(a.return_reason, 100))}")
    if not t.assignments:
        blocks.append("（没有承担单位）")
    return paginate(blocks)


def render_overview(lines: Sequence[OverviewLine], *, today: date | None = None) -> list[str]:
    """One line per campaign (a city's districts)."""
    when = today or (lines[0].phase.today if lines else None)
    blocks: list[Block] = ["<b>🗺 各区创建进度</b>" + (f"（截至{full_date(when)}）" if when else "")]
    if not lines:
        blocks.append("（暂无进行中的创建活动）")
    for line in lines:
        icon = "🔴" if line.overdue_tasks or line.overdue_items else "🟢"
        ph = line.phase
        stage = phase_label(ph.current.no) if ph.current is not None else {
            "before": "未开始", "after": "已结束", "between": "阶段间隙"}.get(ph.state, "")
        text = (f"{icon} <b>{esc(line.campaign.district or line.campaign.name)}</b>"
                f" 核定 {points(line.base.verified)} / 自评 {points(line.base.claimed)}"
                f" / {points(line.base.max_points)} ＋ 加分 {points(line.bonus.verified)}"
                f" · 完成任务 {line.tasks_done}/{line.tasks_total}"
                f" · 逾期任务 {line.overdue_tasks}")
        if stage:
            text += f" · {stage}"
        if line.failed_outbox:
            text += f" · 📮{line.failed_outbox}"
        blocks.append(text)
    return paginate(blocks)
