"""The supervision loop end to end (issue 15): 批示, 督办单, the 通报 and its DOCX, the 月报.

Through the stand-in into the real application, on the imported seed (2021 dates).
"""

from __future__ import annotations

import io
from datetime import date, datetime, timedelta

import docx
from sqlmodel import select

from models.tables import (
    AuditLog,
    Instruction,
    InstructionState,
    Supervision,
    SupervisionState,
)
from tests.harness import TZ, Harness

MONDAY = datetime(2021, 12, 27, 9, 30, tzinfo=TZ)


async def _cast(h: Harness):  # type: ignore[no-untyped-def]
    coord = await h.coordinator()
    group = await h.bound_group(coord)
    li = await h.liaison("李四", "区财政局", coordinator=coord)
    leader = h.api.make_user("孙区长")
    h.add_member(leader, "leader")
    await h.say(leader, leader, "/start")
    return coord, group, li, leader


def _audits(h: Harness, prefix: str) -> list[AuditLog]:
    with h.db() as s:
        return list(s.exec(select(AuditLog).where(AuditLog.action.startswith(prefix))))  # type: ignore[attr-defined]


async def test_a_leaders_instruction_by_reply_reaches_the_unit_and_the_answer_closes_the_loop(harness: Harness):
    h = harness
    coord, group, li, leader = await _cast(h)
    [card] = await h.say(coord, group, "/task 7")
    h.api.mark(li)
    h.api.mark(coord)
    [ok] = await h.say(leader, group, "请抓紧推进，本周内报送进展。", reply_to=card)
    assert "批示已记录" in ok["text"] and "区财政局" in ok["text"], ok["text"]
    with h.db() as s:
        inst = s.exec(select(Instruction)).one()
    assert inst.state == InstructionState.open and inst.task_id is not None
    # 2021-11-01 (Monday) + 3 working days
    assert inst.answer_by == date(2021, 11, 4)
    [private] = await h.api.wait_for_bot_messages(li, 1)
    assert "请抓紧推进" in private["text"] and "2021年11月4日" in private["text"]
    await h.idle()
    in_group = [m for m in h.api.sent_messages(group) if "领导批示" in (m.get("text") or "")]
    assert in_group and "李四" in in_group[-1]["text"]
    [to_coord] = await h.api.wait_for_bot_messages(coord, 1)
    assert "请抓紧推进" in to_coord["text"]

    # The unit answers by replying to the 批示: 已答复; the leader is told.
    h.api.mark(leader)
    [thanks] = await h.say(li, li, "已完成初稿，正在征求意见。", reply_to=private)
    assert "已报送" in thanks["text"], thanks["text"]
    [told] = await h.api.wait_for_bot_messages(leader, 1)
    assert "已完成初稿" in told["text"] and "办结" in told["text"]
    with h.db() as s:
        assert s.get(Instruction, inst.id).state == InstructionState.answered
    # The leader closes it by replying “办结”: 已办结; the unit and the coordinator hear it.
    h.api.mark(li)
    h.api.mark(coord)
    [closed] = await h.say(leader, leader, "办结", reply_to=told)
    assert "已办结" in closed["text"], closed["text"]
    for who in (li, coord):
        [heard] = await h.api.wait_for_bot_messages(who, 1)
        assert "已办结" in heard["text"] and "请抓紧推进" in heard["text"], heard["text"]
    with h.db() as s:
        assert s.get(Instruction, inst.id).state == InstructionState.closed
    assert {a.action for a in _audits(h, "instruction.")} == {
        "instruction.create", "instruction.answer", "instruction.close"}


async def test_bad_instructions_change_nothing(harness: Harness):
    h = harness
    coord, group, li, leader = await _cast(h)
    for text, expected in [
        ("/instruct", "批示内容不能为空"),
        ("/instruct 7", "批示内容不能为空"),
        ("/instruct 7    ", "批示内容不能为空"),
        ("/instruct 99 请推进", "没有任务 99"),
        ("/close 1", "没有找到这条批示"),
    ]:
        [r] = await h.say(leader, leader, text)
        assert expected in r["text"], (text, r["text"])
    [no] = await h.say(li, li, "/instruct 7 我来批示")
    assert "⚠️" in no["text"]
    [card] = await h.say(coord, group, "/task 7")
    [empty] = await h.say(leader, group, "   ", reply_to=card, count=0) or [None]
    assert not _audits(h, "instruction.")
    with h.db() as s:
        assert not s.exec(select(Instruction)).all()


