"""The whole story through the stand-in and the real application.

Bootstrap a coordinator, bind the group, invite two liaisons of different units;
each reports by reply and by command; one uploads evidence, one claims a
criterion; the coordinator approves one and returns the other with a reason;
/status shows the changed score. Then the refusals: another unit's task, a
stranger in the group, a forged button, a stale button, bad input.
"""

from __future__ import annotations

import pytest
from sqlmodel import select

from models.tables import (
    Assessment,
    AssessmentState,
    Assignment,
    AssignmentState,
    AuditLog,
    Task,
)

pytest.importorskip("models.progress", reason="progress rules not installed yet")
pytest.importorskip("models.status", reason="status/scoring not installed yet")

PDF = b"%PDF-1.4\n" + b"1" * 1024 + b"\n%%EOF\n"


def _assignment(harness, task_no: int, unit: str) -> Assignment:
    unit_id = harness.unit(unit).id
    with harness.db() as s:
        task = s.exec(select(Task).where(Task.campaign_id == harness.campaign_id, Task.no == task_no)).one()
        return s.exec(select(Assignment).where(Assignment.task_id == task.id, Assignment.unit_id == unit_id)).one()


def _status_text(messages) -> str:
    return "\n".join(m.get("text") or "" for m in messages)


async def _status(harness, coord) -> str:
    """/status in the coordinator's private chat: the text of every answer."""
    seen = len(harness.api.sent_messages(coord))
    await harness.api.send_text(coord, harness.api.private_chat(coord), "/status")
    await harness.api.wait_for_bot_messages(coord)
    # The chart follows the text (rendering it takes a moment with no request in flight).
    await harness.api.wait_until(lambda: any("photo" in m for m in harness.api.sent_messages(coord)[seen:]),
                                 what="the /status chart")
    await harness.idle()
    harness.api.mark(coord)
    return _status_text(harness.api.sent_messages(coord)[seen:])


