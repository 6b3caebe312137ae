"""Dispatch through python-telegram-bot's real HTTP stack against the Bot API stand-in.

Clocks are explicit: each run gets ``now``; only pacing and flood waits take
real (short) time.
"""

from __future__ import annotations

import importlib
from collections import Counter
from datetime import date, datetime, timedelta

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import select
from telegram import Bot

from infra.db import transaction
from models.seed import import_seed, load_seed
from models.tables import (
    BotMessage,
    Chat,
    ChatKind,
    Member,
    OutboxState,
    Role,
    Unit,
)
from scheduler import Pacer, claim, dispatch, sweep
from standin import BotApiStandin
from tests.conftest import SEED_PATH
from tests.test_scheduler_fixtures import (  # noqa: F401  (fixtures)
    api_fixture,
    at,
    bot_fixture,
    build_world,
    fast_config,
    outbox_rows,
    tick,
    unresolved,
)

NATIONAL_DAY_DEADLINE = "2025-10-10"

# PTB warns, when it builds RetryAfter, that retry_after will become a timedelta;
# scheduler.dispatch.retry_after_seconds already accepts both.
pytestmark = pytest.mark.filterwarnings("ignore:.*retry_after.*:telegram.warnings.PTBDeprecationWarning")


def _texts(api: BotApiStandin, chat_id: int) -> list[str]:
    return [m.get("text", "") for m in api.sent_messages(chat_id)]


def _sends(api: BotApiStandin) -> list:
    return api.calls_to("sendMessage")


async def test_each_offset_fires_once_at_its_local_time(engine: Engine, api: BotApiStandin, bot: Bot) -> None:
    w = build_world(engine, api, deadlines={1: NATIONAL_DAY_DEADLINE}, units_of={1: ["区财政局"]})
    config = fast_config()
    await tick(engine, bot, at("2025-09-19", 10), config)  # running since before (sends the 09-15 digest)
    sent_at: list[tuple[datetime, int]] = []
    day = date(2025, 9, 22)
    while day <= date(2025, 10, 15):
        for hh, mm in ((8, 59), (9, 0), (22, 0)):
            now = at(day, hh, mm)
            report = await tick(engine, bot, now, config)
            sent_at.extend((now, chat) for chat, _ in report.messages)
        day += timedelta(days=1)
    group = Counter(now for now, chat in sent_at if chat == w.group_chat_id)
    expected = [
        "2025-09-22",  # weekly digest (Monday)
        "2025-09-24",  # 7 working days before
        "2025-09-29",  # 3 before (the adjusted working Sunday 09-28 counted) + digest
        "2025-10-09",  # 1 before, after the holiday; + the digest of holiday Monday 10-06
        "2025-10-10",  # on the day
        "2025-10-11",  # overdue 1 (Saturday, an adjusted working day)
        "2025-10-13",  # overdue 2 + digest
        "2025-10-14",  # overdue 3 (escalated)
        "2025-10-15",  # overdue 4
    ]
    assert sorted(group) == [at(d) for d in expected]
    assert set(group.values()) == {1}
    coordinator = w.users["监管老张"]
    assert sorted(now for now, chat in sent_at if chat == coordinator) == [at("2025-10-14"), at("2025-10-15")]
    assert "逾期督办" in _texts(api, coordinator)[0]
    texts = _texts(api, w.group_chat_id)[1:]  # [0] is the priming run's
    assert "还剩 7 个工作日" in texts[1]
    # The light is /task's (yellow from yellow_working_days = 5 left): green 7 days ahead.
    assert "🟢 任务" in texts[1] and "🟡 任务" in texts[2] and "还剩 3 个工作日" in texts[2]
    assert "今天截止" in texts[4]
    assert "已逾期 1 个工作日" in texts[5] and "🔴 任务" in texts[5]
    assert not unresolved(engine)


