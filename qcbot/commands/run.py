"""``qcbot run``: migrate, load the plan if the database is empty, start the bot."""

from __future__ import annotations

import argparse

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
    prepare(ctx)
    if args.no_start:
        print("数据库已就绪。")
        return 0
    print("数据库已就绪；机器人程序尚未实现，已停止。")
    return 0
