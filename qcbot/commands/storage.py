"""``qcbot storage check [--fix]``: files in the evidence store that no record refers to."""

from __future__ import annotations

import argparse
import time

from infra.db import read_only
from models.evidence import check_store
from qcbot.context import AppContext


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("storage", help="the evidence store (storage.dir)")
    verbs = p.add_subparsers(dest="verb", required=True)
    check = verbs.add_parser("check", help="find files no record refers to (and evidence files that are missing)")
    check.add_argument("--fix", action="store_true",
                       help="remove the files no record refers to (never a file a record refers to)")
    check.set_defaults(func=cmd_check)


def cmd_check(args: argparse.Namespace) -> int:
    """Exit 0 when the store and the records agree (after --fix), 1 otherwise."""
    ctx = AppContext.from_args(args)
    root = ctx.settings.storage.dir
    with read_only(ctx.engine) as session:
        found = check_store(session, storage_dir=root, now=time.time())
    print(f"证据存储目录 {root}：{found.files} 个文件。")
    for path in found.orphans:
        print(f"  无记录引用：{path.relative_to(root)}")
    for path in found.strays:
        print(f"  不属于存储的文件：{path.relative_to(root)}")
    for digest in found.missing:
        print(f"  缺失（有记录引用，文件不在）：{digest[:2]}/{digest}")
    if found.recent:
        print(f"  另有 {found.recent} 个一小时内存入、尚无记录的文件（可能正在上传），未作处理。")
    if found.clean:
        print("存储与记录一致。")
        return 0
    if args.fix and (found.orphans or found.strays):
        removed = 0
        for path in (*found.orphans, *found.strays):
            path.unlink(missing_ok=True)
            removed += 1
        print(f"已删除 {removed} 个无记录引用的文件。")
    elif found.orphans or found.strays:
        print(f"共 {len(found.orphans) + len(found.strays)} 个多余文件；加 --fix 删除。")
    if found.missing:
        print(f"有 {len(found.missing)} 份证明材料的文件缺失：请从备份恢复（qcbot restore）。")
        return 1
    return 0 if args.fix else 1
