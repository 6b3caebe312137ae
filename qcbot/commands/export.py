"""``qcbot export``: the ledger (台账) workbook and, with ``--zip``, the evidence dossier."""

from __future__ import annotations

import argparse
import time
from datetime import date
from pathlib import Path

from infra.types import utcnow
from models.errors import DomainError
from qcbot.context import AppContext
from qcbot.errors import CommandError
from reports.dossier import write_dossier
from reports.ledger import (
    ledger_file_name,
    load_ledger,
    write_ledger_xlsx,
)


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("export", help="write the ledger workbook (and the evidence ZIP with --zip)")
    p.add_argument("--slug", help="campaign slug (default: the configured or only campaign)")
    p.add_argument("--out", metavar="FILE.xlsx",
                   help="workbook to write (default: <district>_质量强区台账_<date>.xlsx here); "
                        "the ZIP goes next to it with the same name")
    p.add_argument("--zip", action="store_true",
                   help="also write the dossier: evidence files by score item and task, ledger as index")
    p.add_argument("--part-mb", type=float, default=None, metavar="MB",
                   help="split the ZIP into volumes of at most this many MB, each a complete ZIP "
                        "(default: export.part_mb of the configuration, 50; 0: never split)")
    p.add_argument("--date", type=date.fromisoformat, metavar="YYYY-MM-DD",
                   help="the day the status is computed for (default: today in the campaign's time zone)")
    p.set_defaults(func=cmd_export)


def _mb(n: int) -> str:
    return f"{n / 1e6:.2f} MB"


def cmd_export(args: argparse.Namespace) -> int:
    ctx = AppContext.from_args(args)
    settings = ctx.settings
    now = utcnow()
    started = time.perf_counter()
    try:
        ledger = load_ledger(
            ctx.engine, now=now, slug=args.slug or settings.campaign.slug, today=args.date,
            yellow_working_days=settings.campaign.yellow_working_days,
        )
        out = Path(args.out) if args.out else Path(ledger_file_name(ledger))
        if out.suffix.lower() != ".xlsx":
            out = out.with_name(out.name + ".xlsx")
        out.parent.mkdir(parents=True, exist_ok=True)
        write_ledger_xlsx(ledger, out)
        print(f"台账已写入 {out}（{_mb(out.stat().st_size)}）")
        if args.zip:
            part_mb = settings.export.part_mb if args.part_mb is None else args.part_mb
            limit = int(part_mb * 1e6) if part_mb > 0 else None
            result = write_dossier(ledger, storage_dir=settings.storage.dir, out=out,
                                   part_limit=limit)
            if result.split:
                print(f"材料包共 {result.file_count} 份材料，分为 {len(result.paths)} 个压缩包"
                      f"（每个不超过 {_mb(limit or 0)}，均可单独解压）：")
            else:
                print(f"材料包共 {result.file_count} 份材料：")
            for path in result.paths:
                print(f"  {path}（{_mb(path.stat().st_size)}）")
    except DomainError as exc:
        raise CommandError(str(exc)) from None
    print(f"用时 {time.perf_counter() - started:.1f} 秒。")
    return 0
