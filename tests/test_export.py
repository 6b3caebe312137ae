"""The ledger workbook and the dossier ZIP, opened and read back."""

from __future__ import annotations

import hashlib
import io
import os
import zipfile
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from openpyxl import load_workbook
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from infra.files import store_blob
from models.audit import Actor
from models.errors import InvalidInput
from models.evidence import (
    Upload,
    accept_evidence,
    return_evidence,
    submit_evidence,
    withdraw_evidence,
)
from models.seed import import_seed, load_seed
from models.tables import (
    Assessment,
    AssessmentState,
    Assignment,
    AssignmentState,
    Criterion,
    Evidence,
    EvidenceState,
    Member,
    Role,
    ScoreItem,
    Task,
    Unit,
)
from reports.dossier import write_dossier
from reports.ledger import (
    AUDIT_HEADERS,
    FILE_HEADERS,
    SCORE_HEADERS,
    SHEET_AUDIT,
    SHEET_FILES,
    SHEET_SCORES,
    SHEET_TASKS,
    SHEET_UNITS,
    SHEETS,
    TASK_HEADERS,
    UNIT_HEADERS,
    Ledger,
    clean_segment,
    collect_ledger,
    ledger_file_name,
    write_ledger_xlsx,
)
from tests.conftest import SEED_PATH

NOW = datetime(2021, 9, 1, 2, 0, tzinfo=UTC)
TODAY = date(2021, 9, 1)
PDF = "application/pdf"
JPEG = "image/jpeg"


def _one(session: Session, stmt):  # noqa: ANN001, ANN202
    return session.exec(stmt).one()


class World:
    """A test campaign: the real plan, some progress, claims and evidence."""

    def __init__(self, session: Session, store: Path) -> None:
        self.session = session
        self.store = store
        rep = import_seed(session=session, doc=load_seed(SEED_PATH), now=NOW, actor=Actor.cli())
        self.cid = cid = rep.campaign_id
        self.units = {u.name: u for u in session.exec(select(Unit).where(Unit.campaign_id == cid))}
        self.liaison = Member(campaign_id=cid, telegram_user_id=2001, display_name="张联络",
                              role=Role.liaison, unit_id=self.units["区委办"].id)
        self.coord = Member(campaign_id=cid, telegram_user_id=2002, display_name="王协调",
                            role=Role.coordinator, unit_id=self.units["区市场监管局"].id)
        session.add_all([self.liaison, self.coord])
        session.flush()
        self.item1 = _one(session, select(ScoreItem).where(ScoreItem.campaign_id == cid,
                                                           ScoreItem.no == 1))
        self.crits = {c.no: c for c in session.exec(
            select(Criterion).where(Criterion.item_id == self.item1.id))}
        self.task1 = _one(session, select(Task).where(Task.campaign_id == cid, Task.no == 1))
        # Task 1 (区委办, 区政府办, 区发改委, 区市场监管局): one unit in each state.
        states = {"区委办": (AssignmentState.approved, 100),
                  "区政府办": (AssignmentState.in_progress, 50),
                  "区发改委": (AssignmentState.submitted, 100),
                  "区市场监管局": (AssignmentState.not_started, 0)}
        for a in session.exec(select(Assignment).where(Assignment.task_id == self.task1.id)):
            name = next(n for n, u in self.units.items() if u.id == a.unit_id)
            a.state, a.percent = states[name]
            session.add(a)
        # Item 1: criterion 1 (1 point) verified, criterion 2 (2 points) claimed.
        session.add(Assessment(campaign_id=cid, criterion_id=self.crits[1].id,
                               state=AssessmentState.verified, unit_id=self.units["区委办"].id,
                               claimed_at=NOW, reviewed_at=NOW))
        session.add(Assessment(campaign_id=cid, criterion_id=self.crits[2].id,
                               state=AssessmentState.claimed, unit_id=self.units["区委办"].id,
                               claimed_at=NOW))
        session.flush()
        me = Actor(kind="telegram", member_id=self.liaison.id)
        boss = Actor(kind="telegram", member_id=self.coord.id)
        self.minutes = self.add(b"%PDF-1.4 minutes " + os.urandom(64), "会议纪要.pdf",
                                item_id=self.item1.id)
        self.minutes2 = self.add(b"%PDF-1.4 other minutes " + os.urandom(64), "会议纪要.pdf",
                                 item_id=self.item1.id)
        self.photo = self.add(b"\xff\xd8\xff photo " + os.urandom(64), "现场照片.jpg",
                              criterion_id=self.crits[3].id, mime=JPEG)
        self.plan = self.add(b"%PDF-1.4 plan " + os.urandom(64), "../../etc/规划.pdf",
                             task_id=self.task1.id)
        self.gone = self.add(b"%PDF-1.4 wrong " + os.urandom(64), "发错了.pdf",
                             item_id=self.item1.id)
        self.bad = self.add(b"%PDF-1.4 bad " + os.urandom(64), "不合格.pdf", item_id=self.item1.id)
        accept_evidence(session, evidence_id=self.minutes.id, actor=boss, now=NOW)
        withdraw_evidence(session, evidence_id=self.gone.id, member=self.liaison, actor=me, now=NOW,
                          reason="发错文件")
        return_evidence(session, evidence_id=self.bad.id, reason="不清晰", actor=boss, now=NOW)
        session.commit()

    def add(self, data: bytes, name: str, *, mime: str = PDF, **target: int) -> Evidence:
        sha, _ = store_blob(self.store, data)
        sub = submit_evidence(
            self.session, Upload(campaign_id=self.cid, unit_id=self.liaison.unit_id,
                                 member_id=self.liaison.id, sha256=sha, size=len(data), mime_type=mime,
                                 original_name=name, **target),
            actor=Actor(kind="telegram", member_id=self.liaison.id), now=NOW,
        )
        return sub.evidence

    def ledger(self, **kw: object) -> Ledger:
        return collect_ledger(self.session, campaign_id=self.cid, today=TODAY, now=NOW, **kw)


