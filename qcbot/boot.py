"""Boot steps, in the order ``qcbot run`` takes them: schema, plan, bot.

Every command that touches the record calls :func:`migrate` first (through
``AppContext.engine``), so a fresh database works with any command.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import Engine
from sqlmodel import select

from infra.config import Settings
from infra.db import read_only, transaction
from infra.migrate import current_revision, head_revision, upgrade
from infra.types import utcnow
from models.audit import Actor
from models.seed import ImportReport, import_seed, load_seed
from models.tables import Campaign

#: The campaign plan transcribed from the official document.
DEFAULT_SEED = Path(__file__).resolve().parents[1] / "data" / "seed.json"


@dataclass(frozen=True)
class Migration:
    """What :func:`migrate` did: the revision before (None: an empty database) and after."""

    before: str | None
    after: str

    @property
    def changed(self) -> bool:
        return self.before != self.after

    def summary(self) -> str:
        if self.before is None:
            return f"已新建数据库结构（版本 {self.after}）。"
        if self.changed:
            return f"数据库结构已从版本 {self.before} 升级到 {self.after}。"
        return f"数据库结构已是最新版本（{self.after}），无需升级。"


def migrate(engine: Engine) -> Migration:
    """Bring the schema of ``engine``'s database to the newest revision; say what changed."""
    before = current_revision(engine)
    head = head_revision()
    if before != head:
        upgrade(engine)
    return Migration(before=before, after=head)


def import_plan_if_empty(engine: Engine, seed: Path = DEFAULT_SEED) -> ImportReport | None:
    """Import the plan when the database holds no campaign; None when one exists."""
    with read_only(engine) as session:
        if session.exec(select(Campaign.id).limit(1)).first() is not None:
            return None
    doc = load_seed(seed)
    with transaction(engine) as session:
        return import_seed(session=session, doc=doc, now=utcnow(), actor=Actor.cli())


def prepare(engine: Engine) -> ImportReport | None:
    """``qcbot run``'s first two steps: the schema, then the plan if the database is empty."""
    migrate(engine)
    return import_plan_if_empty(engine)


def start_bot(settings: Settings, engine: Engine) -> int:
    """Poll (or serve the webhook) until stopped; a network failure ends with one clear line."""
    from telegram.error import InvalidToken, NetworkError, TimedOut

    from bot.app import build_application
    from bot.serve import run
    from infra.logging_setup import configure_logging

    configure_logging(settings)
    app = build_application(settings=settings, engine=engine)
    mode = "Webhook" if settings.telegram.mode == "webhook" else "轮询 (polling)"
    print(f"机器人启动中（{mode}）……按 Ctrl-C 停止。", flush=True)
    try:
        run(app)
    except ValueError as exc:  # a configuration the bot cannot run with
        print(f"配置错误 / configuration error: {exc}", file=sys.stderr)
        return 2
    except InvalidToken:
        print("错误：Telegram 拒绝了机器人令牌，请检查 QCBOT_BOT_TOKEN。\n"
              "Error: Telegram rejected the bot token; check QCBOT_BOT_TOKEN.", file=sys.stderr)
        return 1
    except (NetworkError, TimedOut) as exc:
        print(f"错误：无法连接 Telegram（{settings.telegram.base_url.split('/bot')[0]}）：网络错误（{type(exc).__name__}）。"
              "请检查网络或代理设置，或配置 telegram.base_url。\n"
              f"Error: cannot reach the Telegram Bot API: network error ({type(exc).__name__}).",
              file=sys.stderr)
        return 1
    print("机器人已停止。")
    return 0
