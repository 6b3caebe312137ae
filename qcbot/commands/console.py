"""``qcbot console``: the bot in a terminal chat, against a local stand-in of Telegram."""

from __future__ import annotations

import argparse

from qcbot.errors import CommandError


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "console",
        help="try the bot in the terminal (local stand-in of Telegram, demo database)",
        description=(
            "Chat with the bot in the terminal: the real bot runs against a local stand-in of "
            "the Telegram Bot API, on a demo campaign of its own (var/console.sqlite3, kept "
            "between runs) moved so that today falls in phase 2. Type :help inside."
        ),
    )
    p.add_argument("--fresh", action="store_true", help="start the demo over (deletes var/console.sqlite3 and its chats)")
    p.add_argument(
        "--database-url",
        help="use this database instead of the demo one (e.g. a copy of production); never touched otherwise",
    )
    p.add_argument("--as", dest="who", metavar="WHO",
                   help="who you are: a number of the list, a unit (区财政局), 协调员/coordinator or 领导/leader")
    p.add_argument("--in", dest="where", metavar="WHERE", help="where you speak: group or private")
    color = p.add_mutually_exclusive_group()
    color.add_argument("--color", dest="color", action="store_const", const=True, default=None,
                       help="terminal styles even when not on a terminal")
    color.add_argument("--no-color", dest="color", action="store_const", const=False,
                       help="no terminal styles")
    p.set_defaults(func=cmd_console)


def cmd_console(args: argparse.Namespace, *, no_token_notice: bool = False) -> int:
    """Run the console; also what ``qcbot run`` does without a token (args may lack options)."""
    import sys

    from qcbot.console.app import ConsoleOptions, run_console

    if no_token_notice and not sys.stdin.isatty():
        # `qcbot run` as a service (stdin /dev/null) without a token: fail, do not chat.
        print(
            "错误：未配置机器人令牌（QCBOT_BOT_TOKEN 或 config.toml 的 telegram.token）。"
            "在终端里运行 qcbot run 可进入控制台试用；脚本请用 qcbot console。\n"
            "Error: no bot token configured (QCBOT_BOT_TOKEN or telegram.token). On a terminal, "
            "qcbot run opens the console instead; scripts use qcbot console.",
            file=sys.stderr,
        )
        return 2
    if getattr(args, "fresh", False) and getattr(args, "database_url", None):
        raise CommandError("--fresh 只用于演示数据库，不会删除 --database-url 指定的数据库。")
    opts = ConsoleOptions(
        config=getattr(args, "config", None),
        database_url=getattr(args, "database_url", None),
        fresh=bool(getattr(args, "fresh", False)),
        who=getattr(args, "who", None),
        where=getattr(args, "where", None),
        color=getattr(args, "color", None),
        no_token_notice=no_token_notice,
    )
    return run_console(opts)