@pytest.fixture
def world(session: Session, tmp_path: Path) -> World:
    return World(session, tmp_path / "evidence")


@pytest.fixture
def book(world: World, tmp_path: Path):  # noqa: ANN201
    path = tmp_path / "ledger.xlsx"
    write_ledger_xlsx(world.ledger(), path)
    return load_workbook(path)


def _rows(ws) -> list[tuple]:  # noqa: ANN001
    return [tuple(r) for r in ws.iter_rows(min_row=3, values_only=True)]


# ----------------------------------------------------------------------- workbook


def test_sheets_headers_and_print_setup(book) -> None:  # noqa: ANN001
    assert book.sheetnames == list(SHEETS)
    expected = {SHEET_SCORES: SCORE_HEADERS, SHEET_TASKS: TASK_HEADERS, SHEET_UNITS: UNIT_HEADERS,
                SHEET_FILES: FILE_HEADERS, SHEET_AUDIT: AUDIT_HEADERS}
    for name, headers in expected.items():
        ws = book[name]
        assert tuple(c.value for c in ws[2]) == headers
        assert ws.freeze_panes == "A3"
        assert ws.page_setup.orientation == "landscape"
        assert ws.page_setup.fitToWidth == 1 and ws.page_setup.fitToHeight == 0
        assert ws.sheet_properties.pageSetUpPr.fitToPage
        assert ws.print_title_rows == "$1:$2"
        assert ws["A1"].value.startswith("瑶海区争创安徽省质量强县")
        assert all(ws.column_dimensions[chr(65 + i)].width >= 6 for i in range(len(headers)))
    assert book[SHEET_SCORES]["E4"].alignment.wrap_text
    assert book.active.title == SHEET_SCORES
    # Annex 2's columns in its order, then what the tool adds, each in a column of its own.
    assert SCORE_HEADERS == ("序号", "类别", "指标内容", "分数", "评分方法", "责任单位", "完成时限",
                             "自评得分", "核定得分", "状态", "证明材料", "备注")


