"""The console's Telegram world: who can be played, their chats, and the chat history.

People come from the database (every active member of the campaign), so the
console works on the demo database and on any database named with
``--database-url``. Each becomes a simulated user of the stand-in with their real
Telegram id; each bound work group becomes a simulated group they are all in.

The stand-in keeps its messages in memory. :func:`save_history` writes them (and
the files people and the bot sent) next to the database, and
:func:`restore_history` replays them into a new stand-in, so that a kept demo shows
its history again and message numbers go on where they stopped: the bot
remembers what each of its messages was about (BotMessage) by chat and message
number, and a reply to a *new* message #5 must not be taken for a reply to an old
one.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import col, select

from infra.db import read_only
from infra.files import atomic_write
from models.members import ROLE_LABELS, active_campaigns, bound_groups, list_members
from models.tables import BotMessage, Campaign, HandledUpdate, Role, Unit
from standin import BotApiStandin, SimChat, SimUser

log = logging.getLogger(__name__)
JsonDict = dict[str, Any]
HISTORY_VERSION = 1


@dataclass(frozen=True, slots=True)
class Person:
    """Someone the console user can be."""

    number: int
    user_id: int
    name: str
    role: Role
    unit: str | None = None
    title: str = ""
    username: str | None = None

    @property
    def role_label(self) -> str:
        return ROLE_LABELS.get(self.role, str(self.role))

    @property
    def label(self) -> str:
        """“郑丽（区财政局 联络员）”."""
        if self.role == Role.liaison and self.unit:
            return f"{self.name}（{self.unit} 联络员）"
        return f"{self.name}（{self.role_label}）"

    @property
    def description(self) -> str:
        """For the list of people: role, unit, title."""
        if self.role == Role.liaison:
            return f"联络员 · {self.unit or '未知单位'}"
        if self.role == Role.leader:
            return f"领导（只读）{'· ' + self.title if self.title else ''}"
        return f"协调员{'（' + self.title + '）' if self.title else ''}"


@dataclass(frozen=True, slots=True)
class Cast:
    """Everyone, the work groups and the campaign."""

    campaign_id: int
    campaign_name: str
    people: list[Person]
    groups: list[tuple[int, str]]  # (telegram chat id, title)


def load_cast(engine: Engine, *, slug: str = "", titles: dict[int, str] | None = None) -> Cast | None:
    """The campaign's active members, coordinators first, then leaders, then liaisons by unit."""
    titles = titles or {}
    with read_only(engine) as session:
        campaigns = active_campaigns(session)
        if slug:
            campaigns = [c for c in campaigns if c.slug == slug] or campaigns
        if not campaigns:
            return None
        campaign: Campaign = campaigns[0]
        units = {u.id: u for u in session.exec(select(Unit).where(Unit.campaign_id == campaign.id))}
        order = {Role.coordinator: 0, Role.leader: 1, Role.liaison: 2}
        members = list_members(session, campaign_id=campaign.id)  # type: ignore[arg-type]
        members.sort(key=lambda m: (
            order.get(m.role, 3),
            units[m.unit_id].sort_order if m.unit_id in units else 0,
            m.id,
        ))
        people = [
            Person(
                number=i, user_id=m.telegram_user_id, name=m.display_name or f"用户{m.telegram_user_id}",
                role=m.role, unit=units[m.unit_id].name if m.unit_id in units else None,
                title=titles.get(m.telegram_user_id, ""), username=m.username,
            )
            for i, m in enumerate(members, 1)
        ]
        groups = [
            (c.telegram_chat_id, c.title or "工作群")
            for c in bound_groups(session, campaign.id)  # type: ignore[arg-type]
        ]
        return Cast(campaign.id, campaign.name, people, groups)  # type: ignore[arg-type]


def populate(api: BotApiStandin, cast: Cast) -> None:
    """Make every person a user of the stand-in and put them all in every work group."""
    for p in cast.people:
        if p.user_id not in api.world.users:
            api.make_user(p.name, p.username, user_id=p.user_id)
    for chat_id, title in cast.groups:
        if chat_id not in api.world.chats:
            api.make_group(title, chat_id=chat_id)
        if api.world.bot_status(chat_id) not in ("creator", "administrator", "member"):
            api.set_member_status(chat_id, api.bot, "member")  # a group restored from history
        for p in cast.people:
            if api.world.status(chat_id, p.user_id) not in ("creator", "administrator"):
                api.set_member_status(chat_id, p.user_id, "member")


# ===================================================================== history


def _history_files_dir(path: Path) -> Path:
    return path.with_name(path.stem + "-files")


