"""考核: the ranking rule of ``models.performance`` on constructed records (ties included)."""

from __future__ import annotations

import io
from datetime import date, datetime, timedelta

from docx import Document
from sqlmodel import Session, select

from models.performance import UnitRecord, best_and_worst, rank, unit_records
from models.tables import Assignment, AssignmentState, Task, Unit
from reports.official import bulletin_docx
from reports.supervision import bulletin_data
from tests.harness import TZ


def rec(uid: int, name: str, due: int, on_time: int, overdue: int, stake: float, order: int = 0) -> UnitRecord:
    return UnitRecord(unit_id=uid, name=name, sort_order=order or uid, due=due, on_time=on_time, late=due - on_time - overdue,
                      days_late=0, overdue=overdue, returns=0, median_response_hours=None, open_instructions=0,
                      open_supervisions=0, points_at_stake=stake)


def test_rate_first_then_overdue_then_points_and_ties_share_a_rank() -> None:
    ranked = rank([
        rec(1, "甲", 4, 2, 2, 3.0),   # 50%, 2 overdue
        rec(2, "乙", 2, 2, 0, 9.0),   # 100%: first despite the most points at stake
        rec(3, "丙", 4, 2, 1, 5.0),   # 50%, 1 overdue: before 甲
        rec(4, "丁", 4, 2, 1, 5.0),   # same as 丙: tied
        rec(5, "戊", 0, 0, 0, 0.0),   # nothing due: no rank, last
        rec(6, "己", 4, 2, 1, 2.0),   # 50%, 1 overdue, fewer points: before 丙 and 丁
        rec(7, "庚", 3, 0, 3, 1.0),
    ])
    assert [(r.name, r.rank) for r in ranked] == [
        ("乙", 1), ("己", 2), ("丙", 3), ("丁", 3), ("甲", 5), ("庚", 6), ("戊", None)]
    best, worst = best_and_worst(ranked)
    assert [r.name for r in best] == ["乙", "己", "丙", "丁"]  # the tie at third place included
    assert [r.name for r in worst] == ["庚", "甲"]  # 丙/丁 are third from the bottom but among the best
    assert all(r.name != "戊" for r in best + worst)


def test_the_record_of_the_store_is_ranked_by_the_rule_and_the_document_holds_the_table(seeded_engine) -> None:
    today = date(2022, 1, 10)
    with Session(seeded_engine) as s:
        fin = s.exec(select(Unit).where(Unit.name == "区财政局")).one()
        for a, t in s.exec(select(Assignment, Task).join(Task, Task.id == Assignment.task_id)
                           .where(Assignment.unit_id == fin.id, Task.deadline < today)):
            a.state = AssignmentState.submitted
            a.submitted_at = datetime.combine(t.deadline, datetime.min.time(), TZ) - timedelta(days=1)
            s.add(a)
        s.commit()
        records = unit_records(session=s, campaign_id=fin.campaign_id, today=today)
        data = bulletin_data(session=s, campaign_id=fin.campaign_id, today=today)
    assert records[0].name == "区财政局" and records[0].rank == 1 and records[0].rate == 1.0
    ranked = [r for r in records if r.rank is not None]
    keys = [(-(r.rate or 0), r.overdue, round(r.points_at_stake, 2)) for r in ranked]
    assert keys == sorted(keys)
    for a, b in zip(ranked, ranked[1:], strict=False):
        same = (-(a.rate or 0), a.overdue, round(a.points_at_stake, 2)) == (-(b.rate or 0), b.overdue, round(b.points_at_stake, 2))
        assert (a.rank == b.rank) == same
    doc = Document(io.BytesIO(bulletin_docx(data)))
    table = doc.tables[0]
    assert [c.text for c in table.rows[0].cells][:3] == ["名次", "单位", "按时完成率"]
    assert table.rows[1].cells[1].text == "区财政局" and len(table.rows) == len(records) + 1
    section = doc.sections[0]
    assert round(section.page_width.mm) == 210 and round(section.top_margin.mm) == 37
