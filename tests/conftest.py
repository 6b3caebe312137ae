"""Shared fixtures: an isolated database per test on the backend under test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel

import models.tables  # noqa: F401  (registers every table on the metadata)
from models.db import make_engine
from tests.dbutil import backend, fresh_database_url

REPO = Path(__file__).resolve().parent.parent
SEED_PATH = REPO / "data" / "seed.json"
# The source document (瑶办发〔2021〕25号, text extracted from its PDF), kept in the
# repository so that the seed is checked against it on any clone.
DOCUMENT_PATH = REPO / "data" / "source" / "yaohai-2021-25.txt"

pytest_plugins = ["tests.harness"]


def pytest_report_header(config: pytest.Config) -> str:
    return f"qcbot database backend: {backend()}"


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
    try:
        yield eng
    finally:
        eng.dispose()


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    """A session on the fresh database; the test decides when to commit."""
    with Session(engine, expire_on_commit=False) as s:
        yield s
