"""Backups of the record: a consistent copy of the database plus the evidence files.

A backup is a directory::

    manifest.json              what is inside, with a sha256 sum of every other file,
                               signed (HMAC-SHA256) with the key in ``backup.key_file``
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

Verifying (:func:`verify_backup`) trusts nothing in the directory until it is
proven: it refuses a symlink or a special file anywhere in it, a malformed
manifest, an unsigned one (backups of older versions), a missing key, a
signature that does not match, and any file that is missing, not listed, or
whose size or sum differs. The key (32 random bytes, made at the first backup,
mode 0600) lives outside the backup directory and is never printed, logged or
copied into a backup.

Restoring (:func:`restore_backup`) verifies first, then checks that the
database holds only what qcbot's schema creates (SQLite: ``sqlite_master``;
PostgreSQL: ``pg_restore --list``, and only the allowed entries are run, through
``--use-list``, with ``--no-owner --no-privileges --single-transaction``). All of
that happens before anything is written. Then it refuses a database that holds
rows unless forced, copies the evidence files into the storage directory, loads
the database and checks the row counts and the schema revision against the
manifest. A backup restores into the backend it was taken from; SQLite to
PostgreSQL (or back) is not supported.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
import logging
import os
import re
import secrets
import shutil
import sqlite3
import stat
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
#: The manifest's signature: HMAC-SHA256 with the backup key over :func:`canonical_manifest`.
SIGNATURE_ALG = "hmac-sha256"
KEY_BYTES = 32
#: The configuration key that names the key file (quoted in messages).
KEY_SETTING = "backup.key_file"
#: A manifest larger than this is not read (a real one lists ~150 bytes per file).
MAX_MANIFEST_BYTES = 256 * 1024 * 1024
SQLITE_FILE = "database.sqlite3"
PG_FILE = "database.pgdump"
EVIDENCE_DIR = "evidence"
#: Tables that hold no part of the record (an empty database may have them filled).
BOOKKEEPING_TABLES = frozenset({"alembic_version"})
SCHEDULED_PREFIX = "qcbot-"
_SCHEDULED_RE = re.compile(r"^qcbot-\d{8}T\d{6}Z(?:-\d+)?$")
_PARTIAL_RE = re.compile(r"^\..+\.partial-[0-9a-f]{8,32}$")
_SHA_RE = re.compile(r"^[0-9a-f]{64}$")
_EVIDENCE_PATH_RE = re.compile(r"^evidence/([0-9a-f]{2})/([0-9a-f]{64})$")
_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
_REVISION_RE = re.compile(r"^[A-Za-z0-9_]{1,64}$")
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


def _open_regular(path: Path) -> Any:
    """Open ``path`` for reading, refusing a symlink (``O_NOFOLLOW``) or anything not a regular file."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        if os.path.islink(path):
            raise BackupError(f"{path} 是符号链接，拒绝读取。") from None
        raise BackupError(f"无法读取 {path}（{exc.strerror}）。") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise BackupError(f"{path} 不是普通文件（管道、设备或套接字），拒绝读取。")
    return os.fdopen(fd, "rb")


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with _open_regular(path) as fh:
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
    with _open_regular(src) as fin, atomic_writer(dst, prefix=".incoming-") as fout:
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


# ------------------------------------------------------------------------- the key
#
# Every manifest is signed with HMAC-SHA256 under a key of 32 random bytes that is
# made at the first backup and kept outside the backup directory (``backup.key_file``,
# mode 0600). Whoever can write a backup but does not hold the key cannot make a
# backup that verifies: an edited database file needs a new sum in the manifest, and
# a new manifest needs a new signature. The key is never printed, logged or copied
# into a backup.


def _inside(path: Path, directory: Path) -> bool:
    p = Path(os.path.realpath(path))
    d = Path(os.path.realpath(directory))
    return p == d or d in p.parents


def check_key_location(key_file: Path | str, *dirs: Path | str | None) -> None:
    """Refuse a key file that lies inside one of ``dirs`` (the backup directory)."""
    for d in dirs:
        if d is not None and _inside(Path(key_file), Path(d)):
            raise BackupError(
                f"备份密钥文件 {key_file}（配置项 {KEY_SETTING}）位于备份目录 {d} 之内："
                "密钥必须放在备份目录之外，否则拿到备份的人也就拿到了密钥。"
            )