def test_score_table_follows_annex_2_with_status_numbers(book, world: World) -> None:  # noqa: ANN001
    rows = _rows(book[SHEET_SCORES])
    numbers = [r[0] for r in rows if r[0] and "." not in str(r[0])]
    assert numbers == [str(n) for n in range(1, 31)]
    item = next(r for r in rows if r[0] == "1")
    assert item[1:3] == ("质量发展促进机制", "组织保障")
    assert item[3] == 5
    assert item[4].startswith("成立党政主要领导双牵头的质量发展委员会（1分）")  # Annex 2's 评分方法, as written
    assert item[5] == "区委办、区政府办、区市场监管局"
    assert item[6] == "2021年12月31日"
    # Criterion 1 (1 point) verified and criterion 2 (2 points) claimed.
    assert (item[7], item[8]) == (3, 1)
    assert item[10].splitlines() == ["01_组织保障/区委办_评分项1_20210901_会议纪要.pdf",
                                     "01_组织保障/区委办_评分项1_20210901_会议纪要（2）.pdf（待审核）"]
    c11 = next(r for r in rows if r[0] == "1.1")
    assert c11[4] == "成立党政主要领导双牵头的质量发展委员会"  # the rule alone: no state written into it
    assert (c11[3], c11[7], c11[8], c11[9]) == (1, 1, 1, "已核定")
    c12 = next(r for r in rows if r[0] == "1.2")
    assert (c12[3], c12[7], c12[8], c12[9]) == (2, 2, 0, "已自评")
    c13 = next(r for r in rows if r[0] == "1.3")
    assert c13[10] == "01_组织保障/区委办_细则1.3_20210901_现场照片.jpg（待审核）"
    # The tool's own notes stand in 备注, never inside Annex 2's text.
    c102 = next(r for r in rows if r[0] == "10.2")
    assert c102[9] == "本区不可得分" and c102[11] == "区域无法定计量检定机构。"
    assert "（" not in c102[4][-3:]
    totals = {r[1]: r for r in rows if r[1] in ("基本分合计", "加分项合计")}
    assert totals["基本分合计"][3] == 100 and totals["加分项合计"][3] == 10
    assert totals["基本分合计"][7] == 3 and totals["基本分合计"][8] == 1


def _filled(rows: list[tuple], columns: int) -> list[tuple]:
    """Rows with the merged task cells (the first ``columns``) filled down."""
    out, last = [], (None,) * columns
    for r in rows:
        if r[0] is not None:
            last = r[:columns]
        out.append(last + r[columns:])
    return out


def test_task_table_shows_every_units_state(book) -> None:  # noqa: ANN001
    ws = book[SHEET_TASKS]
    rows = _filled(_rows(ws), 4)
    task1 = {r[4]: r for r in rows if r[0] == 1}
    assert {u: r[5] for u, r in task1.items()} == {
        "区委办": "已通过", "区政府办": "进行中", "区发改委": "已提交", "区市场监管局": "未开始"}
    assert task1["区政府办"][6] == 50
    assert task1["区委办"][3] == "2021年7月10日"
    assert task1["区委办"][7] == 1  # the plan (规划.pdf) handed in by 区委办
    assert "逾期" in task1["区市场监管局"][8] and not task1["区委办"][8]
    assert task1["区委办"][1].startswith("一、围绕推进高质量发展")
    assert task1["区委办"][2].startswith("成立党政主要领导双牵头的质量发展委员会")
    assert sorted({r[0] for r in rows}) == list(range(1, 20))
    # Task 1's four unit rows share one block for its number, group, text and deadline.
    assert "A3:A6" in {str(m) for m in ws.merged_cells.ranges}
    assert "C3:C6" in {str(m) for m in ws.merged_cells.ranges}


