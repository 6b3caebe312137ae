"""The ledger (台账): the campaign's record as one print-ready workbook, the dossier's index.

``collect_ledger`` reads one campaign into a :class:`Ledger` (plan, units,
assignments, evidence, audit log, and the score numbers exactly as
``models.status.campaign_status`` reports them: nothing is re-scored here).
``write_ledger_xlsx`` turns it into a print-ready workbook; ``reports.dossier``
packs the evidence files with the workbook as index.
"""

from __future__ import annotations

import io
import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import IO, Any, Protocol
from zoneinfo import ZoneInfo

from openpyxl import Workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.styles import Alignment, Border, Font, NamedStyle, PatternFill, Side
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from infra.db import read_only
from models.errors import NotFound
from models.evidence import ACTIVE_STATES, EXTENSION_OF, EXTENSIONS, extension, visible
from models.labels import ASSESSMENT_NAMES, EVIDENCE_NAMES, STATE_NAMES
from models.performance import UnitRecord, unit_records
from models.status import CampaignStatus, campaign_status
from models.supervision import (
    INSTRUCTION_LABELS,
    SUPERVISION_LABELS,
    all_of_campaign,
    answers_of,
    supervision_state,
)
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
    EvidenceState,
    Instruction,
    InstructionAnswer,
    ItemUnit,
    Member,
    ScoreCategory,
    ScoreItem,
    Supervision,
    Task,
    TaskGroup,
    Unit,
    by_id,
    saved_id,
)
from models.wording import full_date

#: Telegram lets a bot upload documents of at most 50 MB; parts stay below this.
TELEGRAM_UPLOAD_LIMIT = 50 * 1000 * 1000
DEFAULT_PART_BYTES = TELEGRAM_UPLOAD_LIMIT

STATE_LABELS = STATE_NAMES
EVIDENCE_LABELS = EVIDENCE_NAMES
ASSESSMENT_LABELS: dict[AssessmentState, str] = {
    AssessmentState.none: "",
    AssessmentState.claimed: "已自评",
    AssessmentState.verified: "已核定",
    AssessmentState.rejected: "未通过",
}
ALL_MEMBERS = "区质量强区领导小组全体成员单位"
#: The audit log's actions as a reader of the ledger names them (others shown as recorded).
ACTION_LABELS = {
    "seed.import": "导入活动计划", "seed.create": "新增计划条目", "seed.update": "修改计划条目",
    "seed.delete": "删除计划条目", "seed.retire": "撤销计划条目", "seed.unretire": "恢复计划条目",
    "seed.link": "关联任务与细则", "seed.unlink": "取消任务与细则的关联",
    "plan.export": "导出工作计划", "plan.preview": "预览工作计划修改", "plan.apply": "导入工作计划",
    "plan.cancel": "取消导入工作计划", "invite.revoke": "撤销邀请",
    "assignment.progress": "填报进度", "assignment.submit": "报告完成", "assignment.approve": "审核通过任务",
    "assignment.return": "退回任务", "task.deadline": "调整期限",
    "criterion.claim": "申报细则达标", "criterion.verify": "核定细则", "criterion.reject": "细则未通过",
    "criterion.not_attainable": "细则不可得分",
    "evidence.add": "提交证明材料", "evidence.reuse": "重复使用证明材料", "evidence.accept": "证明材料通过",
    "evidence.return": "退回证明材料", "evidence.withdraw": "撤回证明材料",
    "member.add": "添加成员", "member.add_coordinator": "添加协调员", "member.join": "成员加入",
    "member.remove": "移除成员", "member.unreachable": "成员无法联系", "member.private_nudges": "私聊提醒设置",
    "invite.create": "生成邀请", "invite.use": "使用邀请", "chat.bind": "绑定工作群",
    "chat.unreachable": "群聊无法联系", "nudge.sent": "发送提醒", "nudge.failed": "提醒发送失败",
    "nudge.snooze": "暂缓提醒", "ledger.export": "导出台账",
    "instruction.create": "作出批示", "instruction.answer": "报送落实情况", "instruction.close": "批示办结",
    "supervision.issue": "下发督办单", "supervision.answer": "答复督办单", "supervision.close": "督办单办结",
    "bulletin.issue": "发布通报", "monthly.issue": "发送月报",
}
ENTITY_LABELS = {
    "campaign": "活动", "task": "任务", "assignment": "任务承办", "scoreitem": "评分项", "criterion": "评分细则",
    "evidence": "证明材料", "member": "成员", "invite": "邀请", "chat": "群聊", "unit": "单位",
    "outbox": "消息", "assessment": "评分细则", "instruction": "批示", "supervision": "督办单", "bulletin": "通报",
    "plan_preview": "工作计划修改", "phase": "工作阶段", "taskgroup": "任务组", "scorecategory": "评分类别",
}
ACTOR_LABELS = {"telegram": "Telegram", "cli": "命令行", "scheduler": "定时任务", "system": "系统"}

SHEET_OVERVIEW = "概况"
SHEET_SCORES = "自评表"
SHEET_TASKS = "任务表"
SHEET_UNITS = "单位汇总"
SHEET_FILES = "材料清单"
SHEET_AUDIT = "操作日志"
SHEET_RANKING = "考核"
SHEET_INSTRUCTIONS = "批示"
SHEET_SUPERVISIONS = "督办单"
SHEETS = (SHEET_OVERVIEW, SHEET_SCORES, SHEET_TASKS, SHEET_UNITS, SHEET_RANKING, SHEET_INSTRUCTIONS,
          SHEET_SUPERVISIONS, SHEET_FILES, SHEET_AUDIT)

#: Annex 2's columns in its order (序号、类别、指标内容、分数、评分方法、责任单位、完成时限), then the
#: self-assessment, the verified score, the state, the material and the tool's notes (备注).
SCORE_HEADERS = ("序号", "类别", "指标内容", "分数", "评分方法", "责任单位", "完成时限",
                 "自评得分", "核定得分", "状态", "证明材料", "备注")
TASK_HEADERS = ("序号", "任务组", "工作任务", "完成时限", "责任单位", "状态", "进度(%)", "证明材料(份)", "备注",
                "实际提交日期", "审核通过日期", "逾期天数")