def _no_key(path: Path) -> BackupError:
    return BackupError(
        f"没有备份密钥 {path}（配置项 {KEY_SETTING}），无法验证或恢复备份："
        f"请把生成这些备份时的密钥文件放回该位置，或让 {KEY_SETTING} 指向它。"
    )


def _read_key(path: Path) -> bytes:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise _no_key(path) from None
    except OSError as exc:
        if os.path.islink(path):
            raise BackupError(
                f"备份密钥文件 {path}（配置项 {KEY_SETTING}）是符号链接：请让配置项直接指向密钥文件。"
            ) from None
        raise BackupError(f"无法读取备份密钥文件 {path}（{exc.strerror}）。") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise BackupError(f"备份密钥文件 {path}（配置项 {KEY_SETTING}）不是普通文件。")
        if st.st_mode & 0o077:
            raise BackupError(
                f"备份密钥文件 {path} 的权限过宽（{stat.S_IMODE(st.st_mode):04o}），其他用户可能读到它："
                f"请执行 chmod 600 {path}。"
            )
        data = os.read(fd, KEY_BYTES + 1)
    finally:
        os.close(fd)
    if len(data) != KEY_BYTES:
        raise BackupError(
            f"备份密钥文件 {path} 已损坏（应为 {KEY_BYTES} 字节）：请找回原来的密钥文件"
            "（不要删除它：用它签名的备份离开它就无法恢复）。"
        )
    return data


def load_key(key_file: Path | str) -> bytes:
    """The backup key, to verify or restore; never makes one."""
    return _read_key(Path(key_file))


def ensure_key(key_file: Path | str) -> bytes:
    """The backup key, made (32 random bytes, mode 0600) if there is none yet."""
    path = Path(key_file)
    if os.path.lexists(path):
        return _read_key(path)
    if not path.parent.exists():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        os.write(fd, secrets.token_bytes(KEY_BYTES))
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(tmp, path)  # never replaces a key another process made meanwhile
    except FileExistsError:
        pass
    finally:
        tmp.unlink(missing_ok=True)
    _fsync_dir(path.parent)
    log.warning(
        "已生成新的备份密钥 %s（权限 0600）：请另存一份、与备份分开保管，没有它任何备份都无法验证或恢复"
        "（a new backup key was made: keep a copy apart from the backups）", path,
    )
    return _read_key(path)


def _key_id(key: bytes) -> str:
    """Names a key without giving it away (tells "another key" from "altered")."""
    return hmac.new(key, b"qcbot backup key id", hashlib.sha256).hexdigest()[:16]


def canonical_manifest(manifest: Mapping[str, Any]) -> bytes:
    """The bytes the signature covers: the manifest without its signature, canonical JSON."""
    body = {k: v for k, v in manifest.items() if k != "signature"}
    return json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _mac(key: bytes, manifest: Mapping[str, Any]) -> str:
    return hmac.new(key, canonical_manifest(manifest), hashlib.sha256).hexdigest()


def sign_manifest(manifest: Mapping[str, Any], key: bytes) -> dict[str, Any]:
    """``manifest`` with its ``signature`` field (replacing any there was)."""
    signed = {k: v for k, v in manifest.items() if k != "signature"}
    signed["signature"] = {"alg": SIGNATURE_ALG, "key_id": _key_id(key), "value": _mac(key, signed)}
    return signed


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


