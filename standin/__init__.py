"""A loopback stand-in for the Telegram Bot API, for testing bots built on
python-telegram-bot without reaching Telegram.

:class:`BotApiStandin` serves the Bot API over HTTP on 127.0.0.1 with Telegram's
validation, errors, flood limits and injectable faults, and simulates the people (users,
groups, channels) the bot talks to.  See ``python -m standin --help`` for a standalone
server.
"""

from .errors import ApiError
from .faults import FaultKind, FaultRule, Faults
from .formatting import EntityParseError, FormattedText, format_text
from .limits import RateLimits
from .people import ChatRef, MessageRef, SimulationError, UserRef, buttons
from .server import BotApiStandin, RecordedCall, Stats
from .world import ChatType, MemberStatus, SimChat, SimUser, StoredFile

__all__ = [
    "ApiError",
    "BotApiStandin",
    "ChatRef",
    "ChatType",
    "EntityParseError",
    "FaultKind",
    "FaultRule",
    "Faults",
    "FormattedText",
    "MemberStatus",
    "MessageRef",
    "RateLimits",
    "RecordedCall",
    "SimChat",
    "SimUser",
    "SimulationError",
    "Stats",
    "StoredFile",
    "UserRef",
    "buttons",
    "format_text",
]