#: The 考核 sheet: THE ranking (models.performance) with what it is made of.
RANKING_HEADERS = ("名次", "责任单位", "到期任务", "按时完成", "逾期完成", "逾期天数合计", "逾期未完成", "按时完成率",
                   "退回次数", "提醒后首次填报（小时，中位数）", "未办结批示", "未办结督办单", "待争取分值")
INSTRUCTION_HEADERS = ("编号", "批示时间", "批示人", "批示内容", "责任单位", "答复期限", "落实情况", "状态", "办结时间")
SUPERVISION_HEADERS = ("文号", "下发时间", "任务", "督办单位", "督办原因", "答复期限", "答复", "状态", "办结时间")
UNIT_HEADERS = ("责任单位", "承担任务", "未开始", "进行中", "已提交", "已通过", "逾期未完成", "平均进度(%)",
                "负责评分项", "证明材料(份)")
FILE_HEADERS = ("编号", "归属", "责任单位", "文件名", "台账中的位置", "类型", "大小(KB)", "上传人", "上传时间",
                "状态", "说明", "SHA-256")
AUDIT_HEADERS = ("时间", "操作人", "方式", "操作", "对象", "对象编号", "变更前", "变更后", "备注")


# ============================================================== the ledger's data


class ScoreLike(Protocol):
    """A status row with score numbers (an item, a category, a criterion, a headline score)."""

    @property
    def claimed(self) -> float: ...
    @property
    def verified(self) -> float: ...
    @property
    def max_points(self) -> float: ...


@dataclass(frozen=True, slots=True)
class Score:
    claimed: float
    verified: float
    max_points: float


@dataclass(frozen=True, slots=True)
class DossierFile:
    """One evidence file as it appears in the dossier."""

    evidence: Evidence
    arcname: str


@dataclass
class Ledger:
    campaign: Campaign
    today: date
    generated_at: datetime
    status: CampaignStatus
    units: dict[int, Unit]
    categories: list[ScoreCategory]
    items: list[ScoreItem]
    criteria: dict[int, list[Criterion]]
    item_units: dict[int, list[int]]
    criterion_units: dict[int, list[int]]
    assessments: dict[int, Assessment]
    groups: dict[int, TaskGroup]
    tasks: list[Task]
    assignments: list[Assignment]
    evidence: list[Evidence]
    files: list[DossierFile]
    members: dict[int, Member]
    audit: list[AuditLog]
    #: The dossier's folders: one per score item, then one per task (an empty one holds a note).
    folders: list[str] = field(default_factory=list)
    item_scores: dict[int, Score] = field(default_factory=dict)
    category_scores: dict[int, Score] = field(default_factory=dict)
    criterion_scores: dict[int, Score] = field(default_factory=dict)
    assignment_flags: dict[int, str] = field(default_factory=dict)
    #: The table's totals (base 100, bonus 10) as the status reports them.
    base_score: Score | None = None
    bonus_score: Score | None = None
    #: Per unit: assignments past their deadline and not submitted (red lights).
    unit_overdue: dict[int, int] = field(default_factory=dict)
    #: 考核: the units ranked by THE rule (models.performance).
    records: list[UnitRecord] = field(default_factory=list)
    #: The kept records of tasks the plan retired (已撤销), by task id: the 任务表 still lists them.
    retired: dict[int, list[Assignment]] = field(default_factory=dict)
    instructions: list[Instruction] = field(default_factory=list)
    answers: dict[int, list[InstructionAnswer]] = field(default_factory=dict)
    supervisions: list[Supervision] = field(default_factory=list)

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.campaign.timezone)

    def local(self, moment: datetime | None) -> str:
        return "" if moment is None else moment.astimezone(self.tz).strftime("%Y-%m-%d %H:%M")

    def unit_name(self, unit_id: int | None) -> str:
        unit = self.units.get(unit_id) if unit_id is not None else None
        return unit.name if unit is not None else ""

    def unit_names(self, unit_ids: Iterable[int]) -> str:
        ids = sorted(set(unit_ids), key=lambda u: (self.units[u].sort_order, u) if u in self.units else (0, u))
        return "、".join(self.unit_name(u) for u in ids)

    def member_name(self, member_id: int | None) -> str:
        member = self.members.get(member_id) if member_id is not None else None
        if member is None:
            return ""
        unit = self.unit_name(member.unit_id)
        name = member.display_name or (f"@{member.username}" if member.username else f"#{member.id}")
        return f"{name}（{unit}）" if unit else name

    @property
    def files_by_evidence(self) -> dict[int, str]:
        return {f.evidence.id: f.arcname for f in self.files if f.evidence.id is not None}


# ------------------------------------------------------------------ status numbers
# ``models.status.campaign_status`` is the one source of score numbers: read, never re-scored.


def _score_of(row: ScoreLike) -> Score:
    return Score(claimed=row.claimed, verified=row.verified, max_points=row.max_points)


def _read_status(ledger: Ledger) -> None:
    status = ledger.status
    ledger.item_scores = {i.item_id: _score_of(i) for i in status.items}
    ledger.category_scores = {c.category_id: _score_of(c) for c in status.categories}
    ledger.criterion_scores = {c.criterion_id: _score_of(c) for c in status.criteria}
    ledger.assignment_flags = {a.assignment_id: a.light_label for a in status.assignments if a.light_label}
    ledger.base_score = _score_of(status.headline.base)
    ledger.bonus_score = _score_of(status.headline.bonus)
    ledger.unit_overdue = {u.unit_id: u.red for u in status.units}


# ----------------------------------------------------------------- dossier names

_UNSAFE = re.compile(r'[\x00-\x1f\x7f/\\:*?"<>|]+')
MAX_SEGMENT = 80


def clean_segment(text: str, *, limit: int = MAX_SEGMENT, fallback: str = "未命名") -> str:
    """One path segment for the ZIP: no separators, control or reserved characters."""
    text = visible(unicodedata.normalize("NFC", unicodedata.normalize("NFKC", text or "")))
    text = _UNSAFE.sub("_", text)
    text = re.sub(r"\s+", " ", text).strip(" .")
    if not text:
        text = fallback
    if len(text) > limit:
        stem, dot, ext = text.rpartition(".")
        if dot and 0 < len(ext) <= 10 and len(stem) > 1:
            text = stem[: limit - len(ext) - 1].rstrip(" .") + "." + ext
        else:
            text = text[:limit].rstrip(" .")
    return text


