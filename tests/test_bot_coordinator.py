"""Coordinator commands that need no scoring, and the one error handler."""

from __future__ import annotations

import logging
from datetime import date

from sqlmodel import select

from bot.actions import onboarding
from models.tables import AuditLog, Task


async def test_deadline_extension_is_audited_with_its_reason_and_told_to_the_units(harness):
    coord = await harness.coordinator()
    group = await harness.bound_group(coord)
    li = await harness.liaison("李四", "区财政局", coordinator=coord)
    harness.api.mark(group)
    harness.api.mark(li)
    [ok] = await harness.say(coord, coord, "/deadline 7 2022-01-31 等待区政府常务会议审议")
    assert "任务7" in ok["text"] and "2021年12月31日 → 2022年1月31日" in ok["text"]
    assert "原因：等待区政府常务会议审议" in ok["text"]
    # The units it concerns are told, in the work group and privately.
    [in_group] = await harness.api.wait_for_bot_messages(group, 1)
    assert "任务7" in in_group["text"] and "区财政局" in in_group["text"] and "等待区政府常务会议审议" in in_group["text"]
    [privately] = await harness.api.wait_for_bot_messages(li, 1)
    assert "2022年1月31日" in privately["text"] and "等待区政府常务会议审议" in privately["text"]
    with harness.db() as s:
        task = s.exec(select(Task).where(Task.no == 7)).one()
        assert task.deadline == date(2022, 1, 31) and task.planned_deadline == date(2021, 12, 31)
        audit = s.exec(select(AuditLog).where(AuditLog.action == "task.deadline")).one()
        assert audit.before == {"deadline": "2021-12-31"} and audit.after == {"deadline": "2022-01-31"}
        assert audit.actor_telegram_id == coord.id and audit.note == "等待区政府常务会议审议"
    [card] = await harness.say(li, group, "/task 7")
    assert "2022年1月31日" in card["text"] and "12月31日" in card["text"]  # new and planned
    assert "完成时限调整原因：等待区政府常务会议审议" in card["text"]
    for text, expected in [
        ("/deadline 7 2021-01-01 太晚", "早于今天"),
        ("/deadline 7 2099-01-01 太晚", "晚于验收阶段结束（2022年4月1日）"),
        ("/deadline 7 2022-01-31 再次", "已经是 2022年1月31日"),
        ("/deadline 7 2022-02-30 原因", "没有这一天"),
        ("/deadline 7 明天 原因", "YYYY-MM-DD"),
        ("/deadline 77 2022-01-31 原因", "没有任务 77"),
        ("/deadline 7 2022-02-28", "请写明调整原因"),
        ("/deadline", "用法"),
    ]:
        [r] = await harness.say(coord, coord, text)
        assert expected in r["text"], (text, r["text"])
    [no] = await harness.say(li, group, "/deadline 7 2022-03-01 我想延期")
    assert "协调员" in no["text"]
    with harness.db() as s:
        assert s.exec(select(Task).where(Task.no == 7)).one().deadline == date(2022, 1, 31)


async def test_a_deadline_on_a_non_working_day_is_warned_and_the_next_working_day_offered(harness):
    coord = await harness.coordinator()
    [ok] = await harness.say(coord, coord, "/deadline 7 2022-02-01 春节前完成")  # 春节, a Tuesday
    assert "2022年2月1日（周二）不是工作日" in ok["text"] and "2022年2月7日（周一）" in ok["text"], ok["text"]
    [btn] = harness.api.buttons(ok)
    assert btn["text"].startswith("改为")
    answer = await harness.press(coord, ok, btn["callback_data"])
    assert answer["text"] == "已改为工作日"
    with harness.db() as s:
        task = s.exec(select(Task).where(Task.no == 7)).one()
        audits = s.exec(select(AuditLog).where(AuditLog.action == "task.deadline").order_by(AuditLog.id)).all()
    # The Spring Festival holiday ran to Sunday 6 February 2022: the next working day is the 7th.
    assert task.deadline == date(2022, 2, 7), task.deadline
    assert audits[-1].note == "春节前完成（改为工作日）"
    again = await harness.press(coord, ok, btn["callback_data"])  # the same button again: stale
    assert "过期" in again["text"]


async def test_task_view_and_unknown_numbers(harness):
    coord = await harness.coordinator()
    group = await harness.bound_group(coord)
    [card] = await harness.say(coord, group, "/task 5")
    assert "区财政局" in card["text"] and "区发改委" in card["text"] and "未开始" in card["text"]
    [miss] = await harness.say(coord, group, "/task 0")
    assert "没有任务 0" in miss["text"] and "1–19" in miss["text"]
    [nan] = await harness.say(coord, group, "/task abc")
    assert "不是任务号" in nan["text"]


async def test_user_text_is_escaped(harness):
    coord = await harness.coordinator()
    [r] = await harness.say(coord, coord, "/invite <b>不存在</b>")
    assert "<b>不存在</b>" in r["text"]  # shown literally, not as markup
    assert not any(e.get("type") == "bold" and r["text"][e["offset"]:e["offset"] + 3] == "不存在"
                   for e in r.get("entities", []))


async def test_error_handler_tells_the_user_without_internals(harness, caplog, monkeypatch):
    coord = await harness.coordinator()

    def broken(*args, **kwargs):
        raise RuntimeError("internal detail: table member")

    monkeypatch.setattr(onboarding, "whoami", broken)  # a bug inside a handler
    caplog.set_level(logging.ERROR, logger="bot.handlers")
    [oops] = await harness.say(coord, coord, "/whoami")
    assert oops["text"].startswith("😥 出错了")
    assert "Traceback" not in oops["text"] and "Error" not in oops["text"] and "table" not in oops["text"]
    record = next(r for r in caplog.records if r.name == "bot.handlers")
    assert f"from user {coord.id}" in record.getMessage() and "update " in record.getMessage()


