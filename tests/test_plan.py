"""The living plan (issue 16): the workbook round trip, refusals naming the cell, retire not delete."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from openpyxl import load_workbook
from sqlalchemy.engine import Engine
from sqlmodel import select

from infra.db import read_only, transaction
from models.audit import Actor
from models.evidence import Upload, add_evidence
from models.plan import apply, live_plan
from models.progress import set_progress
from models.seed import import_seed, load_seed
from models.tables import (
    Assessment,
    Assignment,
    AuditLog,
    Evidence,
    Task,
    TaskCriterion,
    Unit,
)
from models.wording import full_date
from qcbot.cli import main
from reports.ledger import load_ledger, write_ledger_xlsx
from reports.planbook import PlanBookError, read_plan, write_plan
from tests.conftest import SEED_PATH

NOW = datetime(2021, 11, 1, 2, 0, tzinfo=UTC)


@pytest.fixture
def seeded(engine: Engine) -> int:
    with transaction(engine) as s:
        # Moved to begin today: the CLI's deadline changes are checked against the real today.
        cid = import_seed(session=s, doc=load_seed(SEED_PATH), now=NOW, actor=Actor.cli(),
                          shift_to=date.today()).campaign_id
        # Recorded work on task 19 (to be retired) and a claim on criterion 7.1.
        task19 = s.exec(select(Task).where(Task.campaign_id == cid, Task.no == 19)).one()
        unit = s.exec(select(Unit).where(Unit.name == "区市场监管局")).one()
        a = s.exec(select(Assignment).where(Assignment.task_id == task19.id, Assignment.unit_id == unit.id)).one()
        set_progress(session=s, assignment_id=a.id, percent=40, note="已排查", actor=Actor.cli(), now=NOW)
        add_evidence(s, Upload(campaign_id=cid, unit_id=unit.id, member_id=None, sha256="a" * 64, size=10,
                               mime_type="application/pdf", original_name="排查报告.pdf", task_id=task19.id),
                     actor=Actor.cli(), now=NOW)
    return cid


def _sheet_rows(data: bytes, sheet: str) -> list[list[object]]:
    wb = load_workbook(io.BytesIO(data))
    return [list(r) for r in wb[sheet].iter_rows(values_only=True)]


def _edit(data: bytes, edit) -> bytes:  # type: ignore[no-untyped-def]
    wb = load_workbook(io.BytesIO(data))
    edit(wb)
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def _row(ws, column: int, value: object) -> int:  # type: ignore[no-untyped-def]
    return next(r for r in range(2, ws.max_row + 1) if ws.cell(r, column).value == value)


def test_export_edit_import_round_trip(engine: Engine, db_url: str, seeded: int, tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "config.toml"
    config.write_text(f'[database]\nurl = "{db_url}"\n', encoding="utf-8")
    book = tmp_path / "plan.xlsx"
    assert main(["-c", str(config), "plan", "export", str(book)]) == 0
    assert "任务 19 项" in capsys.readouterr().out
    data = book.read_bytes()
    header = _sheet_rows(data, "任务")[0]
    assert header == ["任务号", "任务组", "主要内容", "工作要求", "牵头单位", "责任单位", "完成时限"]
    # Unchanged, it imports as no change at all.
    assert main(["-c", str(config), "plan", "import", str(book), "--dry-run"]) == 0
    assert "没有变化" in capsys.readouterr().out

    with read_only(engine) as s:
        was = s.exec(select(Task).where(Task.campaign_id == seeded, Task.no == 7)).one().deadline
    later = was + timedelta(days=31)

    def edit(wb) -> None:  # type: ignore[no-untyped-def]
        tasks = wb["任务"]
        tasks.cell(_row(tasks, 1, 7), 7).value = f"{later.year}年{later.month}月{later.day}日"  # a deadline
        tasks.delete_rows(_row(tasks, 1, 19))  # retire task 19
        wb["单位"].append(["区质检所", "合肥市瑶海区质量技术监督检测所", "质检所", "驻区单位", "否", "否"])
        tasks.cell(_row(tasks, 1, 8), 6).value = tasks.cell(_row(tasks, 1, 8), 6).value + "、区质检所"
        wb["任务与细则"].append([8, "14.1", "确认"])  # a link

    book.write_bytes(_edit(data, edit))
    before = _counts(engine)
    assert main(["-c", str(config), "plan", "import", str(book), "--dry-run"]) == 0
    out = capsys.readouterr().out
    lines = [x for x in out.splitlines() if x[:1].isdigit()]
    assert lines == [
        "1. 新增单位“区质检所”",
        "2. 撤销任务19（保留其记录，各单位的承办记录随之停用）",
        "3. 任务8：增加责任单位 区质检所",
        "4. 新增任务8与细则14.1的关联",
        f"5. 任务7：完成时限 {full_date(was)} → {full_date(later)}",
    ], out
    assert "任务19·区市场监管局：进度 40%，证明材料 1 份" in out and "试运行" in out
    assert _counts(engine) == before  # the dry run changed nothing
    assert main(["-c", str(config), "plan", "import", str(book)]) == 0
    assert "已导入" in capsys.readouterr().out
    with read_only(engine) as s:
        t19 = s.exec(select(Task).where(Task.campaign_id == seeded, Task.no == 19)).one()
        assert t19.retired
        kept = s.exec(select(Assignment).where(Assignment.task_id == t19.id)).all()
        assert kept and all(a.retired for a in kept) and any(a.percent == 40 for a in kept)
        assert s.exec(select(Evidence).where(Evidence.task_id == t19.id)).one().file_name
        t7 = s.exec(select(Task).where(Task.campaign_id == seeded, Task.no == 7)).one()
        # Moved by the one deadline rule: the plan's first date stays 原定, the reason is audited.
        assert (t7.deadline, t7.planned_deadline) == (later, was)
        moved = s.exec(select(AuditLog).where(AuditLog.action == "task.deadline", AuditLog.entity_id == t7.id)).one()
        assert moved.note == "按协调员导入的工作计划调整"
        unit = s.exec(select(Unit).where(Unit.name == "区质检所")).one()
        assert str(unit.kind) == "驻区单位" and not unit.is_member
        assert s.exec(select(TaskCriterion).where(TaskCriterion.task_id == s.exec(
            select(Task.id).where(Task.campaign_id == seeded, Task.no == 8)).one())).all()
        actions = {a.action for a in s.exec(select(AuditLog).where(AuditLog.at == AuditLog.at))}
        assert {"seed.retire", "seed.link", "seed.create", "seed.update"} <= actions
    after = _counts(engine)
    assert after["evidence"] == before["evidence"] and after["assignment"] == before["assignment"] + 1
    # The ledger still lists task 19 with its kept records, marked 已撤销.
    ledger = load_ledger(engine, now=datetime.now(UTC), campaign_id=seeded)
    out = tmp_path / "台账.xlsx"
    write_ledger_xlsx(ledger, out)
    rows = [r for r in load_workbook(out)["任务表"].iter_rows(values_only=True) if r[0] == 19]
    assert rows and all("已撤销" in (r[8] or "") for r in rows) and any(r[4] == "区市场监管局" for r in rows)
    # Exported again, the workbook no longer lists task 19, and re-importing it changes nothing.
    assert main(["-c", str(config), "plan", "export", str(book)]) == 0
    assert "任务 18 项" in capsys.readouterr().out
    assert main(["-c", str(config), "plan", "import", str(book)]) == 0
    assert "没有变化" in capsys.readouterr().out


def _counts(engine: Engine) -> dict[str, int]:
    with read_only(engine) as s:
        return {"assignment": len(s.exec(select(Assignment)).all()), "evidence": len(s.exec(select(Evidence)).all()),
                "assessment": len(s.exec(select(Assessment)).all()), "task": len(s.exec(select(Task)).all()),
                "audit": len(s.exec(select(AuditLog)).all())}


CASES = [
    ("a wrong column", lambda wb: setattr(wb["任务"].cell(1, 7), "value", "截止"),
     "任务表 G1：列名应为“完成时限”，实为“截止”。"),
    ("a duplicate number", lambda wb: setattr(wb["任务"].cell(9, 1), "value", 7),
     "任务表 A9：任务号重复（已在 A8）"),
    ("an unknown unit", lambda wb: setattr(wb["任务"].cell(8, 6), "value", "区财政局、区质检所"),
     "任务表 F8：没有“区质检所”这个单位"),
    ("a criterion over its item", lambda wb: setattr(wb["细则"].cell(_row(wb["细则"], 1, 7), 3), "value", 9),
     "超过评分项 7 的分数 4 分"),
    ("a date that is not a date", lambda wb: setattr(wb["任务"].cell(8, 7), "value", "年底前"),
     "任务表 G8：日期格式不对"),
    ("a day that does not exist", lambda wb: setattr(wb["任务"].cell(8, 7), "value", "2022-02-30"),
     "任务表 G8：没有这一天"),
    ("a score item deleted", lambda wb: wb["评分项"].delete_rows(_row(wb["评分项"], 1, 29)),
     "评分项是验收标准，不能删除"),
    ("an overlong label", lambda wb: setattr(wb["细则"].cell(2, 5), "value", "长" * 201), "细则表 E2：不超过 200 个字"),
    ("an overlong unit name", lambda wb: setattr(wb["单位"].cell(2, 1), "value", "单" * 101), "单位表 A2：不超过 100 个字"),
]


def test_numbers_and_dates_in_text_cells_are_text(engine: Engine, seeded: int) -> None:
    with read_only(engine) as s:
        base = live_plan(session=s, campaign_id=seeded)

    def edit(wb) -> None:  # type: ignore[no-untyped-def]
        tasks = wb["任务"]
        tasks.cell(_row(tasks, 1, 7), 4).value = 12345
        wb["评分项"].cell(2, 9).value = date(2027, 3, 1)

    doc = read_plan(_edit(write_plan(base), edit), base=base)
    assert doc.task(7).detail == "12345" and doc.score_items[0].note == "2027年3月1日"


def test_a_unit_may_be_written_by_its_full_name_or_alias(engine: Engine, seeded: int) -> None:
    with read_only(engine) as s:
        base = live_plan(session=s, campaign_id=seeded)

    def edit(wb) -> None:  # type: ignore[no-untyped-def]
        tasks = wb["任务"]
        row = _row(tasks, 1, 7)
        tasks.cell(row, 6).value = "中共合肥市瑶海区委办公室、区财政局"
        tasks.cell(row, 5).value = "区财政局"

    doc = read_plan(_edit(write_plan(base), edit), base=base)
    assert doc.task(7).units == ["区财政局", "区委办"]  # the lead first, every unit by its name


@pytest.mark.parametrize(("case", "edit", "said"), CASES, ids=[c[0] for c in CASES])
def test_a_bad_workbook_is_refused_with_the_cell_named(engine: Engine, seeded: int, case, edit, said) -> None:  # type: ignore[no-untyped-def]
    with read_only(engine) as s:
        base = live_plan(session=s, campaign_id=seeded)
    data = _edit(write_plan(base), edit)
    with pytest.raises(PlanBookError) as exc:
        read_plan(data, base=base)
    assert said in str(exc.value), str(exc.value)


def test_a_criterion_cannot_be_dropped_and_a_file_that_is_no_workbook_is_refused(engine: Engine, seeded: int) -> None:
    with read_only(engine) as s:
        base = live_plan(session=s, campaign_id=seeded)
    crits = base.model_copy(deep=True)
    crits.score_items[9].criteria = crits.score_items[9].criteria[1:]
    with transaction(engine) as s, pytest.raises(Exception, match="不能删除细则（缺少细则 10.1）"):
        apply(session=s, campaign_id=seeded, doc=crits, actor=Actor.cli(), now=NOW)
    with pytest.raises(PlanBookError, match="不是可以读取的 Excel"):
        read_plan(b"not a workbook" * 10, base=base)


def test_in_chat_edits_go_through_the_plan_and_a_reimport_of_it_changes_nothing(engine: Engine, seeded: int) -> None:
    from models.plan import add_unit, assign_criterion, set_task_units, waive_criterion
    from models.tables import Criterion, CriterionUnit, ScoreItem

    with transaction(engine) as s:
        ch = add_unit(session=s, campaign_id=seeded, name="红光街道", kind="街道", actor=Actor.cli(), now=NOW)
        assert ch.lines == ["新增单位“红光街道”"]
        ch = assign_criterion(session=s, campaign_id=seeded, key="10.1", units=["市场监管局"], actor=Actor.cli(), now=NOW)
        assert ch.lines == ["评分项10：增加责任单位 区市场监管局", "细则10.1：增加责任单位 区市场监管局"]
        ch = set_task_units(session=s, campaign_id=seeded, task_no=7, units=["区财政局", "红光街道"],
                            actor=Actor.cli(), now=NOW)
        assert ch.lines == ["任务7：增加责任单位 红光街道"]
        ch = set_task_units(session=s, campaign_id=seeded, task_no=5,
                            units=["区财政局", "区发改委", "区市场监管局", "区经信局", "区教体局", "区科技局", "区住建局",
                                   "区商务局", "区数据资源局", "区文旅局", "区卫健委"], actor=Actor.cli(), now=NOW)
        assert ch.lines == ["任务5：牵头单位 区发改委 → 区财政局"], ch.lines
        ch = waive_criterion(session=s, campaign_id=seeded, key="19.2", reason="本区无生活性服务业满意度测评",
                             actor=Actor.cli(), now=NOW)
        assert ch.lines == ["细则19.2：放弃（计为已失分）；原因：本区无生活性服务业满意度测评"]
    with read_only(engine) as s:
        item10 = s.exec(select(ScoreItem).where(ScoreItem.campaign_id == seeded, ScoreItem.no == 10)).one()
        c101 = s.exec(select(Criterion).where(Criterion.item_id == item10.id, Criterion.no == 1)).one()
        owners = s.exec(select(CriterionUnit).where(CriterionUnit.criterion_id == c101.id)).all()
        assert [s.get(Unit, o.unit_id).name for o in owners] == ["区市场监管局"]  # type: ignore[union-attr]
        doc = live_plan(session=s, campaign_id=seeded)
    with transaction(engine) as s:
        assert not apply(session=s, campaign_id=seeded, doc=doc, actor=Actor.cli(), now=NOW).changed
    for bad, said in [
        (lambda s: add_unit(session=s, campaign_id=seeded, name="区财政局", kind="区直单位", actor=Actor.cli(), now=NOW), "已有单位"),
        (lambda s: add_unit(session=s, campaign_id=seeded, name="某所", kind="乡镇", actor=Actor.cli(), now=NOW), "单位类型"),
        (lambda s: assign_criterion(session=s, campaign_id=seeded, key="10.9", units=["区财政局"], actor=Actor.cli(), now=NOW), "没有细则"),
        (lambda s: assign_criterion(session=s, campaign_id=seeded, key="10.1", units=["区不存在局"], actor=Actor.cli(), now=NOW), "没有找到单位"),
        (lambda s: waive_criterion(session=s, campaign_id=seeded, key="10.1", reason=" ", actor=Actor.cli(), now=NOW), "请写明放弃的原因"),
        (lambda s: set_task_units(session=s, campaign_id=seeded, task_no=77, units=["区财政局"], actor=Actor.cli(), now=NOW), "没有任务 77"),
    ]:
        before = _counts(engine)
        with transaction(engine) as s, pytest.raises(Exception, match=said):
            bad(s)
        assert _counts(engine) == before


def test_a_seed_reimport_does_not_undo_the_coordinators_plan_without_force(
        engine: Engine, db_url: str, seeded: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from models.plan import add_unit

    config = tmp_path / "config.toml"
    config.write_text(f'[database]\nurl = "{db_url}"\n', encoding="utf-8")
    with transaction(engine) as s:
        add_unit(session=s, campaign_id=seeded, name="红光街道", kind="街道", actor=Actor.cli(), now=NOW)
    assert main(["-c", str(config), "seed", "import", str(SEED_PATH)]) == 1
    assert "已由协调员修改过" in capsys.readouterr().err
    with read_only(engine) as s:
        assert not s.exec(select(Unit).where(Unit.name == "红光街道")).one().retired
    assert main(["-c", str(config), "seed", "import", str(SEED_PATH), "--force"]) == 0
    with read_only(engine) as s:
        assert s.exec(select(Unit).where(Unit.name == "红光街道")).one().retired  # undone, kept


def test_a_unit_renamed_in_the_workbook_keeps_its_records(engine: Engine, seeded: int) -> None:
    with read_only(engine) as s:
        base = live_plan(session=s, campaign_id=seeded)

    def rename(wb) -> None:  # type: ignore[no-untyped-def]
        units = wb["单位"]
        units.cell(_row(units, 1, "区财政局"), 1).value = "区财政局（国资委）"

    doc = read_plan(_edit(write_plan(base), rename), base=base)
    with transaction(engine) as s:
        change = apply(session=s, campaign_id=seeded, doc=doc, actor=Actor.cli(), now=NOW)
        assert [x for x in change.lines if "撤销" in x] == [], change.lines
        unit = s.exec(select(Unit).where(Unit.name == "区财政局（国资委）")).one()
        assert not unit.retired and "区财政局" in unit.aliases
        assert s.exec(select(Assignment).where(Assignment.unit_id == unit.id, Assignment.retired == False)).all()  # noqa: E712


def test_a_waiver_is_the_plans_and_refused_while_claimed_or_verified(engine: Engine, seeded: int) -> None:
    """/waive and the workbook's 放弃原因 share one guard; a waived criterion cannot be claimed;
    waiving twice writes nothing; /assign lifts a waiver."""
    from models.errors import Conflict
    from models.plan import assign_criterion, waive_criterion
    from models.progress import claim_criterion, verify_criterion
    from models.tables import Criterion, ScoreItem

    def crit(s, item_no: int, no: int) -> Criterion:  # type: ignore[no-untyped-def]
        return s.exec(select(Criterion).join(ScoreItem, ScoreItem.id == Criterion.item_id)
                      .where(ScoreItem.campaign_id == seeded, ScoreItem.no == item_no, Criterion.no == no)).one()

    with transaction(engine) as s:
        finance = s.exec(select(Unit).where(Unit.name == "区财政局")).one()
        waive_criterion(session=s, campaign_id=seeded, key="7.2", reason="本区另行安排", actor=Actor.cli(), now=NOW)
        with pytest.raises(Conflict, match="无法达到"):
            claim_criterion(session=s, criterion_id=crit(s, 7, 2).id, unit_id=finance.id, actor=Actor.cli(), now=NOW)
        again = waive_criterion(session=s, campaign_id=seeded, key="7.2", reason="本区另行安排",
                                actor=Actor.cli(), now=NOW)
        assert not again.changed
        assign_criterion(session=s, campaign_id=seeded, key="7.2", units=["区财政局"], actor=Actor.cli(), now=NOW)
        assert not crit(s, 7, 2).not_attainable
        claim_criterion(session=s, criterion_id=crit(s, 7, 1).id, unit_id=finance.id, actor=Actor.cli(), now=NOW)
    for key, said in (("7.1", "请先驳回"),):
        with transaction(engine) as s, pytest.raises(Conflict, match=said):
            waive_criterion(session=s, campaign_id=seeded, key=key, reason="x", actor=Actor.cli(), now=NOW)
    with transaction(engine) as s:
        verify_criterion(session=s, criterion_id=crit(s, 7, 1).id, actor=Actor.cli(), now=NOW)
    with transaction(engine) as s, pytest.raises(Conflict, match="已确认达标"):
        waive_criterion(session=s, campaign_id=seeded, key="7.1", reason="x", actor=Actor.cli(), now=NOW)
    with read_only(engine) as s:
        assert not crit(s, 7, 1).not_attainable