_I = r"[A-Za-z_][A-Za-z0-9_]*"
_TOC_LINE_RE = re.compile(r"^\d+;\s+\d+\s+\d+\s+(?P<entry>.+?)\s*$")
#: The TOC entries qcbot's schema produces, and whether each is restored ("keep") or left
#: out ("skip": the schema itself exists already; privileges are the operator's to grant).
_TOC_ALLOWED: list[tuple[re.Pattern[str], str]] = [
    (re.compile(rf"^SCHEMA - (?P<s>{_I}) \S+$"), "skip"),
    (re.compile(rf"^COMMENT - SCHEMA (?P<s>{_I}) \S+$"), "skip"),
    (re.compile(rf"^ACL - SCHEMA (?P<s>{_I}) \S+$"), "skip"),
    (re.compile(rf"^ACL (?P<s>{_I}) TABLE (?P<t>{_I}) \S+$"), "skip"),
    (re.compile(rf"^ACL (?P<s>{_I}) SEQUENCE (?P<q>{_I}) \S+$"), "skip"),
    (re.compile(rf"^TABLE DATA (?P<s>{_I}) (?P<t>{_I}) \S+$"), "keep"),
    (re.compile(rf"^TABLE (?P<s>{_I}) (?P<t>{_I}) \S+$"), "keep"),
    (re.compile(rf"^SEQUENCE OWNED BY (?P<s>{_I}) (?P<q>{_I}) \S+$"), "keep"),
    (re.compile(rf"^SEQUENCE SET (?P<s>{_I}) (?P<q>{_I}) \S+$"), "keep"),
    (re.compile(rf"^SEQUENCE (?P<s>{_I}) (?P<q>{_I}) \S+$"), "keep"),
    (re.compile(rf"^DEFAULT (?P<s>{_I}) (?P<t>{_I}) {_I} \S+$"), "keep"),
    (re.compile(rf"^INDEX (?P<s>{_I}) {_I} \S+$"), "keep"),
    (re.compile(rf"^FK CONSTRAINT (?P<s>{_I}) (?P<t>{_I}) {_I} \S+$"), "keep"),
    (re.compile(rf"^CONSTRAINT (?P<s>{_I}) (?P<t>{_I}) {_I} \S+$"), "keep"),
]
#: Chinese names of the entry types a refusal most likely names (longest first).
_TOC_KINDS = [
    ("MATERIALIZED VIEW", "物化视图"), ("EVENT TRIGGER", "事件触发器"), ("PROCEDURAL LANGUAGE", "过程语言"),
    ("FOREIGN SERVER", "外部服务器"), ("USER MAPPING", "用户映射"), ("DEFAULT ACL", "默认权限"),
    ("TABLE DATA", "表数据"), ("FUNCTION", "函数"), ("PROCEDURE", "存储过程"), ("TRIGGER", "触发器"),
    ("RULE", "规则"), ("POLICY", "行级安全策略"), ("PUBLICATION", "发布"), ("SUBSCRIPTION", "订阅"),
    ("EXTENSION", "扩展"), ("AGGREGATE", "聚合函数"), ("CAST", "类型转换"), ("LANGUAGE", "过程语言"),
    ("SERVER", "外部服务器"), ("VIEW", "视图"), ("ACL", "权限"), ("TYPE", "类型"), ("DOMAIN", "域"),
    ("OPERATOR", "运算符"), ("SCHEMA", "schema"), ("COMMENT", "注释"), ("TABLE", "表"),
    ("SEQUENCE", "序列"), ("INDEX", "索引"), ("LARGE OBJECT", "大对象"), ("BLOB", "大对象"),
]


@functools.cache
def schema_tables(revision: str | None) -> frozenset[str]:
    """The tables qcbot's schema has at ``revision`` (``alembic_version`` included)."""
    from infra.migrate import upgrade

    eng = sa.create_engine("sqlite://", poolclass=sa.pool.StaticPool)
    try:
        upgrade(eng, revision or "head")
        with eng.connect() as conn:
            return frozenset(sa.inspect(conn).get_table_names())
    finally:
        eng.dispose()


def _toc_refused(entry: str, why: str) -> BackupError:
    kind = next((cn for en, cn in _TOC_KINDS if entry.startswith(en + " ")), "条目")
    return BackupError(
        f"数据库转储含有 qcbot 不会创建的内容，拒绝恢复（数据库和证据目录都未改动）：{why}"
        f"第一个被拒绝的是{kind}“{entry}”。"
    )


