"""Many updates at once on the same record, through the REAL stack, on the backend under test.

The application handles updates concurrently (``telegram.concurrent_updates``, raised here
to 32 so that far more handlers than worker threads are in flight); the updates of a test
are all queued before the bot fetches any. After each burst:

* every message got exactly one answer, no log record at ERROR, no failed Bot API call,
  and "database is locked" nowhere (SQLite: WAL, ``BEGIN IMMEDIATE``, busy timeout);
* nothing is lost: every confirmation the bot sent has its audit row and vice versa, the
  row's version grew by exactly the number of audited writes, and its final values are
  those of the last audit row (``tests.fuzzing.check_writes``);
* writes that exclude each other (an approval and a progress report, two first claims of
  one criterion, the same file handed in twice) end with exactly one winner, and the others
  are told why in Chinese.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select

from infra.config import Settings
from models.tables import (
    Assessment,
    Assignment,
    AuditLog,
    Criterion,
    Evidence,
    Member,
    Role,
    ScoreItem,
    Task,
    Unit,
)
from standin import SimChat, SimUser

pytest.register_assert_rewrite("tests.fuzzing")
from tests.fuzzing import (  # noqa: E402
    ErrorLog,
    bot_message_keys,
    check_writes,
    failed_calls,
    relax_flood_control,
    settle,
    snapshot,
)
from tests.harness import TZ, Harness, make_settings  # noqa: E402

pytest_plugins = ["tests.fuzzing"]

JsonDict = dict[str, Any]
UNIT = "区财政局"
MONDAY = datetime(2021, 12, 27, 9, 30, tzinfo=TZ)
PDF = b"%PDF-1.4\n" + b"2" * 1000 + b"\n%%EOF\n"


@pytest.fixture
def bot_settings(db_url: str, tmp_path: Path) -> Settings:
    """The harness's settings with many more handlers in flight than usual."""
    return make_settings(db_url=db_url, storage_dir=tmp_path / "evidence", telegram={"concurrent_updates": 32})


@pytest.fixture
def errors() -> Iterator[ErrorLog]:
    with ErrorLog() as log:
        yield log


async def _cast(h: Harness, liaisons: int = 5) -> tuple[SimUser, SimChat, list[SimUser]]:
    relax_flood_control(h.app)
    coord = await h.coordinator()
    group = await h.bound_group(coord)
    h.clock.set(MONDAY)
    people = []
    for i in range(liaisons):
        user = h.api.make_user(f"财政联络员{i}", f"caizheng{i}")
        h.add_member(user, "liaison", UNIT)
        people.append(user)
    return coord, group, people


async def _card(h: Harness, user: SimUser, chat: SimChat, task_no: int) -> JsonDict:
    """The assignment card of ``user``'s unit for task ``task_no`` (/mytasks, then its button)."""
    [lst] = await h.say(user, chat, "/mytasks")
    data = next(b["callback_data"] for b in h.api.buttons(lst) if b["text"] == f"任务{task_no}")
    h.api.mark(chat)
    await h.press(user, lst, data)
    [card] = await h.api.wait_for_bot_messages(chat)
    return card


def _assignment(h: Harness, task_no: int) -> Assignment:
    with h.db() as s:
        return s.exec(select(Assignment).join(Task, Task.id == Assignment.task_id)
                      .join(Unit, Unit.id == Assignment.unit_id)
                      .where(Task.no == task_no, Unit.name == UNIT)).one()


def _audits(h: Harness, entity: str, entity_id: int, after_id: int) -> list[AuditLog]:
    with h.db() as s:
        return list(s.exec(select(AuditLog).where(AuditLog.entity == entity, AuditLog.entity_id == entity_id,
                                                  AuditLog.id > after_id).order_by(AuditLog.id)))


def _last_audit_id(h: Harness) -> int:
    with h.db() as s:
        return max(s.exec(select(AuditLog.id)).all() or [0])


def _answers(h: Harness, chat: SimChat | SimUser, sent: list[JsonDict]) -> list[str]:
    """The one answer quoting each sent message (asserts there is exactly one)."""
    by_target: dict[int, list[str]] = {}
    for m in h.api.sent_messages(chat):
        target = (m.get("reply_to_message") or {}).get("message_id")
        if target is not None:
            by_target.setdefault(target, []).append(m.get("text") or "")
    out = []
    for message in sent:
        got = by_target.get(message["message_id"], [])
        assert len(got) == 1, f"{message.get('text')!r} got {len(got)} answers: {got}"
        out.append(got[0])
    return out


def _healthy(h: Harness, errors: ErrorLog, answers: list[str]) -> None:
    assert not errors.records, errors.report()
    assert not failed_calls(h.api), failed_calls(h.api)[:5]
    for text in answers:
        assert "locked" not in text and "出错了" not in text, text
        assert re.search(r"[\u4e00-\u9fff]", text), text