_CLAUSE = re.compile(r"[，、。；：,.;:]+")
_QUOTES = re.compile(r"[“”\"'《》（）()\s]+")


def _folder_words(text: str, n: int) -> str:
    """Words for a folder name: the first clause of ``text`` (and the next ones while the first
    is short and they fit in ``n`` characters), cut at its punctuation, never mid-clause when a
    clause fits; quotes and brackets dropped."""
    clauses = [c for c in _CLAUSE.split(_QUOTES.sub("", text or "")) if c]
    if not clauses:
        return ""
    words = clauses[0][:n]
    for clause in clauses[1:]:
        if len(words) >= 10 or len(words) + 1 + len(clause) > n:
            break
        words = f"{words}、{clause}"  # 、 survives the NFKC of clean_segment
    return words


def item_folder(item: ScoreItem, category: ScoreCategory | None) -> str:
    label = item.subcategory or (category.name if category else "") or "评分项"
    return clean_segment(f"{item.no:02d}_{label}")


def task_folder(task: Task) -> str:
    return clean_segment(f"任务{task.no:02d}_{_folder_words(task.title, 30)}")


def _unique(name: str, taken: set[str]) -> str:
    if name.casefold() not in taken:
        taken.add(name.casefold())
        return name
    stem, dot, ext = name.rpartition(".")
    if not dot or not stem:
        stem, ext = name, ""
    n = 2
    while True:
        candidate = f"{stem}（{n}）" + (f".{ext}" if ext else "")
        if candidate.casefold() not in taken:
            taken.add(candidate.casefold())
            return candidate
        n += 1


def _dossier_files(
    evidence: Sequence[Evidence],
    *,
    items: dict[int, ScoreItem],
    categories: dict[int, ScoreCategory],
    criteria: dict[int, Criterion],
    tasks: dict[int, Task],
    units: dict[int, Unit],
    tz: ZoneInfo,
) -> list[DossierFile]:
    """Where each active evidence file goes: its score item's folder, else its task's."""
    placed: list[tuple[tuple[int, int, int, int], str, str, Evidence]] = []
    for ev in evidence:
        crit = criteria.get(ev.criterion_id) if ev.criterion_id is not None else None
        item_id = crit.item_id if crit is not None else ev.item_id
        item = items.get(item_id) if item_id is not None else None
        task = tasks.get(ev.task_id) if ev.task_id is not None else None
        unit = units.get(ev.unit_id) if ev.unit_id is not None else None
        # unit_target_date_original: who, for what, when, and the name it came with
        if crit is not None and item_id is not None and item_id in items:
            target = f"细则{items[item_id].no}.{crit.no}"
        elif item is not None:
            target = f"评分项{item.no}"
        elif task is not None:
            target = f"任务{task.no}"
        else:
            target = "其他"
        day = ev.created_at.astimezone(tz).strftime("%Y%m%d") if ev.created_at else ""
        parts = [unit.name if unit is not None else "", target, day, ev.file_name]
        base = clean_segment("_".join(x for x in parts if x), fallback=f"证明材料{ev.id}")
        if extension(base) not in EXTENSIONS:  # filed before the allow-list ("setup.exe"): never runnable here
            base = f"{base}{EXTENSION_OF.get(ev.mime_type or '', '.bin')}"
        if item is not None:
            folder = item_folder(item, categories.get(item.category_id))
            key = (0, item.no, crit.no if crit else 0, ev.id or 0)
        elif task is not None:
            folder = task_folder(task)
            key = (1, task.no, 0, ev.id or 0)
        else:
            folder = "其他"
            key = (2, 0, 0, ev.id or 0)
        placed.append((key, folder, base, ev))
    placed.sort(key=lambda p: p[0])
    taken: dict[str, set[str]] = defaultdict(set)
    return [
        DossierFile(evidence=ev, arcname=f"{folder}/{_unique(base, taken[folder])}")
        for _, folder, base, ev in placed
    ]


# --------------------------------------------------------------------- collecting


def collect_ledger(
    session: Session,
    *,
    campaign_id: int,
    today: date,
    now: datetime,
    yellow_working_days: int = 5,
    status: CampaignStatus | None = None,
    audit_limit: int | None = None,
) -> Ledger:
    """Read everything the ledger and the dossier show, in the official order."""
    campaign = session.get(Campaign, campaign_id)
    if campaign is None:
        raise NotFound(f"没有找到活动 #{campaign_id}。")
    cid = campaign_id
    if status is None:
        status = campaign_status(session=session, campaign_id=cid, today=today,
                                 yellow_working_days=yellow_working_days)
    units = by_id(session.exec(
        select(Unit).where(Unit.campaign_id == cid).order_by(col(Unit.sort_order), col(Unit.id))))
    categories = list(session.exec(
        select(ScoreCategory).where(ScoreCategory.campaign_id == cid).order_by(col(ScoreCategory.no))))
    cat_order = {c.id: c.no for c in categories}
    items = sorted(session.exec(select(ScoreItem).where(ScoreItem.campaign_id == cid)),
                   key=lambda i: (cat_order.get(i.category_id, 0), i.no))
    criteria: dict[int, list[Criterion]] = defaultdict(list)
    for c in session.exec(select(Criterion).where(Criterion.campaign_id == cid)
                          .order_by(col(Criterion.item_id), col(Criterion.no))):
        criteria[c.item_id].append(c)
    item_ids = [i.id for i in items]
    item_units: dict[int, list[int]] = defaultdict(list)
    if item_ids:
        for iu in session.exec(select(ItemUnit).where(col(ItemUnit.item_id).in_(item_ids))):
            item_units[iu.item_id].append(iu.unit_id)
    crit_ids = [c.id for cs in criteria.values() for c in cs]
    criterion_units: dict[int, list[int]] = defaultdict(list)
    if crit_ids:
        for cu in session.exec(select(CriterionUnit).where(col(CriterionUnit.criterion_id).in_(crit_ids))):
            criterion_units[cu.criterion_id].append(cu.unit_id)
    assessments = {a.criterion_id: a for a in session.exec(
        select(Assessment).where(Assessment.campaign_id == cid))}
    groups = by_id(session.exec(select(TaskGroup).where(TaskGroup.campaign_id == cid)))
    tasks = list(session.exec(select(Task).where(Task.campaign_id == cid).order_by(col(Task.no))))
    unit_order = {u: (unit.sort_order, u) for u, unit in units.items()}
    task_order = {t.id: t.no for t in tasks}
    assignments = sorted(
        session.exec(select(Assignment).where(Assignment.campaign_id == cid,
                                              col(Assignment.retired).is_(False))),
        key=lambda a: (task_order.get(a.task_id, 0), unit_order.get(a.unit_id, (0, a.unit_id))),
    )
    evidence = list(session.exec(select(Evidence).where(Evidence.campaign_id == cid)
                                 .order_by(col(Evidence.created_at), col(Evidence.id))))
    members = by_id(session.exec(select(Member).where(Member.campaign_id == cid)))
    audit_q = (select(AuditLog).where(AuditLog.campaign_id == cid)
               .order_by(col(AuditLog.at), col(AuditLog.id)))
    audit = list(session.exec(audit_q))
    if audit_limit is not None and len(audit) > audit_limit:
        audit = audit[-audit_limit:]
    active = [e for e in evidence if e.state in ACTIVE_STATES]
    files = _dossier_files(
        active,
        items=by_id(items),
        categories=by_id(categories),
        criteria=by_id(c for cs in criteria.values() for c in cs),
        tasks=by_id(tasks),
        units=units,
        tz=ZoneInfo(campaign.timezone),
    )
    ledger = Ledger(
        campaign=campaign, today=today, generated_at=now, status=status, units=units,
        categories=categories, items=items, criteria=dict(criteria), item_units=dict(item_units),
        criterion_units=dict(criterion_units), assessments=assessments, groups=groups,
        tasks=tasks, assignments=assignments, evidence=evidence, files=files, members=members,
        audit=audit,
    )
    ledger.records = unit_records(session=session, campaign_id=cid, today=today)
    gone = {t.id for t in tasks if t.retired}
    if gone:
        for a in session.exec(select(Assignment).where(col(Assignment.task_id).in_(gone))
                              .order_by(col(Assignment.id))):
            ledger.retired.setdefault(a.task_id, []).append(a)
    instructions, supervisions = all_of_campaign(session, cid)
    ledger.instructions, ledger.supervisions = list(instructions), list(supervisions)
    ledger.answers = {saved_id(i): answers_of(session, saved_id(i)) for i in instructions}
    cats_by_id = {c.id: c for c in categories}
    ledger.folders = [item_folder(i, cats_by_id.get(i.category_id)) for i in items]
    ledger.folders += [task_folder(t) for t in tasks]
    _read_status(ledger)
    return ledger


