"""The ``qcbot`` command line.

Each sub-command group lives in its own module under ``qcbot.commands`` with a
``register(subparsers)`` function; ``COMMAND_MODULES`` lists them in the order
``qcbot --help`` shows them.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Sequence

from infra.config import ConfigError
from qcbot.errors import CommandError

COMMAND_MODULES: tuple[str, ...] = (
    "qcbot.commands.run",
    "qcbot.commands.db",
    "qcbot.commands.seed",
    "qcbot.commands.plan",
    "qcbot.commands.admin",
    "qcbot.commands.backup",
    "qcbot.commands.export",
    "qcbot.commands.overview",
    "qcbot.commands.calendar",
    "qcbot.commands.storage",
    "qcbot.commands.console",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="qcbot",
        description="质量强区 campaign bot: tasks, deadlines, evidence and the acceptance score.",
    )
    parser.add_argument("-c", "--config", help="config file (default: $QCBOT_CONFIG or ./config.toml)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    # Everything qcbot writes (database, evidence, exports, backups, keys) holds personal data
    # or secrets: files 0600, directories 0700, whoever runs it.
    os.umask(0o077)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args) or 0)
    except ConfigError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    except CommandError as exc:
        print(f"错误：{exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (``qcbot calendar show 2027 | head``): stop quietly, as cat does.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141


if __name__ == "__main__":
    raise SystemExit(main())