async def test_fifty_reports_on_one_assignment_at_once_lose_nothing(harness: Harness, errors: ErrorLog) -> None:
    h = harness
    coord, group, liaisons = await _cast(h)
    card = await _card(h, liaisons[0], group, 7)
    a0 = _assignment(h, 7)
    before, floor = snapshot(h.engine), _last_audit_id(h)
    sent = []
    for i in range(50):
        text = f"进度 {i + 1}%" if i % 2 == 0 else f"第{i}次进展：方案修改中"
        sent.append(await h.api.send_text(liaisons[i % len(liaisons)], group, text, reply_to=card))
    await settle(h.api, h.app)
    answers = _answers(h, group, sent)
    _healthy(h, errors, answers)

    confirmed = [t for t in answers if t.startswith(("✅", "📝"))]
    audits = _audits(h, "assignment", a0.id, floor)  # type: ignore[arg-type]
    a1 = _assignment(h, 7)
    assert len(confirmed) == len(audits) == a1.version - a0.version, (len(confirmed), len(audits), a1.version)
    assert len(confirmed) == 50, [t for t in answers if t not in confirmed][:5]  # none of them conflicts
    check = check_writes(h.engine, before, snapshot(h.engine), sent=bot_message_keys(h.api))
    assert not check.problems, check.problems
    assert check.by_action == {"assignment.progress": 50}


async def test_an_approval_racing_progress_reports_has_one_outcome(harness: Harness, errors: ErrorLog) -> None:
    """Submitted work, then at once: the coordinator approves, the unit keeps reporting."""
    h = harness
    coord, group, liaisons = await _cast(h, liaisons=3)
    for task_no in (7, 14, 15, 16):
        card = await _card(h, liaisons[0], group, task_no)
        [done] = await h.say(liaisons[0], group, "完成", reply_to=card)
        assert "已提交" in done["text"], done["text"]
        a0 = _assignment(h, task_no)
        await h.say(coord, coord, "/review")
        await settle(h.api, h.app)
        review = next(m for m in h.api.sent_messages(coord)
                      if f"a:ok:{a0.id}:v{a0.version}" in [b["callback_data"] for b in h.api.buttons(m)])
        before, floor = snapshot(h.engine), _last_audit_id(h)
        sent = []
        for i in range(12):
            sent.append(await h.api.send_text(liaisons[i % 3], group, ["进度 90%", "完成", "补充说明"][i % 3],
                                              reply_to=card))
            if i == 5:
                press = await h.api.press_button(coord, review, f"a:ok:{a0.id}:v{a0.version}")
        await settle(h.api, h.app)
        answers = _answers(h, group, sent)
        _healthy(h, errors, answers)
        assert h.api.callback_answers[press]["text"] == "已通过", h.api.callback_answers[press]
        a1 = _assignment(h, task_no)
        audits = _audits(h, "assignment", a0.id, floor)  # type: ignore[arg-type]
        assert [a.action for a in audits] == ["assignment.approve"], [a.action for a in audits]
        assert a1.state == "approved" and a1.version == a0.version + 1
        # every report was refused, before or after the approval, and said why
        assert all(t.startswith("⚠️") and ("已提交" in t or "已审核通过" in t or "已通过" in t) for t in answers), answers
        check = check_writes(h.engine, before, snapshot(h.engine), sent=bot_message_keys(h.api))
        assert not check.problems, check.problems


async def test_first_claims_of_one_criterion_at_once_make_one_claim(harness: Harness, errors: ErrorLog) -> None:
    h = harness
    coord, group, liaisons = await _cast(h)
    before, floor = snapshot(h.engine), _last_audit_id(h)
    sent = [await h.api.send_text(liaisons[i % len(liaisons)], group, "/claim 7.1 已设立专项资金") for i in range(12)]
    await settle(h.api, h.app)
    answers = _answers(h, group, sent)
    _healthy(h, errors, answers)
    won = [t for t in answers if t.startswith("✋")]
    assert len(won) == 1, answers
    assert all("已申报" in t for t in answers if t not in won), answers
    with h.db() as s:
        crit = s.exec(select(Criterion).join(ScoreItem, ScoreItem.id == Criterion.item_id)
                      .where(ScoreItem.no == 7, Criterion.no == 1)).one()
        [assessment] = s.exec(select(Assessment).where(Assessment.criterion_id == crit.id)).all()
    assert assessment.version == 1 and assessment.state == "claimed"
    assert [a.action for a in _audits(h, "criterion", crit.id, floor)] == ["criterion.claim"]  # type: ignore[arg-type]
    check = check_writes(h.engine, before, snapshot(h.engine), sent=bot_message_keys(h.api))
    assert not check.problems, check.problems


