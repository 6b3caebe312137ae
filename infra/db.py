"""Engines and transactions.

One user action is one transaction: the boundary (a handler, a job, a CLI
command) opens it with ``transaction(engine)`` and passes the session down;
nothing below commits on its own.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url
from sqlmodel import Session, create_engine

SQLITE_BUSY_TIMEOUT_MS = 15_000
#: Prepared statements each SQLite connection keeps (the driver's default is 128). Bulk
#: inserts are batched into multi-row statements whose last batch differs in size every
#: time; kept, they cost ~35 MB of a province's morning sweep (bench/, BENCHMARKS.md). The
#: statements the bot repeats fit in 32.
SQLITE_CACHED_STATEMENTS = 32


def make_engine(url: str, *, echo: bool = False, pool_size: int | None = None) -> Engine:
    """Create an engine for ``url``; SQLite gets WAL, a busy timeout and foreign keys."""
    parsed = make_url(url)
    kwargs: dict[str, Any] = {"echo": echo, "future": True}
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:" and not database.startswith("file:"):
            Path(database).parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        kwargs["connect_args"] = {
            "check_same_thread": False,
            "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000,
            "cached_statements": SQLITE_CACHED_STATEMENTS,
        }
    else:
        kwargs["pool_pre_ping"] = True
        if pool_size is not None:
            kwargs["pool_size"] = pool_size
    if parsed.drivername == "postgresql":
        # Use psycopg 3 (installed) rather than psycopg2 (not installed).
        url = parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    engine = create_engine(url, **kwargs)
    if engine.dialect.name == "sqlite":
        _configure_sqlite(engine)
    return engine


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy, not pysqlite, decide when a transaction begins, and
        # begin IMMEDIATE so concurrent writers queue on the busy timeout
        # instead of failing with "database is locked" on lock upgrade.
        dbapi_conn.isolation_level = None
        database = engine.url.database
        if database not in (None, "", ":memory:") and not str(database).startswith("file:"):
            # The record holds personal data: the file is its owner's only, and so are the
            # -wal/-shm files SQLite makes next (with the database file's permissions). The
            # file exists from the connection on; a database made by an older qcbot was 0644.
            with contextlib.suppress(OSError):
                os.chmod(str(database), 0o600)
        cur = dbapi_conn.cursor()
        if database not in (None, "", ":memory:"):
            cur.execute("PRAGMA journal_mode=WAL")
        cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


@contextmanager
def transaction(engine: Engine) -> Iterator[Session]:
    """Open one unit of work: commit when the block ends, roll back on error."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


@contextmanager
def read_only(engine: Engine) -> Iterator[Session]:
    """A session for reads; it never commits."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
        finally:
            session.rollback()
