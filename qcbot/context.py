"""Objects a command needs, built once from the configuration."""

from __future__ import annotations

import argparse
from functools import cached_property

from sqlalchemy.engine import Engine

from models.db import make_engine
from qcbot.config import Settings, load_settings


class AppContext:
    """Settings and the database engine, lazily built."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> AppContext:
        return cls(load_settings(getattr(args, "config", None)))

    @cached_property
    def engine(self) -> Engine:
        db = self.settings.database
        return make_engine(db.url, echo=db.echo)
