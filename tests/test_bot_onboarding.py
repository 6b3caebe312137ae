"""Onboarding end to end: bootstrap code, /bindgroup, invites, roles, menus, unbound groups."""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlmodel import select

from infra.db import transaction
from models.members import binding_for_group
from models.tables import AuditLog, Chat, Invite, Role
from tests.harness import TOKEN, Harness


async def test_bootstrap_bind_and_invite(harness):
    coord = await harness.coordinator("王主任")
    assert harness.member(coord).role == Role.coordinator
    group = await harness.bound_group(coord)
    with harness.db() as s:
        chat = s.exec(select(Chat).where(Chat.telegram_chat_id == group.id)).one()
        assert chat.campaign_id == harness.campaign_id
    li = await harness.liaison("李四", "财政局", coordinator=coord)
    m = harness.member(li)
    assert m.role == Role.liaison and m.unit_id == harness.unit("区财政局").id
    [who] = await harness.say(li, group, "/whoami")
    assert "区财政局" in who["text"] and "联络员" in who["text"]
    with harness.db() as s:
        actions = {a.action for a in s.exec(select(AuditLog))}
    assert {"member.join", "invite.create", "invite.use", "chat.bind"} <= actions


async def test_bootstrap_code_is_single_use(harness):
    code = harness.app.bot_data["bootstrap_codes"][-1]
    first = harness.api.make_user("甲")
    [ok] = await harness.say(first, first, f"/start {code}")
    assert "协调员" in ok["text"]
    second = harness.api.make_user("乙")
    [refused] = await harness.say(second, second, f"/start {code}")
    assert "已被使用" in refused["text"] or "已有协调员" in refused["text"]
    assert harness.member(second) is None


async def test_invite_link_shape_single_use_and_expiry(harness):
    coord = await harness.coordinator()
    link = await harness.invite_link(coord, "区财政局")
    assert link.startswith("https://t.me/qcbot_test_bot?start=")
    token = link.split("start=")[1]
    assert len(token) <= 64 and token.replace("-", "").replace("_", "").isalnum()
    a, b = harness.api.make_user("甲"), harness.api.make_user("乙")
    [ok] = await harness.say(a, a, f"/start {token}")
    assert "欢迎" in ok["text"]
    [used] = await harness.say(b, b, f"/start {token}")
    assert "已被使用" in used["text"]
    # an expired link
    link2 = await harness.invite_link(coord, "发改委")
    harness.clock.advance(hours=harness.settings.telegram.invite_ttl_hours + 1)
    [expired] = await harness.say(b, b, f"/start {link2.split('start=')[1]}")
    assert "过期" in expired["text"]
    assert harness.member(b) is None
    [bad] = await harness.say(b, b, "/start not-a-real-token")
    assert "无效" in bad["text"]


async def test_invite_unit_lookup_and_leader(harness):
    coord = await harness.coordinator()
    [amb] = await harness.say(coord, coord, "/invite 局")
    assert "多个单位" in amb["text"] or "没有找到" in amb["text"]
    [miss] = await harness.say(coord, coord, "/invite 宇宙管理局")
    assert "没有找到单位" in miss["text"] and "区财政局" in miss["text"]
    link = await harness.invite_link(coord, "leader")
    boss = harness.api.make_user("区长")
    [ok] = await harness.say(boss, boss, f"/start {link.split('start=')[1]}")
    assert "领导" in ok["text"]
    assert harness.member(boss).role == Role.leader
    # leaders are read-only
    [no] = await harness.say(boss, boss, "/invite 区财政局")
    assert "只读" in no["text"]


async def test_invite_in_group_and_bindgroup_in_private_are_refused(harness):
    coord = await harness.coordinator()
    group = await harness.bound_group(coord)
    [r1] = await harness.say(coord, group, "/invite 区财政局")
    assert "私聊" in r1["text"]
    [r2] = await harness.say(coord, coord, "/bindgroup")
    assert "工作群" in r2["text"]


async def test_unbound_group_is_ignored_with_one_notice(harness):
    coord = await harness.coordinator()
    stranger = harness.api.make_user("路人")
    group = harness.api.make_group("闲聊群", members=[coord, stranger])
    [notice] = await harness.say(stranger, group, "/mytasks")
    assert "尚未绑定" in notice["text"]
    await harness.say(stranger, group, "/help", count=0)
    await harness.say(coord, group, "/status", count=0)
    assert [m["text"] for m in harness.api.sent_messages(group)] == [notice["text"]]
    # the coordinator binds it; then the bot answers there
    [bound] = await harness.say(coord, group, "/bindgroup")
    assert "已绑定" in bound["text"]
    [again] = await harness.say(coord, group, "/bindgroup")
    assert "无需重复" in again["text"]


