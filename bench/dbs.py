"""Databases for the benchmarks: create, clone, drop (PostgreSQL and SQLite files)."""

from __future__ import annotations

import shutil
from pathlib import Path

import psycopg
from psycopg import sql
from sqlalchemy.engine import make_url

PG_DEFAULT = "postgresql://postgres@127.0.0.1:5432/test"
#: Never created, cloned into or dropped by the benchmarks.
PROTECTED = frozenset({"test", "postgres", "template0", "template1"})


def _pg_admin(url: str) -> tuple[str, str]:
    """(libpq URL of the server's maintenance database, database name of ``url``)."""
    u = make_url(url)
    name = u.database or ""
    admin = u.set(drivername="postgresql", database="postgres")
    return admin.render_as_string(hide_password=False), name


def is_postgres(url: str) -> bool:
    return make_url(url).get_backend_name() == "postgresql"


def pg_exists(url: str) -> bool:
    admin, name = _pg_admin(url)
    with psycopg.connect(admin, autocommit=True) as conn:
        return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is not None


def ensure_database(url: str) -> None:
    """Create the database of ``url`` if it does not exist (SQLite: its directory)."""
    if not is_postgres(url):
        db = make_url(url).database
        if db and db != ":memory:":
            Path(db).parent.mkdir(parents=True, exist_ok=True)
        return
    if pg_exists(url):
        return
    admin, name = _pg_admin(url)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def drop_database(url: str) -> None:
    """Drop the database of ``url`` (refuses the protected ones)."""
    if not is_postgres(url):
        db = make_url(url).database
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)
        return
    admin, name = _pg_admin(url)
    if name in PROTECTED:
        raise ValueError(f"refusing to drop database {name!r}")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def clone_database(src: str, dst: str) -> None:
    """``dst`` becomes a copy of ``src`` (PostgreSQL: CREATE DATABASE ... TEMPLATE)."""
    drop_database(dst)
    if not is_postgres(src):
        s, d = make_url(src).database, make_url(dst).database
        shutil.copyfile(s, d)  # the seed is checkpointed (no -wal left behind)
        return
    admin, name = _pg_admin(dst)
    _, template = _pg_admin(src)
    if name in PROTECTED:
        raise ValueError(f"refusing to overwrite database {name!r}")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
            sql.Identifier(name), sql.Identifier(template)))


def with_database(url: str, name: str) -> str:
    """``url`` pointing at database ``name`` (PostgreSQL) or file ``name`` (SQLite)."""
    u = make_url(url)
    return u.set(database=name).render_as_string(hide_password=False)