async def test_one_message_per_group_per_sweep_ordered_by_points_and_mentions(
    engine: Engine, api: BotApiStandin, bot: Bot
) -> None:
    w = build_world(engine, api, deadlines={1: "2025-09-29", 2: "2025-10-10", 3: "2025-09-26"})
    report = await tick(engine, bot, at("2025-09-29", 9, 0))
    [message] = api.sent_messages(w.group_chat_id)
    text = message["text"]
    # 区商务局 has 6 points at stake, 区财政局 2: 区商务局 first despite being less late.
    assert text.index("区商务局") < text.index("区财政局")
    assert text.index("任务3") < text.index("任务1")  # within a unit: the later one first
    mentioned = {e["user"]["id"] for e in message.get("entities", []) if e["type"] == "text_mention"}
    assert {w.users["财政小李"], w.users["商务小王"]} <= mentioned
    assert report.merged > 0
    rows = outbox_rows(engine)
    leads = [r for r in rows if r.state == OutboxState.sent]
    assert all(r.state == OutboxState.merged and r.merged_into_id in {x.id for x in leads} for r in rows if r not in leads)
    # The reply router knows what the message was about.
    with transaction(engine) as s:
        bm = s.exec(select(BotMessage).where(BotMessage.message_id == message["message_id"], BotMessage.telegram_chat_id == w.group_chat_id)).one()
        assert bm.subject_kind.value in ("digest", "nudge")


async def test_restart_after_24h_outage_sends_each_missed_nudge_once_merged(
    engine: Engine, api: BotApiStandin, bot: Bot
) -> None:
    w = build_world(
        engine, api, deadlines={1: NATIONAL_DAY_DEADLINE, 2: "2025-10-13"}, private_nudges=("财政小李",)
    )
    config = fast_config()
    await tick(engine, bot, at("2025-10-09", 8, 0), config)  # up to date before the outage
    api.mark()
    before = {r.idem_key for r in outbox_rows(engine)}
    # Down from 10-09 08:00 to 10-10 10:00: missed 10-09 09:00 and 10-10 09:00.
    report = await tick(engine, bot, at("2025-10-10", 10, 0), config)
    missed = [r for r in outbox_rows(engine) if r.idem_key not in before]
    assert {r.idem_key.split("|")[2] for r in missed if r.telegram_chat_id == w.group_chat_id} >= {
        "remind-1", "remind-0", "remind-3",
    }
    by_chat = Counter(chat for chat, _ in report.messages)
    assert by_chat == Counter({w.group_chat_id: 1, w.users["财政小李"]: 1})
    assert all(r.state in (OutboxState.sent, OutboxState.merged) for r in missed)
    assert len({r.idem_key for r in missed}) == len(missed)
    [group_msg] = await api.wait_for_bot_messages(w.group_chat_id)
    assert "合并为这一条消息补发" in group_msg["text"]
    # A later run sends nothing more.
    again = await tick(engine, bot, at("2025-10-10", 10, 5), config)
    assert again.messages == []


async def test_crash_between_claim_and_send_loses_nothing(engine: Engine, api: BotApiStandin, bot: Bot) -> None:
    w = build_world(engine, api, deadlines={1: NATIONAL_DAY_DEADLINE})
    config = fast_config(lease_seconds=300)
    now = at("2025-10-10", 9, 0)
    sweep(engine=engine, now=now, config=config)
    claimed = claim(engine=engine, now=now, config=config)  # committed ... then the process dies
    assert len(claimed.batches) == 1
    assert _sends(api) == []
    # Restarted within the lease: the claim is respected (maybe still in flight).
    early = await dispatch(engine=engine, bot=bot, now=now + timedelta(seconds=60), config=config)
    assert early.claimed == 0 and _sends(api) == []
    # After the lease it is sent, once.
    late = await dispatch(engine=engine, bot=bot, now=now + timedelta(seconds=301), config=config)
    assert late.sent == 1
    [lead] = [r for r in outbox_rows(engine) if r.state == OutboxState.sent]
    assert lead.attempts == 2 and lead.telegram_message_id is not None
    assert len(api.sent_messages(w.group_chat_id)) == 1
    assert not unresolved(engine)