async def test_the_whole_story(harness):
    api = harness.api
    coord = await harness.coordinator("王主任")
    group = await harness.bound_group(coord)
    li = await harness.liaison("李四", "财政局", coordinator=coord)       # 区财政局: task 7 alone
    zh = await harness.liaison("赵六", "区住建局", coordinator=coord)     # 区住建局: task 8 (with others), item 15

    before = await _status(harness, coord)
    assert before.strip()

    # --- 李四 reports by reply: /mytasks → the card of task 7 → reply "进度 60%"
    [lst] = await harness.say(li, group, "/mytasks")
    assert "区财政局" in lst["text"] and "任务7" in lst["text"]
    data = next(b["callback_data"] for b in api.buttons(lst) if b["text"] == "任务7")
    api.mark(group)
    await harness.press(li, lst, data)
    [card] = await api.wait_for_bot_messages(group)
    [line] = await harness.say(li, group, "进度 60%", reply_to=card)
    assert line["text"].startswith("✅ 区财政局 · 任务7") and "60%" in line["text"] and "进行中" in line["text"]
    assert _assignment(harness, 7, "区财政局").percent == 60
    [full] = await harness.say(li, group, "６５％", reply_to=line)           # full-width, replying to the confirmation
    assert "65%" in full["text"]
    [note] = await harness.say(li, group, "资金方案已报区政府审定", reply_to=full)
    assert "进展说明" in note["text"]
    assert _assignment(harness, 7, "区财政局").note == "资金方案已报区政府审定"

    # --- 赵六 reports by command, then by replying "完成" to the task card
    [cmd] = await harness.say(zh, group, "/progress 8 50 培训方案已定")
    assert "区住建局 · 任务8" in cmd["text"] and "50%" in cmd["text"]
    [task8] = await harness.say(zh, group, "/task 8")
    [done8] = await harness.say(zh, group, "完成", reply_to=task8)
    assert "区住建局 · 任务8" in done8["text"] and "已提交" in done8["text"]
    assert _assignment(harness, 8, "区住建局").state == AssignmentState.submitted

    # --- 李四: /done 7 and evidence for it
    [d7] = await harness.say(li, group, "/done 7")
    assert "已提交" in d7["text"]
    [ev] = await harness.send_file(li, group, "专项资金设立文件.pdf", PDF, reply_to=d7, mime_type="application/pdf")
    assert "已收到" in ev["text"]

    # --- 赵六 claims criterion 15.1
    [cl] = await harness.say(zh, group, "/claim 15.1 验收合格率100%")
    assert "细则 15.1" in cl["text"] and "待协调员审核" in cl["text"]

    # --- refusals
    [other] = await harness.say(li, group, "/progress 8 90")
    assert "不属于你的单位" in other["text"]
    [other2] = await harness.say(li, group, "完成", reply_to=done8)
    assert "不属于你的单位" in other2["text"]
    stranger = api.make_user("路人")
    [st] = await harness.say(stranger, group, "/done 7")
    assert "不是本活动的成员" in st["text"]
    [bad] = await harness.say(li, group, "/progress 7 150")
    assert "0–100" in bad["text"]
    [bad2] = await harness.say(li, group, "/progress 99 50")
    assert "没有任务 99" in bad2["text"]
    [bad3] = await harness.say(li, group, "进度 abc", reply_to=d7)
    assert "不是数字" in bad3["text"]
    [bad4] = await harness.say(zh, group, "/claim 99.1")
    assert "没有评分项 99" in bad4["text"]
    [bad5] = await harness.say(zh, group, "说明" * 300, reply_to=cmd)
    assert "太长" in bad5["text"]
    assert _assignment(harness, 7, "区财政局").state == AssignmentState.submitted

    # --- the coordinator reviews in private
    api.mark(coord)
    await api.send_text(coord, api.private_chat(coord), "/review")

    def cards() -> list[str]:
        return [m["text"].split("\n")[0] for m in api.sent_messages(coord)[-6:] if api.buttons(m)]

    # The queue's cards go out one by one (within the bot's overall send budget): wait for them.
    await api.wait_until(lambda: sum(any(w in k for k in cards()) for w in ("任务7", "任务8", "细则 15.1")) == 3,
                         what="the review queue's three cards")
    await harness.idle()
    queue = api.sent_messages(coord)[-6:]
    by_text = {m["text"].split("\n")[0]: m for m in queue if api.buttons(m)}
    t7 = next(m for k, m in by_text.items() if "任务7" in k)
    t8 = next(m for k, m in by_text.items() if "任务8" in k)
    c15 = next(m for k, m in by_text.items() if "细则 15.1" in k)
    ok7 = next(b["callback_data"] for b in api.buttons(t7) if "通过" in b["text"])
    rt8 = next(b["callback_data"] for b in api.buttons(t8) if "退回" in b["text"])
    ok15 = next(b["callback_data"] for b in api.buttons(c15) if "通过" in b["text"])

    # a forged button (right shape, wrong version) changes nothing
    a7 = _assignment(harness, 7, "区财政局")
    forged = await harness.press(coord, t7, f"a:ok:{a7.id}:v{a7.version + 7}", strict=False)
    assert forged["show_alert"] and "过期" in forged["text"]
    assert _assignment(harness, 7, "区财政局").state == AssignmentState.submitted

    # approve task 7: 李四 is told privately
    assert (await harness.press(coord, t7, ok7))["text"] == "已通过"
    await harness.idle()
    assert _assignment(harness, 7, "区财政局").state == AssignmentState.approved
    assert any("任务7" in m["text"] and "通过" in m["text"] for m in api.sent_messages(li))
    # the same button again is stale
    stale = await harness.press(coord, t7, ok7, strict=False)
    assert "过期" in stale["text"] or "已处理过" in stale["text"]

    # return task 8 with a reason (ForceReply), 赵六 is told the reason
    api.mark(coord)
    await harness.press(coord, t8, rt8)
    [ask] = await api.wait_for_bot_messages(coord)
    assert "退回" in ask["text"] and "原因" in ask["text"]
    [ret] = await harness.say(coord, coord, "请补充培训签到表<和照片>", reply_to=ask)
    assert "已退回" in ret["text"] and "&lt;" not in ret["text"] and "<和照片>" in ret["text"]
    await harness.idle()
    a8 = _assignment(harness, 8, "区住建局")
    assert a8.state != AssignmentState.submitted and a8.return_reason == "请补充培训签到表<和照片>"
    assert any("请补充培训签到表" in m["text"] for m in api.sent_messages(zh))

    # verify the claim: the score changes
    assert (await harness.press(coord, c15, ok15))["text"] == "已通过"
    await harness.idle()
    with harness.db() as s:
        assert s.exec(select(Assessment)).one().state == AssessmentState.verified
    after = await _status(harness, coord)
    assert after != before

    # drill-downs, and a leader who may read but not write
    [unit] = (await harness.say(coord, coord, "/unit 住建局"))
    assert "区住建局" in unit["text"]
    item = await harness.say(coord, coord, "/item 15")
    assert "15" in item[-1]["text"] and any("15.1" in b["text"] for b in api.buttons(item[-1]))
    link = await harness.invite_link(coord, "领导")
    boss = api.make_user("区长")
    await harness.say(boss, boss, f"/start {link.split('start=')[1]}")
    assert (await _status(harness, boss)).strip()
    [ro] = await harness.say(boss, boss, "/progress 7 10")
    assert "只读" in ro["text"]

    # every write was audited: who, what, before, after, when
    with harness.db() as s:
        rows = s.exec(select(AuditLog).where(AuditLog.actor_kind == "telegram")).all()
    assert len(rows) >= 8
    assert all(r.at is not None and r.actor_telegram_id for r in rows)
