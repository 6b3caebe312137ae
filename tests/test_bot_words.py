"""How officials write, through the real stack (issue 17): percentages as people type them, 100%
with its one-press hand-in, claims with a note, replies to a reminder listing several tasks,
files sent without a reply, photos with a recognisable name."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import select

from models.owners import responsible_unit_ids
from models.tables import (
    Assessment,
    AssessmentState,
    Assignment,
    AssignmentState,
    Criterion,
    Evidence,
    ScoreItem,
    Task,
    Unit,
)
from scheduler import run_once
from scheduler.outbox import assignments_of_message
from tests.harness import TZ, Harness
from tests.test_scheduler_fixtures import fast_config

PDF = b"%PDF-1.4\n" + b"0" * 2048 + b"\n%%EOF\n"
JPEG = bytes.fromhex("ffd8ffe000104a46494600010100000100010000ffdb004300") + b"\x08" * 64 + bytes.fromhex("ffd9")
# Monday 2021-12-27; tasks 5, 7, 14, 15, 16 of 区财政局 are due Friday 2021-12-31.
MONDAY = datetime(2021, 12, 27, 9, 30, tzinfo=TZ)


async def _cast(h: Harness):  # type: ignore[no-untyped-def]
    coord = await h.coordinator()
    group = await h.bound_group(coord)
    li = await h.liaison("李四", "区财政局", coordinator=coord)
    return coord, group, li


async def _card(h: Harness, li, chat, task_no: int):  # type: ignore[no-untyped-def]
    [lst] = await h.say(li, chat, "/mytasks")
    button = next(b for b in h.api.buttons(lst) if b["text"] == f"任务{task_no}")
    h.api.mark(chat)
    await h.press(li, lst, button["callback_data"])
    [card] = await h.api.wait_for_bot_messages(chat)
    return card


def _assignment(h: Harness, task_no: int, unit: str) -> Assignment:
    with h.db() as s:
        return s.exec(select(Assignment).join(Task, Task.id == Assignment.task_id)
                      .where(Task.no == task_no, Assignment.unit_id == h.unit(unit).id)).one()


async def test_percentages_as_people_type_them_and_100_offers_the_hand_in(harness: Harness) -> None:
    h = harness
    _, group, li = await _cast(h)
    card = await _card(h, li, group, 7)
    [ok] = await h.say(li, group, "已完成80%", reply_to=card)
    assert "进度 0% → 80%" in ok["text"], ok["text"]
    [ok] = await h.say(li, group, "完成了 ９０ ％，下周报送", reply_to=ok)
    assert "80% → 90%" in ok["text"], ok["text"]
    assert _assignment(h, 7, "区财政局").note == "下周报送"
    [full] = await h.say(li, group, "100%", reply_to=ok)
    assert "90% → 100%" in full["text"] and "✅ 报告完成" in full["text"], full["text"]
    a = _assignment(h, 7, "区财政局")
    assert a.state == AssignmentState.in_progress
    [button] = h.api.buttons(full)
    assert button["text"] == "✅ 报告完成" and button["callback_data"] == f"a:done:{a.id}:v{a.version}"
    h.api.mark(group)
    answer = await h.press(li, full, button["callback_data"])
    assert answer["text"] == "已提交"
    [submitted] = await h.api.wait_for_bot_messages(group)
    assert "已提交完成" in submitted["text"]
    assert _assignment(h, 7, "区财政局").state == AssignmentState.submitted
    # 完成 alone still hands in at once (task 5)
    [line5] = await h.say(li, group, "/progress 5 10")
    [done] = await h.say(li, group, "已完成", reply_to=line5)
    assert "已提交完成" in done["text"]


async def test_a_claim_with_its_note_in_one_reply(harness: Harness) -> None:
    h = harness
    _, group, li = await _cast(h)
    unit_id = h.unit("区财政局").id
    with h.db() as s:
        crit, item = next((c, i) for c, i in s.exec(select(Criterion, ScoreItem).join(ScoreItem, ScoreItem.id == Criterion.item_id)
                                                    .order_by(ScoreItem.no, Criterion.no))
                          if not c.not_attainable and responsible_unit_ids(s, c) == [unit_id])
    [listing] = await h.say(li, group, f"/item {item.no}")
    button = next(b for b in h.api.buttons(listing) if b["text"] == f"细则{item.no}.{crit.no}")
    h.api.mark(group)
    await h.press(li, listing, button["callback_data"])
    [card] = await h.api.wait_for_bot_messages(group)
    [ok] = await h.say(li, group, "达标，区质量发展委员会已于11月成立", reply_to=card)
    assert "已申报达标" in ok["text"], ok["text"]
    with h.db() as s:
        assessment = s.exec(select(Assessment).where(Assessment.criterion_id == crit.id)).one()
    assert assessment.state == AssessmentState.claimed
    assert assessment.claim_note == "区质量发展委员会已于11月成立"


async def test_a_reply_to_a_reminder_listing_several_units(harness: Harness) -> None:
    h = harness
    coord = await h.coordinator()
    group = await h.bound_group(coord)
    h.clock.set(MONDAY)
    h.api.mark(group)
    await run_once(engine=h.engine, bot=h.app.bot, now=MONDAY, config=fast_config())
    await h.idle()
    nudges = [m for m in h.api.sent_messages(group) if m.get("reply_markup")]
    assert nudges, "no reminder in the group"
    nudge = nudges[0]
    with h.db() as s:
        listed = [s.get(Assignment, i) for i in assignments_of_message(s, chat_id=group.id, message_id=nudge["message_id"])]
    by_unit: dict[int, list[Assignment]] = {}
    for a in listed:
        by_unit.setdefault(a.unit_id, []).append(a)  # type: ignore[union-attr]
    assert len(by_unit) > 1, "the reminder should list several units"
    alone = next(u for u, xs in by_unit.items() if len(xs) == 1)
    several = next(u for u, xs in by_unit.items() if len(xs) > 1)
    with h.db() as s:
        alone_name, several_name = s.get(Unit, alone).name, s.get(Unit, several).name  # type: ignore[union-attr]
    one = h.api.make_user("单项联络员")
    h.add_member(one, "liaison", alone_name)
    many = h.api.make_user("多项联络员")
    h.add_member(many, "liaison", several_name)

    # exactly one task of the sender's unit in the reminder: the reply goes to it
    [ok] = await h.say(one, group, "进度 30%", reply_to=nudge)
    assert "0% → 30%" in ok["text"] and alone_name in ok["text"], ok["text"]
    with h.db() as s:
        assert s.get(Assignment, by_unit[alone][0].id).percent == 30  # type: ignore[union-attr]
    # several: the bot asks which, one button per task of theirs, and records nothing
    [ask] = await h.say(many, group, "进度 30%", reply_to=nudge)
    assert "这条消息不对应某一项任务" not in ask["text"] and "没有记录" in ask["text"], ask["text"]
    datas = {b["callback_data"] for b in h.api.buttons(ask)}
    assert datas <= {f"a:open:{a.id}" for a in by_unit[several]} and len(datas) == min(8, len(by_unit[several]))
    with h.db() as s:
        assert all(s.get(Assignment, a.id).percent == 0 for a in by_unit[several])  # type: ignore[union-attr]
    # the coordinator (no unit) is told how to report instead
    [coord_said] = await h.say(coord, group, "进度 30%", reply_to=nudge)
    assert "这条消息不对应某一项任务" in coord_said["text"]


async def test_a_file_sent_without_a_reply_is_asked_about_and_filed(harness: Harness) -> None:
    h = harness
    coord, group, li = await _cast(h)
    [question] = await h.send_file(li, group, "整改报告.pdf", PDF, mime_type="application/pdf")
    assert "整改报告.pdf" in question["text"] and "哪项任务" in question["text"], question["text"]
    assert question["reply_to_message"]["document"]["file_name"] == "整改报告.pdf"
    buttons = h.api.buttons(question)
    assert 1 <= len(buttons) <= 8 and all(b["callback_data"].startswith("f:to:") for b in buttons)
    with h.db() as s:  # most urgent first: the order of the deadlines
        deadlines = [s.get(Task, s.get(Assignment, int(b["callback_data"].split(":")[2])).task_id).deadline  # type: ignore[union-attr]
                     for b in buttons]
    assert deadlines == sorted(deadlines)
    task7 = _assignment(h, 7, "区财政局")
    seven = next(b for b in buttons if b["text"].startswith("任务7 "))
    assert seven["callback_data"] == f"f:to:{task7.id}"
    # only those who may hand in the unit's evidence may choose
    other = h.api.make_user("商务小王")
    h.add_member(other, "liaison", "区商务局")
    refused = await h.press(other, question, seven["callback_data"])
    assert refused.get("show_alert")
    answer = await h.press(li, question, seven["callback_data"])
    assert answer["text"] == "已归档", answer
    await h.idle()
    with h.db() as s:
        ev = s.exec(select(Evidence)).one()
    assert ev.task_id == task7.task_id and ev.file_name == "整改报告.pdf" and ev.unit_id == h.unit("区财政局").id
    edited = h.api.message(group, question["message_id"])
    assert "已收到" in edited["text"] and "任务7" in edited["text"] and not edited.get("reply_markup")

    # a photo: asked too, and named so people recognise it
    h.api.mark(group)
    await h.api.send_photo(li, group, JPEG)
    [photo_q] = await h.api.wait_for_bot_messages(group)
    assert "这张照片" in photo_q["text"]
    await h.press(li, photo_q, seven["callback_data"])
    await h.idle()
    with h.db() as s:
        names = sorted(e.file_name for e in s.exec(select(Evidence)))
    assert "现场照片_区财政局_20211101_1.jpg" in names, names

    # a file replying to a person's message: between people, left alone (as their chatter is);
    # a non-member's file in the group is left alone too (tests/test_fuzz.py plays those)
    chatter = await h.api.send_text(li, group, "大家看看这个")
    await h.idle()
    before = len(h.api.sent_messages(group))
    await h.send_file(li, group, "另一个.pdf", PDF + b"2", mime_type="application/pdf", reply_to=chatter, count=0)
    assert len(h.api.sent_messages(group)) == before


async def test_a_file_in_private_without_a_reply_and_the_coordinators_file(harness: Harness) -> None:
    h = harness
    coord, group, li = await _cast(h)
    [question] = await h.send_file(li, li, "台账.pdf", PDF, mime_type="application/pdf")
    assert "哪项任务" in question["text"] and h.api.buttons(question)
    # the coordinator has no tasks of their own: told how to hand a file in
    [said] = await h.send_file(coord, group, "通知.pdf", PDF + b"c", mime_type="application/pdf")
    assert "回复" in said["text"] and not h.api.buttons(said)
    # a file the bot would refuse is refused at once, before anyone chooses
    [refused] = await h.send_file(li, group, "工具.exe", b"MZ" + b"0" * 100, mime_type="application/octet-stream")
    assert "不支持这种文件类型" in refused["text"] and not h.api.buttons(refused)


async def test_an_item_without_a_stated_deadline_reads_the_same_on_every_card(harness: Harness) -> None:
    """10.1 (the document gives no time limit) and 26.x (全过程) say one thing on /item, on the
    criterion card and in /mytasks: the acceptance phase's end, and why."""
    h = harness
    coord, group, _ = await _cast(h)
    health = await h.liaison("赵六", "区卫健委", coordinator=coord)
    [item10] = await h.say(coord, coord, "/item 10")
    assert "完成时限：" in item10["text"] and "文件未规定时限，以验收阶段结束为准" in item10["text"], item10["text"]
    assert "未定" not in item10["text"]
    [item26] = await h.say(coord, coord, "/item 26")
    assert "完成时限：全过程（至" in item26["text"], item26["text"]
    button = next(b for b in h.api.buttons(item10) if b["text"] == "细则10.1")
    h.api.mark(coord)
    await h.press(coord, item10, button["callback_data"])
    [card] = await h.api.wait_for_bot_messages(coord)
    assert "完成时限：2022年4月1日（文件未规定时限，以验收阶段结束为准）" in card["text"], card["text"]
    [mine] = await h.say(health, group, "/mytasks")
    line = next(x for x in mine["text"].splitlines() if "细则26.1" in x)
    assert "全过程（至" in line and "未定" not in line and "无期限" not in line, line
    button = next(b for b in h.api.buttons(mine) if b["text"] == "细则26.1")
    h.api.mark(group)
    await h.press(health, mine, button["callback_data"])
    [card26] = await h.api.wait_for_bot_messages(group)
    assert "完成时限：全过程（至2022年4月1日验收）" in card26["text"], card26["text"]


