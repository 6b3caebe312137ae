"""``qcbot db``: schema migrations."""

from __future__ import annotations

import argparse

from infra.migrate import current_revision, head_revision
from qcbot.boot import migrate
from qcbot.context import AppContext


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("db", help="database schema (migrations)")
    dsub = p.add_subparsers(dest="db_command", required=True)
    up = dsub.add_parser("upgrade", help="upgrade the schema to the newest revision")
    up.set_defaults(func=cmd_upgrade)
    cur = dsub.add_parser("current", help="show the schema revision of the database")
    cur.set_defaults(func=cmd_current)


def cmd_upgrade(args: argparse.Namespace) -> int:
    ctx = AppContext.from_args(args)
    print(migrate(ctx.bare_engine).summary())
    return 0


def cmd_current(args: argparse.Namespace) -> int:
    ctx = AppContext.from_args(args)
    rev = current_revision(ctx.bare_engine)
    print(rev or "(空数据库，尚未迁移)")
    return 0 if rev == head_revision() else 1
