"""``qcbot run``: migrate, load the plan if the database is empty, start the bot."""

from __future__ import annotations

import argparse
import importlib
import sys

from sqlmodel import select

from models.audit import Actor
from models.db import read_only, transaction
from models.migrate import upgrade
from models.seed import import_seed, load_seed
from models.tables import Campaign
from models.types import utcnow
from qcbot.commands.seed import DEFAULT_SEED
from qcbot.context import AppContext


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("run", help="migrate, import the seed if needed, and start the bot")
    p.add_argument("--no-start", action="store_true", help="prepare the database only")
    p.set_defaults(func=cmd_run)


def prepare(ctx: AppContext) -> None:
    """Upgrade the schema and import data/seed.json when no campaign exists."""
    upgrade(ctx.engine)
    with read_only(ctx.engine) as session:
        has_campaign = session.exec(select(Campaign.id).limit(1)).first() is not None
    if has_campaign:
        return
    doc = load_seed(DEFAULT_SEED)
    with transaction(ctx.engine) as session:
        report = import_seed(session=session, doc=doc, now=utcnow(), actor=Actor.cli())
    print(report.summary())


def cmd_run(args: argparse.Namespace) -> int:
    ctx = AppContext.from_args(args)
    if not args.no_start and not ctx.settings.telegram.has_token:
        return _console(args)  # its own demo database: the configured one is not touched
    prepare(ctx)
    if args.no_start:
        print("数据库已就绪。")
        return 0
    return start_bot(ctx)


def _console(args: argparse.Namespace) -> int:
    """Without a token: the console against a local stand-in (``qcbot console``)."""
    try:
        console = importlib.import_module("qcbot.commands.console")
    except ModuleNotFoundError:
        print(
            "未配置机器人令牌（QCBOT_BOT_TOKEN 或 telegram.token），控制台模式尚未安装。\n"
            "No bot token configured (QCBOT_BOT_TOKEN or telegram.token) and no console installed."
        )
        return 2
    return int(console.cmd_console(args, no_token_notice=True) or 0)


def start_bot(ctx: AppContext) -> int:
    """Poll (or serve the webhook) until stopped; a network failure ends with one clear line."""
    from telegram.error import InvalidToken, NetworkError, TimedOut

    from bot.app import build_application, run
    from qcbot.logging_setup import configure_logging

    configure_logging(ctx.settings)
    app = build_application(settings=ctx.settings, engine=ctx.engine)
    mode = "Webhook" if ctx.settings.telegram.mode == "webhook" else "轮询 (polling)"
    print(f"机器人启动中（{mode}）……按 Ctrl-C 停止。", flush=True)
    try:
        run(app)
    except ValueError as exc:  # a configuration the bot cannot run with
        print(f"配置错误 / configuration error: {exc}", file=sys.stderr)
        return 2
    except InvalidToken:
        print("错误：Telegram 拒绝了机器人令牌，请检查 QCBOT_BOT_TOKEN。\n"
              "Error: Telegram rejected the bot token; check QCBOT_BOT_TOKEN.", file=sys.stderr)
        return 1
    except (NetworkError, TimedOut) as exc:
        print(f"错误：无法连接 Telegram（{ctx.settings.telegram.base_url.split('/bot')[0]}）：网络错误（{type(exc).__name__}）。"
              "请检查网络或代理设置，或配置 telegram.base_url。\n"
              f"Error: cannot reach the Telegram Bot API: network error ({type(exc).__name__}).",
              file=sys.stderr)
        return 1
    print("机器人已停止。")
    return 0