def pg_restore_list(toc: str, *, schema: str, tables: frozenset[str]) -> tuple[list[str], int]:
    """Check ``pg_restore --list`` output against what qcbot's schema produces.

    Returns the lines to restore (the ``--use-list`` file) and how many privilege
    entries were left out; raises :class:`BackupError` naming the first entry
    that is anything else (a function, a trigger, a view, another schema, a
    table qcbot does not have...).
    """
    kept: list[str] = []
    skipped_acl = 0
    for line in toc.splitlines():
        if not line.strip() or line.lstrip().startswith(";"):
            continue
        m = _TOC_LINE_RE.match(line)
        if m is None:
            raise _toc_refused(line.strip()[:200], "目录中有无法解析的行。")
        entry = m["entry"]
        found = next(
            ((hit, action) for pattern, action in _TOC_ALLOWED if (hit := pattern.match(entry))), None
        )
        if found is None:
            raise _toc_refused(entry, "")
        hit, action = found
        names = hit.groupdict()
        if names["s"] != schema:
            raise _toc_refused(entry, f"它属于 schema {names['s']!r}，而备份的是 {schema!r}。")
        table = names.get("t")
        if table is not None and table not in tables:
            raise _toc_refused(entry, f"qcbot 的数据库结构中没有表 {table!r}。")
        seq = names.get("q")
        if seq is not None and not (
            seq.endswith("_seq") and any(seq.startswith(t + "_") for t in tables)
        ):
            raise _toc_refused(entry, f"qcbot 的数据库结构中没有序列 {seq!r}。")
        if action == "keep":
            kept.append(line)
        elif entry.startswith("ACL ") and not entry.startswith("ACL - SCHEMA"):
            skipped_acl += 1
    return kept, skipped_acl


def _is_superuser(engine: Engine) -> bool:
    with engine.connect() as conn:
        return bool(conn.exec_driver_sql(
            "SELECT rolsuper FROM pg_roles WHERE rolname = current_user"
        ).scalar())