async def test_the_same_file_handed_in_at_once_is_kept_once(harness: Harness, errors: ErrorLog) -> None:
    h = harness
    coord, group, liaisons = await _cast(h, liaisons=3)
    [prompt] = await h.say(liaisons[0], group, "/evidence 7")
    before, floor = snapshot(h.engine), _last_audit_id(h)
    sent = [await h.api.send_document(liaisons[i % 3], group, "专项资金文件.pdf", PDF, reply_to=prompt,
                                      mime_type="application/pdf") for i in range(8)]
    await settle(h.api, h.app)
    answers = _answers(h, group, sent)
    _healthy(h, errors, answers)
    with h.db() as s:
        rows = s.exec(select(Evidence)).all()
    assert len(rows) == 1, f"{len(rows)} evidence rows for one file: {answers}"
    assert sum(t.startswith("📎") for t in answers) == 1, answers
    assert all("无需重复提交" in t for t in answers if not t.startswith("📎")), answers
    check = check_writes(h.engine, before, snapshot(h.engine), sent=bot_message_keys(h.api))
    assert not check.problems, check.problems
    assert check.by_action == {"evidence.add": 1}
    assert len(_audits(h, "evidence", rows[0].id, floor)) == 1  # type: ignore[arg-type]


async def test_double_taps_on_review_buttons_act_once(harness: Harness, errors: ErrorLog) -> None:
    """Two coordinators, each tapping 通过 three times on the same review items at once."""
    h = harness
    coord, group, liaisons = await _cast(h, liaisons=1)
    second = h.api.make_user("协调员乙", "coord2")
    h.add_member(second, "coordinator")
    li = liaisons[0]
    [prompt] = await h.say(li, group, "/evidence 7")
    for n in range(4):
        await h.send_file(li, group, f"方案{n}.pdf", PDF + bytes([n]), reply_to=prompt, mime_type="application/pdf")
    await h.say(li, group, "/done 7")
    await h.say(li, group, "/claim 7.2")
    await h.say(coord, group, "/review")
    await settle(h.api, h.app)
    ok = [(m, b["callback_data"]) for m in h.api.sent_messages(group) for b in h.api.buttons(m)
          if b["callback_data"].split(":")[1] == "ok"]
    assert {d.split(":")[0] for _, d in ok} == {"a", "c", "e"}, ok
    before = snapshot(h.engine)
    presses = []
    for _ in range(3):
        for who in (coord, second):
            for message, data in ok:
                presses.append((data, await h.api.press_button(who, message, data, strict=False)))
    await settle(h.api, h.app)
    assert not errors.records, errors.report()
    assert not failed_calls(h.api), failed_calls(h.api)[:5]
    for _, data in ok:
        answers = [h.api.callback_answers[q] for d, q in presses if d == data]
        won = [a for a in answers if a["text"] == "已通过"]
        assert len(won) == 1, (data, answers)
        assert all(a["show_alert"] for a in answers if a not in won), answers
    check = check_writes(h.engine, before, snapshot(h.engine), sent=bot_message_keys(h.api))
    assert not check.problems, check.problems
    assert check.by_action == {"assignment.approve": 1, "criterion.verify": 1, "evidence.accept": 4}, check.by_action


# ==================================================================== first one wins


async def test_four_people_opening_one_invite_at_once_make_one_member(harness: Harness, errors: ErrorLog) -> None:
    """The invite's claim is one statement (UPDATE … WHERE used_at IS NULL, row count checked)."""
    h = harness
    relax_flood_control(h.app)
    coord = await h.coordinator()
    token = (await h.invite_link(coord, UNIT)).split("start=", 1)[1]
    people = [h.api.make_user(f"抢先{i}") for i in range(4)]
    sent = [await h.api.send_text(p, h.api.private_chat(p), f"/start {token}") for p in people]
    await settle(h.api, h.app)
    answers = [_answers(h, p, [m])[0] for p, m in zip(people, sent, strict=True)]
    assert sum("欢迎" in a for a in answers) == 1, answers
    assert sum("已被使用过" in a for a in answers) == 3, answers
    with h.db() as s:
        unit = s.exec(select(Unit).where(Unit.name == UNIT)).one()
        liaisons = s.exec(select(Member).where(Member.unit_id == unit.id, Member.role == Role.liaison)).all()
        joined = s.exec(select(AuditLog).where(AuditLog.action == "member.join")).all()
    assert len(liaisons) == 1 and len(joined) == 2  # the coordinator and one liaison
    assert not errors.records, errors.report()


async def test_four_people_sending_the_bootstrap_code_at_once_make_one_coordinator(
    harness: Harness, errors: ErrorLog,
) -> None:
    h = harness
    relax_flood_control(h.app)
    [code] = h.app.bot_data["bootstrap_codes"]
    people = [h.api.make_user(f"主任{i}") for i in range(4)]
    sent = [await h.api.send_text(p, h.api.private_chat(p), f"/start {code}") for p in people]
    await settle(h.api, h.app)
    answers = [_answers(h, p, [m])[0] for p, m in zip(people, sent, strict=True)]
    assert sum("欢迎" in a for a in answers) == 1, answers
    assert h.member_count(Role.coordinator) == 1
    assert not errors.records, errors.report()