def load_ledger(
    engine: Engine,
    *,
    now: datetime,
    campaign_id: int | None = None,
    slug: str = "",
    today: date | None = None,
    yellow_working_days: int = 5,
) -> Ledger:
    """Read the ledger in one short read-only session and detach it.

    The workbook and the ZIP are written afterwards, so an export never holds
    the database (SQLite's lock) while it compresses files. ``campaign_id`` or
    else ``slug`` (else the deployment's only active campaign) picks the campaign;
    ``today`` defaults to the campaign's local date of ``now``.
    """
    from models.members import campaign_by_slug

    with read_only(engine) as session:
        if campaign_id is None:
            campaign_id = campaign_by_slug(session, slug).id
        campaign = session.get(Campaign, campaign_id)
        if campaign is None:
            raise NotFound(f"没有找到活动 #{campaign_id}。")
        if today is None:
            today = now.astimezone(ZoneInfo(campaign.timezone)).date()
        ledger = collect_ledger(session, campaign_id=saved_id(campaign), today=today, now=now,
                                yellow_working_days=yellow_working_days)
        # Keep the rows readable after the session (its rollback would expire them).
        session.expunge_all()
    return ledger


# ======================================================================= workbook

_THIN = Side(style="thin", color="808080")
_BORDER = Border(left=_THIN, right=_THIN, top=_THIN, bottom=_THIN)
_HEAD_FILL = PatternFill("solid", fgColor="D9E1F2")
_ITEM_FILL = PatternFill("solid", fgColor="F2F2F2")
_TOTAL_FILL = PatternFill("solid", fgColor="FFF2CC")
_WRAP = Alignment(wrap_text=True, vertical="top")
_CENTER = Alignment(wrap_text=True, vertical="top", horizontal="center")
_HEAD_ALIGN = Alignment(wrap_text=True, vertical="center", horizontal="center")
_FONT = "宋体"
_TITLE_FONT = Font(name=_FONT, size=14, bold=True)
_HEAD_FONT = Font(name=_FONT, size=10, bold=True)
_BODY_FONT = Font(name=_FONT, size=10)
_BOLD_FONT = Font(name=_FONT, size=10, bold=True)
_MAX_CELL = 32_000  # Excel keeps at most 32,767 characters in a cell


def _num(x: float | None) -> float | int | None:
    if x is None:
        return None
    return int(x) if float(x).is_integer() else float(x)


def _text(value: Any) -> Any:
    if isinstance(value, str):
        # Control characters someone typed into a note: a worksheet cannot hold them, and
        # openpyxl would refuse the whole ledger.
        value = ILLEGAL_CHARACTERS_RE.sub("", value)
        # Strings that look like formulas stay text.
        if value.startswith("="):
            value = "'" + value
        return value[:_MAX_CELL]
    return value


def _sheet(wb: Workbook, title: str, headers: Sequence[str], widths: Sequence[float],
           caption: str, *, first: bool = False) -> Worksheet:
    ws = wb.active if first else wb.create_sheet()
    assert ws is not None
    ws.title = title
    ncol = len(headers)
    ws.cell(row=1, column=1, value=caption).font = _TITLE_FONT
    ws.cell(row=1, column=1).alignment = Alignment(horizontal="center", vertical="center")
    ws.merge_cells(start_row=1, start_column=1, end_row=1, end_column=ncol)
    ws.row_dimensions[1].height = 28
    for i, (head, width) in enumerate(zip(headers, widths, strict=True), start=1):
        cell = ws.cell(row=2, column=i, value=head)
        cell.font = _HEAD_FONT
        cell.fill = _HEAD_FILL
        cell.border = _BORDER
        cell.alignment = _HEAD_ALIGN
        ws.column_dimensions[get_column_letter(i)].width = width
    ws._qc_widths = list(widths)
    ws.row_dimensions[2].height = 30
    ws.freeze_panes = "A3"
    ws.print_title_rows = "1:2"
    ws.page_setup.orientation = "landscape"
    ws.page_setup.paperSize = ws.PAPERSIZE_A4
    ws.page_setup.fitToWidth = 1
    ws.page_setup.fitToHeight = 0
    ws.sheet_properties.pageSetUpPr.fitToPage = True
    ws.print_options.horizontalCentered = True
    ws.page_margins.left = ws.page_margins.right = 0.4
    ws.page_margins.top = ws.page_margins.bottom = 0.6
    ws.oddFooter.center.text = "第 &P 页，共 &N 页"
    ws.oddHeader.right.text = "&A"
    return ws


