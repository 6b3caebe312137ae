"""The 通报 (bulletin) and the 月报 (monthly report): their content, and their text for Telegram.

The content is assembled once (:func:`bulletin_data`, :func:`monthly_data`) from
``models.performance`` (the ranking, THE rule), ``models.status`` (the score) and
``models.supervision`` (open 批示 and 督办单); the Telegram text is rendered here and the
official document (DOCX) by :mod:`reports.official`, from the same data.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from sqlmodel import Session, col, select

from models import calendar, supervision
from models.performance import UnitRecord, best_and_worst, unit_records
from models.status import campaign_status
from models.tables import Assignment, AssignmentState, Bulletin, Campaign, Task, Unit
from models.wording import esc, full_date, points, quoted, short

#: The coordinator's wording per unit: praise (表扬) or criticism (通报批评); neutral by default.
PRAISE = "praise"
CRITICIZE = "criticize"
VERDICT_WORDS = {PRAISE: "表扬", CRITICIZE: "通报批评"}
#: The office that signs the documents (落款).
def signature(district: str) -> str:
    """落款: the office as the plan names it (区质量强区领导小组办公室), with the district's name
    (合肥市瑶海区质量强区领导小组办公室)."""
    return f"{district}质量强区领导小组办公室" if district else "区质量强区领导小组办公室"


@dataclass(frozen=True, slots=True)
class OpenItem:
    """An open 批示 or 督办单, as one line of a bulletin."""

    kind: str  # "批示" or "督办单"
    label: str  # the number of a 督办单, the 批示's short text
    units: str
    state: str
    due: date


@dataclass(frozen=True, slots=True)
class BulletinData:
    campaign_name: str
    district: str
    today: date
    issue: int  # the bulletin's number in the campaign (第N期)
    score: float  # verified base points
    score_before: float | None  # at the last bulletin
    records: list[UnitRecord]
    best: list[UnitRecord]
    worst: list[UnitRecord]
    #: unit id -> how many places it rose since the last bulletin (negative: fell).
    moves: dict[int, int]
    open_items: list[OpenItem]
    verdicts: dict[int, str] = field(default_factory=dict)

    @property
    def title(self) -> str:
        return f"{self.district}质量强区工作通报"

    def snapshot(self) -> dict[str, Any]:
        return {"score": self.score, "ranks": {str(r.unit_id): r.rank for r in self.records}}


def rate_text(r: UnitRecord) -> str:
    """按时完成率 as people read it: ``100%（3/3）``; ``暂无到期任务`` when nothing is due."""
    if r.rate is None:
        return "暂无到期任务"
    return f"{round(r.rate * 100)}%（{r.on_time}/{r.due}）"


def _open_items(session: Session, campaign_id: int, today: date, names: dict[int, str]) -> list[OpenItem]:
    items: list[OpenItem] = []
    for inst in supervision.open_instructions(session, campaign_id=campaign_id):
        items.append(OpenItem(f"批示（第{inst.id}号）", quoted(short(inst.text, 30)),
                              "、".join(names.get(u, "") for u in inst.unit_ids),
                              supervision.INSTRUCTION_LABELS[inst.state], inst.answer_by))
    for sup in supervision.open_supervisions(session, campaign_id=campaign_id):
        items.append(OpenItem("督办单", f"（{sup.number}）", names.get(sup.unit_id, ""),
                              supervision.SUPERVISION_LABELS[supervision.supervision_state(sup, today)], sup.reply_by))
    return items


def _issued(session: Session, campaign_id: int, kind: str, before_id: int | None) -> list[Bulletin]:
    q = select(Bulletin).where(Bulletin.campaign_id == campaign_id, Bulletin.kind == kind)
    if before_id is not None:
        q = q.where(col(Bulletin.id) < before_id)
    return list(session.exec(q.order_by(col(Bulletin.id))))


def last_bulletin(session: Session, campaign_id: int, kind: str = "bulletin", *,
                  before_id: int | None = None) -> Bulletin | None:
    """The last 通报 (or 月报) issued (before the one numbered ``before_id``, when given)."""
    issued = _issued(session, campaign_id, kind, before_id)
    return issued[-1] if issued else None


def bulletin_data(
    *, session: Session, campaign_id: int, today: date, verdicts: dict[int, str] | None = None,
    before_id: int | None = None,
) -> BulletinData:
    """The bulletin of ``today``, compared with the last one issued (before ``before_id``: the
    bulletin being re-said, e.g. to another chat, is compared with the one before it)."""
    campaign = session.get(Campaign, campaign_id)
    assert campaign is not None
    records = unit_records(session=session, campaign_id=campaign_id, today=today)
    best, worst = best_and_worst(records)
    status = campaign_status(session=session, campaign_id=campaign_id, today=today)
    previous = last_bulletin(session, campaign_id, before_id=before_id)
    before = previous.snapshot if previous is not None else {}
    old_ranks: dict[str, Any] = before.get("ranks", {})
    moves = {r.unit_id: old - r.rank for r in records
             if r.rank is not None and isinstance(old := old_ranks.get(str(r.unit_id)), int)}
    issues = len(_issued(session, campaign_id, "bulletin", before_id))
    names = {u.id: u.name for u in session.exec(select(Unit).where(Unit.campaign_id == campaign_id))
             if u.id is not None}
    return BulletinData(
        campaign_name=campaign.name, district=campaign.district, today=today, issue=issues + 1,
        score=status.headline.base.verified,
        score_before=before.get("score") if isinstance(before.get("score"), int | float) else None,
        records=records, best=best, worst=worst, moves=moves,
        open_items=_open_items(session, campaign_id, today, names), verdicts=dict(verdicts or {}),
    )


def _move(n: int | None) -> str:
    if not n:
        return "—"
    return f"↑{n}" if n > 0 else f"↓{-n}"


def _delta(now: float, before: float | None) -> str:
    if before is None:
        return "（首次通报）"
    d = now - before
    if not d:
        return "（与上期持平）"
    return f"（较上期{'增加' if d > 0 else '减少'} {points(abs(d))} 分）"


def bulletin_text(data: BulletinData) -> str:
    """The bulletin as one Telegram message (HTML)."""
    lines = [f"📣 <b>{esc(data.title)}</b>（第{data.issue}期）· {full_date(data.today)}", ""]
    lines.append(f"<b>一、总体情况</b>\n已核定得分 {points(data.score)} 分{_delta(data.score, data.score_before)}。")
    lines.append("")
    lines.append("<b>二、各单位按时完成情况</b>（按时完成率优先，其次逾期项数少、待争取分值少者靠前）")
    for r in data.records:
        place = f"{r.rank}." if r.rank is not None else "—"
        lines.append(f"{place} {esc(r.name)}：按时完成率 {rate_text(r)}，逾期 {r.overdue} 项，"
                     f"待争取 {points(r.points_at_stake)} 分，名次变化 {_move(data.moves.get(r.unit_id))}")
    lines.append("")
    lines.append("<b>三、排名情况</b>")
    lines.append("排名靠前：" + ("、".join(esc(r.name) for r in data.best) or "无"))
    lines.append("排名靠后：" + ("、".join(esc(r.name) for r in data.worst) or "无"))
    names = {r.unit_id: r.name for r in data.records}
    for verdict, word in VERDICT_WORDS.items():
        chosen = [names[u] for u, v in data.verdicts.items() if v == verdict and u in names]
        if chosen:
            lines.append(f"予以{word}：" + "、".join(esc(n) for n in chosen))
    lines.append("")
    lines.append(f"<b>四、未办结的批示和督办单</b>（{len(data.open_items)} 件）")
    for it in data.open_items:
        lines.append(f"• {it.kind}{esc(it.label)}（{esc(it.units)}）：{it.state}，答复期限 {full_date(it.due)}")
    if not data.open_items:
        lines.append("无。")
    return "\n".join(lines)


# ================================================================== 月报


@dataclass(frozen=True, slots=True)
class MonthlyData:
    district: str
    today: date
    month: str  # "2027年3月"
    score: float
    score_month_ago: float | None
    completed: list[str]  # "任务7 区财政局" approved in the past month
    lagging: list[UnitRecord]
    due_next: list[str]  # "任务9（2027年4月30日）…"

    @property
    def title(self) -> str:
        return f"{self.district}质量强区工作月报（{self.month}）"


def monthly_data(*, session: Session, campaign_id: int, today: date, before_id: int | None = None) -> MonthlyData:
    """The 月报 of ``today``'s month: the month before, and what falls due in this one."""
    campaign = session.get(Campaign, campaign_id)
    assert campaign is not None
    status = campaign_status(session=session, campaign_id=campaign_id, today=today)
    previous = last_bulletin(session, campaign_id, "monthly", before_id=before_id)
    before = previous.snapshot.get("score") if previous is not None else None
    month_start = today.replace(day=1)
    last_month_start = (month_start - timedelta(days=1)).replace(day=1)
    next_start = (month_start + timedelta(days=32)).replace(day=1)
    tasks = {t.id: t for t in session.exec(select(Task).where(Task.campaign_id == campaign_id))}
    units = {u.id: u.name for u in session.exec(select(Unit).where(Unit.campaign_id == campaign_id))}
    completed = []
    for a in session.exec(select(Assignment).where(Assignment.campaign_id == campaign_id,
                                                   Assignment.state == AssignmentState.approved)):
        if a.approved_at is not None and a.approved_at.date() >= last_month_start and a.task_id in tasks:
            completed.append(f"任务{tasks[a.task_id].no} {units.get(a.unit_id, '')}")
    due_next = [f"任务{t.no} {short(t.title, 20)}（{full_date(t.deadline)}）"
                for t in sorted(tasks.values(), key=lambda t: (t.deadline, t.no))
                if month_start <= t.deadline < next_start]
    records = unit_records(session=session, campaign_id=campaign_id, today=today)
    _, worst = best_and_worst(records)
    return MonthlyData(
        district=campaign.district, today=today, month=f"{today.year}年{today.month}月",
        score=status.headline.base.verified,
        score_month_ago=before if isinstance(before, int | float) else None,
        completed=sorted(completed), lagging=worst, due_next=due_next,
    )


