"""``python -m standin``: serve the Bot API stand-in until interrupted."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys

from .server import BotApiStandin


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m standin",
        description="Loopback stand-in for the Telegram Bot API (serves until Ctrl-C).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default %(default)s)")
    parser.add_argument("--port", type=int, default=8081, help="port (default %(default)s)")
    parser.add_argument("--token", default="123:TEST", help="accepted bot token")
    parser.add_argument("--bot-username", default="qcbot_test_bot")
    parser.add_argument(
        "--auto-create-chats",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="accept unknown numeric chat ids (default on)",
    )
    parser.add_argument(
        "--rate-limits",
        action="store_true",
        help="enforce Telegram's flood limits (30/s overall, 20/min per group, 1/s per chat)",
    )
    parser.add_argument("--log-level", default="WARNING", help="logging level for 'standin'")
    parser.add_argument(
        "--control-port",
        type=int,
        default=None,
        help="also serve the loopback-only control channel (standin.control) on this port (0: any)",
    )
    return parser


async def _serve(args: argparse.Namespace) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(signum, stop.set)
    api = BotApiStandin(
        args.token,
        host=args.host,
        port=args.port,
        bot_username=args.bot_username,
        auto_create_chats=args.auto_create_chats,
    )
    if args.rate_limits:
        api.limits.enable()
    async with api:
        control = None
        if args.control_port is not None:
            from .control import ControlServer

            control = await ControlServer(api, port=args.control_port).start()
        sys.stdout.write(
            f"Bot API stand-in: base_url={api.base_url} base_file_url={api.base_file_url} "
            f"token={api.token}"
            + (f" control_url={control.url}" if control else "")
            + "\n"
        )
        sys.stdout.flush()
        await stop.wait()
        if control is not None:
            await control.stop()


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m standin``."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper())
    asyncio.run(_serve(args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
