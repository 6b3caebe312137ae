"""Hostile input through the REAL stack: thousands of random and adversarial updates.

A seeded generator (``random.Random(seed)``) plays six kinds of people — a stranger, a
liaison of the responsible unit (区财政局), a liaison of another unit (区商务局), a
leader, the coordinator and a removed member — in the bound work group, in their private
chats, in a group nobody bound and in a channel. It sends every command of the bot (the
ONE list, plus whatever else the application registered) and unknown ones, with valid
and hostile arguments; Unicode oddities; HTML and Markdown injection; SQL-looking text;
10,000-character texts; replies to the bot's messages, to people's messages, to messages
that do not exist or are from another chat; real, stale, forged, truncated and oversized
button payloads; documents with hostile names and contents; photos; edited messages;
channel posts; and updates Telegram sends that the bot has no handler for.

Updates are sent in batches of 250 (queue a batch, then wait until the stand-in and the
application are idle: ``tests.fuzzing.settle``); the application runs with concurrent
updates on. The input sequence is a function of the seed alone (the scene it plays in is
built sequentially first), so ``--fuzz-seed S --fuzz-updates N`` replays a run's input; the
interleaving of concurrent handlers is not replayed.

Who is "the unit's liaison" depends on the thing at hand: the write check judges each
audited write by the actor's situational role for that entity (``standing_of``). The coordinator
may remove only a spare member who never acts, and no valid invite is in play, so the
cast keeps its roles through the run.

Afterwards, for the whole run:

1. no log record at ERROR or above (the application's one error handler logs every
   unhandled exception at ERROR), and no Bot API call of the bot answered with a
   non-200 status (a 400 "can't parse entities" is unescaped text; "message is too long"
   is an unbounded echo);
2. the answer rule. A message is *answered* when the bot sends a message quoting it.

   * private chat: every new message (command, text, file, photo) of a known person is
     answered exactly once; of the stranger, exactly one in all (bot.gate: one an hour);
   * the bound group: a command of this bot (``/cmd`` or ``/cmd@this_bot``, in any case),
     any message replying to one of the bot's messages, and a member's file or photo replying
     to nothing (the bot asks which task it is for, or says why it cannot be filed) is
     answered exactly once; everything else (chatter, replies between people, a file replying
     to a person, a non-member's file, commands for other bots) is not answered at all;
   * an edited message is never processed again: it gets no answer of its own;
   * a group nobody bound: the bot says at most one thing there on its own (the
     "not bound" notice) and answers nothing but a known coordinator's ``/bindgroup``;
   * a channel: the bot says nothing;
   * every button press gets exactly one answerCallbackQuery.

   (``/export`` may quote its request twice: the "please wait" line and a refusal.)
3. the database differs from the snapshot taken before the run only by writes someone
   was entitled to (``tests.fuzzing.check_writes``: every changed row explained by an audit
   row whose actor the permission table allows, versions equal to the number of audited
   writes, nothing deleted, the plan untouched, the audit log only appended to);
4. every stored evidence file is content-addressed under ``storage.dir`` (no hostile name
   reached the disk) and every evidence row has a safe display name;
5. the bot still answers afterwards, and the coordinator still gets the ledger and a sound
   evidence dossier (/export; no file name in it escapes its folder) and the /status chart:
   nothing anyone typed can make the record unreadable.
"""

from __future__ import annotations

import copy
import hashlib
import io
import re
import string
import time
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from random import Random
from typing import Any

import pytest
from sqlmodel import select
from telegram import Update
from telegram.ext import CommandHandler

from bot.commands import COMMANDS
from bot.gate import UNBOUND_NOTICE
from models.tables import Evidence
from scheduler import run_once
from standin import SimChat, SimUser

pytest.register_assert_rewrite("tests.fuzzing")
from tests.fuzzing import (  # noqa: E402
    ErrorLog,
    FuzzConfig,
    bot_message_keys,
    check_writes,
    describe,
    diff,
    failed_calls,
    quoted_answers,
    relax_flood_control,
    settle,
    snapshot,
)
from tests.harness import TZ, Harness  # noqa: E402
from tests.test_scheduler_fixtures import fast_config  # noqa: E402

pytest_plugins = ["tests.fuzzing"]

JsonDict = dict[str, Any]

#: Updates per run of ``make test``. The full stack (stand-in, PTB, handlers, database) runs
#: 100–170 updates a second on the 2-core machine: 10,000 take 60–100 s per backend, so
#: ``make test`` sends 3,000 (about 20–30 s) and ``make fuzz-long`` 100,000 (``--fuzz-updates``).
FAST_UPDATES = 3000
BATCH = 250
#: Monday 2021-12-27: most tasks are due on Friday, so nudges go out.
MONDAY = datetime(2021, 12, 27, 9, 30, tzinfo=TZ)
ANONYMOUS_ADMIN = {"id": 1087968824, "is_bot": True, "first_name": "Group", "username": "GroupAnonymousBot"}

PDF = b"%PDF-1.4\n" + b"0" * 512 + b"\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + b"\x00\x00\x00\x10\x00\x00\x00\x10" + b"\x00" * 64
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 128
ZIP = b"PK\x03\x04" + b"\x00" * 64

# ---------------------------------------------------------------- hostile material