async def test_an_answer_that_cannot_be_sent_is_logged_and_not_called_a_failed_action(harness, caplog):
    """The write committed; Telegram refusing the answer (a 500) is the bot's problem to log,
    not a "出错了，这次操作没有完成" for something that was done."""
    coord = await harness.coordinator()
    harness.api.faults.inject("sendMessage", chat_id=coord.id, kind="server_error", times=1)
    caplog.set_level(logging.ERROR, logger="bot.replies")
    await harness.api.send_text(coord, coord, "/whoami")
    await harness.idle()
    assert not [m for m in harness.api.sent_messages(coord)[-1:] if "出错了" in (m.get("text") or "")]
    assert any("could not be sent" in r.getMessage() for r in caplog.records if r.name == "bot.replies")
    [ok] = await harness.say(coord, coord, "/whoami")  # the next one goes through
    assert "Telegram ID" in ok["text"]


async def test_a_coordinators_own_submission_is_approved_by_another(harness):
    """Four eyes (models.members.check_second_reviewer): with two coordinators, the one who
    handed a task in cannot approve it; the other can."""
    from models.members import OWN_WORK
    from models.tables import Role

    first = await harness.coordinator("王主任")
    second = harness.api.make_user("赵副主任")
    harness.add_member(second, Role.coordinator)
    [done] = await harness.say(first, first, "/done 6")
    assert "已提交完成" in done["text"], done["text"]

    async def approve_button(who):
        cards = await harness.say(who, who, "/review", count=2)
        card = next(m for m in cards if "任务6" in (m.get("text") or ""))
        data = next(b["callback_data"] for b in harness.api.buttons(card) if b["callback_data"].startswith("a:ok"))
        return card, data

    card, data = await approve_button(first)
    refused = await harness.press(first, card, data)
    assert refused["show_alert"] and refused["text"] == OWN_WORK
    card, data = await approve_button(second)
    assert (await harness.press(second, card, data))["text"] == "已通过"


async def test_a_one_person_office_may_approve_its_own_submission_only_if_configured(harness):
    import pytest

    from models.errors import PermissionDenied
    from models.members import OWN_WORK_ALONE, check_second_reviewer

    await harness.coordinator("王主任")
    with harness.db() as s:
        from sqlmodel import select as sel

        from models.tables import Member, Role
        me = s.exec(sel(Member).where(Member.role == Role.coordinator)).one()
        check_second_reviewer(s, reviewer_member_id=me.id, submitter_member_id=me.id,
                              campaign_id=harness.campaign_id, alone_may_self_review=True)
        with pytest.raises(PermissionDenied, match="self_review_when_alone") as exc:
            check_second_reviewer(s, reviewer_member_id=me.id, submitter_member_id=me.id,
                                  campaign_id=harness.campaign_id, alone_may_self_review=False)
        assert str(exc.value.message) == OWN_WORK_ALONE
        # Somebody else's work: always fine.
        check_second_reviewer(s, reviewer_member_id=me.id, submitter_member_id=None,
                              campaign_id=harness.campaign_id, alone_may_self_review=False)


async def test_mytasks_pages_the_most_urgent_first(harness):
    """A unit with many open items gets them 15 a page, 下一页 / 上一页 in place (private)."""
    import re

    from bot.actions.reading import MYTASKS_PAGE

    coord = await harness.coordinator()
    li = await harness.liaison("监管小李", "区市场监管局", coordinator=coord)  # the lead unit: many items
    [first] = await harness.say(li, li, "/mytasks")
    total = int(re.search(r"（(\d+) 项", first["text"]).group(1))
    assert total > MYTASKS_PAGE, first["text"]
    pages = -(-total // MYTASKS_PAGE)
    assert f"第 1/{pages} 页" in first["text"] and "另有" not in first["text"]
    numbers = [int(n) for n in re.findall(r"^(\d+)\. ", first["text"], flags=re.M)]
    assert numbers == list(range(1, MYTASKS_PAGE + 1))
    nxt = next(b for b in harness.api.buttons(first) if b["text"].startswith("下一页"))
    await harness.press(li, first, nxt["callback_data"])
    await harness.idle()
    second = harness.api.message(li, first["message_id"])  # edited in place
    assert f"第 2/{pages} 页" in second["text"]
    assert re.search(rf"^{MYTASKS_PAGE + 1}\. ", second["text"], flags=re.M)
    assert any(b["text"].startswith("◀ 上一页") for b in harness.api.buttons(second))


async def test_review_cards_show_the_evidence_behind_a_claim_or_warn_without(harness):
    coord = await harness.coordinator()
    li = await harness.liaison("监管小李", "区市场监管局", coordinator=coord)
    [prompt] = await harness.say(li, li, "/evidence 11.1")
    pdf = b"%PDF-1.4\n" + b"7" * 512 + b"\n%%EOF\n"
    [ok] = await harness.send_file(li, li, "计量工作方案.pdf", pdf, reply_to=prompt, mime_type="application/pdf")
    assert "已收到" in ok["text"], ok["text"]
    for ref in ("11.1", "11.2"):
        [claimed] = await harness.say(li, li, f"/claim {ref}")
        assert "已申报达标" in claimed["text"], claimed["text"]
    cards = await harness.say(coord, coord, "/review", count=3)
    with_file = next(m["text"] for m in cards if "细则 11.1" in (m.get("text") or ""))
    without = next(m["text"] for m in cards if "细则 11.2" in (m.get("text") or ""))
    assert "📎 证明材料 1 份：《计量工作方案.pdf》" in with_file, with_file
    assert "⚠️ 没有附证明材料。" in without, without