async def test_bot_added_to_unbound_group_says_so_once(harness):
    coord = await harness.coordinator()
    group = harness.api.make_group("新群", members=[coord], bot_status="left")
    harness.api.mark(group)
    await harness.api.add_bot_to_group(coord, group)
    [notice] = await harness.api.wait_for_bot_messages(group)
    assert "/bindgroup" in notice["text"]
    await harness.idle()
    assert len(harness.api.sent_messages(group)) == 1


async def test_stranger_in_bound_group(harness):
    coord = await harness.coordinator()
    group = await harness.bound_group(coord)
    stranger = harness.api.make_user("路人甲")
    [r] = await harness.say(stranger, group, "/progress 7 60")
    assert "还不是本活动的成员" in r["text"]
    [r2] = await harness.say(stranger, group, "/bindgroup")
    assert "邀请" in r2["text"] or "协调员" in r2["text"]
    # plain chatter is not for the bot
    await harness.say(stranger, group, "大家好", count=0)


async def test_members_and_remove(harness):
    coord = await harness.coordinator()
    li = await harness.liaison("李四", "区财政局", coordinator=coord, username="lisi")
    [lst] = await harness.say(coord, coord, "/members")
    assert "李四" in lst["text"] and "区财政局" in lst["text"]
    [gone] = await harness.say(coord, coord, "/remove @lisi")
    assert "已移出" in gone["text"]
    assert harness.member(li).active is False
    [r] = await harness.say(li, li, "/mytasks")
    assert "移出" in r["text"]
    [last] = await harness.say(coord, coord, f"/remove {coord.id}")
    assert "唯一的协调员" in last["text"]


async def test_help_lists_what_each_role_may_do(harness):
    coord = await harness.coordinator()
    li = await harness.liaison("李四", "区财政局", coordinator=coord)
    stranger = harness.api.make_user("路人")
    [h_coord] = await harness.say(coord, coord, "/help")
    [h_li] = await harness.say(li, li, "/help")
    [h_str] = await harness.say(stranger, stranger, "/help")
    assert "/review" in h_coord["text"] and "/invite" in h_coord["text"]
    assert "/review" not in h_li["text"] and "/progress" in h_li["text"] and "回复" in h_li["text"]
    assert "/progress" not in h_str["text"] and "邀请链接" in h_str["text"]


async def test_menus_per_scope_from_one_list(harness):
    from bot.commands import COMMANDS

    coord = await harness.coordinator()
    await harness.bound_group(coord)
    await harness.idle()
    calls = harness.api.calls_to("setMyCommands")
    scopes = {c.params.get("scope", {}).get("type") for c in calls}
    assert {"all_private_chats", "all_group_chats", "chat", "chat_member"} <= scopes
    names = {c.name for c in COMMANDS}
    for call in calls:
        for cmd in call.params["commands"]:
            assert cmd["command"] in names
    coord_menu = [c for c in calls if c.params.get("scope", {}).get("type") == "chat"][-1]
    assert "review" in {c["command"] for c in coord_menu.params["commands"]}
    liaison_menu = [c for c in calls if c.params.get("scope", {}).get("type") == "all_private_chats"][-1]
    assert "review" not in {c["command"] for c in liaison_menu.params["commands"]}


async def test_wrong_chat_and_unknown_command(harness):
    coord = await harness.coordinator()
    [r] = await harness.say(coord, coord, "/nosuchthing")
    assert "/help" in r["text"]


async def test_token_never_logged(harness, caplog):
    caplog.set_level(logging.DEBUG)
    coord = await harness.coordinator()
    await harness.say(coord, coord, "/whoami")
    assert TOKEN not in caplog.text
    assert TOKEN.split(":")[1] not in caplog.text


async def test_invite_rows_expire_in_configured_hours(harness):
    coord = await harness.coordinator()
    await harness.invite_link(coord, "区财政局")
    with harness.db() as s:
        inv = s.exec(select(Invite).where(Invite.role == Role.liaison)).one()
    assert inv.expires_at - inv.created_at == timedelta(hours=harness.settings.telegram.invite_ttl_hours)


async def test_two_campaigns_in_one_deployment(harness):
    from models.tables import Member

    second_id, coord_a, group_a, coord_b = await harness.second_campaign()
    group_b = harness.api.make_group("乙区工作群", members=[coord_b])
    [bound] = await harness.say(coord_b, group_b, "/bindgroup")
    assert "已绑定" in bound["text"]
    with harness.db() as s:
        assert s.exec(select(Chat).where(Chat.telegram_chat_id == group_b.id)).one().campaign_id == second_id
    li = await harness.liaison("乙区联络员", "区财政局", coordinator=coord_b)
    with harness.db() as s:
        m = s.exec(select(Member).where(Member.telegram_user_id == li.id)).one()
    assert m.campaign_id == second_id
    [ok] = await harness.say(li, group_b, "/mytasks")
    assert "任务7" in ok["text"] and "区财政局" in ok["text"]
    # in the other campaign's group the same person is nobody
    [no] = await harness.say(li, group_a, "/mytasks")
    assert "不是本活动的成员" in no["text"]


