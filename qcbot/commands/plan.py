"""``qcbot plan``: the live plan as a workbook (export), and a workbook back (import)."""

from __future__ import annotations

import argparse
from pathlib import Path

from infra.db import read_only, transaction
from infra.types import utcnow
from models.audit import Actor
from models.errors import DomainError
from models.members import campaign_by_slug
from models.plan import apply, live_plan
from qcbot.context import AppContext
from qcbot.errors import CommandError
from reports.planbook import read_plan, write_plan


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("plan", help="the live plan as a workbook: export it, edit it in Excel, import it back")
    inner = p.add_subparsers(dest="plan_command", metavar="SUBCOMMAND", required=True)
    exp = inner.add_parser("export", help="write the live plan (units, tasks, score items, links) to FILE.xlsx")
    exp.add_argument("path", metavar="FILE.xlsx")
    exp.add_argument("--slug", help="campaign slug (default: the configured or only campaign)")
    exp.set_defaults(func=cmd_export)
    imp = inner.add_parser("import", help="check FILE.xlsx, show what changes, and apply it (audited)")
    imp.add_argument("path", metavar="FILE.xlsx")
    imp.add_argument("--slug", help="campaign slug (default: the configured or only campaign)")
    imp.add_argument("--dry-run", action="store_true", help="show what would change; change nothing")
    imp.set_defaults(func=cmd_import)


def cmd_export(args: argparse.Namespace) -> int:
    ctx = AppContext.from_args(args)
    out = Path(args.path)
    if out.suffix.lower() != ".xlsx":
        out = out.with_name(out.name + ".xlsx")
    try:
        with read_only(ctx.engine) as session:
            campaign = campaign_by_slug(session, args.slug or ctx.settings.campaign.slug)
            doc = live_plan(session=session, campaign_id=campaign.id)  # type: ignore[arg-type]
    except DomainError as exc:
        raise CommandError(str(exc)) from None
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(write_plan(doc))
    print(f"工作计划已写入 {out}：单位 {len(doc.units)} 个，任务 {len(doc.tasks)} 项，"
          f"评分项 {len(doc.score_items)} 项，任务与细则的关联 {len(doc.links)} 条。")
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    ctx = AppContext.from_args(args)
    try:
        data = Path(args.path).read_bytes()
    except OSError as exc:
        raise CommandError(f"读不了 {args.path}：{exc.strerror or exc}") from None
    try:
        with transaction(ctx.engine) as session:
            campaign = campaign_by_slug(session, args.slug or ctx.settings.campaign.slug)
            base = live_plan(session=session, campaign_id=campaign.id)  # type: ignore[arg-type]
            doc = read_plan(data, base=base)
            change = apply(session=session, campaign_id=campaign.id, doc=doc,  # type: ignore[arg-type]
                           actor=Actor.cli(), now=utcnow())
            print(change.text(limit=500))
            if args.dry_run or not change.changed:
                session.rollback()
                if change.changed:
                    print("（试运行：没有做任何修改。去掉 --dry-run 即导入。）")
                return 0
    except DomainError as exc:
        raise CommandError(str(exc)) from None
    print("已导入并记入操作日志。")
    return 0