def monthly_text(data: MonthlyData) -> str:
    lines = [f"🗓 <b>{esc(data.title)}</b> · {full_date(data.today)}", ""]
    if data.score_month_ago is None:
        lines.append(f"<b>一、得分</b>：已核定 {points(data.score)} 分（上月无记录）。")
    else:
        lines.append(f"<b>一、得分</b>：已核定 {points(data.score)} 分，上月为 {points(data.score_month_ago)} 分"
                     f"{_delta(data.score, data.score_month_ago).replace('上期', '上月')}。")
    lines.append(f"<b>二、上月以来审核通过的任务</b>（{len(data.completed)} 项）：" + (
        "、".join(esc(c) for c in data.completed[:30]) or "无") + "。")
    lines.append("<b>三、进度滞后的单位</b>：" + ("、".join(
        f"{esc(r.name)}（按时完成率 {rate_text(r)}，逾期 {r.overdue} 项）" for r in data.lagging) or "无") + "。")
    lines.append(f"<b>四、本月到期的任务</b>（{len(data.due_next)} 项）：")
    lines += [f"• {esc(d)}" for d in data.due_next[:30]] or ["无。"]
    return "\n".join(lines)


def first_working_day_of_month(today: date) -> date:
    """The first working day of ``today``'s month (the 月报's day)."""
    return calendar.first_working_day_on_or_after(today.replace(day=1))