async def test_supervision_notices_are_numbered_per_year_answered_and_closed(harness: Harness):
    h = harness
    coord, group, li, leader = await _cast(h)
    h.api.mark(li)
    h.api.mark(leader)
    for text, expected in [
        ("/supervise 7 区发改委 逾期未报送 2021-11-15", "区发改委不负责任务7"),
        ("/supervise 7 区财政局 逾期未报送 2021-10-15", "答复期限须晚于今天"),
        ("/supervise 7 区财政局 2021-11-15", "请写明督办原因"),
        ("/supervise 7 区财政局 逾期 2021-13-15", "没有这一天"),
    ]:
        [r] = await h.say(coord, coord, text)
        assert expected in r["text"], (text, r["text"])
    assert not _audits(h, "supervision.")
    [first] = await h.say(coord, coord, "/supervise 7 区财政局 进度滞后 请说明原因 2021-11-15")
    assert "质强督〔2021〕1号" in first["text"], first["text"]
    assert "不是工作日" not in first["text"]
    # A year-less date is the next one; a Saturday is warned about (as /deadline does).
    [second] = await h.say(coord, coord, "/supervise 14 区财政局 尚未启动 11月13日")
    assert "质强督〔2021〕2号" in second["text"], second["text"]
    assert "2021年11月13日（周六）不是工作日" in second["text"] and "2021年11月15日（周一）" in second["text"]
    notices = await h.api.wait_for_bot_messages(li, 2)
    assert "质强督〔2021〕1号" in notices[0]["text"] and "进度滞后 请说明原因" in notices[0]["text"]
    copies = await h.api.wait_for_bot_messages(leader, 2)
    assert all("抄送" in c["text"] for c in copies)
    h.api.mark(coord)
    await h.say(li, li, "已召开专题会议，11月10日前报送。", reply_to=notices[0])
    [to_coord] = await h.api.wait_for_bot_messages(coord, 1)
    assert "质强督〔2021〕1号" in to_coord["text"]
    [done] = await h.say(coord, coord, "办结", reply_to=to_coord)
    assert "已办结" in done["text"]
    with h.db() as s:
        states = {x.seq: x.state for x in s.exec(select(Supervision))}
    assert states == {1: SupervisionState.closed, 2: SupervisionState.issued}
    [st] = (await h.say(coord, coord, "/unit 区财政局"))[-1:]
    assert "质强督〔2021〕2号" in st["text"] and "已下发" in st["text"]
    # The ledger: a 督办单 sheet with both, a 考核 sheet, the 任务表's dates.
    from reports.ledger import (
        SHEET_RANKING,
        SHEET_SUPERVISIONS,
        SHEET_TASKS,
        build_workbook,
        load_ledger,
    )

    book = build_workbook(load_ledger(h.engine, now=h.clock(), campaign_id=h.campaign_id))
    numbers = [row[0].value for row in book[SHEET_SUPERVISIONS].iter_rows(min_row=3) if row[0].value]
    assert "质强督〔2021〕1号" in numbers and "质强督〔2021〕2号" in numbers, numbers
    assert book[SHEET_RANKING].max_row > 3
    heads = [c.value for c in next(r for r in book[SHEET_TASKS].iter_rows() if r[0].value == "序号")]
    assert heads[-3:] == ["实际提交日期", "审核通过日期", "逾期天数"]


async def test_the_bulletin_is_previewed_then_issued_with_its_document(harness: Harness):
    h = harness
    coord, group, li, leader = await _cast(h)
    h.clock.set(MONDAY + timedelta(days=14))  # 2022-01-10: the December tasks are overdue
    [preview] = await h.say(coord, coord, "/bulletin")
    assert "工作通报" in preview["text"] and "预览" in preview["text"]
    assert not _audits(h, "bulletin.")
    h.api.mark(group)
    h.api.mark(leader)
    await h.say(coord, coord, "/bulletin 发布 表扬 区财政局", count=2)
    [in_group_text, in_group_doc] = await h.api.wait_for_bot_messages(group, 2)
    assert "予以表扬：区财政局" in in_group_text["text"]
    name = in_group_doc["document"]["file_name"]
    assert name.endswith(".docx")
    data = h.api.world.files[in_group_doc["document"]["file_id"]].data
    doc = docx.Document(io.BytesIO(data))
    assert doc.tables and doc.tables[0].rows[0].cells[0].text == "名次"
    assert any("各责任单位" in p.text for p in doc.paragraphs)
    await h.api.wait_for_bot_messages(leader, 2)
    assert [a.action for a in _audits(h, "bulletin.")] == ["bulletin.issue"]


