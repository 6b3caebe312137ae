"""The scheduler inside the real Application: buttons, /nudges, and the JobQueue wiring.

Uses the e2e harness (stand-in + ``bot.app.build_application``) on the imported
seed (2021 dates); time is the harness's FakeClock.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest
import time_machine
from sqlalchemy.engine import Engine
from sqlmodel import select

from bot.app import build_application, running
from infra.config import Settings
from infra.db import transaction
from models.tables import Assignment, BotMessage, Member, Snooze, SubjectKind, Task, Unit
from scheduler import run_once
from scheduler.service import DIGEST_JOB, NUDGE_JOB, SWEEP_JOB
from standin import BotApiStandin
from tests.harness import TZ, FakeClock, Harness, make_settings
from tests.test_scheduler_fixtures import fast_config

# Monday 2021-12-27; tasks 5, 7, 14, 15, 16 of 区财政局 are due Friday 2021-12-31.
MONDAY = datetime(2021, 12, 27, 9, 30, tzinfo=TZ)


def _asg(h: Harness, task_no: int, unit: str) -> int:
    with h.db() as s:
        return s.exec(
            select(Assignment.id)
            .join(Task, Task.id == Assignment.task_id)
            .join(Unit, Unit.id == Assignment.unit_id)
            .where(Task.no == task_no, Unit.name == unit, Task.campaign_id == h.campaign_id)
        ).one()


async def _setup(h: Harness):  # type: ignore[no-untyped-def]
    coord = await h.coordinator()  # while the start-up bootstrap code is valid
    group = await h.bound_group(coord)
    h.clock.set(MONDAY)
    li = h.api.make_user("财政小李")
    h.add_member(li, "liaison", "区财政局")
    other = h.api.make_user("商务小王")
    h.add_member(other, "liaison", "区商务局")
    [ok] = await h.say(li, li, "/nudges on")
    assert "已开启私聊提醒" in ok["text"]
    return coord, group, li, other


async def _tick(h: Harness, now: datetime):  # type: ignore[no-untyped-def]
    return await run_once(engine=h.engine, bot=h.app.bot, now=now, config=fast_config())


async def test_snooze_buttons_stop_at_the_deadline(harness: Harness) -> None:
    h = harness
    coord, group, li, other = await _setup(h)
    h.api.mark()
    await _tick(h, MONDAY)
    [nudge] = await h.api.wait_for_bot_messages(li)
    aid = _asg(h, 7, "区财政局")
    assert f"qcn:z:{aid}:3" in [b["callback_data"] for row in nudge["reply_markup"]["inline_keyboard"] for b in row]

    answer = await h.press(li, nudge, f"qcn:z:{aid}:3")
    assert "已暂缓" in answer["text"] and "12月30日" in answer["text"] and not answer.get("show_alert")
    with h.db() as s:
        assert s.exec(select(Snooze).where(Snooze.assignment_id == aid)).one().until.isoformat() == "2021-12-30"

    # Pressing "3 days" again on Wednesday cannot pass the deadline: still capped at 12-30.
    h.clock.set(MONDAY + timedelta(days=2))
    again = await h.press(li, nudge, f"qcn:z:{aid}:3")
    assert "12月30日" in again["text"]

    # 12-28 (3 working days before) and 12-30 (1 before): task 7 is left out ...
    for day in (1, 3):
        h.api.mark(li)
        await _tick(h, MONDAY + timedelta(days=day))
        [m] = await h.api.wait_for_bot_messages(li)
        assert "任务7 " not in m["text"] and "任务5 " in m["text"]
    # ... and on the deadline day it is back.
    h.api.mark(li)
    await _tick(h, MONDAY + timedelta(days=4))
    [last] = await h.api.wait_for_bot_messages(li)
    assert "任务7 " in last["text"] and "今天截止" in last["text"]
    # On the deadline day snoozing is refused and nothing changes.
    h.clock.set(MONDAY + timedelta(days=4))
    refused = await h.press(li, last, f"qcn:z:{aid}:1", strict=False)
    assert refused.get("show_alert") and "不能再暂缓" in refused["text"]
    with h.db() as s:
        assert s.exec(select(Snooze).where(Snooze.assignment_id == aid)).one().until.isoformat() == "2021-12-30"


async def test_forged_and_stale_presses_change_nothing(harness: Harness) -> None:
    h = harness
    coord, group, li, other = await _setup(h)
    await _tick(h, MONDAY)
    [nudge] = await h.api.wait_for_bot_messages(li)
    aid = _asg(h, 7, "区财政局")
    foreign = _asg(h, 5, "区商务局")  # not in this message

    def snoozes() -> int:
        with h.db() as s:
            return len(s.exec(select(Snooze)).all())

    for data in (f"qcn:z:{foreign}:3", f"qcn:z:{aid}:99", "qcn:z:abc:1", f"qcn:t:{foreign}", "qcn:x"):
        answer = await h.press(li, nudge, data, strict=False)
        assert answer.get("show_alert"), data
    # Another unit's liaison may not snooze 区财政局's task (same chat, real message).
    h.api.private_chat(other)
    [group_nudge] = [m for m in h.api.sent_messages(group) if m.get("reply_markup")][-1:]
    first = group_nudge["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
    target = int(first.split(":")[2])
    answer = await h.press(other, group_nudge, f"qcn:z:{target}:1", strict=False)
    assert answer.get("show_alert") and "只有该单位的联络员可以暂缓" in answer["text"], answer
    assert "代为填报" not in answer["text"]
    # Stale: the assignment was submitted after the nudge went out.
    with transaction(h.engine) as s:
        a = s.get(Assignment, aid)
        assert a is not None
        a.state = "submitted"  # type: ignore[assignment]
        s.add(a)
    answer = await h.press(li, nudge, f"qcn:z:{aid}:1")
    assert answer.get("show_alert") and "已提交" in answer["text"]
    assert snoozes() == 0


async def test_open_task_button_replies_with_the_task(harness: Harness) -> None:
    h = harness
    coord, group, li, other = await _setup(h)
    await _tick(h, MONDAY)
    [nudge] = await h.api.wait_for_bot_messages(li)
    aid = _asg(h, 7, "区财政局")
    h.api.mark(li)
    await h.press(li, nudge, f"qcn:t:{aid}")
    [card] = await h.api.wait_for_bot_messages(li)
    assert "任务7" in card["text"] and "2021年12月31日" in card["text"] and "还剩 4 个工作日" in card["text"]
    # Annex 1's 主要内容 and the plan's 工作要求, each once and labelled.
    assert card["text"].count("设立质量发展专项资金") == 2, card["text"]
    assert "主要内容：设立质量发展专项资金" in card["text"] and "\n工作要求：" in card["text"]
    assert card["reply_to_message"]["message_id"] == nudge["message_id"]

    def recorded() -> BotMessage | None:
        with h.db() as s:
            return s.exec(select(BotMessage).where(BotMessage.message_id == card["message_id"], BotMessage.telegram_chat_id == li.id)).first()

    await h.api.wait_until(lambda: recorded() is not None, what="the card's BotMessage row")
    bm = recorded()
    assert bm is not None and bm.subject_kind == SubjectKind.task


async def test_nudges_command(harness: Harness) -> None:
    h = harness
    coord = await h.coordinator()
    h.clock.set(MONDAY)
    li = h.api.make_user("财政小李")
    h.add_member(li, "liaison", "区财政局", private=False)
    [status] = await h.say(li, li, "/nudges")
    assert "未开启" in status["text"]
    [on] = await h.say(li, li, "/nudges on")
    assert "已开启" in on["text"]
    [off] = await h.say(li, li, "/nudges 关")
    assert "已关闭" in off["text"]
    [bad] = await h.say(li, li, "/nudges maybe")
    assert "用法" in bad["text"]
    [c] = await h.say(coord, coord, "/nudges on")
    assert "协调员" in c["text"]
    with h.db() as s:
        m = s.exec(select(Member).where(Member.telegram_user_id == li.id)).one()
        assert m.private_chat_id == li.id and not m.private_nudges


# ----------------------------------------------------------------- the JobQueue


@pytest.fixture
def scheduler_settings(db_url: str, tmp_path: Path) -> Settings:
    return make_settings(
        db_url=db_url, storage_dir=tmp_path / "evidence",
        # The 通报 (and its document) after the digest is tests/test_supervision.py's.
        scheduler={"enabled": True, "sweep_interval_seconds": 3600, "digest_bulletin": False},
    )


async def test_installed_jobs_never_drop_late_runs_and_the_digest_cron_fires(
    standin: BotApiStandin, seeded_engine: Engine, scheduler_settings: Settings
) -> None:
    # Real time, travelled to just before the Monday digest (09:00 Shanghai).
    with time_machine.travel(datetime(2021, 12, 27, 8, 59, 58, tzinfo=TZ), tick=True):
        app = build_application(
            settings=scheduler_settings, engine=seeded_engine, clock=lambda: datetime.now(TZ),
            token=standin.token, base_url=standin.base_url, base_file_url=standin.base_file_url,
        )
        coordinator = standin.make_user("王主任")
        group = standin.make_group("质量强区工作群", members=[coordinator])
        from models.tables import Chat, ChatKind

        with transaction(seeded_engine) as s:
            cid = s.exec(select(Unit.campaign_id)).first()
            s.add(Chat(telegram_chat_id=group.id, campaign_id=cid, kind=ChatKind.group, title=group.title))
        async with running(app, poll_timeout=1):
            jobs = {j.name: j for j in app.job_queue.jobs()}
            # digest_time == nudge_time (09:00): one daily cron wakes for both.
            assert {SWEEP_JOB, NUDGE_JOB} <= set(jobs) and DIGEST_JOB not in jobs
            for job in jobs.values():
                assert job.job.misfire_grace_time is None
                assert job.job.coalesce is True and job.job.max_instances == 1
            # The sweep's first run (1 s after start, 08:59:59) catches up on what is overdue;
            # the cron run at 09:00 brings the Monday digest and the day's nudges.
            # Each message that carries a digest is followed by the /status chart.
            [first, first_chart] = await standin.wait_for_bot_messages(group, count=2, timeout=10)
            assert "质量强区" in first["text"]
            service = app.bot_data["scheduler"]
            [digest, chart] = await standin.wait_for_bot_messages(group, count=2, timeout=10)
            assert "补发" in first["text"]  # last week's digest and the overdue nudges, merged
            assert "每周进展" in digest["text"] and "补发" not in digest["text"]
            for picture in (first_chart, chart):
                assert picture["photo"] and "得分" in picture["caption"]
            nine = datetime(2021, 12, 27, 9, 0, tzinfo=TZ).timestamp()
            assert first["date"] < nine <= digest["date"]
            await standin.wait_until(lambda: service.ticks >= 2, timeout=5, what="the cron run's end")
            assert service.ticks == 2 and service.last.dispatch.sent == 1
        assert len(standin.sent_messages(group)) == 4


async def test_disabled_scheduler_installs_nothing(harness: Harness) -> None:
    assert "scheduler" not in harness.app.bot_data
    assert not [j for j in harness.app.job_queue.jobs() if j.name == SWEEP_JOB]


async def test_plan_changed_hook_runs_a_tick(
    standin: BotApiStandin, seeded_engine: Engine, scheduler_settings: Settings
) -> None:
    clock = FakeClock(MONDAY)
    app = build_application(
        settings=scheduler_settings, engine=seeded_engine, clock=clock,
        token=standin.token, base_url=standin.base_url, base_file_url=standin.base_file_url,
    )
    async with running(app, poll_timeout=1):
        service = app.bot_data["scheduler"]
        await standin.wait_until(lambda: service.ticks >= 1, timeout=10, what="first tick")
        for hook in app.bot_data["plan_changed_hooks"]:
            hook(app)
        await standin.wait_until(lambda: service.ticks >= 2, timeout=10, what="poked tick")


async def test_a_distinct_digest_time_gets_its_own_cron(
    standin: BotApiStandin, seeded_engine: Engine, db_url: str, tmp_path: Path
) -> None:
    settings = make_settings(
        db_url=db_url, storage_dir=tmp_path / "evidence",
        scheduler={"enabled": True, "digest_weekday": "fri", "digest_time": "16:30:00"},
    )
    app = build_application(
        settings=settings, engine=seeded_engine, clock=FakeClock(MONDAY),
        token=standin.token, base_url=standin.base_url, base_file_url=standin.base_file_url,
    )
    async with running(app, poll_timeout=1):
        [digest] = app.job_queue.get_jobs_by_name(DIGEST_JOB)
        trigger = digest.job.trigger
        assert "day_of_week='fri'" in str(trigger) and "hour='16'" in str(trigger) and "minute='30'" in str(trigger)
        assert str(trigger.timezone) == "Asia/Shanghai"
        assert digest.job.misfire_grace_time is None