UNICODE_ODDITIES = [
    "进度\u200b60%", "\u200b/progress 7 60", "完成\u200d", "\ufeff完成", "６０％", "进度 ６０％", "１００％",
    "１０１％", "进度：６０％，下周提交", "\u202e%06 度进", "\u202egpj.exe", "\u2066完成\u2069", "👍", "进度 60% 🎉",
    "👨‍👩‍👧‍👦" * 30, "🇨🇳🇨🇳", "完成" + "\u0301" * 60, "Z\u0338\u0322\u031b\u0317a\u0334l\u0338g\u0338o",
    "٦٠٪", "६०%", "𝟔𝟎%", "⁶⁰%", "½", "Ⅻ", "\u3000完成\u3000", "\t完成\n", "完\r\n成", "\x1b[31m完成", "\x00",
    "a\x00b", "\u2028\u2029", "\ufffd", "\U0010fffd", "ﷺ", "𒐫" * 20,
]
INJECTION = [
    "<b>完成</b>", "</pre>", "<pre>", "&amp;", "&", "&lt;b&gt;", "<", ">", "<<>>",
    '<a href="javascript:alert(1)">点我</a>', "<script>alert(1)</script>", "<tg-spoiler>x", "<code>x",
    "&#0;", "&#x110000;", "<b><i>x</b></i>", "<blockquote>", "<span class=\"tg-spoiler\">",
    "*bold*", "_it_", "`code`", "```pre```", "[link](javascript:alert(1))", "\\*", "~~x~~", "||x||",
    "'; DROP TABLE assignment; --", "1 OR 1=1", '" OR ""="', "7; DELETE FROM member", "%'--",
    "UNION SELECT * FROM member", "0x7FFFFFFF", "../../etc/passwd", "${jndi:ldap://x}", "{{7*7}}",
    "%s%s%s%n", "{0}{1}", "None", "null", "undefined", "NaN", "-0", "1e309", "99999999999999999999",
]
REPORTS = ["完成", "已完成", "已完成！", "达标", "done", "进度 60%", "60%", "60", "进度：６０％", "进度 150%",
           "进度 -5%", "101%", "60.5%", "进度 abc", "进度顺利，下周提交", "方案已报区政府", "3号前完成",
           "进度 60%，下周提交", "0%", "100%", "还差一点"]