async def test_a_criterion_reads_standing_alone(harness: Harness) -> None:
    """Criteria whose words in the document lean on the previous clause (及实施情况, 并挂牌开展工作)
    are said in full in the chat; the ledger keeps the document's words."""
    h = harness
    coord, group, _ = await _cast(h)
    [item3] = await h.say(coord, coord, "/item 3")
    assert "促进质量提升发展政策性文件的实施情况" in item3["text"], item3["text"]
    [item11] = await h.say(coord, coord, "/item 11")
    assert "质量基础设施“一站式”综合服务挂牌开展工作" in item11["text"]
    assert "3.2 及实施情况" not in item3["text"] and "\n及实施情况" not in item3["text"]


async def test_dabiao_replied_to_a_task_points_to_its_criteria(harness: Harness) -> None:
    h = harness
    _, group, li = await _cast(h)
    [card] = await h.say(li, group, "/task 7")
    [said] = await h.say(li, group, "达标，已设立专项资金", reply_to=card)
    assert "“达标”用于评分细则" in said["text"] and "/claim 7.1" in said["text"], said["text"]
    with h.db() as s:
        task = s.exec(select(Task).where(Task.no == 7)).one()
        a = s.exec(select(Assignment).where(Assignment.task_id == task.id)).one()
    assert a.note is None and a.state == AssignmentState.not_started  # nothing recorded
