"""Backups of the record: a consistent copy of the database plus the evidence files.

A backup is a directory::

    manifest.json              what is inside, with a sha256 sum of every other file
    database.sqlite3           SQLite: a copy made with the online backup API
    database.pgdump            PostgreSQL: ``pg_dump -Fc`` of the current schema
    evidence/ab/abcdef...      every evidence file the database refers to

It is written while the bot runs:

* SQLite: ``sqlite3.Connection.backup`` copies the database in one step, which
  is one read transaction: in WAL mode writers go on, and the copy is the
  database as of one instant.
* PostgreSQL: a REPEATABLE READ transaction exports its snapshot
  (``pg_export_snapshot``) and ``pg_dump --snapshot`` dumps exactly that
  snapshot, so the row counts and the list of evidence files read in the
  transaction describe the dump exactly. The connection reaches ``pg_dump`` and
  ``pg_restore`` through ``PG*`` environment variables, never through argv.

Evidence files are written before the row that refers to them
(``infra.files.store_blob``), so every file the snapshot refers to exists
when it is copied; each one is hashed while copied and must match its name.

A backup is first written to a hidden ``.NAME.partial-*`` sibling directory and
renamed into place when complete: a directory with a ``manifest.json`` is
always a whole backup.

Restoring (:func:`restore_backup`) verifies the sums first, refuses a database
that holds rows unless forced, copies the evidence files into the storage
directory, loads the database and checks the row counts and the schema
revision against the manifest. A backup restores into the backend it was taken
from; SQLite to PostgreSQL (or back) is not supported.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import sqlite3
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection, Engine

from infra import __version__
from infra.files import atomic_writer, blob_path
from infra.types import utcnow

log = logging.getLogger(__name__)

FORMAT = 1
MANIFEST = "manifest.json"
SQLITE_FILE = "database.sqlite3"
PG_FILE = "database.pgdump"
EVIDENCE_DIR = "evidence"
#: Tables that hold no part of the record (an empty database may have them filled).
BOOKKEEPING_TABLES = frozenset({"alembic_version"})
SCHEDULED_PREFIX = "qcbot-"
_SCHEDULED_RE = re.compile(r"^qcbot-\d{8}T\d{6}Z(?:-\d+)?$")
_PARTIAL_RE = re.compile(r"^\..+\.partial-[0-9a-f]{8,32}$")
_SHA_RE = re.compile(r"^[0-9a-f]{64}$")
#: A partial directory older than this is a crashed backup; prune removes it.
STALE_PARTIAL_SECONDS = 24 * 3600
_CHUNK = 1024 * 1024
_MAX_LISTED = 20

#: libpq connection parameters a URL query may carry, and their environment variables.
_LIBPQ_ENV = {
    "host": "PGHOST",
    "hostaddr": "PGHOSTADDR",
    "port": "PGPORT",
    "dbname": "PGDATABASE",
    "user": "PGUSER",
    "password": "PGPASSWORD",
    "passfile": "PGPASSFILE",
    "service": "PGSERVICE",
    "options": "PGOPTIONS",
    "application_name": "PGAPPNAME",
    "sslmode": "PGSSLMODE",
    "sslcert": "PGSSLCERT",
    "sslkey": "PGSSLKEY",
    "sslrootcert": "PGSSLROOTCERT",
    "sslcrl": "PGSSLCRL",
    "sslpassword": "PGSSLPASSWORD",
    "requiressl": "PGREQUIRESSL",
    "gssencmode": "PGGSSENCMODE",
    "channel_binding": "PGCHANNELBINDING",
    "connect_timeout": "PGCONNECT_TIMEOUT",
    "client_encoding": "PGCLIENTENCODING",
    "target_session_attrs": "PGTARGETSESSIONATTRS",
    "krbsrvname": "PGKRBSRVNAME",
}


class BackupError(Exception):
    """A backup or restore cannot be made or trusted; the message (Chinese) says why."""


@dataclass(frozen=True)
class BackupResult:
    path: Path
    manifest: dict[str, Any]
    seconds: float
    #: Total size of the backup's files (manifest excluded).
    bytes: int
    #: Evidence files the database refers to that could not be copied (missing, corrupt).
    problems: list[str] = field(default_factory=list)

    def summary(self) -> str:
        tables = self.manifest["tables"]
        rows = sum(n for name, n in tables.items() if name not in BOOKKEEPING_TABLES)
        ev = self.manifest["evidence"]
        text = (
            f"备份完成：{self.path}（{self.manifest['backend']}，{len(tables)} 张表 {rows} 行，"
            f"证据文件 {ev['count']} 个，共 {_human(self.bytes)}，用时 {self.seconds:.2f} 秒）"
        )
        if self.problems:
            text += "\n警告：以下证据文件未能备份：\n" + "\n".join(f"  {p}" for p in self.problems)
        return text


@dataclass(frozen=True)
class RestoreResult:
    path: Path
    manifest: dict[str, Any]
    seconds: float
    #: Evidence files copied into the storage directory / already there and intact.
    files_written: int
    files_present: int
    #: Where the database was saved before it was overwritten (``force`` only).
    safety_backup: Path | None = None
    warnings: list[str] = field(default_factory=list)

    def summary(self) -> str:
        tables = self.manifest["tables"]
        rows = sum(n for name, n in tables.items() if name not in BOOKKEEPING_TABLES)
        text = (
            f"恢复完成并已校验：{len(tables)} 张表 {rows} 行，结构版本 "
            f"{self.manifest['schema_revision'] or '（无）'}；证据文件写入 {self.files_written} 个，"
            f"已存在且完好 {self.files_present} 个；用时 {self.seconds:.2f} 秒。"
        )
        if self.safety_backup is not None:
            text += f"\n覆盖前的数据库已备份到：{self.safety_backup}"
        for w in self.warnings:
            text += f"\n警告：{w}"
        return text


# --------------------------------------------------------------------------- helpers


def _human(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def _listing(problems: list[str]) -> str:
    shown = problems[:_MAX_LISTED]
    more = len(problems) - len(shown)
    return "\n".join(f"  - {p}" for p in shown) + (f"\n  ……另有 {more} 项" if more else "")


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _copy_hashed(src: Path, dst: Path) -> tuple[str, int]:
    """Copy ``src`` to ``dst`` (atomically, fsynced); returns the sha256 and size copied."""
    h = hashlib.sha256()
    size = 0
    with open(src, "rb") as fin, atomic_writer(dst, prefix=".incoming-") as fout:
        while chunk := fin.read(_CHUNK):
            h.update(chunk)
            size += len(chunk)
            fout.write(chunk)
    return h.hexdigest(), size


def _rel(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix()


def _evidence_rel(sha: str) -> str:
    return f"{EVIDENCE_DIR}/{sha[:2]}/{sha}"


def _sqlite_path(engine: Engine) -> Path:
    database = engine.url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        raise BackupError(f"无法备份或恢复这个 SQLite 数据库（{database or '内存数据库'}）：需要一个数据库文件。")
    return Path(database)


def _count_rows(conn: Connection, tables: Iterable[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for name in sorted(tables):
        counts[name] = int(conn.execute(sa.select(sa.func.count()).select_from(sa.table(name))).scalar_one())
    return counts


def _revision(conn: Connection, tables: Iterable[str]) -> str | None:
    if "alembic_version" not in set(tables):
        return None
    revs = [r[0] for r in conn.execute(sa.text("SELECT version_num FROM alembic_version"))]
    if len(revs) > 1:
        raise BackupError(f"数据库有多个结构版本：{revs}")
    return revs[0] if revs else None


def _evidence_shas(conn: Connection, tables: Iterable[str]) -> list[str]:
    if "evidence" not in set(tables):
        return []
    rows = conn.execute(sa.text("SELECT DISTINCT sha256 FROM evidence ORDER BY sha256"))
    return [r[0] for r in rows]


def _describe(conn: Connection) -> tuple[dict[str, int], str | None, list[str]]:
    """Row counts per table, the schema revision and the evidence digests, as ``conn`` sees them."""
    tables = sa.inspect(conn).get_table_names()
    return _count_rows(conn, tables), _revision(conn, tables), _evidence_shas(conn, tables)


def record_rows(counts: Mapping[str, int]) -> int:
    """Rows that belong to the record (bookkeeping tables left out)."""
    return sum(n for name, n in counts.items() if name not in BOOKKEEPING_TABLES)


def database_rows(engine: Engine) -> dict[str, int]:
    """Row counts per table of ``engine``'s database (its current schema on PostgreSQL)."""
    with engine.connect() as conn:
        return _count_rows(conn, sa.inspect(conn).get_table_names())