async def test_429_is_honoured_and_nothing_is_lost(engine: Engine, api: BotApiStandin, bot: Bot) -> None:
    w = build_world(engine, api, deadlines={1: NATIONAL_DAY_DEADLINE})
    groups = [w.group_chat_id]
    with transaction(engine) as s:
        for i in range(11):
            chat = api.make_group(f"分组{i}")
            s.add(Chat(telegram_chat_id=chat.id, campaign_id=w.campaign_id, kind=ChatKind.group, title=f"分组{i}"))
            groups.append(chat.id)
    # Telegram (the stand-in) allows 5 per second overall; our pacer is told nothing of it.
    api.limits.enable(global_per_second=5, per_group_per_minute=None, per_private_per_second=None)
    loose = Pacer(global_per_second=1000, group_per_minute=1000, private_per_second=1000)
    report = await tick(engine, bot, at("2025-10-10", 9, 0), fast_config(), pacer=loose)
    assert api.stats.rate_limited > 0 and report.flood_waits > 0
    assert report.sent == len(groups)
    assert all(len(api.sent_messages(g)) == 1 for g in groups)
    assert not unresolved(engine)
    # After a 429 for a chat, the next try for that chat came no sooner than retry_after.
    calls = _sends(api)
    for i, c in enumerate(calls):
        if c.status == 429:
            wait = c.response["parameters"]["retry_after"]
            later = next(x for x in calls[i + 1 :] if x.params["chat_id"] == c.params["chat_id"])
            assert later.time - c.time >= wait - 0.05


async def test_long_429_is_rescheduled_not_lost(engine: Engine, api: BotApiStandin, bot: Bot) -> None:
    w = build_world(engine, api, deadlines={1: NATIONAL_DAY_DEADLINE})
    api.limits.enable(global_per_second=None, per_group_per_minute=1, per_private_per_second=None)
    await bot.send_message(w.group_chat_id, "占用本分钟的额度")
    now = at("2025-10-10", 9, 0)
    config = fast_config(flood_wait_max_seconds=0)
    report = await tick(engine, bot, now, config)
    assert report.rescheduled == 1 and report.sent == 0
    [lead] = [r for r in outbox_rows(engine) if r.state == OutboxState.pending and r.next_attempt_at]
    assert lead.attempts == 0 and "限流" in (lead.last_error or "")
    api.limits.disable()
    assert lead.next_attempt_at is not None
    wait = (lead.next_attempt_at - now).total_seconds()
    assert 1 <= wait <= 61  # Telegram's retry_after (at most a minute here) from the failed try
    held = await dispatch(engine=engine, bot=bot, now=now + timedelta(seconds=wait / 2), config=config)
    assert held.sent == 0
    done = await dispatch(engine=engine, bot=bot, now=lead.next_attempt_at, config=config)
    assert done.sent == 1 and not unresolved(engine)


async def test_pacer_keeps_within_limits(engine: Engine, api: BotApiStandin, bot: Bot) -> None:
    w = build_world(engine, api, deadlines={1: NATIONAL_DAY_DEADLINE})
    with transaction(engine) as s:
        for i in range(34):
            chat = api.make_group(f"分组{i}")
            s.add(Chat(telegram_chat_id=chat.id, campaign_id=w.campaign_id, kind=ChatKind.group, title=f"分组{i}"))
    scale = 1.0  # Telegram's limits as documented: the 31st message waits for the next second
    api.limits.enable(window_scale=scale)
    pacer = Pacer(window_scale=scale)
    report = await tick(engine, bot, at("2025-10-10", 9, 0), fast_config(), pacer=pacer)
    assert report.sent == 35
    assert api.stats.rate_limited == 0
    assert pacer.waited > 0


async def test_pacer_counts_a_message_from_its_answer() -> None:
    """Telegram counts a message when it arrives: somewhere between asking and the answer."""
    t = [0.0]

    async def sleep(seconds: float) -> None:
        t[0] += seconds

    pacer = Pacer(private_per_second=1, margin=0.0, clock=lambda: t[0], sleep=sleep)
    async with pacer.sending(42):
        t[0] = 0.2
        assert pacer.delay(42) == 1.0  # in flight: it may arrive any moment
        assert pacer.delay(43) == 0.0
        t[0] = 0.3  # the answer: it arrived by now
    assert pacer.delay(42) == pytest.approx(1.0)  # a full window from the answer, not from 0.0
    await pacer.acquire(42)
    assert t[0] == pytest.approx(1.3)
    # acquire() alone counts a message at the moment of asking, as before.
    t[0] = 1.8
    assert pacer.delay(42) == pytest.approx(0.5)


