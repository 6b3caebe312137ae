"""``qcbot backup`` and ``qcbot restore``: copies of the record, and bringing one back."""

from __future__ import annotations

import argparse

from infra.backup import (
    BackupError,
    backup_job,
    check_key_location,
    create_backup,
    restore_backup,
    verify_backup,
)
from qcbot.context import AppContext
from qcbot.errors import CommandError


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    b = sub.add_parser(
        "backup",
        help="back up the database and evidence files (safe while the bot runs)",
        description="Write a consistent copy of the database and the evidence files, "
        "with a manifest of sha256 sums signed with backup.key_file (made at the first backup). "
        "Without DEST: a dated directory under backup.dir, "
        "verified, then older dated backups are pruned to backup.keep (what the daily job does).",
    )
    b.add_argument("dest", nargs="?", help="directory to create (must not exist or be empty)")
    b.set_defaults(func=cmd_backup)
    r = sub.add_parser(
        "restore",
        help="verify a backup and restore it into the configured database and storage dir",
        description="Verify the backup's signature (backup.key_file) and every sha256 sum, and that "
        "it holds nothing qcbot does not create, then restore it (stop the bot first). "
        "Refuses a database that holds rows unless --force; with --force the database about to "
        "be overwritten is first backed up under backup.dir as pre-restore-*.",
    )
    r.add_argument("src", help="backup directory (holding manifest.json)")
    r.add_argument("--force", action="store_true", help="overwrite a database that is not empty")
    r.add_argument("--verify-only", action="store_true", help="check the backup and stop")
    r.set_defaults(func=cmd_restore)


def cmd_backup(args: argparse.Namespace) -> int:
    ctx = AppContext.from_args(args)
    s = ctx.settings
    key_file = s.backup.key_file
    try:
        check_key_location(key_file, s.backup.dir)
        if args.dest:
            result = create_backup(ctx.engine, s.storage.dir, args.dest, key_file=key_file)
            verify_backup(result.path, key_file=key_file)
        else:
            result = backup_job(
                ctx.engine, s.storage.dir, s.backup.dir, s.backup.keep, key_file=key_file
            )
    except BackupError as exc:
        raise CommandError(str(exc)) from None
    print(result.summary())
    return 1 if result.problems else 0


def cmd_restore(args: argparse.Namespace) -> int:
    ctx = AppContext.from_args(args)
    s = ctx.settings
    key_file = s.backup.key_file
    try:
        check_key_location(key_file, s.backup.dir)
        if args.verify_only:
            manifest = verify_backup(args.src, key_file=key_file)
            print(
                f"备份完好：签名有效，{len(manifest['files'])} 个文件的 sha256 全部一致"
                f"（{manifest['backend']}，结构版本 {manifest['schema_revision']}，"
                f"创建于 {manifest.get('created_at')}）。"
            )
            return 0
        result = restore_backup(
            args.src, ctx.bare_engine, s.storage.dir,
            key_file=key_file, force=args.force, safety_dir=s.backup.dir,
        )
    except BackupError as exc:
        raise CommandError(str(exc)) from None
    print(result.summary())
    return 0
