"""Evidence end to end: /evidence, file replies, getFile into storage, checks, review buttons."""

from __future__ import annotations

import hashlib

from sqlmodel import select

from infra.files import blob_path
from models.tables import BotMessage, Evidence, EvidenceState, SubjectKind

PDF = b"%PDF-1.4\n" + b"0" * 2048 + b"\n%%EOF\n"


async def _cast(harness):
    coord = await harness.coordinator()
    group = await harness.bound_group(coord)
    li = await harness.liaison("李四", "区财政局", coordinator=coord)
    return coord, group, li


async def test_evidence_by_reply_is_downloaded_into_storage(harness):
    coord, group, li = await _cast(harness)
    [prompt] = await harness.say(li, group, "/evidence 7")
    assert "回复本消息" in prompt["text"]
    sent = [c for c in harness.api.calls_to("sendMessage") if c.ok and c.result["message_id"] == prompt["message_id"]
            and c.result["chat"]["id"] == group.id]
    assert sent[-1].params["reply_markup"]["force_reply"] is True
    [ok] = await harness.send_file(li, group, "专项资金文件.pdf", PDF, reply_to=prompt, mime_type="application/pdf")
    assert "已收到" in ok["text"] and "任务7" in ok["text"] and "区财政局" in ok["text"]
    assert harness.api.calls_to("getFile")

    def confirmation() -> BotMessage | None:
        with harness.db() as s:
            return s.exec(select(BotMessage).where(BotMessage.message_id == ok["message_id"],
                                                   BotMessage.telegram_chat_id == group.id)).first()

    # The confirmation is itself a reply-able message about the assignment (recorded just
    # after it was sent: wait for that commit rather than race it).
    await harness.api.wait_until(lambda: confirmation() is not None, what="the confirmation recorded")
    assert confirmation().subject_kind == SubjectKind.assignment  # type: ignore[union-attr]
    with harness.db() as s:
        ev = s.exec(select(Evidence)).one()
        assert ev.file_name == "专项资金文件.pdf" and ev.unit_id == harness.unit("区财政局").id
        assert ev.state == EvidenceState.submitted and ev.task_id is not None
    digest = hashlib.sha256(PDF).hexdigest()
    assert ev.sha256 == digest
    assert blob_path(harness.settings.storage.dir, digest).read_bytes() == PDF
    # the same file again: recognised, nothing new
    [again] = await harness.send_file(li, group, "专项资金文件.pdf", PDF, reply_to=ok, mime_type="application/pdf")
    assert "无需重复提交" in again["text"]


async def test_photo_reply_to_a_card_from_mytasks(harness):
    coord, group, li = await _cast(harness)
    [lst] = await harness.say(li, li, "/mytasks")
    assert "任务7" in lst["text"]
    button = next(b for b in harness.api.buttons(lst) if b["text"] == "任务7")
    harness.api.mark(li)
    await harness.press(li, lst, button["callback_data"])
    [card] = await harness.api.wait_for_bot_messages(li)
    assert "任务7" in card["text"] and "回复本消息" in card["text"]
    jpeg = b"\xff\xd8\xff\xe0" + b"\x00" * 64  # Telegram re-encodes every photo as JPEG
    harness.api.mark(li)
    await harness.api.send_photo(li, harness.api.private_chat(li), jpeg, reply_to=card, caption="会议照片")
    [ok] = await harness.api.wait_for_bot_messages(li)
    assert "已收到" in ok["text"]


async def test_bad_files_are_refused_and_change_nothing(harness):
    coord, group, li = await _cast(harness)
    [prompt] = await harness.say(li, group, "/evidence 7")
    [exe] = await harness.send_file(li, group, "virus.exe", b"MZ\x90\x00", reply_to=prompt,
                                     mime_type="application/x-msdownload")
    assert "不支持" in exe["text"]
    [fake] = await harness.send_file(li, group, "假的.pdf", b"not a pdf at all", reply_to=prompt,
                                      mime_type="application/pdf")
    assert "不符" in fake["text"]
    # over 20 MB: refused from file_size, before getFile
    calls_before = len(harness.api.calls_to("getFile"))
    stored = harness.api.world.store_file(b"%PDF-", "documents", "huge.pdf", "application/pdf")
    doc = {"file_id": stored.file_id, "file_unique_id": stored.file_unique_id,
           "file_size": 25 * 1024 * 1024, "file_name": "huge.pdf", "mime_type": "application/pdf"}
    stored_prompt = harness.api.message(group, prompt["message_id"])
    msg = harness.api.world.new_message(group, li, {"document": doc}, stored_prompt)
    harness.api.mark(group)
    harness.api.enqueue_raw_update({"message": msg})
    [big] = await harness.api.wait_for_bot_messages(group)
    assert "太大" in big["text"] and "20 MB" in big["text"]
    assert len(harness.api.calls_to("getFile")) == calls_before
    with harness.db() as s:
        assert s.exec(select(Evidence)).all() == []


async def test_file_for_another_units_task_is_refused(harness):
    coord, group, li = await _cast(harness)
    [card] = await harness.say(coord, group, "/task 2")  # 区市场监管局 only
    [no] = await harness.send_file(li, group, "a.pdf", PDF, reply_to=card, mime_type="application/pdf")
    assert "不属于你的单位" in no["text"]
    assert not harness.api.calls_to("getFile")


async def test_review_evidence_accept_forged_and_stale_buttons(harness):
    coord, group, li = await _cast(harness)
    [prompt] = await harness.say(li, group, "/evidence 7")
    await harness.send_file(li, group, "资金.pdf", PDF, reply_to=prompt, mime_type="application/pdf")
    harness.api.mark(coord)
    await harness.api.send_text(coord, harness.api.private_chat(coord), "/review")
    msgs = await harness.api.wait_for_bot_messages(coord, count=3)
    header, entry = msgs[0], msgs[-1]
    assert "证明材料 1 份" in header["text"]
    assert "资金.pdf" in entry["text"]
    assert msgs[1].get("document"), "the file itself is shown to the coordinator"
    ok_data = next(b["callback_data"] for b in harness.api.buttons(entry) if "通过" in b["text"])
    # a liaison cannot review (a forged press in someone else's chat is checked the same way)
    denied = await harness.press(li, entry, ok_data)
    assert denied["show_alert"] and "协调员" in denied["text"]
    # a forged payload
    forged = await harness.press(coord, entry, "e:ok:99999:v0", strict=False)
    assert "按钮无效" in forged["text"]
    junk = await harness.press(coord, entry, "drop table;", strict=False)
    assert "按钮无效" in junk["text"]
    answer = await harness.press(coord, entry, ok_data)
    assert answer["text"] == "已通过"
    await harness.idle()
    edited = harness.api.message(coord, entry["message_id"])
    assert "已通过" in edited["text"] and not harness.api.buttons(edited)
    with harness.db() as s:
        assert s.exec(select(Evidence)).one().state == EvidenceState.accepted
    # the liaison hears about it privately
    notes = [m["text"] for m in harness.api.sent_messages(li)]
    assert any("已审核通过" in t for t in notes)
    # the same (now stale) button again changes nothing
    stale = await harness.press(coord, entry, ok_data, strict=False)
    assert "已处理过" in stale["text"]
