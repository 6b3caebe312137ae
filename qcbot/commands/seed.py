"""``qcbot seed``: check and import the campaign plan (data/seed.json)."""

from __future__ import annotations

import argparse
from datetime import date

from infra.db import transaction
from infra.types import utcnow
from models.audit import Actor
from models.plan import plan_edited
from models.seed import SeedError, check_seed, import_seed, load_seed
from qcbot.boot import DEFAULT_SEED
from qcbot.context import AppContext
from qcbot.errors import CommandError


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("seed", help="check or import the campaign plan")
    ssub = p.add_subparsers(dest="seed_command", required=True)
    check = ssub.add_parser("check", help="validate a seed file and list every inconsistency")
    check.add_argument("path", nargs="?", default=str(DEFAULT_SEED))
    check.set_defaults(func=cmd_check)
    imp = ssub.add_parser("import", help="import (or re-import) a seed file; idempotent")
    imp.add_argument("path", nargs="?", default=str(DEFAULT_SEED))
    imp.add_argument("--shift-to", type=date.fromisoformat, metavar="YYYY-MM-DD",
                     help="move every date so that the first phase starts on this day")
    imp.add_argument("--slug", help="campaign slug (default: the seed's)")
    imp.add_argument("--force", action="store_true",
                     help="re-import even though the coordinator changed the plan since (undoes those changes)")
    imp.set_defaults(func=cmd_import)


def cmd_check(args: argparse.Namespace) -> int:
    try:
        doc = load_seed(args.path)
    except SeedError as exc:
        raise CommandError(str(exc)) from None
    findings = check_seed(doc)
    errors = [f for f in findings if f.level == "error"]
    for f in findings:
        label = "错误" if f.level == "error" else "警告"
        print(f"[{label}] {f.code} {f.where}: {f.message}")
    print(f"检查完成：{len(errors)} 个错误，{len(findings) - len(errors)} 个警告。")
    return 1 if errors else 0


def cmd_import(args: argparse.Namespace) -> int:
    ctx = AppContext.from_args(args)
    try:
        doc = load_seed(args.path)
        with transaction(ctx.engine) as session:
            slug = args.slug or doc.campaign.slug
            edited = plan_edited(session=session, slug=slug)
            if edited and not args.force:
                raise CommandError(
                    f"活动 {slug} 的工作计划已由协调员修改过（{edited}）；按种子文件重新导入会撤销这些修改。"
                    "请改用 qcbot plan export / qcbot plan import，或确需覆盖时加 --force。")
            report = import_seed(
                session=session, doc=doc, now=utcnow(), actor=Actor.cli(),
                shift_to=args.shift_to, slug=args.slug,
            )
    except SeedError as exc:
        raise CommandError(str(exc)) from None
    print(report.summary())
    return 0
