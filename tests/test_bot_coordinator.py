"""Coordinator commands that need no scoring, and the one error handler."""

from __future__ import annotations

import logging
from datetime import date

from sqlmodel import select

from bot.actions import onboarding
from models.tables import AuditLog, Task


async def test_deadline_extension_is_audited(harness):
    coord = await harness.coordinator()
    group = await harness.bound_group(coord)
    li = await harness.liaison("李四", "区财政局", coordinator=coord)
    [ok] = await harness.say(coord, coord, "/deadline 7 2022-01-31")
    assert "任务7" in ok["text"] and "2021年12月31日 → 2022年1月31日" in ok["text"]
    with harness.db() as s:
        task = s.exec(select(Task).where(Task.no == 7)).one()
        assert task.deadline == date(2022, 1, 31) and task.planned_deadline == date(2021, 12, 31)
        audit = s.exec(select(AuditLog).where(AuditLog.action == "task.deadline")).one()
        assert audit.before == {"deadline": "2021-12-31"} and audit.after == {"deadline": "2022-01-31"}
        assert audit.actor_telegram_id == coord.id
    [card] = await harness.say(li, group, "/task 7")
    assert "2022年1月31日" in card["text"] and "12月31日" in card["text"]  # new and planned
    for text, expected in [
        ("/deadline 7 2021-01-01", "早于今天"),
        ("/deadline 7 2099-01-01", "晚于验收阶段结束（2022年4月1日）"),
        ("/deadline 7 2022-01-31", "已经是 2022年1月31日"),
        ("/deadline 7 2022-02-30", "没有这一天"),
        ("/deadline 7 明天", "YYYY-MM-DD"),
        ("/deadline 77 2022-01-31", "没有任务 77"),
        ("/deadline", "用法"),
    ]:
        [r] = await harness.say(coord, coord, text)
        assert expected in r["text"], (text, r["text"])
    [no] = await harness.say(li, group, "/deadline 7 2022-03-01")
    assert "协调员" in no["text"]
    with harness.db() as s:
        assert s.exec(select(Task).where(Task.no == 7)).one().deadline == date(2022, 1, 31)


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