def _check_postgres_dump(
    dump: Path, engine: Engine, workdir: Path, *, schema: str, revision: str | None
) -> tuple[Path, int]:
    """Write the filtered restore list for ``dump``, or refuse it; nothing touches the database."""
    pg_restore = _pg_tool("pg_restore")
    env = pg_environment(engine.url)
    toc = _run([pg_restore, "--list", str(dump)], env, "读取备份目录（pg_restore --list）").stdout
    kept, skipped_acl = pg_restore_list(toc, schema=schema, tables=schema_tables(revision))
    listing = workdir / "restore.list"
    fd = os.open(listing, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write("\n".join(kept) + "\n")
    return listing, skipped_acl


def _restore_postgres(dump: Path, engine: Engine, listing: Path) -> None:
    """Run exactly the entries of ``listing`` (see :func:`pg_restore_list`), all or nothing."""
    pg_restore = _pg_tool("pg_restore")
    env = pg_environment(engine.url)
    dbname = env.get("PGDATABASE") or env.get("PGUSER") or "postgres"
    engine.dispose()
    _run(
        [pg_restore, "--no-password", "--single-transaction", "--clean", "--if-exists",
         "--no-owner", "--no-privileges", f"--use-list={listing}", f"--dbname={dbname}", str(dump)],
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
    engine: Engine,
    storage_dir: Path | str,
    dest: Path | str,
    *,
    key_file: Path | str,
    now: datetime | None = None,
) -> BackupResult:
    """Write a backup of ``engine``'s database and the evidence under ``storage_dir`` to ``dest``.

    ``dest`` must not exist (or be an empty directory). The manifest is signed with
    the key in ``key_file`` (made at the first backup; it must lie outside ``dest``).
    Evidence files that are missing or corrupt in the storage directory do not stop
    the backup: they are listed in the manifest and in ``BackupResult.problems``.
    """
    started = time.monotonic()
    now = now or utcnow()
    if now.tzinfo is None:
        raise ValueError("now must be time-zone aware")
    backend = _backend(engine)
    storage_dir = Path(storage_dir)
    dest = Path(dest)
    if os.path.lexists(dest) and (dest.is_symlink() or not dest.is_dir() or any(dest.iterdir())):
        raise BackupError(f"备份目标已存在且不是空目录：{dest}")
    check_key_location(key_file, dest)
    key = ensure_key(key_file)
    if not dest.parent.exists():
        dest.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
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
        manifest = sign_manifest(manifest, key)
        fd = os.open(work / MANIFEST, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(manifest, fh, ensure_ascii=False, indent=2)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        _owner_only(work)
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


def _owner_only(root: Path) -> None:
    """Directories 0700 and files 0600 (pg_dump and sqlite3 create files 0644 less the umask)."""
    for dirpath, dirnames, filenames in os.walk(root):
        os.chmod(dirpath, 0o700)
        for name in [*filenames, *dirnames]:
            path = os.path.join(dirpath, name)
            if os.path.islink(path):
                raise BackupError(f"备份目录中出现了符号链接：{path}")
            if name in filenames:
                os.chmod(path, 0o600)


# -------------------------------------------------------------------------- verify


_SPECIAL_KINDS = {
    stat.S_IFIFO: "命名管道 FIFO",
    stat.S_IFCHR: "字符设备",
    stat.S_IFBLK: "块设备",
    stat.S_IFSOCK: "套接字",
}


def _backup_root(src: Path | str) -> Path:
    root = Path(src)
    if not os.path.lexists(root):
        raise BackupError(f"备份目录不存在：{root}")
    real = Path(os.path.realpath(root))
    if not real.is_dir():
        raise BackupError(f"{root} 不是目录，不是备份。")
    return real


def _scan(root: Path) -> dict[str, int]:
    """Every regular file under ``root`` (relative path: size); refuses a symlink or a special file."""
    found: dict[str, int] = {}
    pending = [root]
    while pending:
        directory = pending.pop()
        try:
            with os.scandir(directory) as it:
                entries = list(it)
        except OSError as exc:
            raise BackupError(f"无法读取备份目录 {directory}（{exc.strerror}）。") from None
        for entry in entries:
            path = Path(entry.path)
            rel = _rel(path, root)
            st = entry.stat(follow_symlinks=False)
            if stat.S_ISLNK(st.st_mode):
                try:
                    target = os.readlink(path)
                except OSError:
                    target = "?"
                raise BackupError(
                    f"备份 {root} 中有符号链接 {rel}（指向 {target}）：备份里只应有普通文件，拒绝使用这份备份。"
                )
            if stat.S_ISDIR(st.st_mode):
                pending.append(path)
            elif stat.S_ISREG(st.st_mode):
                found[rel] = st.st_size
            else:
                kind = _SPECIAL_KINDS.get(stat.S_IFMT(st.st_mode), "特殊文件")
                raise BackupError(
                    f"备份 {root} 中有{kind} {rel}：备份里只应有普通文件，拒绝使用这份备份。"
                )
    return found


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"重复的键 {key!r}")
        out[key] = value
    return out


def _no_constant(name: str) -> Any:
    raise ValueError(f"不允许的数值 {name}")


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _check_manifest(manifest: Any, path: Path) -> dict[str, Any]:
    """Refuse a manifest that is not exactly what :func:`create_backup` writes (one line each)."""

    def bad(what: str) -> BackupError:
        return BackupError(f"{path} 不完整或已损坏：{what}，拒绝使用这份备份。")

    if not isinstance(manifest, dict):
        raise bad("内容不是 JSON 对象")
    fmt = manifest.get("format")
    if not _is_count(fmt) or fmt != FORMAT:
        raise BackupError(f"{path}：不认识的备份格式（{fmt!r}），拒绝使用这份备份。")
    shapes: dict[str, type | tuple[type, ...]] = {
        "qcbot_version": str, "created_at": str, "backend": str, "schema_revision": (str, type(None)),
        "database": dict, "tables": dict, "evidence": dict, "files": dict,
    }
    for key, kind in shapes.items():
        if key not in manifest:
            raise bad(f"缺少 {key!r}")
        if not isinstance(manifest[key], kind):
            raise bad(f"{key!r} 的类型不对")
    backend = manifest["backend"]
    if backend not in ("sqlite", "postgresql"):
        raise bad(f"不认识的数据库类型 {backend!r}")
    revision = manifest["schema_revision"]
    if revision is not None and not _REVISION_RE.match(revision):
        raise bad(f"结构版本 {revision!r} 格式不对")
    database = manifest["database"]
    db_file = SQLITE_FILE if backend == "sqlite" else PG_FILE
    if database.get("file") != db_file:
        raise bad(f"数据库文件应为 {db_file!r}，清单中是 {database.get('file')!r}")
    if backend == "postgresql" and not (
        isinstance(database.get("schema"), str) and _NAME_RE.match(database["schema"])
    ):
        raise bad(f"schema 名称 {database.get('schema')!r} 格式不对")
    for name, count in manifest["tables"].items():
        if not _NAME_RE.match(name) or not _is_count(count):
            raise bad(f"表 {name!r} 的条目格式不对")
    evidence = manifest["evidence"]
    if not (_is_count(evidence.get("count")) and _is_count(evidence.get("bytes"))
            and isinstance(evidence.get("missing"), list)):
        raise bad("'evidence' 的条目格式不对")
    for item in evidence["missing"]:
        if not (isinstance(item, dict) and isinstance(item.get("sha256"), str)
                and isinstance(item.get("reason"), str)):
            raise bad("'evidence.missing' 的条目格式不对")
    files = manifest["files"]
    evidence_files = 0
    for rel, meta in files.items():
        if rel.startswith("/") or rel.startswith("\\") or Path(rel).is_absolute():
            raise bad(f"文件路径 {rel!r} 是绝对路径")
        if ".." in re.split(r"[/\\]", rel):
            raise bad(f"文件路径 {rel!r} 含有 ..")
        match = _EVIDENCE_PATH_RE.match(rel)
        if rel != db_file and not (match and match[2][:2] == match[1]):
            raise bad(f"不认识的文件路径 {rel!r}")
        if not (isinstance(meta, dict) and set(meta) == {"sha256", "size"}
                and isinstance(meta["sha256"], str) and _SHA_RE.match(meta["sha256"])
                and _is_count(meta["size"])):
            raise bad(f"文件 {rel!r} 的条目格式不对")
        if match:
            evidence_files += 1
            if match[2] != meta["sha256"]:
                raise bad(f"证据文件 {rel!r} 的名字与清单中的 sha256 不符")
    if db_file not in files:
        raise bad(f"清单中没有数据库文件 {db_file!r}")
    if evidence["count"] != evidence_files:
        raise bad(f"证据文件数 {evidence['count']} 与清单列出的 {evidence_files} 个不符")
    if "signature" in manifest:
        sig = manifest["signature"]
        if not (isinstance(sig, dict) and set(sig) == {"alg", "key_id", "value"}
                and sig["alg"] == SIGNATURE_ALG and isinstance(sig["key_id"], str)
                and isinstance(sig["value"], str) and _SHA_RE.match(sig["value"])):
            raise bad("'signature' 的格式不对")
    return manifest


def read_manifest(src: Path | str) -> dict[str, Any]:
    """The backup's manifest, checked for shape (not for its signature: see :func:`verify_backup`)."""
    root = _backup_root(src)
    path = root / MANIFEST
    if not os.path.lexists(path):
        raise BackupError(f"{root} 不是完整的备份：缺少 {MANIFEST}。")
    with _open_regular(path) as fh:
        raw = fh.read(MAX_MANIFEST_BYTES + 1)
    if len(raw) > MAX_MANIFEST_BYTES:
        raise BackupError(f"{path} 过大（超过 {MAX_MANIFEST_BYTES // 1024 // 1024} MB），拒绝读取。")
    try:
        manifest = json.loads(
            raw.decode("utf-8"), object_pairs_hook=_unique_keys, parse_constant=_no_constant
        )
    except UnicodeDecodeError:
        raise BackupError(f"{path} 已损坏，无法读取：不是 UTF-8 文本，拒绝使用这份备份。") from None
    except json.JSONDecodeError as exc:
        raise BackupError(
            f"{path} 已损坏，无法读取：第 {exc.lineno} 行第 {exc.colno} 列不是有效的 JSON"
            f"（{exc.msg}），拒绝使用这份备份。"
        ) from None
    except RecursionError:
        raise BackupError(f"{path} 已损坏，无法读取：JSON 嵌套过深，拒绝使用这份备份。") from None
    except ValueError as exc:
        raise BackupError(f"{path} 已损坏，无法读取：{exc}，拒绝使用这份备份。") from None
    return _check_manifest(manifest, path)


def verify_backup(src: Path | str, *, key_file: Path | str) -> dict[str, Any]:
    """Check the backup against its signed manifest; returns the manifest.

    Refuses, before anything is written anywhere: a symlink or a special file in
    the directory, a malformed manifest, an unsigned one, a missing key, a
    signature that does not match, and (listing every one) a file that is
    missing, not listed, or has the wrong size or sha256 sum.
    """
    root = _backup_root(src)
    found = _scan(root)
    manifest = read_manifest(root)
    if "signature" not in manifest:
        raise BackupError(
            f"备份 {root} 没有签名（由旧版 qcbot 写成，或清单被改动过），无法证明它未被改动，"
            "拒绝使用：请用当前版本的 qcbot backup 重新备份。"
        )
    key = load_key(key_file)
    sig = manifest["signature"]
    if not hmac.compare_digest(_mac(key, manifest), sig["value"]):
        if not hmac.compare_digest(sig["key_id"], _key_id(key)):
            raise BackupError(
                f"备份 {root} 的签名不是用当前备份密钥（{KEY_SETTING} = {key_file}）生成的，拒绝使用："
                "请换上生成这份备份时的密钥文件（伪造的备份也是这个结果）。"
            )
        raise BackupError(f"备份 {root} 的签名不符：清单在备份之后被改动过，拒绝使用这份备份。")
    problems: list[str] = []
    listed: dict[str, dict[str, Any]] = manifest["files"]
    for rel in sorted(set(found) - set(listed) - {MANIFEST}):
        problems.append(f"{rel}：清单中没有这个文件")
    for rel, meta in listed.items():
        if rel not in found:
            problems.append(f"{rel}：文件缺失")
            continue
        if found[rel] != meta["size"]:
            problems.append(f"{rel}：大小不符（清单 {meta['size']} 字节，实际 {found[rel]} 字节）")
            continue
        digest = sha256_file(root / rel)
        if digest != meta["sha256"]:
            problems.append(f"{rel}：sha256 校验失败（清单 {meta['sha256']}，实际 {digest}）")
    if problems:
        raise BackupError(f"备份 {root} 校验失败，有 {len(problems)} 个问题：\n" + _listing(problems))
    return manifest


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


def _private_copy(root: Path, rel: str, meta: Mapping[str, Any], workdir: Path) -> Path:
    """Copy a verified file into ``workdir`` (0700) and check its sum again: what is loaded
    is what was verified, whatever happens to the backup directory meanwhile."""
    copy = workdir / Path(rel).name
    digest, size = _copy_hashed(root / rel, copy)
    if digest != meta["sha256"] or size != meta["size"]:
        raise BackupError(f"{rel}：复制时读到的内容与清单不符（备份在校验后被改动？），未写入任何内容。")
    return copy


_SQLITE_INTERNAL = frozenset({"sqlite_sequence", "sqlite_stat1", "sqlite_stat4"})


def _check_sqlite_objects(db_file: Path, tables: frozenset[str]) -> None:
    """Refuse a database file holding anything qcbot's schema does not (a trigger, a view...)."""
    conn = sqlite3.connect(_sqlite_uri(db_file, mode="ro", immutable=True), uri=True)
    try:
        objects = conn.execute("SELECT type, name, tbl_name FROM sqlite_master ORDER BY rowid").fetchall()
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"备份中的数据库文件无法读取（{exc}），拒绝恢复。") from None
    finally:
        conn.close()
    kinds = {"trigger": "触发器", "view": "视图", "table": "表", "index": "索引"}
    for kind, name, table in objects:
        if kind == "table" and (name in tables or name in _SQLITE_INTERNAL):
            continue
        if kind == "index" and table in tables:
            continue
        raise BackupError(
            f"备份的数据库含有 qcbot 不会创建的{kinds.get(kind, '对象')}“{name}”（{kind}，属于 {table}），"
            "拒绝恢复（数据库和证据目录都未改动）。"
        )


