"""``qcbot admin``: members from the command line (the first coordinator, mostly)."""

from __future__ import annotations

import argparse

from infra.db import read_only, transaction
from infra.types import utcnow
from models import members as mm
from models.audit import Actor
from models.errors import DomainError
from qcbot.context import AppContext
from qcbot.errors import CommandError


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("admin", help="members: add the first coordinator, list, remove")
    p.add_argument("--campaign", metavar="SLUG", help="campaign slug (default: campaign.slug or the only one)")
    asub = p.add_subparsers(dest="admin_command", required=True)
    add = asub.add_parser("add-coordinator", help="make a Telegram user a coordinator")
    add.add_argument("telegram_id", type=int, metavar="TELEGRAM_ID")
    add.add_argument("--name", default="", help="display name (updated when they write to the bot)")
    add.set_defaults(func=cmd_add_coordinator)
    lst = asub.add_parser("list", help="list members")
    lst.add_argument("--all", action="store_true", help="include removed members")
    lst.set_defaults(func=cmd_list)
    rm = asub.add_parser("remove", help="remove a member (Telegram ID or @username)")
    rm.add_argument("ref", metavar="ID")
    rm.set_defaults(func=cmd_remove)
    boot = asub.add_parser("bootstrap-code", help="a new one-time code for the first coordinator (the old one stops working)")
    boot.set_defaults(func=cmd_bootstrap_code)


def _slug(args: argparse.Namespace, ctx: AppContext) -> str:
    return getattr(args, "campaign", None) or ctx.settings.campaign.slug


def cmd_add_coordinator(args: argparse.Namespace) -> int:
    ctx = AppContext.from_args(args)
    try:
        with transaction(ctx.engine) as session:
            campaign = mm.campaign_by_slug(session, _slug(args, ctx))
            slug = campaign.slug
            member = mm.add_coordinator(
                session, campaign_id=campaign.id, telegram_user_id=args.telegram_id,  # type: ignore[arg-type]
                name=args.name, actor=Actor.cli(), now=utcnow(),
            )
            label = mm.member_label(session, member)
    except DomainError as exc:
        raise CommandError(exc.message) from None
    print(f"已添加协调员：{label}（Telegram ID {args.telegram_id}，活动 {slug}）。")
    print("请对方在 Telegram 中给机器人发送 /start。")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    ctx = AppContext.from_args(args)
    try:
        with read_only(ctx.engine) as session:
            campaign = mm.campaign_by_slug(session, _slug(args, ctx))
            slug = campaign.slug
            rows = [
                (m.telegram_user_id, mm.member_label(session, m), m.active, m.username)
                for m in mm.list_members(session, campaign_id=campaign.id, include_removed=args.all)  # type: ignore[arg-type]
            ]
    except DomainError as exc:
        raise CommandError(exc.message) from None
    if not rows:
        print(f"活动 {slug} 还没有成员。")
        return 0
    for tid, label, active, username in rows:
        flag = "" if active else "  [已移出]"
        handle = f"  @{username}" if username else ""
        print(f"{tid:>12}  {label}{handle}{flag}")
    return 0


def cmd_remove(args: argparse.Namespace) -> int:
    ctx = AppContext.from_args(args)
    try:
        with transaction(ctx.engine) as session:
            campaign = mm.campaign_by_slug(session, _slug(args, ctx))
            member = mm.find_member(session, campaign_id=campaign.id, ref=args.ref)  # type: ignore[arg-type]
            mm.remove_member(session, member=member, actor=Actor.cli(), now=utcnow())
            label = mm.member_label(session, member)
    except DomainError as exc:
        raise CommandError(exc.message) from None
    print(f"已移出：{label}")
    return 0


def cmd_bootstrap_code(args: argparse.Namespace) -> int:
    """Print a new bootstrap code (it is never logged; the unused old ones are revoked)."""
    ctx = AppContext.from_args(args)
    ttl = ctx.settings.telegram.invite_ttl_hours
    try:
        with transaction(ctx.engine) as session:
            campaign = mm.campaign_by_slug(session, _slug(args, ctx))
            slug = campaign.slug
            code, _ = mm.ensure_bootstrap_code(session, campaign_id=campaign.id, now=utcnow(),  # type: ignore[arg-type]
                                               ttl_hours=ttl, renew=True)
    except DomainError as exc:
        raise CommandError(exc.message) from None
    if code is None:
        raise CommandError(f"活动 {slug} 已有协调员：请由协调员用 /invite 邀请，或用 admin add-coordinator 添加。")
    print(f"新的初始化代码（一次性，{ttl} 小时内有效，旧代码已作废）：")
    print(f"  请协调员在与机器人的私聊中发送：/start {code}")
    return 0