def long_text(rng: Random) -> str:
    kind = rng.randrange(7)
    n = 10_000
    if kind == 0:
        return "进" * n
    if kind == 1:
        return "a" * n
    if kind == 2:
        return "60%" + "。" * (n - 3)
    if kind == 3:
        return "<b>" * (n // 3)
    if kind == 4:
        return "&" * n
    if kind == 5:
        return "完成 " + "\u200b" * (n - 3)
    return "".join(random_char(rng) for _ in range(n))


def random_char(rng: Random) -> str:
    while True:
        c = rng.choice([rng.randrange(0x20, 0x7F), rng.randrange(0x4E00, 0x9FFF), rng.randrange(0, 0x20),
                        rng.randrange(0x300, 0x370), rng.randrange(0x2000, 0x2070), rng.randrange(0x1F300, 0x1FAFF),
                        rng.randrange(0xFF00, 0xFFEF), rng.randrange(0, 0x110000)])
        if not 0xD800 <= c <= 0xDFFF:  # Telegram's texts are valid UTF-8: no lone surrogates
            return chr(c)


def hostile_text(rng: Random) -> str:
    roll = rng.random()
    if roll < 0.3:
        return rng.choice(REPORTS).replace("60", str(rng.randrange(-5, 120)))
    if roll < 0.55:
        return rng.choice(UNICODE_ODDITIES)
    if roll < 0.8:
        return rng.choice(INJECTION)
    if roll < 0.88:
        return long_text(rng)
    text = "".join(random_char(rng) for _ in range(rng.randrange(1, 60)))
    return text if text.strip() else "x"


FILE_NAMES = [
    "../../etc/passwd", "..\\..\\windows\\win.ini", "a\x00b.pdf", "CON", "con.pdf", "NUL.txt", "a/b/c.pdf",
    "x" * 300 + ".pdf", "专项资金文件.pdf", "\u202efdp.exe", "<b>x</b>.pdf", "&amp;.docx", "   .pdf",
    ".htaccess", "名字\n换行.pdf", "😀.png", "'; DROP TABLE evidence;--.pdf", "/etc/shadow", "C:\\boot.ini",
    "...", "a" * 1000, "报告.PDF", "photo.jpg", "表格.xlsx", "材料.zip", "说明.txt", "\x07\x08.pdf", "CON.pdf.exe",
]
FILE_BODIES = [PDF, PNG, JPEG, ZIP, b"MZ\x90\x00", b"", b"\x00" * 100, b"<html><script>alert(1)</script>",
               "纯文本说明".encode(), b"%PDF-1.4 truncated"]
MIME_TYPES = ["application/pdf", "image/png", "image/jpeg", "application/x-msdownload", None, "text/html",
              "application/zip", "text/plain", "application/octet-stream",
              "application/vnd.openxmlformats-officedocument.wordprocessingml.document"]

# ---------------------------------------------------------------- the scene


@dataclass
class Sent:
    """One update the generator sent, and what the answer rule expects of it."""

    kind: str
    chat_id: int
    message_id: int | None
    expect: str  # "answer", "ignore", "press", "stranger" (one an hour) or "none" (no expectation)
    query_id: str | None = None
    export: bool = False
    text: str = ""


@dataclass
class Scene:
    h: Harness
    people: dict[str, SimUser]
    group: SimChat
    unbound: SimChat
    channel: SimChat
    commands: list[str]
    args: dict[str, list[str]]
    pool: dict[int, list[JsonDict]] = field(default_factory=dict)

    @property
    def bot(self) -> SimUser:
        return self.h.api.bot


def registered_commands(app: Any) -> set[str]:
    """Every command the running application answers (its CommandHandlers)."""
    names: set[str] = set()
    for handlers in app.handlers.values():
        for handler in handlers:
            if isinstance(handler, CommandHandler):
                names |= set(handler.commands)
    return names


async def build_scene(h: Harness) -> Scene:
    """The cast, the chats and a pool of the bot's messages, built one step at a time."""
    api = h.api
    coord = await h.coordinator("王主任")  # while the start-up bootstrap code is valid
    group = await h.bound_group(coord)
    h.clock.set(MONDAY)
    liaison = await h.liaison("李四", "区财政局", coordinator=coord, username="lisi")
    other = await h.liaison("王五", "区商务局", coordinator=coord, username="wangwu")
    removed = await h.liaison("赵六", "区发改委", coordinator=coord, username="zhaoliu")
    link = await h.invite_link(coord, "leader")
    leader = api.make_user("孙区长", "sunleader")
    [welcome] = await h.say(leader, leader, f"/start {link.split('start=', 1)[1]}")
    assert "欢迎" in welcome["text"]
    used_token = link.split("start=", 1)[1]
    [gone] = await h.say(coord, coord, f"/remove {removed.id}")
    assert "已移出" in gone["text"], gone["text"]
    stranger = api.make_user("路人甲", "passerby")
    spare = api.make_user("钱七", "qianqi")  # the only member the coordinator may remove during the run
    h.add_member(spare, "liaison", "区财政局")
    people = {"stranger": stranger, "liaison": liaison, "other": other, "leader": leader,
              "coordinator": coord, "removed": removed}
    for user in (liaison, other, removed, leader, stranger):
        await api.send_text(user, group, "大家好")  # everybody is in the group
    unbound = api.make_group("闲聊群", members=[liaison, other, leader, stranger, removed])
    channel = api.make_channel("公告频道")
    await h.say(stranger, unbound, "有人吗")  # the one notice
    assert [m["text"] for m in api.sent_messages(unbound)] == [UNBOUND_NOTICE]

    # The bot's messages people will reply to and press buttons on.
    async def ask(user: SimUser, chat: SimChat | SimUser, text: str) -> list[JsonDict]:
        target = api.private_chat(user) if isinstance(chat, SimUser) else chat
        seen = len(api.sent_messages(target))
        await api.send_text(user, target, text)
        await settle(api, h.app)
        return api.sent_messages(target)[seen:]

    async def press(user: SimUser, message: JsonDict, label_or_prefix: str) -> None:
        data = next(b["callback_data"] for b in api.buttons(message)
                    if b["text"] == label_or_prefix or b["callback_data"].startswith(label_or_prefix))
        await h.press(user, message, data)
        await settle(api, h.app)

    await ask(liaison, liaison, "/nudges on")
    [lst] = await ask(liaison, group, "/mytasks")
    await press(liaison, lst, "任务7")
    await press(liaison, lst, "任务16")
    item = (await ask(coord, group, "/item 7"))[-1]
    await press(liaison, item, "细则7.1")
    await ask(liaison, group, "/task 7")
    [prompt] = await ask(liaison, group, "/evidence 7")
    await h.send_file(liaison, group, "实施方案.pdf", PDF, reply_to=prompt, mime_type="application/pdf")
    await ask(liaison, group, "/done 14")
    await ask(liaison, group, "/claim 7.2")
    await ask(other, group, "/progress 8 30 已起草")
    reviews = await ask(coord, group, "/review")
    returning = next(m for m in reviews if any(b["callback_data"].startswith("a:rt") for b in api.buttons(m)))
    await press(coord, returning, "a:rt")
    [mine] = await ask(liaison, liaison, "/mytasks")
    await press(liaison, mine, "任务5")
    await ask(liaison, liaison, "/evidence 16")
    await ask(coord, coord, "/review")
    await ask(other, other, "/mytasks")
    await ask(leader, leader, "/task 7")
    await ask(removed, removed, "/start")  # (the stranger's one answer of the hour is left for the run)
    await run_once(engine=h.engine, bot=h.app.bot, now=MONDAY, config=fast_config())
    await settle(api, h.app)
    assert any("qcn:" in b["callback_data"] for m in api.sent_messages(group) for b in api.buttons(m)), \
        "the scheduler sent no nudge with buttons to the group"

    commands = sorted(registered_commands(h.app) | {c.name for c in COMMANDS})
    args = {
        "start": ["", "boot_AAAAAAAAAA", "not-a-token", used_token, "A" * 64, "A" * 65, "../../", "<b>x</b>"],
        "help": [""], "mytasks": [""], "review": [""], "members": [""], "whoami": [""],
        "progress": ["7 60", "7 ６０％ 已完成初稿", "5 100", "14 30 说明", "16 40", "8 50", "7 -1", "7 101",
                     "99 50", "7", "", "任务7 60%", "7 60 " + "长" * 600, "7 60.5", "７ ６０", "0 0", "9999 1"],
        "done": ["7", "5", "14", "16", "8", "99", "", "七", "7 8"],
        "evidence": ["7", "16", "8", "7.1", "3.2", "15.1", "99", "", "7.99"],
        "claim": ["7.1", "7.2", "3.1", "6.1", "15.1", "10.2", "99.1", "7", "", "7.1 说明"],
        "status": ["", "x"],
        "unit": ["区财政局", "财政局", "区", "", "不存在", "区住建局", "市场"],
        "task": ["7", "0", "19", "20", "", "abc", "#7", "第7项"],
        "item": ["7", "15", "0", "31", "", "x"],
        "deadline": ["7 2022-01-31 区政府要求", "5 2022-03-01 等待审议", "16 2022年2月1日 节后完成", "7 2022-01-31",
                     "7 2021-01-01 原因", "7 2022-02-30 原因",
                     "7 明天", "99 2022-01-01", ""],
        "bindgroup": ["", "x"],
        "invite": ["区财政局", "leader", "领导", "", "不存在的局", "区"],
        "remove": [str(removed.id), str(stranger.id), str(coord.id), "@qianqi", str(spare.id), "@nobody", "",
                   "-1", "99999999999999999999", "王主任"],
        "withdraw": ["", "1", "2", "#3", "999999999", "abc", "1 发错了"],
        "export": ["台账", "台账", "台账", ""],
        "nudges": ["", "on", "off", "开", "maybe"],
    }
    scene = Scene(h=h, people=people, group=group, unbound=unbound, channel=channel, commands=commands, args=args)
    for chat in [group, *people.values()]:
        scene.pool[chat.id] = [copy.deepcopy(m) for m in api.sent_messages(chat)]
    return scene


# ---------------------------------------------------------------- the generator

KINDS: dict[str, float] = {
    "command": 26, "odd_command": 5, "chatter": 9, "private_text": 7, "reply_bot": 14, "reply_forged": 4,
    "reply_person": 3, "press_real": 8, "press_forged": 8, "press_raw": 2, "document": 5, "photo": 2,
    "edit": 3, "channel": 2, "unbound": 3, "anonymous": 1, "other_update": 1,
}
#: Expensive commands (a workbook, a chart) are drawn less often.
COMMAND_WEIGHT = {"export": 0.05, "status": 0.3}


class Fuzzer:
    def __init__(self, scene: Scene, rng: Random) -> None:
        self.s = scene
        self.api = scene.h.api
        self.rng = rng
        self.sent: list[Sent] = []
        self.posted: list[tuple[JsonDict, Sent]] = []  # people's messages, for edits and replies
        self.kinds = list(KINDS)
        self.weights = [KINDS[k] for k in self.kinds]
        self.command_weights = [COMMAND_WEIGHT.get(c, 1.0) for c in scene.commands]
        self.edited: set[tuple[int, int]] = set()
        self.counts: Counter[str] = Counter()

    # ---------------------------------------------------------- choices

    def person(self, *, not_coordinator: bool = False) -> tuple[str, SimUser]:
        kinds = [k for k in self.s.people if not (not_coordinator and k == "coordinator")]
        kind = self.rng.choice(kinds)
        return kind, self.s.people[kind]

    def chat_for(self, user: SimUser) -> SimChat:
        return self.s.group if self.rng.random() < 0.55 else self.api.private_chat(user)

    def command_text(self, who: str) -> str:
        rng = self.rng
        name = rng.choices(self.s.commands, self.command_weights)[0]
        args = self.s.args.get(name, [""])
        arg = rng.choice(args)
        if rng.random() < 0.25:
            arg = hostile_text(rng) if rng.random() < 0.7 else f"{arg} {hostile_text(rng)}"
        word = f"/{name}"
        roll = rng.random()
        if roll < 0.08:
            word = f"/{name}@{self.s.bot.username}"
        elif roll < 0.12:
            word = f"/{name.upper()}"
        elif roll < 0.15:
            word = f"/{name}@{self.s.bot.username.upper()}"
        return f"{word} {arg}".rstrip() if arg else word

    def odd_command_text(self) -> str:
        rng = self.rng
        return rng.choice([
            "/foo", "/start@other_bot", "/progress@other_bot 7 60", "/ＳＴＡＲＴ", "/", "//", "/a" * 20,
            "/" + "x" * 40, "/help@", "/start_", "/_", "/1", "/帮助", "/progress\u200b 7 60", " /help",
            "/drop_table", f"/{rng.choice(self.s.commands)}{rng.choice(string.punctuation)}",
            f"/{rng.choice(self.s.commands)}{hostile_text(rng)}",
        ])

    # ---------------------------------------------------------- expectations

    def is_ours(self, message: JsonDict) -> tuple[bool, str | None]:
        """(addressed to this bot, command name) for a message starting with a command."""
        entities = message.get("entities") or []
        text = message.get("text") or ""
        if not entities or entities[0]["type"] != "bot_command" or entities[0]["offset"] != 0:
            return False, None
        piece = text.encode("utf-16-le")[: entities[0]["length"] * 2].decode("utf-16-le")
        name, _, addressee = piece[1:].partition("@")
        ours = not addressee or addressee.lower() == (self.s.bot.username or "").lower()
        return ours, name.lower()

    def expect(self, chat: SimChat, message: JsonDict) -> str:
        ours, command = self.is_ours(message)
        replied = message.get("reply_to_message") or {}
        to_bot = (replied.get("from") or {}).get("id") == self.s.bot.id
        sender = (message.get("from") or {}).get("id")
        if chat.id == self.s.channel.id:
            return "ignore"
        if chat.id == self.s.unbound.id:
            # bot.gate: only a known coordinator's /bindgroup is answered in an unbound group.
            coordinator = sender == self.s.people["coordinator"].id
            return "answer" if ours and command == "bindgroup" and coordinator else "ignore"
        if chat.type == "private":
            if sender == self.s.people["stranger"].id and not (ours and command == "start" and " " in
                                                                (message.get("text") or "").strip()):
                return "stranger"  # bot.gate: one short answer an hour, whichever comes first
            return "answer"
        if command is not None:
            return "answer" if ours and command in self.s.commands else "ignore"
        if ("document" in message or "photo" in message) and "reply_to_message" not in message:
            members = {self.s.people[k].id for k in ("liaison", "other", "leader", "coordinator")}
            return "answer" if sender in members else "ignore"  # bot.handlers.on_file asks which task
        return "answer" if to_bot else "ignore"

    def record(self, kind: str, chat: SimChat, message: JsonDict) -> Sent:
        ours, command = self.is_ours(message)
        sent = Sent(kind, chat.id, message["message_id"], self.expect(chat, message),
                    export=ours and command == "export", text=(message.get("text") or "")[:80])
        self.sent.append(sent)
        return sent

    # ---------------------------------------------------------- sending

    async def text(self, kind: str, user: SimUser, chat: SimChat, text: str, reply_to: JsonDict | None = None) -> None:
        message = await self.api.send_text(user, chat, text, reply_to=reply_to)
        sent = self.record(kind, chat, message)
        if chat.type != "channel" and len(self.posted) < 5000:
            self.posted.append((message, sent))

    def pool(self, chat: SimChat) -> list[JsonDict]:
        return self.s.pool.get(chat.id, [])

    async def one(self) -> None:
        rng, api, s = self.rng, self.api, self.s
        kind = rng.choices(self.kinds, self.weights)[0]
        self.counts[kind] += 1
        who, user = self.person(not_coordinator=kind == "unbound")
        chat = self.chat_for(user)
        if kind == "command":
            await self.text(kind, user, chat, self.command_text(who))
        elif kind == "odd_command":
            await self.text(kind, user, chat, self.odd_command_text())
        elif kind == "chatter":
            await self.text(kind, user, s.group, hostile_text(rng))
        elif kind == "private_text":
            await self.text(kind, user, api.private_chat(user), hostile_text(rng))
        elif kind == "reply_bot":
            pool = self.pool(chat) or self.pool(s.group)
            chat = chat if self.pool(chat) else s.group
            target = rng.choice(pool)
            text = self.command_text(who) if rng.random() < 0.05 else hostile_text(rng)
            await self.text(kind, user, chat, text, reply_to=target["message_id"])
        elif kind == "reply_person":
            candidates = [m for m, _ in self.posted[-200:] if m["chat"]["id"] == s.group.id]
            if not candidates:
                return await self.text("chatter", user, s.group, hostile_text(rng))
            await self.text(kind, user, s.group, hostile_text(rng), reply_to=rng.choice(candidates)["message_id"])
        elif kind == "reply_forged":
            await self.forged_reply(user, chat)
        elif kind == "press_real":
            await self.press(user, chat, forged=False)
        elif kind == "press_forged":
            await self.press(user, chat, forged=True)
        elif kind == "press_raw":
            await self.raw_press(user, chat)
        elif kind == "document":
            await self.document(user, chat)
        elif kind == "photo":
            await self.photo(user, chat)
        elif kind == "edit":
            await self.edit()
        elif kind == "channel":
            post = await api.send_channel_post(s.channel, hostile_text(rng) if rng.random() < 0.7
                                               else self.command_text("channel"))
            self.record(kind, s.channel, post)
            if rng.random() < 0.2:
                await api.send_edited_text(post, hostile_text(rng))
        elif kind == "unbound":
            roll = rng.random()
            if roll < 0.5:
                await self.text(kind, user, s.unbound, self.command_text(who))
            elif roll < 0.9:
                await self.text(kind, user, s.unbound, hostile_text(rng))
            else:
                await self.press(user, s.unbound, forged=True)
        elif kind == "anonymous":
            await self.anonymous()
        elif kind == "other_update":
            self.other_update(user)

    async def forged_reply(self, user: SimUser, chat: SimChat) -> None:
        """A reply whose replied-to message does not exist here (Telegram would not send it)."""
        rng, api, s = self.rng, self.api, self.s
        roll = rng.random()
        if roll < 0.4:  # a message of the bot that does not exist
            replied = {"message_id": rng.choice([0, 999_999, rng.randrange(1, 10_000)]), "from": s.bot.to_api(),
                       "chat": chat.to_api(), "date": int(time.time()), "text": "伪造的消息"}
        elif roll < 0.8:  # the bot's message from another chat
            others = [m for cid, ms in s.pool.items() if cid != chat.id for m in ms]
            replied = copy.deepcopy(rng.choice(others))
        else:  # a person's message that does not exist
            replied = {"message_id": rng.randrange(1, 10_000), "from": s.people["stranger"].to_api(),
                       "chat": chat.to_api(), "date": int(time.time()), "text": "?"}
        text = hostile_text(rng)
        content: JsonDict = {"text": text}
        from standin.formatting import auto_entities

        entities = auto_entities(text)
        if entities:
            content["entities"] = entities
        message = api.world.new_message(chat, user, content)
        delivered = copy.deepcopy(message)
        delivered["reply_to_message"] = replied
        api.enqueue_raw_update({"message": delivered})
        self.record("reply_forged", chat, delivered)

    def forged_data(self, real: list[str]) -> str:
        rng = self.rng
        base = rng.choice(real) if real else "a:ok:1:v1"
        roll = rng.randrange(12)
        if roll == 0:
            return base[: rng.randrange(0, max(1, len(base)))]
        if roll == 1:
            return base + "x" * rng.randrange(1, 250)  # longer than Telegram's 64 bytes
        if roll == 2:
            return re.sub(r"\d+", lambda m: str(int(m.group()) + rng.choice([-1, 1, 7, 1000])), base, count=1)
        if roll == 3:
            return re.sub(r":v\d+", f":v{rng.choice([0, 1, 2, 5, 999_999_999])}", base) if ":v" in base else base + ":v0"
        if roll == 4:
            kind, verb = rng.choice("acez"), rng.choice(["ok", "rt", "done", "ev", "open", "claim", "drop", "x"])
            version = rng.choice(["", ":v0", ":v1", ":v3"])
            return f"{kind}:{verb}:{rng.choice([1, 2, 5, 50, 500, 999_999_999_999])}{version}"
        if roll == 5:
            return f"qcn:{rng.choice('ztx')}:{rng.randrange(1, 400)}" + rng.choice(["", ":1", ":3", ":99", ":1:1"])
        if roll == 6:
            return rng.choice(INJECTION)[:64]
        if roll == 7:
            return rng.choice(UNICODE_ODDITIES)[:64]
        if roll == 8:
            return rng.choice(["", " ", ":", "a::", "a:ok:", "qcn:", "a:ok:1:v", "a:ok:01:v01", "A:OK:1:V1"])
        if roll == 9:
            return "".join(random_char(self.rng) for _ in range(rng.randrange(1, 80)))
        return base

    async def press(self, user: SimUser, chat: SimChat, *, forged: bool) -> None:
        rng, api = self.rng, self.api
        pool = self.pool(chat) or (self.pool(self.s.group) if chat.id != self.s.unbound.id else [])
        if chat.id == self.s.unbound.id:
            pool = api.sent_messages(chat)
        elif not self.pool(chat):
            chat = self.s.group
        if not pool:
            return
        target = rng.choice(pool)
        live = api.message(chat, target["message_id"])
        if live is None:
            return
        current = [b["callback_data"] for b in api.buttons(live) if "callback_data" in b]
        old = [b["callback_data"] for b in api.buttons(target) if "callback_data" in b]
        if not forged and current:
            data, strict = rng.choice(current), True
        else:
            data, strict = self.forged_data(current or old), False
        query_id = await api.press_button(user, live, data, strict=strict)
        self.sent.append(Sent("press", chat.id, target["message_id"], "press", query_id=query_id, text=data[:80]))

    async def raw_press(self, user: SimUser, chat: SimChat) -> None:
        """Callback queries a client cannot make with a button: no data, an inaccessible message."""
        rng, api = self.rng, self.api
        pool = self.pool(chat) or self.pool(self.s.group)
        chat = chat if self.pool(chat) else self.s.group
        target = api.message(chat, rng.choice(pool)["message_id"])
        if target is None:
            return
        query_id = api.world.new_callback_id()
        query: JsonDict = {"id": query_id, "from": user.to_api(),
                           "chat_instance": api.world.chat_instance(chat.id)}
        roll = rng.random()
        if roll < 0.4:
            query["message"] = copy.deepcopy(target)
            query["game_short_name"] = "qc"
        elif roll < 0.8:
            query["message"] = {"chat": chat.to_api(), "message_id": target["message_id"], "date": 0}
            query["data"] = self.forged_data([])
        else:
            query["inline_message_id"] = "AAAAAQ"
            query["data"] = "a:ok:1:v1"
        api.world.open_callbacks[query_id] = query
        api.enqueue_raw_update({"callback_query": query})
        self.sent.append(Sent("press_raw", chat.id, None, "press", query_id=query_id))

    def reply_target(self, chat: SimChat) -> JsonDict | None:
        rng = self.rng
        roll = rng.random()
        pool = self.pool(chat)
        if roll < 0.6 and pool:
            return rng.choice(pool)
        if roll < 0.75:
            mine = [m for m, _ in self.posted[-100:] if m["chat"]["id"] == chat.id]
            return rng.choice(mine) if mine else None
        return None

    async def document(self, user: SimUser, chat: SimChat) -> None:
        rng, api = self.rng, self.api
        name = rng.choice(FILE_NAMES)
        body = rng.choice(FILE_BODIES)
        mime = rng.choice(MIME_TYPES)
        caption = None if rng.random() < 0.6 else hostile_text(rng)[:2000]
        target = self.reply_target(chat)
        message = await api.send_document(user, chat, name, body, mime_type=mime, caption=caption,
                                          reply_to=target["message_id"] if target else None)
        self.record("document", chat, message)

    async def photo(self, user: SimUser, chat: SimChat) -> None:
        rng, api = self.rng, self.api
        body = rng.choice([JPEG, JPEG, PNG, b"not an image", b""])
        target = self.reply_target(chat)
        message = await api.send_photo(user, chat, body, caption=None if rng.random() < 0.7 else hostile_text(rng),
                                       reply_to=target["message_id"] if target else None)
        self.record("photo", chat, message)

    async def edit(self) -> None:
        if not self.posted:
            return
        message, sent = self.rng.choice(self.posted)
        chat_id = message["chat"]["id"]
        if sent.export:
            return
        text = self.command_text("edit") if self.rng.random() < 0.5 else hostile_text(self.rng)
        await self.api.send_edited_text(message, text)
        self.edited.add((chat_id, message["message_id"]))
        self.sent.append(Sent("edit", chat_id, message["message_id"], "none", text=text[:80]))

    async def anonymous(self) -> None:
        """An anonymous group admin: ``from`` is GroupAnonymousBot, ``sender_chat`` the group."""
        api, s = self.api, self.s
        text = self.command_text("anonymous") if self.rng.random() < 0.7 else hostile_text(self.rng)
        from standin.formatting import auto_entities

        content: JsonDict = {"text": text}
        entities = auto_entities(text)
        if entities:
            content["entities"] = entities
        message = api.world.new_message(s.group, None, content)
        message["from"] = dict(ANONYMOUS_ADMIN)
        api.enqueue_raw_update({"message": copy.deepcopy(message)})
        self.record("anonymous", s.group, message)

    def other_update(self, user: SimUser) -> None:
        """Updates the bot registers no handler for; it must stay quiet and well."""
        rng, api, s = self.rng, self.api, self.s
        now = int(time.time())
        kind = rng.randrange(6)
        if kind == 0:
            update = {"inline_query": {"id": str(rng.randrange(10**9)), "from": user.to_api(),
                                       "query": hostile_text(rng)[:256], "offset": ""}}
        elif kind == 1:
            update = {"poll": {"id": "1", "question": "?",
                               "options": [{"text": "a", "voter_count": 0, "persistent_id": "o1"}],
                               "total_voter_count": 0, "is_closed": False, "is_anonymous": True,
                               "type": "regular", "allows_multiple_answers": False,
                               "allows_revoting": False, "members_only": False}}
        elif kind == 2:
            update = {"message_reaction": {"chat": s.group.to_api(), "message_id": 1, "user": user.to_api(),
                                           "date": now, "old_reaction": [],
                                           "new_reaction": [{"type": "emoji", "emoji": "👍"}]}}
        elif kind == 3:
            update = {"my_chat_member": {"chat": s.unbound.to_api(), "from": user.to_api(), "date": now,
                                         "old_chat_member": {"status": "member", "user": s.bot.to_api()},
                                         "new_chat_member": {"status": "member", "user": s.bot.to_api()}}}
        elif kind == 4:
            update = {"chat_join_request": {"chat": s.group.to_api(), "from": user.to_api(),
                                            "user_chat_id": user.id, "date": now}}
        else:
            update = {"business_message_or_whatever_comes_next": {"x": 1}}
        # A malformed update would poison the whole getUpdates batch inside PTB (it retries it
        # forever): make sure it is one Telegram could send, before queueing it.
        Update.de_json({"update_id": 0, **update}, self.s.h.app.bot)
        api.enqueue_raw_update(update)

    # ---------------------------------------------------------- the run

    async def run(self, n: int, *, batch: int = BATCH) -> None:
        done = 0
        while done < n:
            size = min(batch, n - done)
            for _ in range(size):
                await self.one()
            done += size
            await settle(self.api, self.s.h.app, timeout=120)


# ---------------------------------------------------------------- the checks


def context(api: Any, sent: Sent) -> str:
    """What a message replied to, for failure reports."""
    message = api.message(sent.chat_id, sent.message_id) if sent.message_id is not None else None
    replied = (message or {}).get("reply_to_message")
    if not replied:
        return ""
    who = "the bot" if (replied.get("from") or {}).get("is_bot") else "a person"
    what = (replied.get("text") or replied.get("caption") or sorted(replied))
    return f" (a reply to {who}'s message {replied.get('message_id')}: {str(what)[:50]!r})"


def check_answers(f: Fuzzer) -> list[str]:
    api, s = f.api, f.s
    problems: list[str] = []
    quoted = quoted_answers(api)
    for sent in f.sent:
        if sent.expect == "press":
            if sent.query_id not in api.callback_answers:
                problems.append(f"button press {sent.text!r} in chat {sent.chat_id} got no answer")
            continue
        if sent.expect == "none" or sent.message_id is None:
            continue
        got = quoted.get((sent.chat_id, sent.message_id), 0)
        if sent.expect == "ignore" and got:
            problems.append(f"{sent.kind} {sent.text!r} in chat {sent.chat_id} should be ignored, got {got} answer(s)"
                            f"{context(api, sent)}")
        elif sent.expect == "answer":
            if got == 0:
                problems.append(f"{sent.kind} {sent.text!r} in chat {sent.chat_id} got no answer{context(api, sent)}")
            elif got > 1 and not sent.export:
                edited = " (it was edited)" if (sent.chat_id, sent.message_id) in f.edited else ""
                problems.append(f"{sent.kind} {sent.text!r} in chat {sent.chat_id} got {got} answers{edited}")
    strangers = [sent for sent in f.sent if sent.expect == "stranger" and sent.message_id is not None]
    answered = sum(quoted.get((sent.chat_id, sent.message_id), 0) for sent in strangers)
    if answered != min(1, len(strangers)):
        problems.append(f"the stranger's {len(strangers)} private message(s) got {answered} answer(s), "
                        "expected exactly one (bot.gate: one an hour)")
    if api.unanswered_callbacks:
        problems.append(f"{len(api.unanswered_callbacks)} button press(es) never answered")
    own = [m for m in api.sent_messages(s.unbound) if not (m.get("reply_to_message"))]
    if len(own) > 1 or any(m.get("text") != UNBOUND_NOTICE for m in own):
        problems.append(f"the bot said {len(own)} unprompted thing(s) in the unbound group: "
                        f"{[m.get('text', '')[:60] for m in own[:3]]}")
    if api.sent_messages(s.channel):
        problems.append(f"the bot wrote in the channel: {api.sent_messages(s.channel)[0].get('text', '')[:80]!r}")
    return problems


def check_storage(h: Harness) -> list[str]:
    problems = []
    root = h.settings.storage.dir
    if root.exists():
        for path in root.rglob("*"):
            if path.is_dir():
                if not re.fullmatch(r"[0-9a-f]{2}", path.relative_to(root).as_posix()):
                    problems.append(f"unexpected directory in storage: {path}")
                continue
            rel = path.relative_to(root).as_posix()
            if not re.fullmatch(r"[0-9a-f]{2}/[0-9a-f]{64}", rel):
                problems.append(f"unexpected file in storage: {rel!r}")
            elif hashlib.sha256(path.read_bytes()).hexdigest() != path.name:
                problems.append(f"stored file does not match its digest: {rel}")
    with h.db() as session:
        for ev in session.exec(select(Evidence)):
            name = ev.file_name
            if not name or "/" in name or "\\" in name or any(ord(c) < 32 for c in name) or name.startswith("."):
                problems.append(f"evidence {ev.id} has an unsafe file name {name!r}")
            if len(name) > 255:
                problems.append(f"evidence {ev.id} file name is {len(name)} characters")
    return problems


# ---------------------------------------------------------------- the test


async def test_fuzz_the_real_stack(harness: Harness, fuzz_config: FuzzConfig, recwarn: pytest.WarningsRecorder) -> None:
    h = harness
    relax_flood_control(h.app)
    n = fuzz_config.updates or FAST_UPDATES
    seed = fuzz_config.seed
    replay = f"replay: python -m pytest -p tests.fuzzing tests/test_fuzz.py --fuzz-seed {seed} --fuzz-updates {n}"
    print(f"\nfuzz: seed {seed}, {n} updates ({replay})")
    with ErrorLog() as errors:
        scene = await build_scene(h)
        await settle(h.api, h.app)
        assert not failed_calls(h.api), failed_calls(h.api)[:5]
        assert not errors.records, errors.report()
        before = snapshot(h.engine)
        calls_from = len(h.api.calls)
        fuzzer = Fuzzer(scene, Random(seed))
        started = time.perf_counter()
        await fuzzer.run(n)
        elapsed = time.perf_counter() - started
        after = snapshot(h.engine)
        # 5. still alive, and the record still comes out whole, whatever was typed into it
        coord = scene.people["coordinator"]
        [alive] = await h.say(coord, scene.group, "/whoami")
        assert "协调员" in alive["text"]
        seen = len(h.api.sent_messages(coord))
        await h.api.send_text(coord, coord, "/export")
        await h.api.send_text(coord, coord, "/status")
        await settle(h.api, h.app)
        final = h.api.sent_messages(coord)[seen:]
        names = [(m.get("document") or {}).get("file_name", "") for m in final]
        assert any(n.endswith(".xlsx") for n in names), \
            f"no ledger after the run: {[m.get('text', '')[:60] for m in final]}"
        assert any(m.get("photo") for m in final), "no /status chart after the run"
        zips = [h.api.world.files[m["document"]["file_id"]].data for m in final
                if (m.get("document") or {}).get("file_name", "").endswith(".zip")]
        assert zips, f"no evidence dossier after the run: {names}"
        for data in zips:  # whole, and no hostile file name escapes its folder
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                assert archive.testzip() is None
                for info in archive.infolist():
                    parts = info.filename.split("/")
                    assert not info.filename.startswith("/") and ".." not in parts and "\\" not in info.filename, \
                        info.filename

    rate = n / elapsed if elapsed else float("inf")
    writes = check_writes(h.engine, before, after, sent=bot_message_keys(h.api))
    print(f"fuzz: {n} updates in {elapsed:.1f} s ({rate:.0f}/s); {len(h.api.calls) - calls_from} bot calls; "
          f"kinds {dict(fuzzer.counts)}")
    print(f"fuzz: database changes: {describe(diff(before, after))}; audited writes {writes.by_action}")

    problems: list[str] = []
    if errors.records:
        problems.append(errors.report())
    bad_calls = failed_calls(h.api)
    if bad_calls:
        problems.append(f"{len(bad_calls)} failed bot call(s): " + "\n".join(bad_calls[:10]))
    answer_problems = check_answers(fuzzer)
    if answer_problems:
        problems.append(f"{len(answer_problems)} answer-rule violation(s):\n" + "\n".join(answer_problems[:25]))
    if writes.problems:
        problems.append(f"{len(writes.problems)} unexplained write(s):\n" + "\n".join(writes.problems[:25]))
    tofu = [str(w.message) for w in recwarn if "missing from font" in str(w.message)]
    if tofu:  # the /status chart drew Chinese text in a font without it
        problems.append(f"{len(tofu)} chart glyph(s) without a font, e.g. {tofu[0]}")
    storage = check_storage(h)
    if storage:
        problems.append("storage:\n" + "\n".join(storage[:10]))
    assert not problems, f"{replay}\n\n" + "\n\n".join(problems)


test_fuzz_the_real_stack.fuzz_budget = FAST_UPDATES  # type: ignore[attr-defined]  # its timeout: tests.fuzzing


# ---------------------------------------------------------------- the oracle itself


def test_the_write_checker_catches_what_it_should(seeded_engine: Any) -> None:
    """``check_writes`` passes an entitled, audited write and names every other kind of change."""
    from sqlalchemy import delete

    from bot.demo import add_demo_member
    from infra.db import transaction
    from models.audit import Actor
    from models.progress import set_progress
    from models.tables import Assignment, AuditLog, Task, Unit

    with transaction(seeded_engine) as s:
        mine = add_demo_member(s, campaign_id=1, telegram_user_id=11, name="李四", role="liaison",
                               unit="区财政局", now=MONDAY)
        theirs = add_demo_member(s, campaign_id=1, telegram_user_id=12, name="王五", role="liaison",
                                 unit="区商务局", now=MONDAY)
        leader = add_demo_member(s, campaign_id=1, telegram_user_id=13, name="孙", role="leader", now=MONDAY)
        task7 = s.exec(select(Task).where(Task.no == 7)).one()
        a7 = s.exec(select(Assignment).where(Assignment.task_id == task7.id)).one()
        ids = {"mine": (mine.id, 11), "theirs": (theirs.id, 12), "leader": (leader.id, 13), "a7": a7.id}

    def run(change: Any) -> list[str]:
        before = snapshot(seeded_engine)
        with transaction(seeded_engine) as s:
            change(s)
        return check_writes(seeded_engine, before, snapshot(seeded_engine)).problems

    def progress_by(who: str, percent: int) -> Any:
        member_id, tg = ids[who]
        return lambda s: set_progress(session=s, assignment_id=ids["a7"], percent=percent, note=None,
                                      actor=Actor("telegram", member_id, tg), now=MONDAY)

    assert run(progress_by("mine", 30)) == []
    assert any("liaison_other" in p for p in run(progress_by("theirs", 40)))
    assert any("leader" in p for p in run(progress_by("leader", 50)))

    def silent(s: Any) -> None:
        s.get(Assignment, ids["a7"]).percent = 99

    assert any("without an audit row" in p or "!= last audit" in p for p in run(silent))

    def rename(s: Any) -> None:
        s.exec(select(Unit).where(Unit.name == "区财政局")).one().name = "区财政厅"

    assert any("unit changed" in p for p in run(rename))

    def forget(s: Any) -> None:
        s.execute(delete(AuditLog).where(AuditLog.id == 1))

    problems = run(forget)
    assert any("deleted" in p for p in problems) and any("rewritten" in p for p in problems)