# ---------------------------------------------------------------------- PostgreSQL


def pg_environment(url: URL | str, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment that points libpq tools (pg_dump, pg_restore) at ``url``.

    The password travels as ``PGPASSWORD`` in the child's environment, which
    other users cannot read (unlike argv, which ``ps`` shows to everyone).
    """
    if isinstance(url, str):
        url = sa.make_url(url)
    env = dict(os.environ if base is None else base)
    values: dict[str, str] = {}
    if url.host:
        values["PGHOST"] = url.host
    if url.port:
        values["PGPORT"] = str(url.port)
    if url.username:
        values["PGUSER"] = url.username
    if url.password:
        values["PGPASSWORD"] = str(url.password)
    if url.database:
        values["PGDATABASE"] = url.database
    for key, value in url.query.items():
        var = _LIBPQ_ENV.get(key)
        if var is None:
            raise BackupError(f"数据库 URL 的参数 {key!r} 无法传给 pg_dump/pg_restore（不认识的 libpq 参数）。")
        if not isinstance(value, str):
            value = ",".join(value)
        values[var] = value
    env.update(values)
    return env


def _pg_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise BackupError(
            f"找不到 {name}：请安装与数据库服务器主版本一致的 PostgreSQL 客户端程序（postgresql-client）。"
        )
    return path


def _run(argv: list[str], env: dict[str, str], what: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-15:])
        raise BackupError(f"{what}失败（退出码 {proc.returncode}）：\n{tail}")
    return proc


def _tool_version(tool: str) -> str:
    proc = subprocess.run([tool, "--version"], capture_output=True, text=True, check=False)
    return proc.stdout.strip()


def _dump_postgres(engine: Engine, out: Path) -> dict[str, Any]:
    pg_dump = _pg_tool("pg_dump")
    env = pg_environment(engine.url)
    with engine.connect().execution_options(isolation_level="REPEATABLE READ") as conn:
        with conn.begin():
            conn.exec_driver_sql("SET TRANSACTION READ ONLY")
            snapshot = conn.exec_driver_sql("SELECT pg_export_snapshot()").scalar_one()
            schema = conn.exec_driver_sql("SELECT current_schema()").scalar_one()
            server = conn.exec_driver_sql("SHOW server_version").scalar_one()
            if schema is None:
                raise BackupError("数据库的 search_path 中没有存在的 schema，无法确定要备份什么。")
            # The transaction stays open (and the snapshot alive) while pg_dump runs.
            _run(
                [pg_dump, "--format=custom", "--no-password", f"--snapshot={snapshot}",
                 f"--schema={schema}", f"--file={out}"],
                env, "pg_dump ",
            )
            counts, revision, shas = _describe(conn)
    return {
        "counts": counts, "revision": revision, "shas": shas,
        "database": {"file": PG_FILE, "format": "pg_dump custom", "schema": schema,
                     "server_version": server, "pg_dump": _tool_version(pg_dump)},
    }


def _current_schema(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return conn.exec_driver_sql("SELECT current_schema()").scalar_one()


def _restore_postgres(dump: Path, engine: Engine, workdir: Path) -> None:
    pg_restore = _pg_tool("pg_restore")
    env = pg_environment(engine.url)
    toc = _run([pg_restore, "--list", str(dump)], env, "读取备份目录（pg_restore --list）").stdout
    # The schema itself already exists (it is the target's current schema): leave
    # its CREATE / COMMENT / ACL entries out, restore everything inside it.
    kept = [
        (";" + line) if re.match(r"^\d+;\s+\d+\s+\d+\s+(SCHEMA|COMMENT - SCHEMA|ACL - SCHEMA)\s", line)
        else line
        for line in toc.splitlines()
    ]
    listing = workdir / "restore.list"
    listing.write_text("\n".join(kept) + "\n", encoding="utf-8")
    dbname = env.get("PGDATABASE") or env.get("PGUSER") or "postgres"
    engine.dispose()
    _run(
        [pg_restore, "--no-password", "--single-transaction", "--clean", "--if-exists",
         "--no-owner", "--no-acl", f"--use-list={listing}", f"--dbname={dbname}", str(dump)],
        env, "pg_restore ",
    )


# -------------------------------------------------------------------------- SQLite


def _sqlite_uri(path: Path, *, mode: str, immutable: bool = False) -> str:
    uri = f"file:{quote(str(path.resolve()))}?mode={mode}"
    return uri + ("&immutable=1" if immutable else "")


def _dump_sqlite(engine: Engine, out: Path) -> dict[str, Any]:
    path = _sqlite_path(engine)
    if not path.exists():
        raise BackupError(f"数据库文件不存在：{path}")
    src = sqlite3.connect(_sqlite_uri(path, mode="ro"), uri=True, timeout=15)
    try:
        src.execute("PRAGMA busy_timeout=15000")
        dst = sqlite3.connect(out)
        try:
            # pages=-1: one step, one read transaction, one instant of the database.
            src.backup(dst, pages=-1)
        finally:
            dst.close()
    finally:
        src.close()
    copy = sqlite3.connect(out, isolation_level=None)
    try:
        # A single self-contained file (the source's WAL mode is copied with page 1).
        copy.execute("PRAGMA journal_mode=DELETE")
        check = [r[0] for r in copy.execute("PRAGMA integrity_check")]
        if check != ["ok"]:
            raise BackupError("数据库副本的完整性检查未通过：\n" + _listing(check))
    finally:
        copy.close()
    engine_copy = sa.create_engine(f"sqlite:///{out}", poolclass=sa.pool.NullPool)
    try:
        with engine_copy.connect() as conn:
            counts, revision, shas = _describe(conn)
    finally:
        engine_copy.dispose()
    return {
        "counts": counts, "revision": revision, "shas": shas,
        "database": {"file": SQLITE_FILE, "format": "sqlite3", "sqlite_version": sqlite3.sqlite_version},
    }


def _restore_sqlite(db_file: Path, engine: Engine) -> None:
    target = _sqlite_path(engine)
    target.parent.mkdir(parents=True, exist_ok=True)
    engine.dispose()
    src = sqlite3.connect(_sqlite_uri(db_file, mode="ro", immutable=True), uri=True)
    try:
        dst = sqlite3.connect(target, timeout=15)
        try:
            dst.execute("PRAGMA busy_timeout=15000")
            # Page by page under the destination's write lock, committed at the end:
            # the target is either the old database or the restored one.
            src.backup(dst, pages=-1)
        finally:
            dst.close()
    finally:
        src.close()


# -------------------------------------------------------------------------- backup


def _backend(engine: Engine) -> str:
    name = engine.dialect.name
    if name not in ("sqlite", "postgresql"):
        raise BackupError(f"不支持备份 {name} 数据库。")
    return name


def create_backup(
    engine: Engine, storage_dir: Path | str, dest: Path | str, *, now: datetime | None = None
) -> BackupResult:
    """Write a backup of ``engine``'s database and the evidence under ``storage_dir`` to ``dest``.

    ``dest`` must not exist (or be an empty directory). Evidence files that are
    missing or corrupt in the storage directory do not stop the backup: they are
    listed in the manifest and in ``BackupResult.problems``.
    """
    started = time.monotonic()
    now = now or utcnow()
    if now.tzinfo is None:
        raise ValueError("now must be time-zone aware")
    backend = _backend(engine)
    storage_dir = Path(storage_dir)
    dest = Path(dest)
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise BackupError(f"备份目标已存在且不是空目录：{dest}")
    dest.parent.mkdir(parents=True, exist_ok=True)
    work = dest.parent / f".{dest.name}.partial-{uuid.uuid4().hex[:12]}"
    work.mkdir(mode=0o700)  # the record holds personal data: readable by its owner only
    try:
        if backend == "sqlite":
            info = _dump_sqlite(engine, work / SQLITE_FILE)
        else:
            info = _dump_postgres(engine, work / PG_FILE)
        db_path = work / info["database"]["file"]
        files: dict[str, dict[str, Any]] = {
            info["database"]["file"]: {"sha256": sha256_file(db_path), "size": db_path.stat().st_size}
        }
        missing: list[dict[str, str]] = []
        problems: list[str] = []
        evidence_bytes = 0
        for sha in info["shas"]:
            if not _SHA_RE.match(sha or ""):
                missing.append({"sha256": str(sha), "reason": "invalid digest in the database"})
                problems.append(f"数据库里的证据摘要无效：{sha!r}")
                continue
            source = blob_path(storage_dir, sha)
            rel = _evidence_rel(sha)
            target = work / rel
            if not source.is_file():
                missing.append({"sha256": sha, "reason": "missing"})
                problems.append(f"{source}：文件不存在")
                continue
            digest, size = _copy_hashed(source, target)
            if digest != sha:
                target.unlink()
                missing.append({"sha256": sha, "reason": f"corrupt (content sha256 {digest})"})
                problems.append(f"{source}：内容已损坏（sha256 为 {digest}）")
                continue
            files[rel] = {"sha256": digest, "size": size}
            evidence_bytes += size
        manifest: dict[str, Any] = {
            "format": FORMAT,
            "qcbot_version": __version__,
            "created_at": now.astimezone(UTC).isoformat(),
            "backend": backend,
            "schema_revision": info["revision"],
            "database": info["database"],
            "tables": info["counts"],
            "evidence": {
                "count": len(info["shas"]) - len(missing),
                "bytes": evidence_bytes,
                "storage_layout": "evidence/<sha256[:2]>/<sha256>",
                "missing": missing,
            },
            "files": dict(sorted(files.items())),
        }
        with open(work / MANIFEST, "w", encoding="utf-8") as fh:
            json.dump(manifest, fh, ensure_ascii=False, indent=2)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        for directory in sorted({p.parent for p in work.rglob("*")} | {work}, reverse=True):
            _fsync_dir(directory)
        os.replace(work, dest)
        _fsync_dir(dest.parent)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    total = sum(f["size"] for f in files.values())
    result = BackupResult(dest, manifest, time.monotonic() - started, total, problems)
    log.info("backup written to %s: %d files, %d bytes, %.2f s", dest, len(files), total, result.seconds)
    if problems:
        log.error("backup %s is missing %d evidence file(s): %s", dest, len(problems), "; ".join(problems))
    return result


# -------------------------------------------------------------------------- verify


def read_manifest(src: Path | str) -> dict[str, Any]:
    path = Path(src) / MANIFEST
    if not path.is_file():
        raise BackupError(f"{src} 不是完整的备份：缺少 {MANIFEST}。")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BackupError(f"{path} 已损坏，无法读取：{exc}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BackupError(f"{path}：不认识的备份格式（{manifest.get('format') if isinstance(manifest, dict) else '?'}）。")
    for key in ("backend", "schema_revision", "database", "tables", "evidence", "files"):
        if key not in manifest:
            raise BackupError(f"{path} 不完整：缺少 {key!r}。")
    return manifest


def verify_backup(src: Path | str) -> dict[str, Any]:
    """Check every file of the backup against the manifest; returns the manifest.

    Raises :class:`BackupError` listing every file that is missing, has the
    wrong size or the wrong sha256 sum.
    """
    root = Path(src)
    manifest = read_manifest(root)
    problems: list[str] = []
    files: dict[str, Any] = manifest["files"]
    if manifest["database"].get("file") not in files:
        problems.append(f"清单中没有数据库文件 {manifest['database'].get('file')!r}")
    for rel, meta in files.items():
        path = root / rel
        if not isinstance(meta, dict):
            problems.append(f"{rel}：清单条目已损坏")
            continue
        if Path(rel).is_absolute() or ".." in Path(rel).parts:
            problems.append(f"{rel}：清单中的路径不安全")
            continue
        if not path.is_file():
            problems.append(f"{rel}：文件缺失")
            continue
        size = path.stat().st_size
        if size != meta.get("size"):
            problems.append(f"{rel}：大小不符（清单 {meta.get('size')} 字节，实际 {size} 字节）")
            continue
        digest = sha256_file(path)
        if digest != meta.get("sha256"):
            problems.append(f"{rel}：sha256 校验失败（清单 {meta.get('sha256')}，实际 {digest}）")
            continue
        if rel.startswith(EVIDENCE_DIR + "/") and rel.rsplit("/", 1)[-1] != digest:
            problems.append(f"{rel}：文件名与内容的 sha256 不符")
    if problems:
        raise BackupError(f"备份 {root} 校验失败，有 {len(problems)} 个问题：\n" + _listing(problems))
    return manifest


def unlisted_files(src: Path | str) -> list[str]:
    """Files in the backup directory the manifest does not list (not an error)."""
    root = Path(src)
    listed = set(read_manifest(root)["files"]) | {MANIFEST}
    return sorted(
        _rel(p, root) for p in root.rglob("*") if p.is_file() and _rel(p, root) not in listed
    )


# ------------------------------------------------------------------------- restore


def _known_revision(revision: str | None) -> bool:
    if revision is None:
        return True
    from alembic.script import ScriptDirectory

    from infra.migrate import alembic_config

    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    try:
        return script.get_revision(revision) is not None
    except Exception:
        return False


def _restore_evidence(root: Path, manifest: dict[str, Any], storage_dir: Path) -> tuple[int, int]:
    written = present = 0
    for rel, meta in manifest["files"].items():
        if not rel.startswith(EVIDENCE_DIR + "/"):
            continue
        sha = meta["sha256"]
        target = blob_path(storage_dir, sha)
        if target.is_file() and target.stat().st_size == meta["size"] and sha256_file(target) == sha:
            present += 1
            continue
        digest, _ = _copy_hashed(root / rel, target)
        if digest != sha:
            target.unlink(missing_ok=True)
            raise BackupError(f"{rel}：恢复时读到的内容与 sha256 不符（备份在校验后被改动？）")
        written += 1
    return written, present


def restore_backup(
    src: Path | str,
    engine: Engine,
    storage_dir: Path | str,
    *,
    force: bool = False,
    safety_dir: Path | str | None = None,
) -> RestoreResult:
    """Restore the backup at ``src`` into ``engine``'s database and ``storage_dir``.

    Refuses unless the database holds no rows (``alembic_version`` aside), or
    ``force`` is given; with ``force`` and ``safety_dir``, the database about to
    be overwritten is first backed up under ``safety_dir``. Evidence files are
    added to the storage directory (none is deleted). The bot must be stopped.
    """
    started = time.monotonic()
    root = Path(src)
    storage_dir = Path(storage_dir)
    manifest = verify_backup(root)
    warnings: list[str] = []
    backend = _backend(engine)
    if manifest["backend"] != backend:
        raise BackupError(
            f"这是 {manifest['backend']} 数据库的备份，不能恢复到 {backend} 数据库"
            "（不支持跨数据库类型恢复）。"
        )
    revision = manifest["schema_revision"]
    if not _known_revision(revision):
        raise BackupError(
            f"备份的数据库结构版本 {revision} 比当前 qcbot 更新（或未知）："
            f"请用 qcbot {manifest.get('qcbot_version', '?')} 或更新的版本恢复。"
        )
    if backend == "postgresql":
        schema = _current_schema(engine)
        wanted = manifest["database"].get("schema")
        if schema != wanted:
            raise BackupError(
                f"备份来自 schema {wanted!r}，而目标数据库的当前 schema 是 {schema!r}："
                "只能恢复到同名 schema（请调整 search_path 或先创建该 schema）。"
            )
    try:
        existing = database_rows(engine) if backend == "postgresql" or _sqlite_path(engine).exists() else {}
    except sa.exc.DatabaseError as exc:
        raise BackupError(
            f"目标数据库无法读取（{type(exc.orig or exc).__name__}: {exc.orig or exc}）。"
            "如果它已损坏：先把数据库文件移到别处保存（不要删除），再恢复到一个新文件。"
        ) from None
    filled = {name: n for name, n in existing.items() if n and name not in BOOKKEEPING_TABLES}
    safety: Path | None = None
    if filled:
        described = "、".join(f"{name} {n} 行" for name, n in sorted(filled.items())[:8])
        if len(filled) > 8:
            described += "……"
        if not force:
            raise BackupError(
                f"目标数据库不是空的（{described}）。确认要用备份覆盖它，请加 --force。"
            )
        if safety_dir is not None:
            stamp = utcnow().strftime("%Y%m%dT%H%M%SZ")
            safety = Path(safety_dir) / f"pre-restore-{stamp}-{uuid.uuid4().hex[:6]}"
            create_backup(engine, storage_dir, safety)
    extra = unlisted_files(root)
    if extra:
        warnings.append(f"备份目录中有 {len(extra)} 个清单未列出的文件，已忽略：{', '.join(extra[:5])}")
    for item in manifest["evidence"].get("missing", []):
        warnings.append(f"证据文件 {item.get('sha256')} 在备份时就已{item.get('reason')}，无法恢复")

    files_written, files_present = _restore_evidence(root, manifest, storage_dir)
    db_file = root / manifest["database"]["file"]
    if backend == "sqlite":
        _restore_sqlite(db_file, engine)
    else:
        with tempfile.TemporaryDirectory(prefix="qcbot-restore-") as tmp:
            _restore_postgres(db_file, engine, Path(tmp))

    with engine.connect() as conn:
        counts, restored_revision, shas = _describe(conn)
    problems: list[str] = []
    for name, expected in manifest["tables"].items():
        if counts.get(name) != expected:
            problems.append(f"表 {name}：应有 {expected} 行，恢复后 {counts.get(name, '（表不存在）')} 行")
    if restored_revision != revision:
        problems.append(f"结构版本：应为 {revision}，恢复后为 {restored_revision}")
    missing_shas = {m.get("sha256") for m in manifest["evidence"].get("missing", [])}
    for sha in shas:
        if sha in missing_shas:
            continue
        path = blob_path(storage_dir, sha) if _SHA_RE.match(sha or "") else None
        if path is None or not path.is_file():
            problems.append(f"证据文件 {sha} 不在存储目录中")
    if problems:
        raise BackupError("恢复后校验失败：\n" + _listing(problems))
    extra_tables = sorted(set(counts) - set(manifest["tables"]))
    if extra_tables:
        warnings.append(f"目标数据库还有备份中没有的表：{', '.join(extra_tables)}")
    return RestoreResult(
        root, manifest, time.monotonic() - started, files_written, files_present, safety, warnings
    )


# ------------------------------------------------------------------ scheduled jobs


def scheduled_name(now: datetime) -> str:
    return f"{SCHEDULED_PREFIX}{now.astimezone(UTC):%Y%m%dT%H%M%SZ}"


def prune(backup_dir: Path | str, keep: int) -> list[Path]:
    """Delete all but the newest ``keep`` scheduled backups in ``backup_dir``.

    Only complete scheduled backups (``qcbot-YYYYmmddTHHMMSSZ`` with a manifest)
    count and are deleted; anything else in the directory (manual backups,
    ``pre-restore-*`` safety copies) is left alone, except partial directories
    of crashed backups older than a day. Returns what was removed.
    """
    if keep < 1:
        raise ValueError("keep must be at least 1")
    root = Path(backup_dir)
    if not root.is_dir():
        return []
    complete = sorted(
        (p for p in root.iterdir()
         if p.is_dir() and _SCHEDULED_RE.match(p.name) and (p / MANIFEST).is_file()),
        key=lambda p: p.name,
    )
    removed = complete[:-keep]
    now = time.time()
    removed += [
        p for p in root.iterdir()
        if p.is_dir() and _PARTIAL_RE.match(p.name) and now - p.stat().st_mtime > STALE_PARTIAL_SECONDS
    ]
    for path in removed:
        shutil.rmtree(path)
        log.info("pruned old backup %s", path)
    return removed


def backup_job(
    engine: Engine,
    storage_dir: Path | str,
    backup_dir: Path | str,
    keep: int,
    *,
    now: datetime | None = None,
) -> BackupResult:
    """The daily backup: write ``backup_dir/qcbot-<UTC time>``, verify it, prune to ``keep``.

    Old backups are pruned only when the new one verified and holds every
    evidence file: while a file is missing or corrupt in the storage directory,
    the older backups that may still hold a good copy are all kept.
    Blocking (file copies, pg_dump): run it in a thread from an event loop.
    """
    now = now or utcnow()
    root = Path(backup_dir)
    name = scheduled_name(now)
    dest = root / name
    n = 1
    while dest.exists():
        dest = root / f"{name}-{n}"
        n += 1
    result = create_backup(engine, storage_dir, dest, now=now)
    verify_backup(dest)
    if result.problems:
        log.error("backup %s is incomplete: older backups are kept (no pruning)", dest)
        return result
    prune(root, keep)
    return result