def test_unit_summary_and_file_list_and_audit(book, world: World) -> None:  # noqa: ANN001
    units = {r[0]: r for r in _rows(book[SHEET_UNITS])}
    office = units["区委办"]
    assert office[UNIT_HEADERS.index("已通过")] == 1
    # Overdue counts are the status's red lights: 区政府办 is late on task 1, 区委办 is not.
    assert office[UNIT_HEADERS.index("逾期未完成")] == 0
    assert units["区政府办"][UNIT_HEADERS.index("逾期未完成")] >= 1
    assert office[UNIT_HEADERS.index("证明材料(份)")] == 4  # withdrawn and returned not counted
    files = {r[0]: r for r in _rows(book[SHEET_FILES])}
    assert len(files) == 6
    assert files[world.gone.id][9] == "已撤回"
    assert files[world.gone.id][4] == "（不在材料包中）"
    assert "撤回" in files[world.gone.id][10]
    assert files[world.bad.id][9] == "已退回" and "不清晰" in files[world.bad.id][10]
    assert files[world.plan.id][3] == "规划.pdf"
    assert files[world.plan.id][4].startswith("任务01_")
    assert files[world.minutes.id][11] == world.minutes.sha256
    actions = [r[3] for r in _rows(book[SHEET_AUDIT])]
    assert "撤回证明材料" in actions and "提交证明材料" in actions and "导入活动计划" in actions
    withdraw = next(r for r in _rows(book[SHEET_AUDIT]) if r[3] == "撤回证明材料")
    assert withdraw[1] == "张联络（区委办）" and withdraw[8] == "发错文件"
    assert (withdraw[4], withdraw[5]) == ("证明材料", world.gone.id)
    assert "状态：已撤回" in withdraw[7]  # a sentence, not JSON
    audit = _rows(book[SHEET_AUDIT])
    assert not any(str(c).startswith("{") or '":' in str(c) for r in audit for c in r[6:8] if c)


# ------------------------------------------------------------------------ dossier


def _zip_map(path: Path, *, folders: list[str] | None = None) -> dict[str, bytes]:
    return _zip_map_bytes(path.read_bytes(), folders=folders)


def _zip_map_bytes(data: bytes, *, folders: list[str] | None = None) -> dict[str, bytes]:
    """The files of a ZIP (folders left out, or collected into ``folders``)."""
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert zf.testzip() is None
        for info in zf.infolist():
            if not info.filename.isascii():
                assert info.flag_bits & 0x800  # names are flagged UTF-8
            assert not info.filename.startswith(("/", "..")) and "/../" not in info.filename
        if folders is not None:
            folders.extend(i.filename for i in zf.infolist() if i.is_dir())
        return {i.filename: zf.read(i) for i in zf.infolist() if not i.is_dir()}


def test_dossier_structure_and_hashes(world: World, tmp_path: Path) -> None:
    ledger = world.ledger()
    result = write_dossier(ledger, storage_dir=world.store, out=tmp_path / "out" / "台账.xlsx")
    assert [p.name for p in result.paths] == ["台账.zip"]
    assert result.file_count == 4
    folders: list[str] = []
    content = _zip_map(result.paths[0], folders=folders)
    # No empty folder: a score item or task without material holds 暂无材料.txt instead.
    assert folders == []
    notes = sorted(n for n in content if n.endswith("/暂无材料.txt"))
    assert len(notes) == 30 + 19 - 2  # items and tasks, less item 1 and task 1 (they have files)
    assert notes[0].startswith("02_") and not any(n.startswith(("01_组织保障/", "任务01_")) for n in notes)
    assert "没有已提交的证明材料" in content[notes[0]].decode("utf-8")
    index = ledger_file_name(ledger)
    assert sorted(n for n in content if not n.endswith("/暂无材料.txt")) == sorted([
        index, "说明.txt",
        "01_组织保障/区委办_评分项1_20210901_会议纪要.pdf",
        "01_组织保障/区委办_评分项1_20210901_会议纪要（2）.pdf",
        "01_组织保障/区委办_细则1.3_20210901_现场照片.jpg",
        "任务01_成立党政主要领导双牵头的质量发展委员会/区委办_任务1_20210901_规划.pdf",
    ])
    # Every file's bytes are the stored evidence's, by the ledger's own index.
    wb = load_workbook(io.BytesIO(content[index]))
    listed = {r[4]: r[11] for r in _rows(wb[SHEET_FILES]) if r[9] in ("待审核", "已通过")}
    assert len(listed) == 4
    for arcname, sha in listed.items():
        assert hashlib.sha256(content[arcname]).hexdigest() == sha
    session = world.session
    for ev in session.exec(select(Evidence).where(Evidence.state != EvidenceState.withdrawn,
                                                  Evidence.state != EvidenceState.returned)):
        assert ev.sha256 in listed.values()
    assert not any("发错了" in n or "不合格" in n for n in content)


