"""Alembic environment: the models' metadata, the URL from qcbot's config."""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

import models.tables  # noqa: F401  (registers the tables)
from models.db import make_engine

config = context.config
target_metadata = SQLModel.metadata


def _url() -> str:
    url = config.attributes.get("url") or config.get_main_option("sqlalchemy.url")
    if not url:
        from qcbot.config import load_settings

        url = load_settings().database.url
    return url


def _render_item(type_: str, obj: object, autogen_context: object) -> str | bool:
    """Render our custom column type by its import path."""
    if type_ == "type" and obj.__class__.__name__ == "UTCDateTime":
        return "models.types.UTCDateTime()"
    return False


def run_migrations_offline() -> None:
    context.configure(
        url=_url(),
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=True,
        render_item=_render_item,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = make_engine(_url())
    try:
        with engine.connect() as conn:
            _run(conn)
    finally:
        engine.dispose()


def _run(connection: object) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=True,
        compare_type=True,
        render_item=_render_item,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
