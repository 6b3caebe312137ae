"""Smoke tests of the benchmark tooling (bench/): correctness at a tiny scale, never timing."""

from __future__ import annotations

from collections import Counter

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from bench.cases import Ctx
from bench.cases.status import run_overview, run_status
from bench.cases.sweep import run_sweep
from bench.seeder import ProvinceSpec, build_province
from models.tables import (
    Assignment,
    BotMessage,
    Campaign,
    Chat,
    ChatKind,
    Member,
    Outbox,
    OutboxState,
    Role,
    Task,
    Unit,
)

TINY = ProvinceSpec(campaigns=5, evidence=600, audit=1500, outbox_per_working_day=3, history_days=60)


def test_seeder_builds_a_consistent_tiny_province(engine: Engine) -> None:
    report = build_province(engine, TINY)
    assert report.rows["campaign"] == 5
    assert report.rows["evidence"] == 600
    assert report.rows["auditlog"] >= 1500  # plus the imports' own audit rows
    assert set(report.phases) == {"phase 1", "phase 2", "phase 3", "phase 4", "after the plan"}
    with Session(engine) as s:
        campaigns = list(s.exec(select(Campaign)))
        assert len({c.slug for c in campaigns}) == 5
        assert len({c.district for c in campaigns}) == 5
        for c in campaigns:
            units = s.exec(select(Unit).where(Unit.campaign_id == c.id)).all()
            assert len(units) == 20
            members = s.exec(select(Member).where(Member.campaign_id == c.id)).all()
            assert len(members) == 100
            roles = Counter(m.role for m in members)
            assert roles[Role.coordinator] == 2 and roles[Role.leader] == 3
            liaison_units = {m.unit_id for m in members if m.role == Role.liaison}
            assert liaison_units == {u.id for u in units}  # every unit has liaisons
            tasks = s.exec(select(Task).where(Task.campaign_id == c.id)).all()
            assigned = {a.task_id for a in s.exec(select(Assignment).where(Assignment.campaign_id == c.id))}
            assert assigned == {t.id for t in tasks}  # every task assigned
            units_with_tasks = {
                a.unit_id for a in s.exec(select(Assignment).where(Assignment.campaign_id == c.id))}
            assert units_with_tasks == {u.id for u in units}
            groups = s.exec(select(Chat).where(Chat.campaign_id == c.id, Chat.kind == ChatKind.group)).all()
            assert len(groups) == 1
        # The outbox history is all settled, and merged rows point at a sent row of their chat.
        states = Counter(s.exec(select(Outbox.state)).all())
        assert states[OutboxState.pending] == 0 and states[OutboxState.claimed] == 0
        assert states[OutboxState.sent] > states[OutboxState.merged] > 0
        lead = sa.orm.aliased(Outbox)
        bad = s.exec(
            select(sa.func.count()).select_from(Outbox).join(lead, lead.id == Outbox.merged_into_id)
            .where(sa.or_(lead.state != OutboxState.sent, lead.telegram_chat_id != Outbox.telegram_chat_id))
        ).one()
        assert bad == 0
        sent = s.exec(select(sa.func.count()).select_from(Outbox).where(Outbox.state == OutboxState.sent)).one()
        assert s.exec(select(sa.func.count()).select_from(BotMessage)).one() == sent
        # Ids continue after the explicit ones (PostgreSQL sequences were moved on).
        s.add(Chat(telegram_chat_id=-42, kind=ChatKind.group))
        s.commit()


def test_seeder_is_deterministic(engine: Engine, tmp_path) -> None:  # noqa: ANN001
    from sqlmodel import SQLModel

    from infra.db import make_engine

    build_province(engine, TINY)
    other = make_engine(f"sqlite:///{tmp_path / 'other.sqlite3'}")
    SQLModel.metadata.create_all(other)
    build_province(other, TINY)

    def fingerprint(e: Engine) -> list[tuple]:
        with Session(e) as s:
            return [
                tuple(s.exec(select(sa.func.count(), sa.func.sum(Outbox.telegram_chat_id)).select_from(Outbox)
                             .where(Outbox.state == st)).one())
                for st in OutboxState
            ] + [tuple(r) for r in s.exec(select(Assignment.id, Assignment.state, Assignment.percent)
                                           .order_by(Assignment.id))]

    try:
        assert fingerprint(engine) == fingerprint(other)
    finally:
        other.dispose()


def _ctx(db_url: str, tmp_path) -> Ctx:  # noqa: ANN001
    return Ctx(backend="test", seed_url=db_url, work_url=db_url, spec=TINY, quick=True, out=tmp_path)


def test_sweep_and_overview_benchmarks_run_at_small_scale(engine: Engine, db_url: str, tmp_path) -> None:  # noqa: ANN001
    build_province(engine, TINY)
    rows = run_sweep(_ctx(db_url, tmp_path)) + run_overview(_ctx(db_url, tmp_path), samples=1)
    by_name = {r["name"]: r for r in rows}
    assert set(by_name) == {"sweep_catchup", "sweep_idle", "sweep_busy", "sweep_full", "sweep_10k",
                            "overview"}
    assert by_name["sweep_catchup"]["extra"]["inserted"] > 0
    assert by_name["sweep_idle"]["n"] == 3 and by_name["sweep_idle"]["extra"]["planned"] > 0
    assert by_name["sweep_10k"]["n"] == 0  # a tiny province never has 10,000 nudges due
    assert by_name["overview"]["extra"]["campaigns"] == TINY.campaigns
    for r in rows:
        assert r["met"] in (True, False, None)  # judged, never asserted on


def test_status_benchmark_through_the_standin_at_small_scale(engine: Engine, db_url: str, tmp_path) -> None:  # noqa: ANN001
    build_province(engine, TINY)
    status, chart = run_status(_ctx(db_url, tmp_path), samples=2)
    assert status["name"] == "status" and status["n"] == 2
    assert len(status["extra"]["samples_ms"]) == 2
    assert chart["name"] == "status_chart" and chart["n"] == 2