def test_dossier_splits_into_valid_volumes_under_the_limit(world: World, tmp_path: Path) -> None:
    for i in range(6):
        world.add(b"%PDF-1.4 " + os.urandom(40_000), f"大文件{i}.pdf", item_id=world.item1.id)
    world.session.commit()
    ledger = world.ledger()
    limit = 150_000
    result = write_dossier(ledger, storage_dir=world.store, out=tmp_path / "台账.xlsx",
                           part_limit=limit)
    assert len(result.paths) >= 3
    assert result.paths[0].name == f"台账_第1部分（共{len(result.paths)}部分）.zip"
    seen: list[str] = []
    for path in result.paths:
        assert path.stat().st_size <= limit
        content = _zip_map(path)
        assert ledger_file_name(ledger) in content and "说明.txt" in content
        seen.extend(n for n in content if "/" in n and not n.endswith("/暂无材料.txt"))
    assert sorted(seen) == sorted(f.arcname for f in ledger.files)
    assert len(seen) == len(set(seen)) == 10
    # A new export replaces the old volumes instead of leaving stale parts behind.
    again = write_dossier(ledger, storage_dir=world.store, out=tmp_path / "台账.xlsx")
    assert [p.name for p in again.paths] == ["台账.zip"]
    assert sorted(p.name for p in tmp_path.glob("台账*.zip")) == ["台账.zip"]


def test_dossier_refuses_a_limit_below_one_file(world: World, tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="分卷上限"):
        write_dossier(world.ledger(), storage_dir=world.store, out=tmp_path / "x.xlsx",
                      part_limit=10_000)


@pytest.mark.parametrize(
    ("raw", "clean"),
    [("a/b\\c", "a_b_c"), ("..", "未命名"), ("CON:", "CON_"), ("x" * 200 + ".pdf", "x" * 76 + ".pdf"),
     ("ｆｕｌｌ　ｗｉｄｔｈ", "full width")],
)
def test_zip_names_are_sanitised(raw: str, clean: str) -> None:
    assert clean_segment(raw) == clean


def test_a_file_filed_before_the_allow_list_is_never_runnable_in_the_dossier(world: World) -> None:
    """Rows from before the allow-list (an .exe, a bidi-spoofed .bat) reach the ZIP with an
    ending Windows does not run, and without format characters in their names."""
    world.add(b"%PDF-1.4 old " + os.urandom(32), "setup.exe", item_id=world.item1.id)
    world.add(b"%PDF-1.4 old " + os.urandom(32), "会议通知\u202etxt.bat", item_id=world.item1.id)
    names = [f.arcname for f in world.ledger().files]
    exe = next(n for n in names if "setup.exe" in n)
    bat = next(n for n in names if "txt.bat" in n)
    assert exe.endswith("setup.exe.pdf") and bat.endswith("会议通知txt.bat.pdf"), (exe, bat)
    assert not any("\u202e" in n for n in names)


# ---------------------------------------------------------------------- command line