async def test_a_chat_that_speaks_again_is_reachable_again(harness):
    """The scheduler marks a kicked group / blocking user unreachable; their next update undoes it."""
    from infra.db import transaction
    from models.tables import Member

    coord = await harness.coordinator()
    group = await harness.bound_group(coord)
    li = await harness.liaison("李四", "区财政局", coordinator=coord)
    with transaction(harness.engine) as s:
        chat = s.exec(select(Chat).where(Chat.telegram_chat_id == group.id)).one()
        chat.reachable, chat.unreachable_reason = False, "Forbidden: bot was kicked from the supergroup chat"
        member = s.exec(select(Member).where(Member.telegram_user_id == li.id)).one()
        member.reachable, member.unreachable_reason = False, "Forbidden: bot was blocked by the user"
    await harness.say(li, group, "/whoami")
    await harness.say(li, li, "/whoami")
    with harness.db() as s:
        chat = s.exec(select(Chat).where(Chat.telegram_chat_id == group.id)).one()
        assert chat.reachable and chat.unreachable_reason is None
        member = s.exec(select(Member).where(Member.telegram_user_id == li.id)).one()
        assert member.reachable and member.unreachable_reason is None


async def test_an_unbound_group_is_bound_to_the_campaign_its_sender_coordinates(harness: Harness) -> None:
    """models.members.binding_for_group: the one rule /bindgroup asks in a group bound to nothing."""
    second_id, coord_a, _group_a, coord_b = await harness.second_campaign()
    liaison = await harness.liaison("王五", "区财政局", coordinator=coord_a)
    with harness.db() as s:
        campaign, member = binding_for_group(s, telegram_user_id=coord_b.id)
        assert campaign is not None and campaign.id == second_id
        assert member is not None and member.role == Role.coordinator
        campaign, member = binding_for_group(s, telegram_user_id=coord_a.id)
        assert campaign is not None and campaign.id == harness.campaign_id
        # A liaison coordinates nothing: no campaign, but their membership (refused as a liaison).
        campaign, member = binding_for_group(s, telegram_user_id=liaison.id)
        assert campaign is None and member is not None and member.role == Role.liaison
        assert binding_for_group(s, telegram_user_id=4242424242) == (None, None)


async def test_the_bootstrap_code_is_printed_once_and_never_logged(
    standin, seeded_engine, bot_settings, clock, capsys, caplog, tmp_path,
) -> None:
    """The first start prints it; no log record ever holds it; a restart does not print it
    again; ``qcbot admin bootstrap-code`` makes a new one (the old one stops working)."""
    from bot.app import build_application, running
    from models.members import BOOTSTRAP_PREFIX
    from qcbot.cli import main

    caplog.set_level(logging.DEBUG)

    def app():
        return build_application(settings=bot_settings, engine=seeded_engine, clock=clock, token=standin.token,
                                 base_url=standin.base_url, base_file_url=standin.base_file_url)

    async with running(app(), poll_timeout=1) as first:
        [code] = first.bot_data["bootstrap_codes"]
    assert code in capsys.readouterr().out
    async with running(app(), poll_timeout=1) as second:
        assert not second.bot_data.get("bootstrap_codes")
    again = capsys.readouterr().out
    assert code not in again and "bootstrap-code" in again
    assert not [r for r in caplog.records if code in r.getMessage()]

    config = tmp_path / "config.toml"
    config.write_text(f'[database]\nurl = "{bot_settings.database.url}"\n', encoding="utf-8")
    assert main(["-c", str(config), "admin", "bootstrap-code"]) == 0
    printed = capsys.readouterr().out
    new = printed.split("/start ", 1)[1].split()[0]
    assert new.startswith(BOOTSTRAP_PREFIX) and new != code
    with transaction(seeded_engine) as s:
        old = s.exec(select(Invite).where(Invite.token == code)).one()
        assert old.revoked


async def test_a_coordinator_invites_a_second_coordinator(harness: Harness) -> None:
    """The office has more than one person: /invite coordinator (协调员) makes a link for one more
    (the first coordinator's bootstrap code stays single, and spent)."""
    coord = await harness.coordinator("王主任")
    [msg] = await harness.say(coord, coord, "/invite 协调员")
    assert "协调员 邀请链接" in msg["text"], msg["text"]
    token = msg["text"].split("start=", 1)[1].split()[0]
    deputy = harness.api.make_user("赵副主任")
    [welcome] = await harness.say(deputy, deputy, f"/start {token}")
    assert "欢迎" in welcome["text"] and "协调员" in welcome["text"]
    assert harness.member_count(Role.coordinator) == 2
    [listing] = await harness.say(deputy, deputy, "/members")  # a coordinator's command works
    assert "赵副主任" in listing["text"] and "王主任" in listing["text"]
