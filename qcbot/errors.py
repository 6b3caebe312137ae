"""The command line's own error."""

from __future__ import annotations


class CommandError(Exception):
    """A command failed in a way the user can fix; the message says how."""
