"""Shared fixtures: an isolated database per test on the backend under test."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel

import models.tables  # noqa: F401  (registers every table on the metadata)
from infra.db import make_engine
from infra.migrate import head_revision
from models import calendar
from tests.dbutil import backend, fresh_database_url

REPO = Path(__file__).resolve().parent.parent
SEED_PATH = REPO / "data" / "seed.json"
# The source document (瑶办发〔2021〕25号, text extracted from its PDF), kept in the
# repository so that the seed is checked against it on any clone.
DOCUMENT_PATH = REPO / "data" / "source" / "yaohai-2021-25.txt"

pytest_plugins = ["tests.harness"]


def pytest_report_header(config: pytest.Config) -> str:
    return f"qcbot database backend: {backend()}"


#: Test modules that never touch the database under test (the stand-in, the console on its own
#: file, wording, the calendar, scoring arithmetic, the config loader): `make test` runs them once,
#: in the SQLite run, and the PostgreSQL run skips them, so the suite's time goes to what differs.
BACKEND_FREE = frozenset({
    "test_console.py", "test_standin.py", "test_wording.py", "test_calendar.py", "test_cli_calendar.py",
    "test_logging.py", "test_scoring.py", "test_config.py",
})


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if backend() == "sqlite":
        return
    skip = pytest.mark.skip(reason="no database under test: run once, in the SQLite run")
    for item in items:
        if item.path.name in BACKEND_FREE:
            item.add_marker(skip)


@functools.cache
def _head() -> str:
    return head_revision()


def stamp_head(eng: Engine) -> None:
    """Mark a schema made by ``create_all`` as the newest revision, as ``qcbot db upgrade`` would.

    The CLI brings a database's schema up to date before every command; without the stamp
    it would try to create the tables again.
    """
    with eng.begin() as conn:
        conn.execute(sa.text("CREATE TABLE IF NOT EXISTS alembic_version "
                             "(version_num VARCHAR(32) NOT NULL PRIMARY KEY)"))
        conn.execute(sa.text("DELETE FROM alembic_version"))
        conn.execute(sa.text("INSERT INTO alembic_version (version_num) VALUES (:v)"), {"v": _head()})


@pytest.fixture(autouse=True)
def _calendar_isolated() -> Iterator[None]:
    """A test that configured the working-day calendar (operator files) leaves it as it found it."""
    before = calendar._operator
    yield
    if calendar._operator is not before:
        calendar.reset()


@pytest.fixture
def db_url(tmp_path: Path) -> Iterator[str]:
    """The URL of an empty database of its own."""
    with fresh_database_url(tmp_path) as url:
        yield url


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    """An engine on a fresh database with the schema of the models."""
    eng = make_engine(db_url)
    SQLModel.metadata.create_all(eng)
    stamp_head(eng)
    try:
        yield eng
    finally:
        eng.dispose()


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    """A session on the fresh database; the test decides when to commit."""
    with Session(engine, expire_on_commit=False) as s:
        yield s