def save_history(api: BotApiStandin, path: Path) -> None:
    """Write the stand-in's chats, messages and files to ``path`` (atomically)."""
    world = api.world
    files_dir = _history_files_dir(path)
    files_dir.mkdir(parents=True, exist_ok=True)
    files = []
    for n, stored in enumerate(world.files.values(), 1):
        blob = files_dir / f"{n:05d}"
        if not blob.exists() or blob.stat().st_size != stored.size:
            blob.write_bytes(stored.data)
        files.append({
            "file_id": stored.file_id, "folder": stored.file_path.split("/", 1)[0],
            "file_name": stored.file_name, "mime_type": stored.mime_type, "blob": blob.name,
        })
    chats = []
    for chat_id, stored_messages in world.messages.items():
        chat = world.chats.get(chat_id)
        if chat is None:
            continue
        bot_ids = {m["message_id"] for m in world.bot_messages.get(chat_id, [])}
        deleted = sorted(mid for cid, mid in world.deleted if cid == chat_id)
        top = max([*stored_messages, *deleted, 0])
        chats.append({
            "chat": chat.to_api(),
            "last_id": top,
            "messages": [stored_messages[k] for k in sorted(stored_messages)],
            "bot_ids": sorted(bot_ids),
        })
    doc = {"version": HISTORY_VERSION, "files": files, "chats": chats}
    atomic_write(path, json.dumps(doc, ensure_ascii=False))


def restore_history(api: BotApiStandin, path: Path) -> int:
    """Replay a saved history into a fresh stand-in; returns the number of messages."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return 0
    except (OSError, ValueError) as exc:
        log.warning("console history %s not readable (%s); starting without it", path, exc)
        return 0
    if doc.get("version") != HISTORY_VERSION:
        return 0
    world = api.world
    files_dir = _history_files_dir(path)
    for f in doc.get("files", []):
        try:
            data = (files_dir / f["blob"]).read_bytes()
        except OSError:
            data = b"(missing)"
        stored = world.store_file(data, f["folder"], f.get("file_name"), f.get("mime_type"))
        if stored.file_id != f["file_id"]:
            log.warning("console history: file id changed (%s -> %s)", f["file_id"], stored.file_id)
    count = 0
    for entry in doc.get("chats", []):
        info = entry["chat"]
        chat = world.chats.get(info["id"]) or world.add_chat(
            SimChat(
                id=info["id"], type=info["type"], title=info.get("title"),
                username=info.get("username"), first_name=info.get("first_name"),
                last_name=info.get("last_name"),
            )
        )
        by_id = {m["message_id"]: m for m in entry["messages"]}
        bot_ids = set(entry.get("bot_ids", []))
        for message_id in range(1, int(entry.get("last_id", 0)) + 1):
            saved = by_id.get(message_id)
            made = world.new_message(chat, world.bot, {}, by_bot=message_id in bot_ids and saved is not None)
            if saved is None:
                world.delete_message(chat.id, made["message_id"])
                continue
            made.clear()
            made.update(saved)
            count += 1
    return count


def skip_update_ids(api: BotApiStandin, engine: Engine) -> None:
    """Let update numbers go on after the highest one the bot recorded as handled: each console
    session's stand-in starts afresh, and a number seen before is answered "handled before"."""
    with read_only(engine) as session:
        top = session.exec(select(func.max(col(HandledUpdate.update_id)))).one()
    if top is not None:
        api.updates.continue_after(int(top))


def skip_message_ids(api: BotApiStandin, engine: Engine) -> None:
    """Let every chat's message numbers go on after the highest one the bot remembers."""
    with read_only(engine) as session:
        rows = session.exec(
            select(BotMessage.telegram_chat_id, func.max(col(BotMessage.message_id)))
            .group_by(col(BotMessage.telegram_chat_id))
        ).all()
    world = api.world
    for chat_id, top in rows:
        chat = world.find_chat(chat_id)
        if chat is None:
            continue
        stored = world.messages.get(chat_id, {})
        last = max([*stored, *(m for c, m in world.deleted if c == chat_id), 0])
        for _ in range(last, int(top or 0)):
            made = world.new_message(chat, world.bot, {}, by_bot=False)
            world.delete_message(chat_id, made["message_id"])


# ===================================================================== waiting


async def settle(api: BotApiStandin, app: Any, *, timeout: float = 30.0, quiet: float = 0.15) -> bool:  # noqa: ASYNC109
    """Wait until the bot has fetched and handled everything and sent what it had to.

    True when settled, False after ``timeout`` (the bot is slow; nothing is lost).
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        try:
            await api.wait_idle(timeout=max(0.05, deadline - loop.time()), quiet=quiet)
        except AssertionError:
            return False
        replies = app.bot_data.get("replies")
        busy = (not app.update_queue.empty() or app.update_processor.current_concurrent_updates > 0
                or (replies is not None and replies.queued > 0))
        if not busy:
            return True
        await asyncio.sleep(0.02)
    return False


def user_of(api: BotApiStandin, person: Person) -> SimUser:
    return api.world.users[person.user_id]
