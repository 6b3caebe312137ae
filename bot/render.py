"""The bot's cards and state labels (Simplified Chinese, HTML). The wording helpers
(dates, points, escaping) are ``models.wording``'s; user text is always escaped."""

from __future__ import annotations

from datetime import date

from models.labels import ASSESSMENT_NAMES, EVIDENCE_NAMES, STATE_NAMES
from models.status import deadline_basis, item_deadline
from models.tables import (
    Assessment,
    AssessmentState,
    Assignment,
    AssignmentState,
    Criterion,
    Evidence,
    ScoreItem,
    Task,
)
from models.wording import esc, full_date, item_due, points, short, size

ASSIGNMENT_STATES = {**STATE_NAMES, AssignmentState.submitted: "已提交，待审核"}
ASSESSMENT_STATES = {
    **ASSESSMENT_NAMES,
    AssessmentState.claimed: "已申报，待审核",
    AssessmentState.rejected: "未通过，可重新申报",
}
EVIDENCE_STATES = EVIDENCE_NAMES


def deadline_note(deadline: date | None, today: date) -> str:
    if deadline is None:
        return ""
    delta = (deadline - today).days
    if delta < 0:
        return f"（⚠️ 已逾期 {-delta} 天）"
    if delta == 0:
        return "（今天截止）"
    if delta <= 7:
        return f"（还剩 {delta} 天）"
    return ""


def assignment_state(a: Assignment) -> str:
    label = ASSIGNMENT_STATES.get(a.state, str(a.state))
    if a.state in (AssignmentState.in_progress, AssignmentState.not_started) and a.percent:
        return f"{label} {a.percent}%"
    return label


def assignment_card(a: Assignment, task: Task, unit_name: str, today: date) -> str:
    lines = [
        f"<b>任务{task.no}</b>（{esc(unit_name)}）",
        esc(task.title),
        f"截止：{full_date(task.deadline)}{deadline_note(task.deadline, today)}",
        f"状态：{ASSIGNMENT_STATES.get(a.state, str(a.state))} · 进度 {a.percent}%",
    ]
    if a.note:
        lines.append(f"进展说明：{esc(short(a.note, 200))}")
    if a.return_reason and a.state != AssignmentState.approved:
        lines.append(f"↩️ 上次退回原因：{esc(a.return_reason)}")
    if a.state != AssignmentState.approved:
        lines.append("")
        lines.append("👉 回复本消息：“完成”、“进度 60%”或一句进展说明；回复文件即提交证明材料。")
    return "\n".join(lines)


def criterion_card(
    crit: Criterion, item: ScoreItem, assessment: Assessment | None, unit_name: str | None,
    today: date, campaign_end: date | None,
) -> str:
    state = assessment.state if assessment is not None else AssessmentState.none
    head = f"<b>细则 {item.no}.{crit.no}</b>（评分项{item.no}"
    if item.subcategory:
        head += f" · {esc(item.subcategory)}"
    head += f"，{points(crit.points)}分）"
    lines = [head, esc(crit.standalone)]
    if unit_name:
        lines.append(f"责任单位：{esc(unit_name)}")
    due = item_deadline(item.deadline, campaign_end=campaign_end)
    basis = deadline_basis(item.deadline, item.deadline_note)
    lines.append(f"完成时限：{item_due(due, basis)}{deadline_note(due, today)}")
    lines.append(f"状态：{ASSESSMENT_STATES.get(state, str(state))}")
    if assessment is not None and assessment.reason and state == AssessmentState.rejected:
        lines.append(f"↩️ 未通过原因：{esc(assessment.reason)}")
    if crit.not_attainable:
        lines.append("（本条已标为本区无法达到）")
    elif state not in (AssessmentState.claimed, AssessmentState.verified):
        lines.append("")
        lines.append("👉 回复本消息“达标”即申报；回复文件即提交证明材料。")
    return "\n".join(lines)


def evidence_line(ev: Evidence, target: str, unit_name: str) -> str:
    return f"📎 《{esc(ev.file_name)}》（{size(ev.size)}）· {esc(unit_name)} · {esc(target)}"


