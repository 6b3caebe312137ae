"""The console: try the bot in a terminal, without Telegram.

``qcbot console`` (and ``qcbot run`` without a token) starts the real bot
(:func:`bot.app.build_application`, the same application ``make run`` uses)
against an in-process stand-in of the Telegram Bot API (:mod:`standin`), on a
demo database of its own (``var/console.sqlite3``, kept between runs;
``--fresh`` starts over), and opens a chat: you pick who you are (the
coordinator, the leader, or the liaison of a unit) and where you speak (the work
group or your private chat with the bot), and type.

Lines starting with a colon are the console's own commands (``:as 3``,
``:in group``, ``:reply 5 60%``, ``:press 2``, ``:file ~/报告.pdf``, ``:help``,
``:quit``); everything else is sent as a Telegram message. A background task
watches what the bot sends (messages, files, edits, button answers, nudges) to
any chat of the person you play and prints it as it arrives, above the prompt.

On a terminal it uses prompt_toolkit (history, line editing); when stdin or
stdout is not a terminal it reads lines and prints plain text, and waits for the
bot to finish answering each line before reading the next: it can be scripted
(``printf '/help\\n' | qcbot console --as 1``).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import mimetypes
import os
import re
import shlex
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, tzinfo
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine, make_url
from sqlmodel import select

from infra.config import Settings, load_settings
from infra.db import read_only
from models.status import phase_label
from models.tables import Assignment, AssignmentState, Campaign, Phase, Role, Task
from models.wording import full_date
from qcbot import boot
from qcbot.console import demo
from qcbot.console.render import (
    Palette,
    human_size,
    indent,
    inline_buttons,
    keyboard_lines,
    pad,
    styled_text,
)
from qcbot.console.term import Terminal, TtyTerminal
from qcbot.console.world import (
    Cast,
    Person,
    load_cast,
    populate,
    restore_history,
    save_history,
    settle,
    skip_message_ids,
    skip_update_ids,
)
from qcbot.context import AppContext
from standin import BotApiStandin, RecordedCall, SimulationError

log = logging.getLogger(__name__)
JsonDict = dict[str, Any]

VAR = Path("var")
DEMO_DB = VAR / "console.sqlite3"
DEMO_HISTORY = VAR / "console-chats.json"
DEMO_EVIDENCE = VAR / "console-evidence"
DOWNLOADS = VAR / "console-downloads"
LOG_FILE = VAR / "console.log"
PROMPT_HISTORY = VAR / "console-input-history"
#: The stand-in's token: any well-formed one does, nothing leaves this process.
TOKEN = "7000000000:console-demo-token-not-a-secret"
#: The visitor: someone who is not a member (yet), to try /start and invite links.
#: Visitors: people who are not members (yet), to try /start and invite links. Once one
#: joins, the next visitor is someone new (the next id down).
VISITOR_ID = 7100009999
VISITOR_NAME = "新同事"
HISTORY_SHOWN = 6
#: A line of the pipe mode waits at most this long for the bot's answers.
PIPE_SETTLE_SECONDS = 30.0
WATCH_INTERVAL = 0.05
DEEP_LINK = re.compile(r"(?:https?://)?t\.me/(\w+)\?start=([A-Za-z0-9_-]{1,64})")
SEND_METHODS = frozenset({
    "sendmessage", "sendphoto", "senddocument", "sendvideo", "sendaudio", "sendvoice",
    "sendanimation", "sendsticker", "sendlocation", "sendcontact", "sendpoll",
})
EDIT_METHODS = frozenset({
    "editmessagetext", "editmessagecaption", "editmessagereplymarkup", "editmessagemedia",
})

HELP_ROWS: tuple[tuple[str, str], ...] = (
    (":as [编号|单位|姓名]", "切换身份；不带参数列出所有人（例：:as 1、:as 区财政局、:as 领导）"),
    (":in group | private", "切换聊天：工作群 / 与机器人的私聊（也可写 :in 群、:in 私聊）"),
    (":reply 编号 [文字]", "回复某条消息（例：:reply 5 60%）；不写文字则下一条消息作为回复"),
    (":reply off", "取消回复"),
    (":press [消息编号] 按钮编号", "按按钮（例：:press 2 按最近一条带按钮消息的第2个；:press 7 1）"),
    (":file 路径 [说明]", "发送文件（例：:file ~/报告.pdf 自查报告）"),
    (":photo 路径 [说明]", "发送图片"),
    (":open 链接", "像点击邀请链接一样打开它（在私聊中发送 /start 邀请码）"),
    (":history [条数]", "重新显示本聊天最近的消息"),
    (":who", "我是谁、在哪里"),
    (":help", "本帮助"),
    (":quit", "退出（也可按 Ctrl-D）"),
)


def help_text() -> str:
    lines = ["控制台命令（以冒号开头；其余内容都作为消息发给机器人，例如 /help、/mytasks）："]
    lines += [f"  {pad(usage, 28)}{what}" for usage, what in HELP_ROWS]
    lines.append("提示：消息前的 #编号 用于回复；[1 …] 是按钮编号。回复机器人的任务消息即可填报，例如 :reply 5 60%。")
    return "\n".join(lines)


@dataclass
class ConsoleOptions:
    config: str | None = None
    database_url: str | None = None
    fresh: bool = False
    who: str | None = None
    where: str | None = None
    color: bool | None = None
    #: Print the line saying why the console opened (``qcbot run`` without a token).
    no_token_notice: bool = False


# ====================================================================== setup


def configure_logging(log_file: Path) -> None:
    """Warnings and errors go to ``log_file``; the screen is the chat."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
        with contextlib.suppress(Exception):
            handler.close()
    handler = logging.FileHandler(log_file, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    root.setLevel(logging.WARNING)
    for noisy in ("httpx", "httpcore", "aiohttp.access", "apscheduler"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _sqlite_files(path: Path) -> list[Path]:
    return [path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")]


def remove_demo(paths: list[Path]) -> None:
    """``--fresh``: delete the demo database, its chat history and evidence files."""
    import shutil

    for path in paths:
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()


def history_path_for(url: str, *, demo_db: bool) -> Path:
    """Where the console keeps the chats of a database (under var/, never next to it)."""
    if demo_db:
        return DEMO_HISTORY
    import hashlib

    digest = hashlib.sha256(url.encode()).hexdigest()[:10]
    return VAR / f"console-chats-{digest}.json"


def console_settings(opts: ConsoleOptions, url: str, *, demo_db: bool) -> Settings:
    """The configuration, pointed at the console's database (and demo evidence store).

    The per-person budget (``bot.gate``) is off: the demo plays a whole office's onboarding as
    fast as the bot answers, and nobody else can reach a local stand-in."""
    overrides: dict[str, dict[str, Any]] = {"database": {"url": url}, "telegram": {"user_budget_per_minute": 0}}
    if demo_db:
        overrides["storage"] = {"dir": str(DEMO_EVIDENCE)}
    return load_settings(opts.config, overrides=overrides)


# ==================================================================== console


@dataclass
class Console:
    """The chat: who you are, where you speak, and what the bot says."""

    api: BotApiStandin
    app: Any
    engine: Engine
    cast: Cast
    term: Terminal
    downloads: Path = DOWNLOADS
    titles: dict[int, str] = field(default_factory=dict)
    on_change: Callable[[], None] | None = None
    person: Person | None = None
    chat_id: int | None = None
    cursor: int = 0
    reply_to: dict[tuple[int, int], int] = field(default_factory=dict)
    my_queries: dict[str, str] = field(default_factory=dict)
    saved_files: dict[str, str] = field(default_factory=dict)
    new_groups: list[int] = field(default_factory=list)
    quitting: bool = False
    _interrupts: int = 0
    _hinted: bool = False
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    @property
    def p(self) -> Palette:
        return self.term.palette

    # ------------------------------------------------------------- people

    def visitor(self) -> Person:
        members = {q.user_id for q in self.cast.people}
        n = 0
        while VISITOR_ID - n in members:
            n += 1
        name = VISITOR_NAME if n == 0 else f"{VISITOR_NAME}{n + 1}"
        return Person(number=0, user_id=VISITOR_ID - n, name=name, role=Role.liaison,
                      unit=None, title="还不是成员：可以试试 /start 和邀请链接")

    def everyone(self) -> list[Person]:
        return [*self.cast.people, self.visitor()]

    def reload_cast(self) -> None:
        fresh = load_cast(self.engine, titles=self.titles)
        if fresh is not None:
            self.cast = fresh
            populate(self.api, fresh)
            if self.person is not None:
                self.person = next((q for q in self.everyone() if q.user_id == self.person.user_id), self.person)

    def is_member(self, person: Person) -> bool:
        return person.number != 0

    def describe(self, person: Person) -> str:
        if not self.is_member(person):
            return f"{person.name}（访客，还不是成员）"
        return person.label

    def people_lines(self) -> list[str]:
        lines = []
        for q in self.everyone():
            if not self.is_member(q):
                desc = "访客（还不是成员：可以试试 /start 邀请码）"
            else:
                desc = q.description
            mark = " ←" if self.person is not None and q.user_id == self.person.user_id else ""
            lines.append(f"  {q.number:>3}  {pad(q.name, 8)}{desc}{mark}")
        return lines

    def find_person(self, text: str) -> Person | None:
        text = text.strip()
        people = self.everyone()
        if text.isdigit():
            return next((q for q in people if q.number == int(text)), None)
        lowered = text.lower()
        words = {
            "coordinator": Role.coordinator, "协调员": Role.coordinator, "coord": Role.coordinator,
            "leader": Role.leader, "领导": Role.leader,
        }
        if lowered in words:
            return next((q for q in people if q.role == words[lowered] and self.is_member(q)), None)
        if lowered in ("visitor", "访客", "新用户", "guest"):
            return self.visitor()
        for q in people:
            if text in (q.name, q.unit, f"@{q.username}" if q.username else None):
                return q
        bare = text.removeprefix("区")
        matches = [q for q in people if q.unit and bare and bare in q.unit]
        matches += [q for q in people if text in q.name and q not in matches]
        return matches[0] if len(matches) == 1 else None

    # ------------------------------------------------------------- chats

    def group_ids(self) -> list[int]:
        bound = [chat_id for chat_id, _ in self.cast.groups]
        return bound + [g for g in self.new_groups if g not in bound]

    async def new_group(self) -> int:
        """No work group yet: you create one and add the bot (then /bindgroup binds it)."""
        assert self.person is not None
        world = self.api.world
        existing = [c.id for c in world.chats.values() if c.is_group]
        if existing:
            group = world.chats[existing[0]]
            self.api.set_member_status(group, self.person.user_id, "member")
        else:
            group = self.api.make_group(demo.GROUP_TITLE, chat_id=demo.GROUP_ID, creator=self.person.user_id,
                                        bot_status="left")
        self.new_groups.append(group.id)
        if world.bot_status(group.id) not in ("creator", "administrator", "member"):
            await self.api.add_bot_to_group(self.person.user_id, group)
            self.say(f"你新建了群“{group.title}”，并把 {self.api.bot.first_name} 拉进了群。"
                     "协调员在群里发送 /bindgroup 即可绑定为工作群。")
        return group.id

    def chat_title(self, chat_id: int) -> str:
        for gid, title in self.cast.groups:
            if gid == chat_id:
                return title
        if self.person is not None and chat_id == self.person.user_id:
            return "私聊"
        chat = self.api.world.chats.get(chat_id)
        if chat is not None and chat.type == "private":
            return f"{chat.first_name or chat_id} 的私聊"
        return (chat.title if chat else None) or str(chat_id)

    def visible(self, chat_id: int) -> bool:
        """Whether the person played sees this chat."""
        if self.person is None:
            return False
        if chat_id == self.person.user_id:
            return True
        return chat_id in self.group_ids() and self.api.world.status(chat_id, self.person.user_id) in (
            "creator", "administrator", "member", "restricted")

    def owner_of(self, chat_id: int) -> Person | None:
        return next((q for q in self.everyone() if q.user_id == chat_id), None)

    def parse_place(self, text: str) -> int | None:
        word = text.strip().lower()
        if self.person is None:
            return None
        if word in ("private", "p", "私聊", "私信", "私", "2", "dm", "bot"):
            return self.person.user_id
        if word in GROUP_WORDS or text.strip() in [t for _, t in self.cast.groups]:
            groups = self.group_ids()
            if len(groups) > 1:
                for gid, title in self.cast.groups:
                    if title == text.strip():
                        return gid
            return groups[0] if groups else None
        if word.isdigit() and int(word) >= 3 and int(word) - 2 <= len(self.group_ids()):
            return self.group_ids()[int(word) - 2]
        return None

    # ------------------------------------------------------------- rendering

    def sender(self, message: JsonDict) -> tuple[str, bool, bool]:
        """(name, is the bot, is me)."""
        frm = message.get("from") or {}
        uid = frm.get("id")
        if frm.get("is_bot") and uid == self.api.bot.id:
            return self.api.bot.first_name, True, False
        me = self.person is not None and uid == self.person.user_id
        who = next((q for q in self.everyone() if q.user_id == uid), None)
        if who is not None:
            name = who.name + ("（你）" if me else f"（{who.unit}）" if who.unit else f"（{who.role_label}）"
                               if self.is_member(who) else "")
        else:
            name = " ".join(x for x in (frm.get("first_name"), frm.get("last_name")) if x) or "?"
            if me:
                name += "（你）"
        return name, bool(frm.get("is_bot")), me

    def render(self, message: JsonDict, *, edited: bool = False, force_reply: bool = False,
               save: bool = True) -> str:
        p = self.p
        chat_id = message["chat"]["id"]
        name, is_bot, me = self.sender(message)
        head = [p.dim(f"#{message['message_id']}"), p.name(name, bot=is_bot, me=me)]
        replied = message.get("reply_to_message")
        if replied:
            head.append(p.dim(f"↩ 回复 #{replied['message_id']}"))
        if edited:
            head.append(p.warn("✏️ 已修改"))
        if chat_id != self.chat_id:
            head.insert(0, p.accent(f"[{self.chat_title(chat_id)}]"))
        lines = [" ".join(head)]
        body = self.body(message, save=save and is_bot)
        if body:
            lines.append(indent(body, columns=self.term.columns()))
        for row in keyboard_lines(message, p):
            lines.append("  " + row)
        if force_reply:
            lines.append(p.dim("  ↳ 请回复本消息：直接输入即可（:reply off 取消）"))
        if is_bot and DEEP_LINK.search(message.get("text") or "") and "start=boot_" not in (message.get("text") or ""):
            lines.append(p.dim("  ↳ 控制台里模拟对方点击链接：:as 0（访客），再 :open 链接"))
        return "\n".join(lines)

    def body(self, message: JsonDict, *, save: bool) -> str:
        p = self.p
        parts: list[str] = []
        if "text" in message:
            parts.append(styled_text(message["text"], message.get("entities"), p))
        document = message.get("document")
        photos = message.get("photo")
        if document is not None:
            where = self.download(message, document, document.get("file_name") or "文件") if save else None
            parts.append(p.accent("[文件]") + f" {document.get('file_name') or '（无文件名）'}"
                         f"（{human_size(document.get('file_size'))}）" + (f" 已保存到 {where}" if where else ""))
        elif photos:
            biggest = photos[-1]
            where = self.download(message, biggest, None) if save else None
            parts.append(p.accent("[图片]") + f" {biggest.get('width')}×{biggest.get('height')}"
                         f"（{human_size(biggest.get('file_size'))}）" + (f" 已保存到 {where}" if where else ""))
        for key in ("new_chat_members", "left_chat_member"):
            if key in message:
                people = message[key] if isinstance(message[key], list) else [message[key]]
                names = "、".join(x.get("first_name", "?") for x in people)
                parts.append(p.dim(f"（{names} {'加入了群' if key == 'new_chat_members' else '离开了群'}）"))
        if "caption" in message:
            parts.append(styled_text(message["caption"], message.get("caption_entities"), p))
        if not parts and not message.get("new_chat_members"):
            kinds = [k for k in message if k not in ("message_id", "from", "chat", "date", "reply_to_message")]
            parts.append(p.dim(f"（{'、'.join(kinds) or '空消息'}）"))
        return "\n".join(parts)

    def download(self, message: JsonDict, file: JsonDict, name: str | None) -> str | None:
        """Save a file the bot sent under var/console-downloads/ (once)."""
        key = file.get("file_unique_id") or file.get("file_id") or ""
        if key in self.saved_files:
            return self.saved_files[key]
        stored = self.api.world.files.get(file.get("file_id", ""))
        if stored is None:
            return None
        if not name:
            name = f"图片-{message['message_id']}{image_suffix(stored.data)}"
        safe = "".join(ch if ch not in '/\\:*?"<>|\0' else "_" for ch in name).strip() or "文件"
        self.downloads.mkdir(parents=True, exist_ok=True)
        target = self.downloads / safe
        stem, suffix = target.stem, target.suffix
        n = 1
        while target.exists() and target.read_bytes() != stored.data:
            n += 1
            target = self.downloads / f"{stem}-{n}{suffix}"
        if not target.exists():
            target.write_bytes(stored.data)
        shown = str(target)
        self.saved_files[key] = shown
        return shown

    def say(self, text: str) -> None:
        """A line of the console itself (not a message)."""
        self.term.print(self.p.accent("» ") + text)

    def warn(self, text: str) -> None:
        self.term.print(self.p.warn("» " + text))

    # ------------------------------------------------------------- watching the bot

    def drain(self) -> None:
        """Show what the bot did since last time (recorded calls of the stand-in)."""
        calls = self.api.calls
        while self.cursor < len(calls):
            call = calls[self.cursor]
            self.cursor += 1
            try:
                self.handle(call)
            except Exception:  # a rendering bug must not stop the chat
                log.exception("console could not show %s", call.method)
        if self.on_change is not None:
            self.on_change()

    def handle(self, call: RecordedCall) -> None:
        method = call.method.lower()
        if not call.ok:
            return
        if method in SEND_METHODS and isinstance(call.result, dict):
            self.on_bot_message(call.result, call.params, edited=False)
        elif method == "sendmediagroup" and isinstance(call.result, list):
            for message in call.result:
                self.on_bot_message(message, call.params, edited=False)
        elif method in EDIT_METHODS and isinstance(call.result, dict):
            self.on_bot_message(call.result, call.params, edited=True)
        elif method in ("deletemessage", "deletemessages"):
            chat_id = _int(call.params.get("chat_id"))
            ids = call.params.get("message_ids") or [call.params.get("message_id")]
            if chat_id is not None and self.visible(chat_id):
                for mid in ids:
                    self.term.print(self.p.dim(f"（{self.place_prefix(chat_id)}#{mid} 已被删除）"))
        elif method == "answercallbackquery":
            query = str(call.params.get("callback_query_id"))
            if query in self.my_queries:
                self.my_queries.pop(query)
                text = call.params.get("text")
                if text:
                    if call.params.get("show_alert"):
                        self.term.print(self.p.warn(f"  ⚠️ 提示框：{text}"))
                    else:
                        self.term.print(self.p.dim(f"  💬 {text}"))

    def place_prefix(self, chat_id: int) -> str:
        return "" if chat_id == self.chat_id else f"{self.chat_title(chat_id)} "

    def on_bot_message(self, message: JsonDict, params: JsonDict, *, edited: bool) -> None:
        chat_id = message.get("chat", {}).get("id")
        if chat_id is None:
            return
        if not self.visible(chat_id):
            owner = self.owner_of(chat_id)
            if owner is not None and not edited:
                self.term.print(self.p.dim(
                    f"  · {self.describe(owner)}的私聊收到一条新消息（:as {owner.number} 查看）"))
            return
        markup = params.get("reply_markup")
        force = isinstance(markup, dict) and bool(markup.get("force_reply")) and not edited
        if force and self.person is not None:
            self.reply_to[(self.person.user_id, chat_id)] = message["message_id"]
            self.term.refresh()
        self.term.print(self.render(message, edited=edited, force_reply=force))

    async def watch(self) -> None:
        while not self.quitting:
            self.drain()
            await asyncio.sleep(WATCH_INTERVAL)

    # ------------------------------------------------------------- switching

    def switch(self, person: Person | None = None, chat_id: int | None = None, *, history: bool = True) -> None:
        if self.person is not None and self.chat_id is not None:
            self.drain()  # what arrived for the one you were, first
        if person is not None:
            self.person = person
            if person.user_id not in self.api.world.users:
                self.api.make_user(person.name, person.username, user_id=person.user_id)
        if chat_id is not None:
            self.chat_id = chat_id
        assert self.person is not None
        if self.chat_id is None or not (self.chat_id == self.person.user_id or self.chat_id in self.group_ids()):
            self.chat_id = self.person.user_id
        if self.chat_id != self.person.user_id and not self.visible(self.chat_id):
            self.api.set_member_status(self.chat_id, self.person.user_id, "member")  # everyone is in the work group
        title = self.chat_title(self.chat_id)
        where = f"与 {self.api.bot.first_name} 的私聊" if self.chat_id == self.person.user_id else f"群“{title}”"
        if self.cursor:
            self.term.print("")
        self.term.print(self.p.bold(f"══ 你现在是 {self.describe(self.person)}，在{where} ══"))
        if history:
            self.show_history(HISTORY_SHOWN)
        self.cursor = len(self.api.calls)  # the history showed what came before

    def show_history(self, count: int) -> None:
        assert self.chat_id is not None
        messages = self.api.history(self.chat_id)
        if not messages:
            hint = "发送 /start 开始" if self.chat_id == (self.person.user_id if self.person else None) else "还没有消息"
            self.term.print(self.p.dim(f"（{hint}）"))
            return
        shown = messages[-count:]
        if len(messages) > len(shown):
            self.term.print(self.p.dim(f"（更早的 {len(messages) - len(shown)} 条消息未显示；:history 30 查看更多）"))
        for message in shown:
            self.term.print(self.render(message, save=True))

    # ------------------------------------------------------------- acting

    def prompt(self) -> str:
        assert self.person is not None and self.chat_id is not None
        place = "私聊" if self.chat_id == self.person.user_id else self.chat_title(self.chat_id)
        target = self.reply_to.get((self.person.user_id, self.chat_id))
        replying = self.p.warn(f" ↩#{target}") if target else ""
        return f"{self.p.name(self.person.name, me=True)}{self.p.dim('@' + place)}{replying} › "

    def toolbar(self) -> str:
        return (" :help 帮助  :as 换身份  :in 群/私聊  :reply 编号 回复  :press 编号 按钮  "
                ":file 路径 发文件  Ctrl-D 退出")

    def take_reply_target(self) -> int | None:
        assert self.person is not None and self.chat_id is not None
        return self.reply_to.pop((self.person.user_id, self.chat_id), None)

    def echo(self, message: JsonDict) -> None:
        self.term.print(self.render(message, save=False))

    async def send_text(self, text: str, reply_to: int | None = None) -> None:
        assert self.person is not None and self.chat_id is not None
        if reply_to is None:
            reply_to = self.take_reply_target()
        else:
            self.reply_to.pop((self.person.user_id, self.chat_id), None)
        if reply_to is not None and self.api.message(self.chat_id, reply_to) is None:
            self.warn(f"本聊天里没有消息 #{reply_to}（可能已被删除）。")
            return
        message = await self.api.send_text(self.person.user_id, self.chat_id, text, reply_to=reply_to)
        self.echo(message)
        if self.chat_id in self.group_ids() and reply_to is None and not text.startswith("/") and not self._hinted:
            self._hinted = True
            self._tasks.add(task := asyncio.create_task(self.hint_if_ignored(message)))
            task.add_done_callback(self._tasks.discard)

    async def hint_if_ignored(self, message: JsonDict) -> None:
        """A newcomer's chat line in the group gets no answer: say why, once."""
        await settle(self.api, self.app, timeout=5.0)
        chat_id, mine = message["chat"]["id"], message["message_id"]
        answered = any((m.get("reply_to_message") or {}).get("message_id") == mine
                       for m in self.api.sent_messages(chat_id))
        if not answered and not self.quitting:
            self.term.print(self.p.dim(
                "  （机器人不理会群里的普通聊天：请发命令，如 /mytasks，或用 :reply 编号 回复它的消息来填报）"))

    async def send_file(self, args: str, *, photo: bool) -> None:
        assert self.person is not None and self.chat_id is not None
        what = ":photo" if photo else ":file"
        path, caption = split_path(args)
        if path is None:
            self.warn(f"用法：{what} 路径 [说明]，例如 {what} ~/报告.pdf 自查报告")
            return
        file, data, problem = await asyncio.to_thread(read_file, path)
        if problem:
            self.warn(problem)
            return
        reply_to = self.take_reply_target()
        if photo:
            data = await asyncio.to_thread(as_jpeg, data)
            message = await self.api.send_photo(self.person.user_id, self.chat_id, data,
                                                caption=caption or None, reply_to=reply_to)
        else:
            mime, _ = mimetypes.guess_type(file.name)
            message = await self.api.send_document(
                self.person.user_id, self.chat_id, file.name, data, caption=caption or None,
                mime_type=mime or "application/octet-stream", reply_to=reply_to,
            )
        self.echo(message)

    async def open_link(self, link: str) -> None:
        """Open a deep link to the bot as Telegram does: /start PAYLOAD in the private chat."""
        assert self.person is not None
        match = DEEP_LINK.search(link.strip())
        if match is None:
            self.warn("用法：:open https://t.me/机器人?start=邀请码（把邀请链接整个粘贴过来）")
            return
        if match.group(1).lower() != (self.api.bot.username or "").lower():
            self.warn(f"这是另一个机器人（@{match.group(1)}）的链接。")
            return
        if self.chat_id != self.person.user_id:
            self.switch(chat_id=self.person.user_id, history=False)
        await self.send_text(f"/start {match.group(2)}")

    async def press(self, args: str) -> None:
        assert self.person is not None and self.chat_id is not None
        words = args.replace(".", " ").split()
        message: JsonDict | None = None
        if len(words) == 2 and all(w.isdigit() for w in words):
            message = self.api.message(self.chat_id, int(words[0]))
            if message is None:
                self.warn(f"本聊天里没有消息 #{words[0]}。")
                return
            choice = words[1]
        elif len(words) == 1:
            choice = words[0]
            for candidate in reversed(self.api.history(self.chat_id)):
                if inline_buttons(candidate):
                    message = candidate
                    break
            if message is None:
                self.warn("本聊天里没有带按钮的消息。")
                return
        else:
            self.warn("用法：:press 按钮编号，或 :press 消息编号 按钮编号（例：:press 2、:press 7 1）")
            return
        offered = inline_buttons(message)
        if not offered:
            self.warn(f"消息 #{message['message_id']} 没有按钮。")
            return
        if choice.isdigit():
            k = int(choice)
            if not 1 <= k <= len(offered):
                self.warn(f"消息 #{message['message_id']} 只有 {len(offered)} 个按钮（1–{len(offered)}）。")
                return
            button = offered[k - 1]
        else:
            found = [b for b in offered if choice in b.get("text", "")]
            if len(found) != 1:
                self.warn(f"消息 #{message['message_id']} 的按钮：" + "  ".join(
                    f"[{i} {b.get('text')}]" for i, b in enumerate(offered, 1)))
                return
            button = found[0]
        if "callback_data" not in button:
            self.say(f"这是一个链接按钮：{button.get('url') or button.get('text')}")
            return
        label = button.get("text", "")
        self.term.print(self.p.dim(f"  （{self.person.name} 按下 #{message['message_id']} 的“{label}”）"))
        try:
            query = await self.api.press_button(self.person.user_id, message, button["callback_data"])
        except SimulationError as exc:
            self.warn(f"按钮已失效：{exc}")
            return
        self.my_queries[query] = label

    # ------------------------------------------------------------- commands

    async def meta(self, line: str, typed: str | None = None) -> None:
        self.term.print(self.p.dim(f"› {typed or line}"))
        command, _, rest = line[1:].strip().partition(" ")
        command, rest = command.lower(), rest.strip()
        if command in ("q", "quit", "exit", "退出"):
            self.quitting = True
        elif command in ("h", "help", "?", "帮助"):
            self.term.print(help_text())
        elif command in ("as", "who-am-i", "身份"):
            await self.cmd_as(rest)
        elif command in ("in", "聊天"):
            await self.cmd_in(rest)
        elif command in ("who", "whoami", "where"):
            assert self.person is not None
            self.say(f"你是 {self.describe(self.person)}，在{self.chat_title(self.chat_id or 0)}。"
                     f"（Telegram ID {self.person.user_id}）")
        elif command in ("reply", "r", "回复"):
            await self.cmd_reply(rest)
        elif command in ("press", "p", "button", "按"):
            await self.press(rest)
        elif command in ("file", "f", "doc", "document", "文件"):
            await self.send_file(rest, photo=False)
        elif command in ("photo", "image", "图片", "照片"):
            await self.send_file(rest, photo=True)
        elif command in ("open", "link", "打开"):
            await self.open_link(rest)
        elif command in ("history", "hist", "历史"):
            self.show_history(int(rest) if rest.isdigit() else 20)
        else:
            self.warn(f"没有控制台命令“:{command}”。输入 :help 查看控制台命令；发给机器人的命令以 / 开头（如 /help）。")

    async def cmd_as(self, rest: str) -> None:
        self.reload_cast()
        if not rest:
            self.term.print("可以扮演的人（:as 编号）：")
            for line in self.people_lines():
                self.term.print(line)
            return
        person = self.find_person(rest)
        if person is None:
            self.warn(f"找不到“{rest}”。输入 :as 查看名单，用编号选择（如 :as 3）。")
            return
        chat = self.chat_id
        if chat is not None and chat not in self.group_ids():
            chat = person.user_id  # from one private chat to the other person's
        self.switch(person, chat, history=chat != self.chat_id)  # the same group: it is on screen

    async def cmd_in(self, rest: str) -> None:
        assert self.person is not None
        if not rest:
            options = ["  group    " + (self.cast.groups[0][1] if self.cast.groups else "（没有绑定的工作群）"),
                       f"  private  与 {self.api.bot.first_name} 的私聊"]
            self.term.print("在哪里发言（:in group 或 :in private）：\n" + "\n".join(options))
            return
        chat = self.parse_place(rest)
        if chat is None and rest.strip().lower() in GROUP_WORDS:
            chat = await self.new_group()
        if chat is None:
            self.warn("用法：:in group（工作群）或 :in private（私聊）。")
            return
        self.switch(chat_id=chat)

    async def cmd_reply(self, rest: str) -> None:
        assert self.person is not None and self.chat_id is not None
        number, _, text = rest.partition(" ")
        number = number.lstrip("#")
        key = (self.person.user_id, self.chat_id)
        if number.lower() in ("off", "cancel", "取消", "no", "0"):
            self.reply_to.pop(key, None)
            self.say("已取消回复。")
            return
        if not number.isdigit():
            self.warn("用法：:reply 消息编号 [文字]，例如 :reply 5 60%（编号是消息前的 #数字）")
            return
        target = int(number)
        if self.api.message(self.chat_id, target) is None:
            self.warn(f"本聊天里没有消息 #{target}。")
            return
        text = text.strip()
        if text:
            await self.send_text(text, reply_to=target)
        else:
            self.reply_to[key] = target
            self.say(f"下一条消息（文字、:file 或 :photo）将回复 #{target}。:reply off 取消。")

    async def handle_line(self, line: str) -> None:
        text = line.strip()
        if not text:
            return
        if text.startswith("：") and not text.startswith("：："):
            text = ":" + text[1:]
        if text.startswith("::") or text.startswith("：："):
            await self.send_text(text[1:])
        elif text.startswith(":"):
            await self.meta(text)
        elif text.split()[0].lower() in SLASH_META and text.split()[0][1:].lower() not in bot_command_names():
            # /as 3, /in group: the console's, as long as the bot has no such command
            await self.meta(":" + text[1:], typed=text)
        else:
            await self.send_text(text)

    # ------------------------------------------------------------- the loop

    async def choose(self, who: str | None, where: str | None) -> bool:
        """Pick who and where (from the options or by asking); False at the end of input."""
        person = self.find_person(who) if who else None
        if who and person is None:
            self.warn(f"找不到“{who}”（--as）。")
        while person is None:
            first = self.everyone()[0].number
            self.term.print(self.p.bold("你是谁？") + f"（输入编号，直接回车 = {first}）")
            for line in self.people_lines():
                self.term.print(line)
            self.term.print(self.p.dim("  提示：协调员可以 /status、/review；联络员发 /mytasks，再回复任务消息填报进度。"))
            answer = await self.term.read("编号 › ")
            if answer is None:
                return False
            person = self.find_person(answer.strip() or str(first))
            if person is None:
                self.warn(f"没有“{answer.strip()}”，请输入名单前的编号。")
        self.person = person
        chat = self.parse_place(where) if where else None
        if where and chat is None:
            self.warn(f"不认识的聊天“{where}”（--in）：用 group 或 private。")
        if chat is None and not self.is_member(person):
            chat = person.user_id
        while chat is None:
            group = self.cast.groups[0][1] if self.cast.groups else None
            if group is None:
                chat = person.user_id
                self.term.print(self.p.dim("（还没有工作群：:in group 新建一个群并把机器人拉进去）"))
                break
            self.term.print(self.p.bold("在哪里发言？") + "（直接回车 = 1）")
            self.term.print(f"    1  群“{group}”\n    2  与 {self.api.bot.first_name} 的私聊")
            answer = await self.term.read("编号 › ")
            if answer is None:
                return False
            chat = self.parse_place(answer.strip() or "1")
        self.switch(person, chat)
        self.term.print(self.p.dim("输入消息或命令（如 /help），:help 查看控制台命令。"))
        return True

    async def loop(self) -> None:
        watcher = asyncio.create_task(self.watch())
        try:
            while not self.quitting:
                if self.term.interactive:
                    self.drain()
                try:
                    line = await self.term.read(self.prompt, self.toolbar())
                except KeyboardInterrupt:
                    self._interrupts += 1
                    if self._interrupts >= 2:
                        break
                    self.say("（再按一次 Ctrl-C 退出；也可以按 Ctrl-D 或输入 :quit）")
                    continue
                self._interrupts = 0
                if line is None:
                    break
                try:
                    await self.handle_line(line)
                except SimulationError as exc:
                    self.warn(str(exc))
                if not self.term.interactive:
                    await settle(self.api, self.app, timeout=PIPE_SETTLE_SECONDS, quiet=0.05)
                    self.drain()
            await settle(self.api, self.app, timeout=5.0)
            self.drain()
        finally:
            self.quitting = True
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher


GROUP_WORDS = frozenset({"group", "g", "群", "群聊", "工作群", "1"})
SLASH_META = frozenset({"/as", "/in", "/quit", "/exit"})


def bot_command_names() -> frozenset[str]:
    from bot.commands import BY_NAME

    return frozenset(BY_NAME)


def split_path(args: str) -> tuple[str | None, str]:
    """``:file`` arguments: a path (quoted if it has spaces) and an optional caption."""
    args = args.strip()
    if not args:
        return None, ""
    if Path(args).expanduser().is_file():
        return args, ""
    try:
        words = shlex.split(args)
    except ValueError:
        words = args.split()
    if not words:
        return None, ""
    return words[0], " ".join(words[1:])


def image_suffix(data: bytes) -> str:
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return ".png"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return ".webp"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return ".gif"
    return ".jpg"


def as_jpeg(data: bytes) -> bytes:
    """A photo as Telegram delivers it: re-encoded as JPEG (a PNG stays a PNG only as a file)."""
    if data[:3] == b"\xff\xd8\xff":
        return data
    try:
        from PIL import Image

        with Image.open(io.BytesIO(data)) as image:
            out = io.BytesIO()
            image.convert("RGB").save(out, format="JPEG", quality=90)
            return out.getvalue()
    except Exception:  # not an image Pillow reads: send it as it is (the bot will say so)
        return data


def read_file(path: str) -> tuple[Path, bytes, str | None]:
    """A file to send: (path, bytes, None), or a Chinese reason it cannot be sent."""
    file = Path(path).expanduser()
    if not file.is_file():
        return file, b"", f"找不到文件：{file}"
    try:
        data = file.read_bytes()
    except OSError as exc:
        return file, b"", f"读不了文件 {file}：{exc.strerror or exc}"
    if not data:
        return file, b"", f"文件是空的：{file}"
    return file, data, None


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


# =================================================================== summary


def campaign_summary(engine: Engine, *, today: date, palette: Palette) -> list[str]:
    """Where the campaign stands today: phase, overdue and next deadlines, waiting reviews."""
    with read_only(engine) as session:
        campaign = session.exec(select(Campaign).where(Campaign.active == True).order_by(Campaign.id)).first()  # noqa: E712
        if campaign is None:
            return []
        name = campaign.name
        phases = [(p.no, p.name, p.start_date, p.end_date) for p in
                  session.exec(select(Phase).where(Phase.campaign_id == campaign.id).order_by(Phase.no))]
        deadlines = {t.id: (t.no, t.deadline) for t in session.exec(select(Task).where(Task.campaign_id == campaign.id))}
        open_rows = [(deadlines[a.task_id], a.state) for a in session.exec(select(Assignment).where(
            Assignment.campaign_id == campaign.id, Assignment.retired == False,  # noqa: E712
            Assignment.state != AssignmentState.approved))]
    lines = [palette.bold(f"活动：{name}")]
    now = next((p for p in phases if (p[2] or date.min) <= today <= p[3]), None)
    if now is not None:
        lines.append(f"  今天是 {full_date(today)}，处于{phase_label(now[0])}“{now[1]}”（{full_date(now[2])}—{full_date(now[3])}）")
    elif phases and today > phases[-1][3]:
        lines.append(f"  今天是 {full_date(today)}：计划的各阶段都已结束（最后一天 {full_date(phases[-1][3])}）。")
    late = [(no, d) for (no, d), state in open_rows if d < today and state != AssignmentState.submitted]
    if late:
        numbers = "、".join(str(n) for n in sorted({no for no, _ in late}))
        first = min(d for _, d in late)
        lines.append(palette.warn(f"  已逾期：任务{numbers}（{full_date(first)} 到期，已过 {(today - first).days} 天）"))
    upcoming = sorted({d for (_, d), _ in open_rows if d >= today})
    if upcoming:
        nxt = upcoming[0]
        count = len({no for (no, d), _ in open_rows if d == nxt})
        lines.append(f"  下一个截止日：{full_date(nxt)}（还有 {(nxt - today).days} 天），{count} 项任务")
    waiting = sum(1 for _, state in open_rows if state == AssignmentState.submitted)
    if waiting:
        lines.append(f"  {waiting} 项任务已报告完成，等待协调员审核（协调员发送 /review）")
    return lines



# ====================================================================== main


def _pause_jobs(app: Any) -> bool:
    scheduler = getattr(app.job_queue, "scheduler", None)
    try:
        scheduler.pause()  # type: ignore[union-attr]
    except Exception:  # no JobQueue, or not running: nothing to pause
        return False
    return True


def _resume_jobs(app: Any) -> None:
    with contextlib.suppress(Exception):
        app.job_queue.scheduler.resume()


async def _main(opts: ConsoleOptions, term: Terminal) -> int:
    from bot.app import build_application, running

    p = term.palette
    demo_db = opts.database_url is None
    url = opts.database_url or f"sqlite:///{DEMO_DB}"
    history_file = history_path_for(url, demo_db=demo_db)
    if opts.fresh:
        remove_demo([*_sqlite_files(DEMO_DB), DEMO_HISTORY, DEMO_HISTORY.with_name(DEMO_HISTORY.stem + "-files"),
                     DEMO_EVIDENCE])
    settings = console_settings(opts, url, demo_db=demo_db)
    tz = settings.campaign.tz
    today = datetime.now(tz).date()
    engine = AppContext(settings).engine
    started = time.monotonic()
    if demo_db and not DEMO_DB.exists():
        term.print(p.dim("正在准备演示活动（导入计划、协调员初始化、建群、邀请领导和各单位联络员）……"))
    if demo_db:
        await asyncio.to_thread(demo.prepare_database, engine, today=today)
    else:
        await asyncio.to_thread(boot.prepare, engine)
    story = demo_db and not await asyncio.to_thread(demo.has_members, engine)
    titles = demo.cast_titles() if demo_db else {}

    api = BotApiStandin(TOKEN, bot_username=demo.BOT_USERNAME)
    await asyncio.to_thread(skip_update_ids, api, engine)
    async with api:
        if not story:
            restored = restore_history(api, history_file)
            log.info("console: %d messages of history restored", restored)
        cast = load_cast(engine, slug=settings.campaign.slug, titles=titles)
        if cast is not None and not story:
            populate(api, cast)
            await asyncio.to_thread(skip_message_ids, api, engine)
        app = build_application(settings=settings, engine=engine, token=api.token,
                                base_url=api.base_url, base_file_url=api.base_file_url)
        banner = io.StringIO()
        async with contextlib.AsyncExitStack() as stack:
            with contextlib.redirect_stdout(banner):
                await stack.enter_async_context(running(app, poll_timeout=5))
            if story:
                # No nudges about a half-built demo: the scheduler waits for the story.
                paused = _pause_jobs(app)
                try:
                    await demo.onboard(api, app)
                except demo.StoryError as exc:
                    term.print(p.error(str(exc)))
                    term.print(f"详情见 {LOG_FILE}。")
                    return 1
                finally:
                    if paused:
                        _resume_jobs(app)
                cast = load_cast(engine, slug=settings.campaign.slug, titles=titles)
                save_history(api, history_file)
                term.print(p.dim(f"演示活动已就绪（用时 {time.monotonic() - started:.1f} 秒）。"))
            if cast is None:
                term.print(p.error("数据库里没有活动。"))
                return 1
            populate(api, cast)
            await settle(api, app, timeout=5.0)

            console = Console(api=api, app=app, engine=engine, cast=cast, term=term, titles=titles)
            dirty = {"calls": len(api.calls)}

            def persist() -> None:
                if len(api.calls) != dirty["calls"]:
                    dirty["calls"] = len(api.calls)
                    try:
                        save_history(api, history_file)
                    except OSError as exc:
                        log.warning("console history not saved: %s", exc)

            console.on_change = persist
            console.cursor = len(api.calls)
            _intro(term, engine, today=today, demo_db=demo_db, url=url, cast=cast, tz=tz,
                   bootstrap=app.bot_data.get("bootstrap_codes") or [])
            try:
                with term.active():
                    if await console.choose(opts.who, opts.where):
                        await console.loop()
                console.drain()
            finally:  # Ctrl-C too: the next run shows these chats again
                save_history(api, history_file)
    where = str(DEMO_DB) if demo_db else "所选数据库"
    term.print(p.dim(f"再见。演示数据保存在 {where}，下次继续（qcbot console --fresh 重新开始）。"
                     if demo_db else f"再见。数据保存在{where}。"))
    return 0


def _intro(term: Terminal, engine: Engine, *, today: date, demo_db: bool, url: str,
           cast: Cast, bootstrap: list[str], tz: tzinfo) -> None:
    p = term.palette
    term.print("")
    term.print(p.bold("质量强区助手 · 控制台") + p.dim("  （本地模拟 Telegram，不联网；:help 查看控制台命令）"))
    for line in campaign_summary(engine, today=today, palette=p):
        term.print(line)
    if demo_db:
        with read_only(engine) as session:
            created_at = session.exec(select(Campaign.created_at).order_by(Campaign.id)).first()
        made = created_at.astimezone(tz).date() if created_at else today  # the campaign's day, like today
        if (today - made).days >= 1:
            term.print(p.dim(f"  （演示数据创建于 {full_date(made)}，计划日期没有随之移动；"
                             "qcbot console --fresh 可按今天重新开始）"))
        term.print(p.dim(f"  演示数据库：{DEMO_DB}（正式数据库不受影响）"))
    else:
        term.print(p.dim(f"  数据库：{make_url(url).render_as_string(hide_password=True)}"))
    if bootstrap and not any(q.role == Role.coordinator for q in cast.people):
        term.print(p.warn(f"  还没有协调员：扮演访客（:as 0），在私聊中发送 /start {bootstrap[-1]} 成为协调员。"))
    term.print("")


def run_console(opts: ConsoleOptions) -> int:
    """Entry point of ``qcbot console`` (and of ``qcbot run`` without a token)."""
    configure_logging(LOG_FILE)
    tty = sys.stdin.isatty() and sys.stdout.isatty()
    color = opts.color if opts.color is not None else (sys.stdout.isatty() and not os.environ.get("NO_COLOR"))
    palette = Palette(color=bool(color))
    term: Terminal = TtyTerminal(palette, PROMPT_HISTORY) if tty else Terminal(palette)
    if opts.no_token_notice:
        term.print(palette.dim("未配置机器人令牌（QCBOT_BOT_TOKEN 或 config.toml 的 telegram.token），"
                               "进入控制台试用模式。\nNo bot token configured: opening the console "
                               "(a local stand-in of Telegram)."))
    try:
        return asyncio.run(_main(opts, term))
    except KeyboardInterrupt:
        term.print("")
        term.print(palette.dim("已退出。"))
        return 130
