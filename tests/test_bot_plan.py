"""The plan in the chat (issue 16) through the stand-in: /plan's workbook sent back with a change,
the preview and its 确认导入; the in-chat edits; approving a linked task offers its criteria."""

from __future__ import annotations

import io
from datetime import date

from openpyxl import load_workbook
from sqlmodel import select

from models.tables import (
    Assessment,
    AssessmentState,
    AuditLog,
    Criterion,
    Evidence,
    ScoreItem,
    Task,
    Unit,
)
from tests.harness import Harness

PDF = b"%PDF-1.4\n" + b"7" * 2048 + b"\n%%EOF\n"


def _changed(data: bytes) -> bytes:
    wb = load_workbook(io.BytesIO(data))
    tasks = wb["任务"]
    row = next(r for r in range(2, tasks.max_row + 1) if tasks.cell(r, 1).value == 7)
    tasks.cell(row, 7).value = "2022-01-28"
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


async def test_plan_workbook_sent_back_is_previewed_then_applied_on_confirm(harness: Harness) -> None:
    h = harness
    coord = await h.coordinator()
    group = await h.bound_group(coord)
    li = await h.liaison("李四", "区财政局", coordinator=coord)
    [book] = await h.say(coord, coord, "/plan")
    assert book["document"]["file_name"].endswith(".xlsx") and "回复本消息" in book["caption"]
    data = h.api.world.files[book["document"]["file_id"]].data
    # Not from a liaison, not a stray file: a liaison's /plan is refused.
    [no] = await h.say(li, li, "/plan")
    assert "只有协调员" in no["text"]
    [preview] = await h.send_file(coord, coord, "工作计划.xlsx", _changed(data), reply_to=book,
                                  mime_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
    assert "任务7：完成时限 2021年12月31日 → 2022年1月28日" in preview["text"], preview["text"]
    assert "尚未生效" in preview["text"]
    with h.db() as s:
        assert s.exec(select(Task).where(Task.no == 7)).one().deadline == date(2021, 12, 31)
    [ok, cancel] = h.api.buttons(preview)
    assert ok["text"] == "✅ 确认导入"
    h.api.mark(coord)
    h.api.mark(group)
    h.api.mark(li)
    answer = await h.press(coord, preview, ok["callback_data"])
    assert answer["text"] == "已导入"
    with h.db() as s:
        task7 = s.exec(select(Task).where(Task.no == 7)).one()
        assert (task7.deadline, task7.planned_deadline) == (date(2022, 1, 28), date(2021, 12, 31))
        assert s.exec(select(AuditLog).where(AuditLog.action == "plan.apply")).one()
    # The moved deadline reaches 区财政局 as /deadline's does, with its reason.
    [in_group] = await h.api.wait_for_bot_messages(group)
    [privately] = await h.api.wait_for_bot_messages(li)
    for notice in (in_group, privately):
        assert "任务7 完成时限已延长：2021年12月31日 → 2022年1月28日" in notice["text"], notice["text"]
        assert "原因：按协调员导入的工作计划调整" in notice["text"]
    # The same preview pressed again changes nothing more.
    again = await h.press(coord, preview, ok["callback_data"], strict=False)
    assert again.get("show_alert") and "已经处理过" in again["text"]
    # The old workbook sent back again would undo what changed since: refused.
    [stale] = await h.send_file(coord, coord, "工作计划.xlsx", _changed(data), reply_to=book,
                                mime_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
    assert "导出后，工作计划已有其他修改" in stale["text"], stale["text"]
    # A workbook with a mistake is refused with the cell named; nothing changes.
    [book] = await h.say(coord, coord, "/plan")
    data = h.api.world.files[book["document"]["file_id"]].data
    wb = load_workbook(io.BytesIO(data))
    wb["任务"].cell(8, 7).value = "年底前"
    bad = io.BytesIO()
    wb.save(bad)
    [refused] = await h.send_file(coord, coord, "工作计划.xlsx", bad.getvalue(), reply_to=book,
                                  mime_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
    assert "任务表 G8：日期格式不对" in refused["text"], refused["text"]


async def test_in_chat_edits_and_their_refusals(harness: Harness) -> None:
    h = harness
    coord = await h.coordinator()
    [added] = await h.say(coord, coord, "/addunit 红光街道 街道")
    assert "已添加单位“红光街道”（街道）" in added["text"] and "/invite 红光街道" in added["text"]
    [assigned] = await h.say(coord, coord, "/assign 10.1 区市场监管局")
    assert "细则10.1：增加责任单位 区市场监管局" in assigned["text"], assigned["text"]
    [waived] = await h.say(coord, coord, "/waive 19.2 本区未开展生活性服务业满意度测评")
    assert "计为已失分" in waived["text"]
    [moved] = await h.say(coord, coord, "/taskunits 7 区财政局、红光街道")
    assert "任务7：增加责任单位 红光街道" in moved["text"]
    [card] = await h.say(coord, coord, "/item 19")
    assert "本区未开展生活性服务业满意度测评" in card["text"], card["text"]
    with h.db() as s:
        c192 = s.exec(select(Criterion).join(ScoreItem, ScoreItem.id == Criterion.item_id)
                      .where(ScoreItem.no == 19, Criterion.no == 2)).one()
        assert c192.not_attainable and c192.not_attainable_reason == "本区未开展生活性服务业满意度测评"
    for text, said in [
        ("/addunit", "用法"), ("/addunit 红光街道", "已有单位"), ("/addunit 某所 乡镇", "单位类型"),
        ("/assign 10.9 区财政局", "没有细则"), ("/assign 10.1", "用法"), ("/waive 10.1", "请写明放弃的原因"),
        ("/taskunits 77 区财政局", "没有任务 77"), ("/taskunits 7 区不存在局", "没有找到单位“区不存在局”"),
    ]:
        [r] = await h.say(coord, coord, text)
        assert said in r["text"], (text, r["text"])
    with h.db() as s:
        street = s.exec(select(Unit).where(Unit.name == "红光街道")).one()
        assert str(street.kind) == "街道"


async def test_approving_a_linked_task_offers_its_criteria_with_the_evidence(harness: Harness) -> None:
    h = harness
    coord = await h.coordinator()
    group = await h.bound_group(coord)
    li = await h.liaison("李四", "区财政局", coordinator=coord)
    [card] = await h.say(li, group, "/task 7")
    assert "关联评分细则：细则7.1、细则7.2" in card["text"], card["text"]
    [item] = await h.say(li, group, "/item 7")
    assert "细则7.1 ↔ 任务7" in item["text"]
    [filed] = await h.send_file(li, group, "专项资金文件.pdf", PDF, reply_to=card, mime_type="application/pdf")
    assert "已收到" in filed["text"]
    [done] = await h.say(li, group, "完成", reply_to=card)
    assert "已提交" in done["text"]
    queue = await h.say(coord, coord, "/review", count=2)
    review = next(m for m in queue if h.api.buttons(m))
    ok = next(b for b in h.api.buttons(review) if b["callback_data"].startswith("a:ok:"))
    h.api.mark(li)
    await h.press(coord, review, ok["callback_data"])
    [told] = await h.api.wait_for_bot_messages(li)
    assert "已审核通过" in told["text"] and "一并申报" in told["text"]
    offers = h.api.buttons(told)
    assert [b["text"] for b in offers] == ["✋ 申报细则7.1（附任务材料）", "✋ 申报细则7.2（附任务材料）"]
    h.api.mark(li)
    await h.press(li, told, offers[0]["callback_data"])
    [claimed] = await h.api.wait_for_bot_messages(li)
    assert "细则7.1 已申报达标，已附任务7的证明材料 1 份" in claimed["text"], claimed["text"]
    with h.db() as s:
        crit = s.exec(select(Criterion).join(ScoreItem, ScoreItem.id == Criterion.item_id)
                      .where(ScoreItem.no == 7, Criterion.no == 1)).one()
        assert s.exec(select(Assessment).where(Assessment.criterion_id == crit.id)).one().state == AssessmentState.claimed
        assert len(s.exec(select(Evidence).where(Evidence.criterion_id == crit.id)).all()) == 1
    # Pressed again: already claimed, nothing more.
    again = await h.press(li, told, offers[0]["callback_data"], strict=False)
    assert again.get("show_alert") and "已申报" in again["text"]


async def test_a_workbook_sent_without_a_reply_is_pointed_to_the_plan_message(harness: Harness) -> None:
    h = harness
    coord = await h.coordinator()
    [said] = await h.send_file(coord, coord, "工作计划.xlsx", b"PK\x03\x04" + b"0" * 100,
                               mime_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
    assert "回复" in said["text"] and "/plan" in said["text"], said["text"]