async def test_a_message_delayed_on_its_way_does_not_open_the_window_early(
    engine: Engine, api: BotApiStandin, bot: Bot
) -> None:
    w = build_world(engine, api, deadlines={1: NATIONAL_DAY_DEADLINE})
    liaison = w.users["财政小李"]
    api.limits.enable(global_per_second=None, per_group_per_minute=None, per_private_per_second=1)
    # The first request reaches Telegram 0.5 s after it was asked for (a stalled event
    # loop, a slow network): counted from the moment of asking, the next one would go
    # 1 s after that, 0.5 s after the first arrived, and be refused.
    api.faults.inject(method="sendMessage", chat_id=liaison, kind="slow", delay=0.5, times=1)
    pacer = Pacer(margin=0.0)
    for text in ("第一条", "第二条", "第三条"):
        async with pacer.sending(liaison):
            await bot.send_message(liaison, text)
    assert api.stats.faults_fired == 1
    assert api.stats.rate_limited == 0
    assert [m["text"] for m in api.sent_messages(liaison)] == ["第一条", "第二条", "第三条"]


async def test_5xx_is_retried_with_backoff(engine: Engine, api: BotApiStandin, bot: Bot) -> None:
    w = build_world(engine, api, deadlines={1: NATIONAL_DAY_DEADLINE})
    api.faults.inject(method="sendMessage", chat_id=w.group_chat_id, kind="server_error", times=2)
    config = fast_config(retry_base_seconds=10, retry_max_seconds=100)
    now = at("2025-10-10", 9, 0)
    first = await tick(engine, bot, now, config)
    assert first.retried == 1 and first.sent == 0
    [lead] = [r for r in outbox_rows(engine) if r.state == OutboxState.pending and r.attempts]
    assert lead.attempts == 1 and lead.next_attempt_at is not None
    assert abs((lead.next_attempt_at - (now + timedelta(seconds=10))).total_seconds()) < 2
    assert "Internal Server Error" in (lead.last_error or "")
    # Backing off: a run before next_attempt_at leaves the chat alone.
    assert (await dispatch(engine=engine, bot=bot, now=now + timedelta(seconds=5), config=config)).claimed == 0
    second = await dispatch(engine=engine, bot=bot, now=lead.next_attempt_at, config=config)
    assert second.retried == 1
    retried = next(r for r in outbox_rows(engine) if r.id == lead.id)
    assert retried.next_attempt_at is not None
    # Exponential: the second failure waits 2 * 10 s.
    assert abs((retried.next_attempt_at - (lead.next_attempt_at + timedelta(seconds=20))).total_seconds()) < 2
    third = await dispatch(engine=engine, bot=bot, now=retried.next_attempt_at, config=config)
    assert third.sent == 1
    done = next(r for r in outbox_rows(engine) if r.id == lead.id)
    assert done.state == OutboxState.sent and done.attempts == 3 and done.last_error is None
    assert len(api.sent_messages(w.group_chat_id)) == 1


async def test_gives_up_after_max_attempts_with_the_reason(engine: Engine, api: BotApiStandin, bot: Bot) -> None:
    w = build_world(engine, api, deadlines={1: NATIONAL_DAY_DEADLINE})
    api.faults.inject(method="sendMessage", chat_id=w.group_chat_id, kind="bad_gateway", times=None)
    config = fast_config(max_attempts=3, retry_base_seconds=1, retry_max_seconds=1)
    now = at("2025-10-10", 9, 0)
    await tick(engine, bot, now, config)
    for i in range(1, 4):
        await dispatch(engine=engine, bot=bot, now=now + timedelta(seconds=2 * i), config=config)
    rows = [r for r in outbox_rows(engine) if r.telegram_chat_id == w.group_chat_id]
    assert rows and all(r.state == OutboxState.failed for r in rows)
    assert all("3 次发送均失败" in (r.last_error or "") and "Bad Gateway" in (r.last_error or "") for r in rows)
    assert not unresolved(engine)


