"""``qcbot run``: migrate, load the plan if the database is empty, start the bot."""

from __future__ import annotations

import argparse

from qcbot import boot
from qcbot.context import AppContext


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("run", help="migrate, import the seed if needed, and start the bot")
    p.add_argument("--no-start", action="store_true", help="prepare the database only")
    p.set_defaults(func=cmd_run)


def cmd_run(args: argparse.Namespace) -> int:
    ctx = AppContext.from_args(args)
    if not args.no_start and not ctx.settings.telegram.has_token:
        # The console, on its own demo database: the configured one is not touched.
        from qcbot.commands.console import cmd_console

        return cmd_console(args, no_token_notice=True)
    report = boot.prepare(ctx.bare_engine)
    if report is not None:
        print(report.summary())
    if args.no_start:
        print("数据库已就绪。")
        return 0
    return boot.start_bot(ctx.settings, ctx.bare_engine)
