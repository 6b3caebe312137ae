"""``qcbot overview``: one line per active campaign, for whoever supervises a city or province."""

from __future__ import annotations

import argparse
import html
import re
from datetime import date

from infra.db import read_only
from infra.types import utcnow
from models.status import province_overview
from qcbot.context import AppContext
from reports.text import render_overview

_TAG = re.compile(r"<[^>]+>")


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("overview", help="every active campaign in one line each (score, tasks, overdue, phase)")
    p.add_argument("--date", type=date.fromisoformat, metavar="YYYY-MM-DD",
                   help="the day the status is computed for (default: today in the configured time zone)")
    p.set_defaults(func=cmd_overview)


def plain(page: str) -> str:
    """A page rendered for Telegram (HTML) as terminal text."""
    return html.unescape(_TAG.sub("", page))


def cmd_overview(args: argparse.Namespace) -> int:
    ctx = AppContext.from_args(args)
    settings = ctx.settings
    today = args.date or utcnow().astimezone(settings.campaign.tz).date()
    with read_only(ctx.engine) as session:
        lines = province_overview(session=session, today=today,
                                  yellow_working_days=settings.campaign.yellow_working_days)
    for page in render_overview(lines, today=today):
        print(plain(page))
    return 0
