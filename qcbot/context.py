"""Objects a command needs, built once from the configuration."""

from __future__ import annotations

import argparse
from functools import cached_property

from sqlalchemy.engine import Engine

from infra.config import Settings, load_settings
from infra.db import make_engine
from models import calendar
from qcbot.boot import migrate


class AppContext:
    """Settings and the database engine, lazily built."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        # The working-day calendar's operator files: validated here, once, before any command
        # counts a working day (a bad file stops the command with one line naming it).
        calendar.configure(settings.calendar.files)

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> AppContext:
        return cls(load_settings(getattr(args, "config", None)))

    @cached_property
    def bare_engine(self) -> Engine:
        """The engine as the database is: for ``db current``, ``db upgrade`` and restore."""
        db = self.settings.database
        return make_engine(db.url, echo=db.echo)

    @cached_property
    def engine(self) -> Engine:
        """The engine with the schema brought up to date first, so any command works on a new database."""
        migrate(self.bare_engine)
        return self.bare_engine