async def test_forbidden_marks_unreachable_and_tells_the_coordinator(
    engine: Engine, api: BotApiStandin, bot: Bot
) -> None:
    w = build_world(engine, api, deadlines={1: NATIONAL_DAY_DEADLINE}, private_nudges=("财政小李",))
    await api.block_bot(w.users["财政小李"])
    report = await tick(engine, bot, at("2025-10-10", 9, 0))
    assert report.unreachable == 1
    with transaction(engine) as s:
        m = s.get(Member, w.members["财政小李"])
        assert m is not None and not m.reachable and "blocked" in (m.unreachable_reason or "")
    failed = [r for r in outbox_rows(engine) if r.telegram_chat_id == w.users["财政小李"]]
    assert failed and all(r.state == OutboxState.failed and "无法送达" in (r.last_error or "") for r in failed)
    [alert] = api.sent_messages(w.users["监管老张"])
    assert "财政小李" in alert["text"] and "无法" in alert["text"]
    assert len(api.sent_messages(w.group_chat_id)) == 1  # the group still got its nudge
    # The next day nothing is planned for the blocked chat; no repeated alert.
    later = await tick(engine, bot, at("2025-10-11", 9, 0))
    assert all(chat != w.users["财政小李"] for chat, _ in later.messages)
    assert len(api.sent_messages(w.users["监管老张"])) == 1
    assert not unresolved(engine)


async def test_chat_not_found_marks_the_group_unreachable(engine: Engine, api: BotApiStandin, bot: Bot) -> None:
    w = build_world(engine, api, deadlines={1: NATIONAL_DAY_DEADLINE})
    api.faults.inject(method="sendMessage", chat_id=w.group_chat_id, kind="chat_not_found", times=1)
    await tick(engine, bot, at("2025-10-10", 9, 0))
    with transaction(engine) as s:
        chat = s.exec(select(Chat).where(Chat.telegram_chat_id == w.group_chat_id)).one()
        assert not chat.reachable and "not found" in (chat.unreachable_reason or "").lower()
    [alert] = api.sent_messages(w.users["监管老张"])
    assert "瑶海区质量强区工作群" in alert["text"]
    assert not unresolved(engine)


async def test_quiet_hours_hold_catch_up_until_morning(engine: Engine, api: BotApiStandin, bot: Bot) -> None:
    w = build_world(engine, api, deadlines={1: NATIONAL_DAY_DEADLINE})
    # The bot comes back at 23:00 on the deadline day: quiet until 08:00 (Saturday 10-11, a working day).
    night = await tick(engine, bot, at("2025-10-10", 23, 0))
    assert night.messages == [] and night.held > 0
    dawn = await tick(engine, bot, at("2025-10-11", 7, 59))
    assert dawn.messages == []
    morning = await tick(engine, bot, at("2025-10-11", 8, 0))
    assert [c for c, _ in morning.messages].count(w.group_chat_id) == 1


async def test_all_past_campaign_sends_one_summary_per_chat(engine: Engine, api: BotApiStandin, bot: Bot) -> None:
    now = at("2025-10-13", 9, 30)
    with transaction(engine) as s:
        import_seed(session=s, doc=load_seed(SEED_PATH), now=now, actor=__import__("models.audit", fromlist=["Actor"]).Actor.cli())
    coordinator = api.make_user("监管老张")
    liaisons = [api.make_user(f"联络员{i}") for i in range(3)]
    group = api.make_group("瑶海区质量强区工作群")
    with transaction(engine) as s:
        units = list(s.exec(select(Unit).order_by(Unit.id)))
        cid = units[0].campaign_id
        s.add(Chat(telegram_chat_id=group.id, campaign_id=cid, kind=ChatKind.group, title=group.title))
        s.add(Member(campaign_id=cid, telegram_user_id=coordinator.id, display_name="监管老张", role=Role.coordinator, private_chat_id=coordinator.id))
        for user, unit in zip(liaisons, units, strict=False):
            s.add(Member(campaign_id=cid, telegram_user_id=user.id, display_name=user.first_name, role=Role.liaison, unit_id=unit.id, private_chat_id=user.id, private_nudges=True))
    report = await tick(engine, bot, now)
    chats = [group.id, coordinator.id, *(u.id for u in liaisons)]
    assert Counter(c for c, _ in report.messages) == Counter(chats)
    assert len(_sends(api)) == len(chats)
    rows = outbox_rows(engine)
    assert len(rows) > 10 * len(chats)  # many nudges ...
    assert sum(r.state == OutboxState.sent for r in rows) == len(chats)  # ... one message per chat
    text = api.sent_messages(group)[0]["text"]
    assert "逾期 17 项" in text and "截止日期均已过去" in text and len(text) < 4096
    assert not unresolved(engine)
    # The next sweep the same day adds nothing.
    assert (await tick(engine, bot, now + timedelta(minutes=1))).messages == []