def restore_backup(
    src: Path | str,
    engine: Engine,
    storage_dir: Path | str,
    *,
    key_file: Path | str,
    force: bool = False,
    safety_dir: Path | str | None = None,
) -> RestoreResult:
    """Restore the backup at ``src`` into ``engine``'s database and ``storage_dir``.

    Everything that can refuse does so before anything is written: the signature
    and every sum (:func:`verify_backup`), the backend and schema revision, and the
    database's contents (a SQLite file or a PostgreSQL dump may hold only what
    qcbot's schema creates). Then it refuses a database that holds rows
    (``alembic_version`` aside) unless ``force``; with ``force`` and ``safety_dir``,
    the database about to be overwritten is first backed up under ``safety_dir``.
    Evidence files are added to the storage directory (none is deleted). The bot
    must be stopped.
    """
    started = time.monotonic()
    check_key_location(key_file, src, safety_dir)
    manifest = verify_backup(src, key_file=key_file)
    root = _backup_root(src)
    storage_dir = Path(storage_dir)
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
    schema = manifest["database"].get("schema")
    if backend == "postgresql":
        current = _current_schema(engine)
        if current != schema:
            raise BackupError(
                f"备份来自 schema {schema!r}，而目标数据库的当前 schema 是 {current!r}："
                "只能恢复到同名 schema（请调整 search_path 或先创建该 schema）。"
            )
    db_rel = manifest["database"]["file"]
    with tempfile.TemporaryDirectory(prefix="qcbot-restore-") as tmp:
        workdir = Path(tmp)
        db_file = _private_copy(root, db_rel, manifest["files"][db_rel], workdir)
        listing: Path | None = None
        if backend == "sqlite":
            _check_sqlite_objects(db_file, schema_tables(revision))
        else:
            listing, skipped_acl = _check_postgres_dump(
                db_file, engine, workdir, schema=schema, revision=revision
            )
            if skipped_acl:
                warnings.append(f"备份中有 {skipped_acl} 条表或序列的权限（GRANT）未恢复：如有需要请重新授予。")
            if _is_superuser(engine):
                warnings.append(
                    "正在以超级用户身份恢复：请改用应用自己的数据库角色（schema 的属主）恢复，见 README 的 Restore 一节。"
                )
        try:
            existing = (
                database_rows(engine) if backend == "postgresql" or _sqlite_path(engine).exists() else {}
            )
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
                create_backup(engine, storage_dir, safety, key_file=key_file)
        for item in manifest["evidence"]["missing"]:
            warnings.append(f"证据文件 {item.get('sha256')} 在备份时就已{item.get('reason')}，无法恢复")

        files_written, files_present = _restore_evidence(root, manifest, storage_dir)
        if listing is None:
            _restore_sqlite(db_file, engine)
        else:
            _restore_postgres(db_file, engine, listing)

    with engine.connect() as conn:
        counts, restored_revision, shas = _describe(conn)
    problems: list[str] = []
    for name, expected in manifest["tables"].items():
        if counts.get(name) != expected:
            problems.append(f"表 {name}：应有 {expected} 行，恢复后 {counts.get(name, '（表不存在）')} 行")
    if restored_revision != revision:
        problems.append(f"结构版本：应为 {revision}，恢复后为 {restored_revision}")
    missing_shas = {m.get("sha256") for m in manifest["evidence"]["missing"]}
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
    key_file: Path | str,
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
    check_key_location(key_file, root)
    name = scheduled_name(now)
    dest = root / name
    n = 1
    while dest.exists():
        dest = root / f"{name}-{n}"
        n += 1
    result = create_backup(engine, storage_dir, dest, key_file=key_file, now=now)
    verify_backup(dest, key_file=key_file)
    if result.problems:
        log.error("backup %s is incomplete: older backups are kept (no pruning)", dest)
        return result
    prune(root, keep)
    return result