# ============================================================ the scheduler


async def test_an_unanswered_instruction_is_nudged_on_the_first_working_day_after_its_date(harness: Harness):
    from scheduler import run_once
    from tests.test_scheduler_fixtures import fast_config

    h = harness
    coord, group, li, leader = await _cast(h)
    h.clock.set(MONDAY)  # 2021-12-27: answer within 3 working days → by Thursday 12-30
    [ok] = await h.say(leader, leader, "/instruct 7 请于本周内报送进展")
    assert "2021年12月30日" in ok["text"], ok["text"]
    said = []
    for day in (3, 4):  # Thursday 12-30: not yet; Friday 12-31: nudged
        h.api.mark(group)
        await run_once(engine=h.engine, bot=h.app.bot, now=MONDAY + timedelta(days=day), config=fast_config())
        await h.idle()
        said.append(" ".join(m.get("text") or "" for m in h.api.sent_messages(group)))
    assert "尚未报送落实情况" not in said[0] and "批示待报送落实情况 1 件" in said[0]
    assert "批示第1号" in said[1] and "尚未报送落实情况" in said[1], said[1]


async def test_the_monthly_report_goes_to_the_leaders_once_a_month_across_restarts(harness: Harness):
    from scheduler import run_once
    from tests.test_scheduler_fixtures import fast_config

    h = harness
    coord, group, li, leader = await _cast(h)
    first = datetime(2022, 1, 4, 9, 30, tzinfo=TZ)  # 1–3 January are 元旦 holidays
    h.api.mark(leader)
    for moment in (first, first, first + timedelta(hours=2), first + timedelta(days=1)):
        # Each run starts from the database alone, as after a restart.
        await run_once(engine=h.engine, bot=h.app.bot, now=moment, config=fast_config())
        await h.idle()
    reports = [m for m in h.api.sent_messages(leader) if "工作月报" in (m.get("text") or "")]
    assert len(reports) == 1, [m.get("text") for m in h.api.sent_messages(leader)]
    assert "2022年1月" in reports[0]["text"] and "本月到期的任务" in reports[0]["text"]
    documents = [m for m in h.api.sent_messages(leader) if "月报" in (m.get("document") or {}).get("file_name", "")]
    assert len(documents) == 1
    doc = docx.Document(io.BytesIO(h.api.world.files[documents[0]["document"]["file_id"]].data))
    assert any("进度滞后的单位" in p.text for p in doc.paragraphs)


async def test_the_weekly_digest_carries_the_bulletin_and_the_leaders_get_it_with_its_document(harness: Harness):
    from scheduler import run_once
    from tests.test_scheduler_fixtures import fast_config

    h = harness
    coord, group, li, leader = await _cast(h)
    monday = datetime(2022, 1, 10, 9, 30, tzinfo=TZ)
    h.api.mark(group)
    h.api.mark(leader)
    for moment in (monday, monday + timedelta(hours=1)):
        await run_once(engine=h.engine, bot=h.app.bot, now=moment, config=fast_config(digest_bulletin=True))
        await h.idle()
    weekly = [m for m in h.api.sent_messages(group) if "工作通报（第1期）" in (m.get("text") or "")]
    assert len(weekly) == 1 and "每周进展" in weekly[0]["text"], [m.get("text", "")[:300] for m in h.api.sent_messages(group)]
    to_leader = [m for m in h.api.sent_messages(leader) if "工作通报（第1期）" in (m.get("text") or "")]
    assert len(to_leader) == 1
    assert [m for m in h.api.sent_messages(leader) if (m.get("document") or {}).get("file_name", "").endswith(".docx")]