async def test_private_nudges_only_for_opted_in_liaisons(engine: Engine, api: BotApiStandin, bot: Bot) -> None:
    w = build_world(engine, api, deadlines={1: NATIONAL_DAY_DEADLINE, 2: NATIONAL_DAY_DEADLINE}, private_nudges=("商务小王",))
    report = await tick(engine, bot, at("2025-10-10", 9, 0))
    chats = {c for c, _ in report.messages}
    assert w.users["商务小王"] in chats and w.users["财政小李"] not in chats
    [private] = api.sent_messages(w.users["商务小王"])
    assert "任务2" in private["text"] and "任务1" not in private["text"]
    assert "/nudges off" in private["text"]


async def test_phase_start_is_announced_in_the_group(engine: Engine, api: BotApiStandin, bot: Bot) -> None:
    from models.tables import Phase

    w = build_world(engine, api, deadlines={1: "2025-12-31"})
    with transaction(engine) as s:
        s.add(Phase(campaign_id=w.campaign_id, no=2, name="全面创建，实现总体达标", description="全面推进创建工作。", start_date=date(2025, 10, 9), end_date=date(2025, 12, 31)))
    await tick(engine, bot, at("2025-10-09", 9, 0))
    [message] = api.sent_messages(w.group_chat_id)
    assert "🚩 第二阶段“全面创建，实现总体达标”开始" in message["text"]


async def test_escalation_goes_to_the_group_when_the_coordinator_has_no_private_chat(
    engine: Engine, api: BotApiStandin, bot: Bot
) -> None:
    w = build_world(engine, api, deadlines={1: NATIONAL_DAY_DEADLINE}, units_of={1: ["区财政局"]}, coordinator_private=False)
    await tick(engine, bot, at("2025-10-13", 10))  # catch up quietly on what came before
    api.mark()
    report = await tick(engine, bot, at("2025-10-14", 9, 0))  # 3 working days overdue
    assert [c for c, _ in report.messages] == [w.group_chat_id]
    [message] = await api.wait_for_bot_messages(w.group_chat_id)
    assert "提请" in message["text"] and "督办" in message["text"]
    mentioned = {e["user"]["id"] for e in message.get("entities", []) if e["type"] == "text_mention"}
    assert w.users["监管老张"] in mentioned


async def test_concurrent_sweeps_and_dispatchers_send_each_message_once(
    engine: Engine, api: BotApiStandin, bot: Bot
) -> None:
    import asyncio

    w = build_world(engine, api, deadlines={1: NATIONAL_DAY_DEADLINE, 2: NATIONAL_DAY_DEADLINE}, private_nudges=("财政小李", "商务小王"))
    now = at("2025-10-10", 9, 0)
    config = fast_config()
    swept = await asyncio.gather(*(asyncio.to_thread(sweep, engine=engine, now=now, config=config) for _ in range(4)))
    assert sum(r.inserted for r in swept) == swept[0].planned == len(outbox_rows(engine))
    reports = await asyncio.gather(*(dispatch(engine=engine, bot=bot, now=now, config=config) for _ in range(4)))
    assert sum(r.sent for r in reports) == 3
    for chat in (w.group_chat_id, w.users["财政小李"], w.users["商务小王"]):
        assert len(api.sent_messages(chat)) == 1
    assert not unresolved(engine)


# ------------------------------------------------------------------ digest charts

DIGEST_MONDAY = at("2025-09-22", 9, 0)  # the weekly digest (and last week's, caught up)


def _three_campaigns(engine: Engine, api: BotApiStandin) -> list[int]:
    """Three campaigns, each with its work group; returns the groups' chat ids.

    Task 1 is due on the digest's Monday: 财政小李 of each campaign gets a private nudge too.
    """
    return [
        build_world(engine, api, deadlines={1: "2025-09-22"}, slug=f"c{i}", private_nudges=("财政小李",)).group_chat_id
        for i in range(3)
    ]


