"""Joining and the office's membership commands: /start, /whoami, /bindgroup, /invite, /members, /remove."""

from __future__ import annotations

from sqlmodel import Session
from telegram.helpers import create_deep_linked_url

from bot.actions.common import Req
from bot.callbacks import button
from bot.context import Menus, Out
from models import members, wording
from models.errors import InvalidInput
from models.members import Env
from models.permissions import Action, check
from models.tables import Role


def whoami(session: Session, env: Env, req: Req) -> Out:
    m = env.member
    if m is None:
        return Out(
            f"你的 Telegram ID：<code>{env.user.id}</code>\n"
            "你还不是本活动的成员。请使用协调员发给你的邀请链接加入。"
        )
    status = "（已被移出）" if not m.active else ""
    campaign = env.campaign.name if env.campaign else ""
    return Out(
        f"👤 {wording.esc(members.member_label(session, m))}{status}\n"
        f"活动：{wording.esc(campaign)}\nTelegram ID：<code>{env.user.id}</code>"
    )


def start(session: Session, env: Env, req: Req, payload: str | None) -> Out:
    """/start [CODE]: join with an invite or the bootstrap code; else say hello."""
    if env.is_group:
        return Out("请在与我的私聊中发送 /start。在群里可以直接回复我发的任务消息。")
    if payload:
        member = members.redeem_invite(
            session, token=payload.strip(), user=env.user,
            private_chat_id=env.chat_info.id if env.chat_info.id == env.user.id else None,
            now=req.now,
        )
        label = members.member_label(session, member)
        tips = {
            Role.coordinator: "发送 /help 查看协调员命令。下一步：把我拉进工作群并在群里发送 /bindgroup，"
            "然后用 /invite 单位名称 邀请各单位联络员。",
            Role.liaison: "发送 /mytasks 查看本单位的任务。以后直接回复我发的任务消息即可填报进度。",
            Role.leader: "领导账号为只读（批示除外）。发送 /status 查看全区进度；回复任务、单位或提醒消息即可作出批示。",
        }
        return Out(f"✅ 欢迎！你已加入，身份：{wording.esc(label)}\n{tips.get(member.role, '')}",
                   menus=Menus(user_id=env.user.id))
    # A member's private chat may be new to us (one added from the command line): their menus.
    mine = Menus(user_id=env.user.id) if env.member is not None else None
    if env.member is not None and env.member.active:
        return Out(
            f"你好，{wording.esc(env.member.display_name)}！你的身份：{wording.esc(members.member_label(session, env.member))}。\n"
            "发送 /help 查看可以使用的命令。",
            menus=mine,
        )
    return Out(
        "你好！我是质量强区工作助手，帮助各责任单位填报任务进度、提交证明材料。\n"
        "请点击协调员发给你的邀请链接加入；如果没有，请联系区市场监管局（领导小组办公室）。",
        menus=mine,
    )


def bind_group(session: Session, env: Env, req: Req) -> Out:
    """/bindgroup: the coordinator binds this group to their campaign."""
    if not env.is_group:
        raise InvalidInput("/bindgroup 只能在工作群里使用：请把我拉进群，然后在群里发送 /bindgroup。")
    campaign = env.campaign
    member = env.member
    if campaign is None:
        campaign, member = members.binding_for_group(
            session, telegram_user_id=env.user.id, preferred_slug=req.settings.campaign.slug)
    check(member=member, action=Action.bind_group)
    assert campaign is not None and member is not None
    env.campaign, env.member = campaign, member
    # Bound now or before: the menus of its coordinators and leaders in it (again).
    menus = Menus(group_chat_id=env.chat_info.id)
    if not members.bind_group(session, env=env, campaign_id=campaign.id, now=req.now):  # type: ignore[arg-type]
        return Out(f"本群已绑定到“{wording.esc(campaign.name)}”，无需重复绑定。", menus=menus)
    return Out(
        f"✅ 本群已绑定到“{wording.esc(campaign.name)}”。\n"
        "各单位联络员可在群里直接回复我发的任务消息填报进度，或发送 /mytasks 查看本单位的任务。",
        menus=menus,
    )


def invite(session: Session, env: Env, req: Req, text: str) -> Out:
    """/invite 单位 | leader: a single-use, expiring deep link."""
    check(member=env.member, action=Action.invite)
    if env.is_group:
        raise InvalidInput("邀请链接只能使用一次，请在与我的私聊中发送 /invite，再把链接单独转发给对方。")
    role, unit = members.parse_invite_target(session, campaign_id=env.campaign_id, text=text)
    ttl = req.settings.telegram.invite_ttl_hours
    inv = members.create_invite(
        session, campaign_id=env.campaign_id, role=role, unit_id=unit.id if unit else None,
        created_by=env.member, actor=env.actor, now=req.now, ttl_hours=ttl,
    )
    link = create_deep_linked_url(req.bot_username, inv.token)
    who = wording.esc(members.invite_label(session, inv))
    expires = wording.when(inv.expires_at, req.settings.campaign.tz)
    return Out(
        f"🔗 {who} 邀请链接（一次性，{expires} 前有效）：\n{link}\n\n"
        "请把链接单独发给对方；对方点击后按“开始/START”即可加入。"
    )


def invites_list(session: Session, env: Env, req: Req) -> Out:
    """/invites: the invites that could still be used, each with a 撤销 button (no links shown)."""
    check(member=env.member, action=Action.invite)
    rows = members.open_invites(session, campaign_id=env.campaign_id, now=req.now)
    if not rows:
        return Out("目前没有未使用的邀请链接。发送 /invite 单位名称 生成新的邀请链接。")
    tz = req.settings.campaign.tz
    lines = [f"🔗 未使用的邀请链接（{len(rows)} 个，点“撤销”即作废）："]
    buttons = []
    for i, inv in enumerate(rows, 1):
        who = members.invite_label(session, inv)
        lines.append(f"{i}. {wording.esc(who)} · {wording.when(inv.expires_at, tz)} 前有效")
        buttons.append([(f"撤销 {i}. {who}"[:60], button("i", "rv", inv.id))])  # type: ignore[arg-type]
    return Out("\n".join(lines), buttons=buttons[:50])


def members_list(session: Session, env: Env, req: Req) -> Out:
    check(member=env.member, action=Action.list_members)
    rows = members.list_members(session, campaign_id=env.campaign_id)
    if not rows:
        return Out("还没有成员。")
    lines = [f"👥 成员（{len(rows)} 人）："]
    for m in rows:
        handle = f" @{wording.esc(m.username)}" if m.username else ""
        private = "" if m.private_chat_id else " · 未私聊"
        lines.append(f"• {wording.esc(members.member_label(session, m))}{handle} · ID <code>{m.telegram_user_id}</code>{private}")
    lines.append("\n移除成员：/remove Telegram ID 或 @用户名")
    return Out("\n".join(lines))


def remove(session: Session, env: Env, req: Req, ref: str) -> Out:
    check(member=env.member, action=Action.remove_member)
    target = members.find_member(session, campaign_id=env.campaign_id, ref=ref)
    members.remove_member(session, member=target, actor=env.actor, now=req.now)
    return Out(f"✅ 已移出：{wording.esc(members.member_label(session, target))}",
               menus=Menus(user_id=target.telegram_user_id))

