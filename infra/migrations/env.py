"""Alembic environment: the URL from qcbot's config (or the caller), the metadata from the caller.

Running migrations needs no metadata; autogenerate does, and its caller
(``scripts/regen_initial_migration.py``, or ``alembic`` through ``alembic.ini``) passes
the models' ``SQLModel.metadata`` as ``config.attributes["target_metadata"]``. So the
base layer never imports the domain.
"""

from __future__ import annotations

from typing import Any, Literal

from alembic import context
from alembic.autogenerate.api import AutogenContext
from sqlalchemy.engine import Connection

from infra.db import make_engine

config = context.config
target_metadata = config.attributes.get("target_metadata")


def _url() -> str:
    url = config.attributes.get("url") or config.get_main_option("sqlalchemy.url")
    if not url:
        from infra.config import load_settings

        url = load_settings().database.url
    return url


def _render_item(type_: str, obj: Any, autogen_context: AutogenContext) -> str | Literal[False]:
    """Render our custom column type by its import path."""
    if type_ == "type" and obj.__class__.__name__ == "UTCDateTime":
        return "infra.types.UTCDateTime()"
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


def _require_metadata() -> None:
    autogenerate = getattr(config.cmd_opts, "autogenerate", False)
    if autogenerate and target_metadata is None:
        raise SystemExit(
            "autogenerate needs the models' metadata: run scripts/regen_initial_migration.py "
            "(or pass config.attributes['target_metadata'])"
        )


def _run(connection: Connection) -> None:
    _require_metadata()
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