def _last(ws: Worksheet) -> int:
    """The last row written (``ws.max_row`` scans every cell: quadratic over a long sheet)."""
    return getattr(ws, "_qc_last_row", 2)


#: Cell looks, registered once per workbook as named styles (setting font, border,
#: fill and alignment cell by cell costs openpyxl a hash per attribute per cell).
_LOOKS: dict[str, tuple[Font, PatternFill | None]] = {
    "body": (_BODY_FONT, None),
    "label": (_BOLD_FONT, None),
    "item": (_BOLD_FONT, _ITEM_FILL),
    "total": (_BOLD_FONT, _TOTAL_FILL),
}


def _register_styles(wb: Workbook) -> None:
    for look, (font, fill) in _LOOKS.items():
        for suffix, align in (("", _WRAP), ("_c", _CENTER)):
            style = NamedStyle(name=f"qc_{look}{suffix}", font=font, border=_BORDER, alignment=align)
            if fill is not None:
                style.fill = fill
            wb.add_named_style(style)


def _display_width(text: str) -> float:
    """Width in Excel column units (≈ one digit); CJK and full-width characters take about two."""
    return sum(1.8 if unicodedata.east_asian_width(ch) in "WF" else 1.0 for ch in text)


def _lines(text: str, width: float, *, bold: bool = False) -> int:
    """Lines ``text`` wraps into in a column ``width`` wide."""
    usable = max(width - 1.5, 1.0) / (1.1 if bold else 1.0)
    return sum(max(1, -(-int(_display_width(part)) // max(int(usable), 1))) for part in text.split("\n"))


def _row(ws: Worksheet, values: Sequence[Any], *, center: Iterable[int] = (), look: str = "body",
         line_height: float = 13.5) -> int:
    """Append one bordered, wrapped row and give it the height its text needs.

    openpyxl cannot ask Excel to auto-fit row heights, so they are estimated here;
    columns listed in ``ws._qc_skip`` (merged blocks) are sized by their caller.
    """
    r = _last(ws) + 1
    ws._qc_last_row = r
    centered = set(center)
    widths: list[float] = getattr(ws, "_qc_widths", [])
    skip: set[int] = getattr(ws, "_qc_skip", set())
    bold = look != "body"
    lines = 1
    for i, value in enumerate(values, start=1):
        cell = ws.cell(row=r, column=i, value=_text(value))
        cell.style = f"qc_{look}_c" if i in centered else f"qc_{look}"
        if value is not None and value != "" and i not in skip and i <= len(widths):
            lines = max(lines, _lines(str(value), widths[i - 1], bold=bold))
    ws.row_dimensions[r].height = min(409.0, line_height * lines + 4)
    return r


def _finish(ws: Worksheet, ncol: int) -> None:
    if _last(ws) > 2:
        ws.auto_filter.ref = f"A2:{get_column_letter(ncol)}{_last(ws)}"
    ws.print_area = f"A1:{get_column_letter(ncol)}{max(_last(ws), 2)}"


def _evidence_lines(ledger: Ledger, rows: Iterable[Evidence]) -> str:
    where = ledger.files_by_evidence
    lines = []
    for ev in rows:
        path = where.get(saved_id(ev))
        if path is None:
            continue
        mark = "" if ev.state == EvidenceState.accepted else "（待审核）"
        lines.append(path + mark)
    return "\n".join(lines)


def _totals(ledger: Ledger, bonus: bool) -> Score | None:
    """The base (or bonus) total: the status headline, else its categories added up."""
    headline = ledger.bonus_score if bonus else ledger.base_score
    if headline is not None:
        return headline
    scores = [ledger.category_scores[c.id] for c in ledger.categories
              if c.is_bonus == bonus and c.id in ledger.category_scores]
    if not scores:
        return None
    return Score(claimed=sum(s.claimed for s in scores), verified=sum(s.verified for s in scores),
                 max_points=sum(s.max_points for s in scores))


def _overview(wb: Workbook, ledger: Ledger) -> None:
    c = ledger.campaign
    ws = _sheet(wb, SHEET_OVERVIEW, ("项目", "内容"), (30, 90), f"{c.name} 创建验收材料台账",
                first=True)
    base, bonus = _totals(ledger, False), _totals(ledger, True)

    active = [e for e in ledger.evidence if e.state in ACTIVE_STATES]
    states: dict[AssignmentState, int] = defaultdict(int)
    for a in ledger.assignments:
        states[a.state] += 1
    rows: list[tuple[str, Any]] = [
        ("活动", c.name),
        ("地区", c.district),
        ("依据文件", "　".join(x for x in (c.doc_number, c.doc_title) if x)),
        ("发文单位", c.issuer or ""),
        ("统计日期", full_date(ledger.today)),
        ("导出时间", ledger.local(ledger.generated_at)),
        ("基本分（自评 / 核定 / 满分）",
         f"{_num(base.claimed)} / {_num(base.verified)} / {_num(base.max_points)}" if base else ""),
        ("加分项（自评 / 核定 / 上限）",
         f"{_num(bonus.claimed)} / {_num(bonus.verified)} / {_num(bonus.max_points)}" if bonus else ""),
        ("任务承办（未开始 / 进行中 / 已提交 / 已通过）",
         " / ".join(str(states[s]) for s in STATE_LABELS)),
        ("证明材料", f"{len(active)} 份有效（另有已退回或已撤回 {len(ledger.evidence) - len(active)} 份）"),
        ("说明", "自评表按《创建验收现场评审评分表》顺序排列；任务表按“六个一”任务分解表排列；"
                 "证明材料列出的路径即材料压缩包中的位置；“待审核”表示协调员尚未审核。"),
    ]
    for label, value in rows:
        _row(ws, (label, value))
        ws.cell(row=_last(ws), column=1).style = "qc_label"
    ws.print_area = f"A1:B{_last(ws)}"


def _scores(wb: Workbook, ledger: Ledger) -> None:
    """The 自评表: Annex 2 as the inspectors know it, row for row, each criterion under its item;
    what the tool adds (state, material, its own notes) in columns of their own."""
    ws = _sheet(wb, SHEET_SCORES, SCORE_HEADERS, (7, 14, 12, 7, 48, 20, 12, 9, 9, 10, 36, 28),
                f"{ledger.campaign.name} 创建验收自评表")
    cats = {c.id: c for c in ledger.categories}
    by_item: dict[int, list[Evidence]] = defaultdict(list)
    by_crit: dict[int, list[Evidence]] = defaultdict(list)
    for ev in ledger.evidence:
        if ev.criterion_id is not None:
            by_crit[ev.criterion_id].append(ev)
        elif ev.item_id is not None:
            by_item[ev.item_id].append(ev)
    for item in ledger.items:
        cat = cats.get(item.category_id)
        item_id = saved_id(item)
        score = ledger.item_scores.get(item_id)
        crits = ledger.criteria.get(item_id, [])
        notes = [x for x in (item.note, getattr(item, "units_note", None), getattr(item, "deadline_note", None)) if x]
        _row(ws, (
            str(item.no),
            cat.name if cat else "",
            item.subcategory or "",
            _num(item.max_points),
            getattr(item, "text", "") or f"共 {len(crits)} 条细则",
            ALL_MEMBERS if item.all_members else ledger.unit_names(ledger.item_units.get(item_id, [])),
            full_date(item.deadline) if item.deadline else "",
            _num(score.claimed) if score else None,
            _num(score.verified) if score else None,
            "",
            _evidence_lines(ledger, by_item.get(item_id, [])),
            "\n".join(notes),
        ), center=(1, 4, 7, 8, 9), look="item")
        for crit in crits:
            crit_id = saved_id(crit)
            cscore = ledger.criterion_scores.get(crit_id)
            assessment = ledger.assessments.get(crit_id)
            state = assessment.state if assessment else AssessmentState.none
            claimed = cscore.claimed if cscore is not None else None
            verified = cscore.verified if cscore is not None else None
            if crit.not_attainable:
                label, note = "本区不可得分", crit.not_attainable_reason or "不适用"
            else:
                label, note = ASSESSMENT_LABELS[state] or "未申报", ""
            # Units are named on a criterion only where they differ from the item's.
            units = ledger.unit_names(ledger.criterion_units.get(crit_id, []))
            _row(ws, (
                f"{item.no}.{crit.no}", cat.name if cat else "", item.subcategory or "", _num(crit.points),
                crit.text, units, "", _num(claimed), _num(verified), label,
                _evidence_lines(ledger, by_crit.get(crit_id, [])), note,
            ), center=(1, 4, 8, 9, 10))
    # Totals by kind (base 100, bonus 10), as the status reports them.
    for label, bonus in (("基本分合计", False), ("加分项合计", True)):
        total = _totals(ledger, bonus)
        if total is None:
            continue
        _row(ws, ("", label, "", _num(total.max_points), "", "", "", _num(total.claimed),
                  _num(total.verified), "", "", ""),
             center=(4, 8, 9), look="total")
    _finish(ws, len(SCORE_HEADERS))


def _evidence_count(ledger: Ledger) -> dict[tuple[int, int], int]:
    counts: dict[tuple[int, int], int] = defaultdict(int)
    for ev in ledger.evidence:
        if ev.state in ACTIVE_STATES and ev.task_id is not None and ev.unit_id is not None:
            counts[(ev.task_id, ev.unit_id)] += 1
    return counts


_CN_NUMBERS = "一二三四五六七八九十"


def _group_label(group: TaskGroup | None) -> str:
    if group is None:
        return ""
    cn = _CN_NUMBERS[group.no - 1] if 1 <= group.no <= len(_CN_NUMBERS) else str(group.no)
    return f"{cn}、{group.title}"


def _tasks(wb: Workbook, ledger: Ledger) -> None:
    widths = (6, 24, 46, 12, 16, 9, 9, 10, 24, 12, 12, 8)
    ws = _sheet(wb, SHEET_TASKS, TASK_HEADERS, widths,
                f"{ledger.campaign.name} “六个一”任务完成情况")
    ws._qc_skip = {2, 3}  # group and task text: merged blocks
    counts = _evidence_count(ledger)
    moved_because = {a.entity_id: a.note for a in sorted(ledger.audit, key=lambda a: a.id or 0)
                     if a.action == "task.deadline" and a.entity_id is not None and a.note}
    per_task: dict[int, list[Assignment]] = defaultdict(list)
    for asg in ledger.assignments:
        per_task[asg.task_id].append(asg)
    blocks: list[tuple[int, int, Task]] = []
    for task in ledger.tasks:
        task_id = saved_id(task)
        # A task without units still gets its row.
        owed: list[Assignment | None] = [*per_task.get(task_id, []), *ledger.retired.get(task_id, [])] or [None]
        first = _last(ws) + 1
        group = _group_label(ledger.groups.get(task.group_id))
        for a in owed:
            notes = []
            if a is not None:
                flag = ledger.assignment_flags.get(saved_id(a))
                if flag:
                    notes.append(flag)
                if a.return_reason and a.state != AssignmentState.approved:
                    notes.append(f"退回：{a.return_reason}")
                if a.note:
                    notes.append(a.note)
            if task.retired:
                notes.insert(0, "已撤销（工作计划中已去掉本任务，记录保留）")
            if task.deadline != task.planned_deadline:
                notes.append(f"原定 {full_date(task.planned_deadline)}")
                reason = moved_because.get(saved_id(task))
                if reason:
                    notes.append(f"时限调整原因：{reason}")
            _row(ws, (
                task.no, group, task.title, full_date(task.deadline),
                ledger.unit_name(a.unit_id) if a else "（无责任单位）",
                STATE_LABELS[a.state] if a else "", a.percent if a else None,
                counts.get((task_id, a.unit_id), 0) if a else None, "；".join(notes),
                *_dates(ledger, task, a),
            ), center=(1, 4, 6, 7, 8, 10, 11, 12))
        blocks.append((first, _last(ws), task))
    _finish(ws, len(TASK_HEADERS))
    # One task, one block: its number, group, text and deadline span its units' rows.
    for first, last, task in blocks:
        needed = 13.5 * max(_lines(ws.cell(row=first, column=2).value or "", widths[1]),
                            _lines(task.title, widths[2])) + 4
        have = sum(ws.row_dimensions[r].height or 15 for r in range(first, last + 1))
        if have < needed:
            extra = (needed - have) / (last - first + 1)
            for r in range(first, last + 1):
                ws.row_dimensions[r].height = min(409.0, (ws.row_dimensions[r].height or 15) + extra)
        if last > first:
            for column in (1, 2, 3, 4):
                ws.merge_cells(start_row=first, start_column=column, end_row=last, end_column=column)


def _units(wb: Workbook, ledger: Ledger) -> None:
    ws = _sheet(wb, SHEET_UNITS, UNIT_HEADERS, (18, 9, 8, 8, 8, 8, 10, 10, 30, 10),
                f"{ledger.campaign.name} 责任单位汇总")
    per: dict[int, list[Assignment]] = defaultdict(list)
    for a in ledger.assignments:
        per[a.unit_id].append(a)
    items_of: dict[int, list[int]] = defaultdict(list)
    for item in ledger.items:
        for u in ledger.item_units.get(saved_id(item), []):
            items_of[u].append(item.no)
    files: dict[int, int] = defaultdict(int)
    for ev in ledger.evidence:
        if ev.state in ACTIVE_STATES and ev.unit_id is not None:
            files[ev.unit_id] += 1
    for uid, unit in ledger.units.items():
        rows = per.get(uid, [])
        if not rows and not items_of.get(uid) and not files.get(uid):
            continue
        states: dict[AssignmentState, int] = defaultdict(int)
        for a in rows:
            states[a.state] += 1
        overdue = ledger.unit_overdue.get(uid, 0)
        avg = round(sum(a.percent for a in rows) / len(rows)) if rows else None
        nos = sorted(set(items_of.get(uid, [])))
        _row(ws, (
            unit.name, len(rows), *(states[s] for s in STATE_LABELS), overdue, avg,
            "、".join(str(n) for n in nos), files.get(uid, 0),
        ), center=range(2, 9))
    _finish(ws, len(UNIT_HEADERS))


def _dates(ledger: Ledger, task: Task, a: Assignment | None) -> tuple[str, str, int | None]:
    """实际提交日期, 审核通过日期 and 逾期天数 (calendar days after the deadline; still open: so far)."""
    if a is None:
        return "", "", None
    handed = a.state in (AssignmentState.submitted, AssignmentState.approved) and a.submitted_at is not None
    submitted = a.submitted_at.astimezone(ledger.tz).date() if handed and a.submitted_at else None
    approved = (a.approved_at.astimezone(ledger.tz).date()
                if a.state == AssignmentState.approved and a.approved_at else None)
    end = submitted or (ledger.today if task.deadline < ledger.today else None)
    late = max(0, (end - task.deadline).days) if end is not None else None
    return (full_date(submitted) if submitted else "", full_date(approved) if approved else "", late)


def _ranking(wb: Workbook, ledger: Ledger) -> None:
    ws = _sheet(wb, SHEET_RANKING, RANKING_HEADERS, (6, 18, 8, 8, 8, 10, 10, 10, 8, 14, 10, 10, 10),
                f"{ledger.campaign.name} 责任单位考核（截至 {full_date(ledger.today)}）")
    for r in ledger.records:
        _row(ws, (
            r.rank if r.rank is not None else "—", r.name, r.due, r.on_time, r.late, r.days_late, r.overdue,
            f"{round(r.rate * 100)}%" if r.rate is not None else "暂无到期任务", r.returns,
            r.median_response_hours, r.open_instructions, r.open_supervisions, _num(r.points_at_stake),
        ), center=range(1, 14))
    _finish(ws, len(RANKING_HEADERS))


def _instructions(wb: Workbook, ledger: Ledger) -> None:
    ws = _sheet(wb, SHEET_INSTRUCTIONS, INSTRUCTION_HEADERS, (6, 16, 12, 40, 18, 12, 40, 8, 16),
                f"{ledger.campaign.name} 领导批示办理情况")
    for i in ledger.instructions:
        answers = "；".join(f"{ledger.unit_name(a.unit_id)}（{ledger.local(a.created_at)}）：{a.text}"
                           for a in ledger.answers.get(saved_id(i), []))
        _row(ws, (
            i.id, ledger.local(i.created_at), ledger.member_name(i.author_member_id), i.text,
            ledger.unit_names(i.unit_ids), full_date(i.answer_by), answers, INSTRUCTION_LABELS[i.state],
            ledger.local(i.closed_at) if i.closed_at else "",
        ), center=(1, 6, 8))
    _finish(ws, len(INSTRUCTION_HEADERS))


def _supervisions(wb: Workbook, ledger: Ledger) -> None:
    ws = _sheet(wb, SHEET_SUPERVISIONS, SUPERVISION_HEADERS, (20, 16, 8, 16, 30, 12, 36, 8, 16),
                f"{ledger.campaign.name} 督办单办理情况")
    task_no = {t.id: t.no for t in ledger.tasks}
    for x in ledger.supervisions:
        _row(ws, (
            x.number, ledger.local(x.issued_at), f"任务{task_no.get(x.task_id, '?')}", ledger.unit_name(x.unit_id),
            x.reason, full_date(x.reply_by), x.answer or "",
            SUPERVISION_LABELS[supervision_state(x, ledger.today)], ledger.local(x.closed_at) if x.closed_at else "",
        ), center=(3, 6, 8))
    _finish(ws, len(SUPERVISION_HEADERS))


def _target_label(ledger: Ledger, ev: Evidence) -> str:
    crits = {c.id: c for cs in ledger.criteria.values() for c in cs}
    items = {i.id: i for i in ledger.items}
    tasks = {t.id: t for t in ledger.tasks}
    parts = []
    if ev.criterion_id in crits:
        c = crits[ev.criterion_id]
        parts.append(f"评分项 {items[c.item_id].no if c.item_id in items else '?'} 第 {c.no} 条细则")
    elif ev.item_id in items:
        parts.append(f"评分项 {items[ev.item_id].no}")
    if ev.task_id in tasks:
        parts.append(f"任务 {tasks[ev.task_id].no}")
    return "；".join(parts)


def _files(wb: Workbook, ledger: Ledger) -> None:
    ws = _sheet(wb, SHEET_FILES, FILE_HEADERS, (7, 18, 14, 30, 40, 10, 9, 18, 16, 8, 24, 20),
                f"{ledger.campaign.name} 证明材料清单")
    where = ledger.files_by_evidence
    for ev in ledger.evidence:
        note = ev.caption or ""
        if ev.state == EvidenceState.withdrawn:
            note = "；".join(x for x in (note, f"{ledger.local(ev.withdrawn_at)} 由 "
                                               f"{ledger.member_name(ev.withdrawn_by_member_id)} 撤回") if x)
        elif ev.state == EvidenceState.returned and ev.review_reason:
            note = "；".join(x for x in (note, f"退回原因：{ev.review_reason}") if x)
        _row(ws, (
            ev.id, _target_label(ledger, ev), ledger.unit_name(ev.unit_id), ev.file_name,
            where.get(saved_id(ev), "（不在材料包中）"), ev.mime_type or "", round(ev.size / 1024, 1),
            ledger.member_name(ev.member_id), ledger.local(ev.created_at), EVIDENCE_LABELS[ev.state],
            note, ev.sha256,
        ), center=(1, 7, 10))
    _finish(ws, len(FILE_HEADERS))


#: The audit's fields as the ledger's reader names them (others are left out of the sentence).
FIELD_LABELS = {
    "state": "状态", "percent": "进度", "note": "进展说明", "return_reason": "退回原因", "deadline": "完成时限",
    "used_at": "使用时间", "used_by_telegram_id": "使用人", "revoked": "已撤销", "role": "身份",
    "unit_id": "单位", "unit_ids": "责任单位", "answer_by": "答复期限", "reply_by": "答复期限", "number": "文号",
    "answer": "答复", "expires_at": "有效期至", "active": "在职", "private_nudges": "私聊提醒",
    "not_attainable": "本区不可得分", "not_attainable_reason": "不可得分原因", "reason": "原因",
    "review_reason": "审核意见", "file_name": "文件名", "size": "大小", "campaign_id": "活动",
    "bound_at": "绑定时间", "title": "名称", "points": "分值", "max_points": "满分",
}
#: A state's name, by the kind of record it is the state of.
_STATE_WORDS: dict[str, dict[str, str]] = {
    "assignment": {s.value: n for s, n in STATE_LABELS.items()},
    "evidence": {s.value: n for s, n in EVIDENCE_LABELS.items()},
    "assessment": {s.value: n for s, n in ASSESSMENT_NAMES.items()},
    "instruction": {s.value: n for s, n in INSTRUCTION_LABELS.items()},
    "supervision": dict(SUPERVISION_LABELS),
    "criterion": {s.value: n for s, n in ASSESSMENT_NAMES.items()},
}


def _value_words(ledger: Ledger, entity: str, key: str, value: Any) -> str:
    if value is None or value == "":
        return "（空）"
    if isinstance(value, bool):
        return "是" if value else "否"
    if key == "state" and isinstance(value, str):
        return _STATE_WORDS.get(entity, {}).get(value, value)
    if key == "percent":
        return f"{value}%"
    if key == "unit_id" and isinstance(value, int):
        return ledger.unit_name(value) or str(value)
    if key == "role" and isinstance(value, str):
        return {"coordinator": "协调员", "liaison": "联络员", "leader": "领导"}.get(value, value)
    if isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        return full_date(date.fromisoformat(value))
    if isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}[T ][0-9:.]+([+-]\d{2}:\d{2}|Z)?", value):
        try:
            return ledger.local(datetime.fromisoformat(value.replace("Z", "+00:00")))
        except ValueError:
            return value
    if isinstance(value, (list, dict)):
        return "、".join(str(x) for x in value) if isinstance(value, list) else "；".join(f"{k}={v}" for k, v in value.items())
    return str(value)


def _change_words(ledger: Ledger, entity: str, values: dict[str, Any] | None) -> str:
    """A record's before/after as a sentence: ``状态：进行中；进度：60%``, never JSON."""
    if not values:
        return ""
    if not isinstance(values, dict):
        return str(values)
    parts = [f"{FIELD_LABELS[k]}：{_value_words(ledger, entity, k, v)}" for k, v in values.items() if k in FIELD_LABELS]
    text = "；".join(parts)
    return text if len(text) <= 2000 else text[:2000] + "…"


def _audit(wb: Workbook, ledger: Ledger) -> None:
    ws = _sheet(wb, SHEET_AUDIT, AUDIT_HEADERS, (16, 18, 9, 18, 12, 9, 36, 36, 30),
                f"{ledger.campaign.name} 操作日志")
    for row in ledger.audit:
        who = ledger.member_name(row.actor_member_id)
        if not who and row.actor_telegram_id:
            who = f"Telegram {row.actor_telegram_id}"
        _row(ws, (
            ledger.local(row.at), who, ACTOR_LABELS.get(row.actor_kind, row.actor_kind),
            ACTION_LABELS.get(row.action, row.action), ENTITY_LABELS.get(row.entity, row.entity),
            row.entity_id, _change_words(ledger, row.entity, row.before),
            _change_words(ledger, row.entity, row.after), row.note or "",
        ), center=(3, 6))
    _finish(ws, len(AUDIT_HEADERS))


def build_workbook(ledger: Ledger) -> Workbook:
    wb = Workbook()
    _register_styles(wb)
    _overview(wb, ledger)
    _scores(wb, ledger)
    _tasks(wb, ledger)
    _units(wb, ledger)
    _ranking(wb, ledger)
    _instructions(wb, ledger)
    _supervisions(wb, ledger)
    _files(wb, ledger)
    _audit(wb, ledger)
    wb.active = 1
    return wb


def write_ledger_xlsx(ledger: Ledger, target: Path | str | IO[bytes]) -> None:
    """Write the ledger workbook to a path or a binary stream."""
    build_workbook(ledger).save(target)


def ledger_xlsx_bytes(ledger: Ledger) -> bytes:
    buf = io.BytesIO()
    write_ledger_xlsx(ledger, buf)
    return buf.getvalue()


def ledger_file_name(ledger: Ledger, suffix: str = ".xlsx") -> str:
    c = ledger.campaign
    return clean_segment(f"{c.district or c.slug}_质量强区台账_{ledger.today:%Y%m%d}{suffix}")
