"""The coordinators are told once when the plan runs into a year without an official calendar."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

from sqlalchemy.engine import Engine

from infra.config import SchedulerConfig
from infra.db import transaction
from models import calendar
from models.tables import Campaign, OutboxState
from scheduler import claim, sweep
from scheduler.plan import Kind, load_plan_input, plan
from scheduler.sweep import SweepMemo
from tests.test_scheduler_fixtures import at, build_world, outbox_rows

MONDAY = "2026-12-07"
WARNING = ("⚠️ 2027年的法定节假日和调休安排尚未收录：目前按法定节假日（不含调休）计算工作日。"
           "国务院公布安排后，请运维人员更新 chinesecalendar 或在 data/calendar/2027.toml 中填写。")


def _calendar_rows(engine: Engine) -> list:
    return [r for r in outbox_rows(engine) if r.kind == Kind.calendar]


def test_planned_once_across_sweeps_and_a_restart(engine: Engine) -> None:
    w = build_world(engine, None, deadlines={1: "2026-12-25", 2: "2027-03-15"})
    config = SchedulerConfig()
    with transaction(engine) as s:
        campaign = s.get(Campaign, w.campaign_id)
        assert campaign is not None
        inp = load_plan_input(s, campaign)
    # Not before today's nudge time; then due at it, to the coordinator's private chat.
    assert not [p for p in plan(inp, now=at(MONDAY, 8, 59), config=config) if p.kind == Kind.calendar]
    planned = [p for p in plan(inp, now=at(MONDAY, 9, 5), config=config) if p.kind == Kind.calendar]
    assert [(p.telegram_chat_id, p.member_id, p.due_at, p.payload["year"]) for p in planned] == [
        (w.users["监管老张"], w.members["监管老张"], at(MONDAY), 2027)]
    assert planned[0].key == f"chat:{w.users['监管老张']}|campaign:{w.campaign_id}:calendar:2027|calendar|2027-01-01"

    memo = SweepMemo()
    sweep(engine=engine, now=at(MONDAY, 9, 5), config=config, memo=memo)
    sweep(engine=engine, now=at(MONDAY, 9, 6), config=config, memo=memo)
    assert len(_calendar_rows(engine)) == 1
    # A restart (no memo, a fresh plan) later that day, the next days: still the one row.
    for now in (at(MONDAY, 15), at("2026-12-08", 9, 30), at("2027-01-04", 10)):
        sweep(engine=engine, now=now, config=config)
        assert len(_calendar_rows(engine)) == 1


def test_rendered_to_the_coordinator_in_one_message(engine: Engine) -> None:
    build_world(engine, None, deadlines={1: "2027-03-15"})
    now = at(MONDAY, 9, 5)
    sweep(engine=engine, now=now)
    report = claim(engine=engine, now=now)
    texts = [b.rendered.text for b in report.batches if "尚未收录" in b.rendered.text]
    assert len(texts) == 1
    assert texts[0].startswith("📅 <b>工作日日历</b> · 12月7日（周一）")
    assert WARNING in texts[0]


def test_two_years_are_one_line(engine: Engine) -> None:
    build_world(engine, None, deadlines={1: "2028-03-15"})
    now = at(MONDAY, 9, 5)
    sweep(engine=engine, now=now)
    assert sorted(r.payload["year"] for r in _calendar_rows(engine)) == [2027, 2028]
    report = claim(engine=engine, now=now)
    (text,) = [b.rendered.text for b in report.batches if "尚未收录" in b.rendered.text]
    assert text.count("尚未收录") == 1 and "2027年、2028年的法定节假日" in text


def test_nothing_when_the_plan_stays_in_known_years(engine: Engine) -> None:
    build_world(engine, None, deadlines={1: "2026-12-25"})
    sweep(engine=engine, now=at(MONDAY, 9, 5))
    assert _calendar_rows(engine) == []
    # A plan long over says nothing about later years either.
    assert calendar.years_without_arrangement([date(2025, 12, 31)], date(2026, 12, 7)) == ()


def test_the_group_when_the_coordinator_has_no_private_chat(engine: Engine) -> None:
    w = build_world(engine, None, deadlines={1: "2027-03-15"}, coordinator_private=False)
    sweep(engine=engine, now=at(MONDAY, 9, 5))
    assert [r.telegram_chat_id for r in _calendar_rows(engine)] == [w.group_chat_id]


def test_cancelled_once_an_operator_file_gives_the_year(engine: Engine, tmp_path: Path) -> None:
    build_world(engine, None, deadlines={1: "2027-03-15"})
    now = at(MONDAY, 9, 5)
    sweep(engine=engine, now=now)
    f = tmp_path / "2027.toml"
    f.write_text('year = 2027\nnotice = "国务院办公厅关于2027年部分节假日安排的通知"\n'
                 'holidays = ["2027-01-01"]\n', encoding="utf-8")
    calendar.configure([f], shipped_dir=None)
    claim(engine=engine, now=now + timedelta(minutes=1))
    (row,) = _calendar_rows(engine)
    assert row.state == OutboxState.cancelled
    assert row.last_error == f"2027年的节假日安排已收录（运营方文件 {f}）"
    # And nothing new is planned.
    sweep(engine=engine, now=at("2026-12-08", 9, 30))
    assert len(_calendar_rows(engine)) == 1