async def test_every_digest_text_goes_out_before_any_chart(engine: Engine, api: BotApiStandin, bot: Bot) -> None:
    groups = _three_campaigns(engine, api)
    report = await tick(engine, bot, DIGEST_MONDAY, fast_config(digest_chart=True))
    calls = [c for c in api.calls if c.method in ("sendMessage", "sendPhoto")]
    kinds = [c.method for c in calls]
    assert kinds.count("sendPhoto") == len(groups)
    # Every text of the run (digests and the liaisons' private nudges) before the first chart.
    assert kinds == sorted(kinds, key=lambda m: m == "sendPhoto")
    assert report.sent == kinds.count("sendMessage") > len(groups)
    for group in groups:
        [digest, chart] = api.sent_messages(group)
        assert "每周进展" in digest["text"]
        assert chart["photo"] and "得分" in chart["caption"]
    assert not unresolved(engine)


async def test_a_failing_chart_never_fails_the_texts(
    engine: Engine, api: BotApiStandin, bot: Bot, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    from reports.charts import ChartProcess

    groups = _three_campaigns(engine, api)
    # The worker dies at once: each chart is logged as not sent, every text still goes out.
    monkeypatch.setattr(ChartProcess, "command", staticmethod(lambda directory: [sys.executable, "-c", "pass"]))
    report = await tick(engine, bot, DIGEST_MONDAY, fast_config(digest_chart=True))
    assert api.calls_to("sendPhoto") == []
    assert report.sent == len(_sends(api)) and report.failed == 0
    assert all("每周进展" in api.sent_messages(g)[0]["text"] for g in groups)
    assert not unresolved(engine)
    assert all(r.state in (OutboxState.sent, OutboxState.merged) for r in outbox_rows(engine))


async def test_a_hanging_chart_worker_is_given_up_after_the_texts(
    engine: Engine, api: BotApiStandin, bot: Bot, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    from reports.charts import ChartProcess
    dispatch_module = importlib.import_module("scheduler.dispatch")  # the package exports the function

    groups = _three_campaigns(engine, api)
    monkeypatch.setattr(ChartProcess, "command", staticmethod(lambda directory: [sys.executable, "-c", "import time; time.sleep(60)"]))
    workers: list[ChartProcess] = []

    class Impatient(ChartProcess):
        def __init__(self) -> None:
            super().__init__(timeout=0.5)
            workers.append(self)

    monkeypatch.setattr(dispatch_module, "ChartProcess", Impatient)
    report = await tick(engine, bot, DIGEST_MONDAY, fast_config(digest_chart=True))
    assert report.sent == len(_sends(api)) and api.calls_to("sendPhoto") == []
    assert all("每周进展" in api.sent_messages(g)[0]["text"] for g in groups)
    # Two charts waited their timeout, each in a new worker; the third was given up at once.
    [worker] = workers
    assert worker.started == 2 == len(worker._killed)
    assert worker._proc is None and all(p.returncode is not None for p in worker._killed)
    assert not unresolved(engine)


async def test_a_refused_chart_or_a_failing_status_is_only_logged(
    engine: Engine, api: BotApiStandin, bot: Bot, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    dispatch_module = importlib.import_module("scheduler.dispatch")  # the package exports the function

    groups = _three_campaigns(engine, api)
    real = dispatch_module._status_chart_data

    def status(engine: Engine, campaign_id: int, now: datetime):  # type: ignore[no-untyped-def]
        if campaign_id == 1:
            raise RuntimeError("status broke")
        return real(engine, campaign_id, now)

    monkeypatch.setattr(dispatch_module, "_status_chart_data", status)
    api.faults.inject(method="sendPhoto", chat_id=groups[1], kind="server_error", times=None)
    report = await tick(engine, bot, DIGEST_MONDAY, fast_config(digest_chart=True))
    assert report.sent == len(_sends(api)) and report.retried == report.failed == 0
    # Only the third campaign's chart arrived; the other two are in the log.
    assert [m.get("photo") is not None for m in api.sent_messages(groups[2])] == [False, True]
    assert all(len(api.sent_messages(g)) == 1 for g in groups[:2])
    warned = [r.getMessage() for r in caplog.records if "digest chart" in r.getMessage()]
    assert sorted(warned) == sorted(f"the digest chart for chat {g} was not sent" for g in groups[:2])
    assert not unresolved(engine)


async def test_digest_chart_off_sends_no_picture(engine: Engine, api: BotApiStandin, bot: Bot) -> None:
    _three_campaigns(engine, api)
    report = await tick(engine, bot, DIGEST_MONDAY, fast_config(digest_chart=False))
    assert report.sent > 0 and api.calls_to("sendPhoto") == []
