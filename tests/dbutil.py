"""Fresh, isolated databases for tests: a SQLite file, or a PostgreSQL schema.

``TEST_DATABASE_URL`` picks the backend: unset means SQLite; a PostgreSQL URL
means every test gets its own schema on that server (dropped afterwards), so
tests never see each other's rows and can run in any order.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from infra.db import make_engine


def backend() -> str:
    url = os.environ.get("TEST_DATABASE_URL", "")
    return "postgresql" if url.startswith("postgresql") else "sqlite"


@contextmanager
def fresh_database_url(tmp_path: Path) -> Iterator[str]:
    """Yield the URL of an empty database that lives as long as the block."""
    base = os.environ.get("TEST_DATABASE_URL", "")
    if not base.startswith("postgresql"):
        yield f"sqlite:///{tmp_path / 'qcbot-test.sqlite3'}"
        return
    schema = f"t_{uuid.uuid4().hex[:16]}"
    admin = make_engine(base)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(base).set(drivername="postgresql+psycopg")
    rendered = url.render_as_string(hide_password=False)
    sep = "&" if "?" in rendered else "?"
    try:
        yield f"{rendered}{sep}options={quote(f'-csearch_path={schema}')}"
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()