def test_cli_export_writes_workbook_and_zip(
    world: World, engine: Engine, db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from qcbot.cli import main

    config = tmp_path / "config.toml"
    config.write_text(f'[database]\nurl = "{db_url}"\n[storage]\ndir = "{world.store}"\n',
                      encoding="utf-8")
    out = tmp_path / "cli" / "台账.xlsx"
    code = main(["-c", str(config), "export", "--out", str(out), "--zip", "--date", "2021-09-01"])
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert "台账已写入" in printed and "材料包共 4 份材料" in printed
    assert load_workbook(out).sheetnames == list(SHEETS)
    assert "01_组织保障/区委办_评分项1_20210901_会议纪要.pdf" in _zip_map(out.with_suffix(".zip"))


def test_cli_export_unknown_slug_is_a_clear_error(
    world: World, db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from qcbot.cli import main

    config = tmp_path / "config.toml"
    config.write_text(f'[database]\nurl = "{db_url}"\n', encoding="utf-8")
    assert main(["-c", str(config), "export", "--slug", "nope", "--out", str(tmp_path / "a.xlsx")]) == 1
    assert "没有找到活动" in capsys.readouterr().err


# ------------------------------------------------------------- through the real bot


async def _evidence_from_a_liaison(harness, files: dict[str, bytes]):  # noqa: ANN001, ANN202
    coord = await harness.coordinator("王主任")
    group = await harness.bound_group(coord)
    li = await harness.liaison("李四", "区委办", coordinator=coord)
    [prompt] = await harness.say(li, group, "/evidence 1")
    for name, data in files.items():
        [ack] = await harness.send_file(li, group, name, data, reply_to=prompt,
                                        mime_type="application/pdf")
        assert "已收到" in ack["text"], ack["text"]
    return coord, group, li


def _document(harness, message: dict) -> bytes:  # noqa: ANN001
    return harness.api.world.files[message["document"]["file_id"]].data


async def test_export_command_sends_the_ledger_and_the_dossier(harness) -> None:  # noqa: ANN001
    minutes = b"%PDF-1.4 minutes " + os.urandom(256)
    coord, group, li = await _evidence_from_a_liaison(harness, {"会议纪要.pdf": minutes})
    wait, xlsx, dossier, done = await harness.say(coord, coord, "/export", count=4, timeout=15)
    assert "正在生成" in wait["text"]
    assert xlsx["document"]["file_name"].endswith(".xlsx") and "台账" in xlsx["caption"]
    book = load_workbook(io.BytesIO(_document(harness, xlsx)))
    assert book.sheetnames == list(SHEETS)
    files = _rows(book[SHEET_FILES])
    assert [(r[2], r[3], r[9]) for r in files] == [("区委办", "会议纪要.pdf", "待审核")]
    assert dossier["document"]["file_name"].endswith(".zip")
    content = _zip_map_bytes(_document(harness, dossier))
    [arcname] = [n for n in content if n.endswith("会议纪要.pdf")]
    assert arcname.startswith("任务01_成立党政主要领导双牵头的质量发展委员会/") and arcname.endswith("/区委办_任务1_20211101_会议纪要.pdf")
    assert hashlib.sha256(content[arcname]).hexdigest() == files[0][11] == hashlib.sha256(minutes).hexdigest()
    assert "已导出" in done["text"] and "1 份证明材料" in done["text"]
    # A liaison may not export.
    [refused] = await harness.say(li, li, "/export")
    assert "协调员" in refused["text"] and "document" not in refused
    # In the group it says where it works.
    [where] = await harness.say(coord, group, "/export")
    assert "私聊" in where["text"]


async def test_export_splits_a_large_dossier_into_valid_parts(harness) -> None:  # noqa: ANN001
    blobs = {f"扫描件{i}.pdf": b"%PDF-1.4 " + os.urandom(30_000) for i in range(4)}
    coord, _, _ = await _evidence_from_a_liaison(harness, blobs)
    harness.app.bot_data["export_part_bytes"] = 100_000  # the ledger (with its 考核 sheets) fits, then files
    msgs = await harness.say(coord, coord, "/export", count=2, timeout=15)
    assert msgs[1]["document"]["file_name"].endswith(".xlsx")
    parts: list[dict] = []
    while True:
        [m] = await harness.api.wait_for_bot_messages(harness.api.private_chat(coord), timeout=15)
        if "document" not in m:
            done = m
            break
        parts.append(m)
    assert len(parts) >= 2
    assert "个压缩包" in done["text"] and f"{len(parts)} 个压缩包" in done["text"]
    seen: dict[str, bytes] = {}
    for k, part in enumerate(parts, start=1):
        data = _document(harness, part)
        assert len(data) <= 100_000
        assert f"第{k}部分（共{len(parts)}部分）" in part["document"]["file_name"]
        assert f"第 {k}/{len(parts)} 部分" in part["caption"]
        seen.update({n: b for n, b in _zip_map_bytes(data).items() if n.endswith(".pdf")})
    assert sorted(hashlib.sha256(b).hexdigest() for b in seen.values()) == sorted(
        hashlib.sha256(b).hexdigest() for b in blobs.values())


async def test_status_sends_a_chart(harness) -> None:  # noqa: ANN001
    coord = await harness.coordinator("王主任")
    harness.api.mark(harness.api.private_chat(coord))
    await harness.api.send_text(coord, harness.api.private_chat(coord), "/status")
    await harness.api.wait_until(lambda: harness.api.calls_to("sendPhoto"), timeout=15,
                                 what="the /status chart")
    [call] = harness.api.calls_to("sendPhoto")
    assert call.ok
    photo = call.result["photo"][-1]
    data = harness.api.world.files[photo["file_id"]].data
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
