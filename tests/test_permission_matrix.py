"""The permission matrix, end to end: every role × every command and button action.

The rows are generated from what the bot itself uses — ``bot.commands.COMMANDS`` (the ONE
command list), the application's registered command handlers, ``bot.callbacks.VERBS`` (the
inline-button vocabulary) and the nudge buttons the scheduler's parser accepts — and the
expected outcome of each cell from ``models.permissions.PERMISSIONS`` (the ONE table the
handlers check). Nothing here restates who may do what.

Each cell runs through the stand-in into the REAL application (one application for the
whole module, in the module's event loop; a cell costs a round trip, not a start-up):

* an allowed cell gets an answer that is not a refusal, writes exactly the audit rows its
  action should (none for reading), and every change is entitled and audited
  (``tests.fuzzing.check_writes``);
* a refused cell gets the table's Chinese refusal (``refusal_message``), as a quoted reply
  for a command or as an alert for a button, and changes nothing at all (every row of every
  table compared).

Roles are situational: the target of unit work is 区市场监管局's, so its liaison is "of the
responsible unit" and 区财政局's liaison "of another unit"; where no unit is involved both
liaisons are the same role, as ``standing_of`` says. A stranger who redeems an invite, or a
removed member who does, is a fresh person for that cell.
"""

from __future__ import annotations

import hashlib
import io
import re
import string
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pytest
import pytest_asyncio
from openpyxl import load_workbook
from sqlmodel import select
from telegram.ext import CommandHandler

from bot.callbacks import VERBS
from bot.commands import BY_NAME, COMMANDS, Scope
from bot.gate import STRANGER_ALERT, STRANGER_TEXT
from infra.db import transaction
from infra.files import store_blob
from models import members as mm
from models import progress
from models.audit import Actor
from models.errors import InvalidInput
from models.evidence import Upload, add_evidence
from models.permissions import (
    PERMISSIONS,
    RESPONSIBLE_UNIT_REQUIRED,
    Action,
    Standing,
    allowed,
    refusal_message,
)
from models.tables import Assignment, Member, Role, Task, Unit
from scheduler import run_once
from scheduler.snooze import parse_callback
from standin import SimChat, SimUser

pytest.register_assert_rewrite("tests.fuzzing")
from tests.fuzzing import check_writes, diff, settle, snapshot  # noqa: E402
from tests.harness import TZ, Harness  # noqa: E402
from tests.test_scheduler_fixtures import fast_config  # noqa: E402

pytest_plugins = ["tests.fuzzing"]
pytestmark = pytest.mark.asyncio(loop_scope="module")

JsonDict = dict[str, Any]
UNIT = "区市场监管局"  # the responsible unit of every target
OTHER_UNIT = "区财政局"
MONDAY = datetime(2021, 12, 27, 9, 30, tzinfo=TZ)
PDF = b"%PDF-1.4\n" + b"1" * 300 + b"\n%%EOF\n"

# ======================================================================= the rows

#: What each inline-button verb needs from the table. Its keys are checked against the
#: vocabulary the bot parses (``VERBS`` and the nudge parser) both ways; its values are
#: checked end to end by the cells below.
BUTTON_ACTIONS: dict[str, Action] = {
    "a:open": Action.view_task,
    "a:ev": Action.upload_evidence,
    "a:done": Action.submit,
    "a:ok": Action.review,
    "a:rt": Action.review,
    "c:open": Action.view_item,
    "c:ev": Action.upload_evidence,
    "c:claim": Action.claim_criterion,
    "c:ok": Action.review,
    "c:rt": Action.review,
    "e:ok": Action.review,
    "e:rt": Action.review,
    "i:rv": Action.invite,
    "t:wd": Action.extend_deadline,
    "m:pg": Action.my_tasks,
    "f:to": Action.upload_evidence,  # file a file sent without a reply for a task
    "p:ok": Action.edit_plan,  # apply a returned plan workbook
    "p:no": Action.edit_plan,  # drop it
    "l:cl": Action.claim_criterion,  # claim a criterion linked to an approved task
    "qcn:z": Action.snooze_nudge,  # snooze a nudge
    "qcn:t": Action.view_task,  # open the task of a nudge
}
#: Rows whose handler refuses with its own words instead of ``refusal_message`` (who is
#: refused still follows the table). None now: /withdraw asks the table too.
OWN_REFUSALS: dict[str, str] = {}
#: Audit rows an allowed cell writes (nothing listed: it only reads, or only asks a question).
WRITES: dict[str, frozenset[str]] = {
    "/progress": frozenset({"assignment.progress"}),
    "/done": frozenset({"assignment.submit"}),
    "/claim": frozenset({"criterion.claim"}),
    "/deadline": frozenset({"task.deadline"}),
    "/bindgroup": frozenset({"chat.bind"}),
    "/invite": frozenset({"invite.create"}),
    "/remove": frozenset({"member.remove"}),
    "/withdraw": frozenset({"evidence.withdraw"}),
    "i:rv": frozenset({"invite.revoke"}),
    "t:wd": frozenset({"task.deadline"}),
    "/export": frozenset({"ledger.export"}),
    "/nudges": frozenset({"member.private_nudges"}),
    "/start <invite>": frozenset({"member.join", "invite.use"}),
    "a:done": frozenset({"assignment.submit"}),
    "c:claim": frozenset({"criterion.claim"}),
    "a:ok": frozenset({"assignment.approve"}),
    "c:ok": frozenset({"criterion.verify"}),
    "e:ok": frozenset({"evidence.accept"}),
    "f:to": frozenset({"evidence.add"}),
    "qcn:z": frozenset({"nudge.snooze"}),
    "p:ok": frozenset({"plan.apply", "seed.update", "seed.import"}),
    "p:no": frozenset({"plan.cancel"}),
    "l:cl": frozenset({"criterion.claim"}),
    "/plan": frozenset({"plan.export"}),
    "/addunit": frozenset({"seed.create", "seed.update", "seed.import"}),
    "/assign": frozenset({"seed.update", "seed.import"}),
    "/waive": frozenset({"seed.update", "seed.import"}),
    "/taskunits": frozenset({"seed.update", "seed.import", "seed.retire"}),
    "/instruct": frozenset({"instruction.create"}),
    "/close": frozenset({"instruction.close"}),
    "/supervise": frozenset({"supervision.issue"}),
    "reply:instruction": frozenset({"instruction.answer"}),
    "reply:supervision": frozenset({"supervision.answer"}),
    "reply:supervision 办结": frozenset({"supervision.close"}),
}
#: Replies that are actions of their own (the 落实情况 on a 批示, the answer to a 督办单, closing it).
REPLY_ACTIONS: dict[str, Action] = {
    "reply:instruction": Action.answer_instruction,
    "reply:supervision": Action.answer_supervision,
    "reply:supervision 办结": Action.close_supervision,
}


def registered_commands(app: Any) -> set[str]:
    names: set[str] = set()
    for handlers in app.handlers.values():
        for handler in handlers:
            if isinstance(handler, CommandHandler):
                names |= set(handler.commands)
    return names


def accepted_nudge_ops() -> set[str]:
    """The nudge button ops the scheduler's parser accepts (probed, not restated)."""
    ops = set()
    for op in string.ascii_lowercase:
        for data in (f"qcn:{op}:1", f"qcn:{op}:1:1"):
            try:
                parse_callback(data)
            except InvalidInput:
                continue
            ops.add(f"qcn:{op}")
    return ops


def button_vocabulary() -> set[str]:
    return {f"{kind}:{verb}" for kind, verbs in VERBS.items() for verb in verbs} | accepted_nudge_ops()


@dataclass(frozen=True)
class Row:
    name: str  # "/done", "/start <invite>", "a:ok", "qcn:z"
    action: Action
    scope: str  # "group", "private", "unbound" (commands); "button"

    @property
    def is_button(self) -> bool:
        return self.scope == "button"


def command_rows() -> list[Row]:
    rows = []
    for c in COMMANDS:
        scope = "private" if c.scopes == {Scope.private} else "unbound" if c.scopes == {Scope.group} else "group"
        rows.append(Row(f"/{c.name}", c.action, scope))
    rows.append(Row("/start <invite>", Action.redeem_invite, "private"))
    return rows


def button_rows() -> list[Row]:
    return [Row(name, action, "button") for name, action in BUTTON_ACTIONS.items()]


def reply_rows() -> list[Row]:
    return [Row(name, action, "reply") for name, action in REPLY_ACTIONS.items()]


ROWS = command_rows() + button_rows() + reply_rows()


def expected_role(role: Standing, action: Action) -> Standing:
    """The role ``standing_of`` gives: without a unit in question every liaison is "responsible"."""
    if role == Standing.liaison_other and not RESPONSIBLE_UNIT_REQUIRED[action]:
        return Standing.liaison_responsible
    return role


# ======================================================================= the table is complete


async def test_every_command_and_button_has_a_row_and_every_row_a_command_or_button(module_harness: Harness):
    """A command or button the bot handles without a row in the table fails here, and vice versa."""
    registered = registered_commands(module_harness.app)
    assert registered - set(BY_NAME) == set(), (
        f"commands registered outside the ONE command list (no menu, no /help, no permission row): "
        f"{sorted(registered - set(BY_NAME))}")
    assert set(BY_NAME) <= registered
    for c in COMMANDS:
        assert c.action in PERMISSIONS, c.name
    vocabulary = button_vocabulary()
    assert vocabulary == set(BUTTON_ACTIONS), (
        f"buttons without a row: {sorted(vocabulary - set(BUTTON_ACTIONS))}; "
        f"rows without a button: {sorted(set(BUTTON_ACTIONS) - vocabulary)}")
    used = {row.action for row in ROWS}
    assert used == set(Action) == set(PERMISSIONS), (
        f"actions no command or button uses: {sorted(set(Action) - used)}")
    assert set(WRITES) <= {row.name for row in ROWS}


# ======================================================================= the world


@dataclass
class World:
    h: Harness
    group: SimChat
    people: dict[Standing, SimUser]
    setup_coordinator: SimUser
    setup_liaison: SimUser
    buttons: dict[str, tuple[JsonDict, str]] = field(default_factory=dict)  # name -> (message, data)
    #: Chats other than the group whose messages carry buttons (the /plan previews), by id.
    chats: dict[int, Any] = field(default_factory=dict)
    counter: int = 0

    def fresh(self, name: str) -> SimUser:
        self.counter += 1
        return self.h.api.make_user(f"{name}{self.counter}", f"fresh{self.counter}")


def add(h: Harness, user: SimUser, role: str, unit: str | None = None) -> Member:
    return h.add_member(user, role, unit)


def remove(h: Harness, user: SimUser) -> None:
    with transaction(h.engine) as s:
        member = s.exec(select(Member).where(Member.telegram_user_id == user.id)).one()
        mm.remove_member(s, member=member, actor=Actor.cli(), now=h.clock())


async def ask(h: Harness, user: SimUser, chat: SimChat | SimUser, text: str) -> list[JsonDict]:
    target = h.api.private_chat(user) if isinstance(chat, SimUser) else chat
    seen = len(h.api.sent_messages(target))
    await h.api.send_text(user, target, text)
    await settle(h.api, h.app)
    return h.api.sent_messages(target)[seen:]


def find_button(messages: list[JsonDict], predicate: Callable[[JsonDict], bool]) -> tuple[JsonDict, str]:
    for m in messages:
        for b in (m.get("reply_markup") or {}).get("inline_keyboard", []):
            for button in b:
                if "callback_data" in button and predicate(button):
                    return m, button["callback_data"]
    raise AssertionError(f"no such button in {[m.get('text', '')[:30] for m in messages]}")


def assignment_id(h: Harness, task_no: int, unit: str = UNIT) -> int:
    with h.db() as s:
        return s.exec(select(Assignment.id).join(Task, Task.id == Assignment.task_id)
                      .join(Unit, Unit.id == Assignment.unit_id)
                      .where(Task.no == task_no, Unit.name == unit)).one()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def world(module_harness: Harness) -> World:
    h = module_harness
    api = h.api
    coord0 = await h.coordinator("王主任")
    group = await h.bound_group(coord0)
    h.clock.set(MONDAY)
    people: dict[Standing, SimUser] = {Standing.stranger: api.make_user("路人甲", "passerby")}
    for role, name, kind, unit in [
        (Standing.liaison_responsible, "监管小李", "liaison", UNIT),
        (Standing.liaison_other, "财政小王", "liaison", OTHER_UNIT),
        (Standing.leader, "孙区长", "leader", None),
        (Standing.coordinator, "协调员乙", "coordinator", None),
        (Standing.removed, "前联络员赵", "liaison", UNIT),
    ]:
        people[role] = api.make_user(name, f"u{role.value}")
        add(h, people[role], kind, unit)
    remove(h, people[Standing.removed])
    setup = api.make_user("监管老张", "setupzhang")
    add(h, setup, "liaison", UNIT)
    w = World(h=h, group=group, people=people, setup_coordinator=coord0, setup_liaison=setup)
    for user in [*people.values(), setup]:
        await api.send_text(user, group, "大家好")  # everybody is in the group ...
        await api.send_text(user, user, "/whoami")  # ... and the bot has seen their private chat
    await settle(api, h.app)

    # Messages carrying every kind of button, made by people allowed to make them.
    [lst] = await ask(h, setup, group, "/mytasks")
    pages = [lst]  # /mytasks comes a page at a time: every page, for the cards on it
    while True:
        turn = [b for b in api.buttons(pages[-1]) if b["text"].startswith("下一页")]
        if not turn:
            break
        seen = len(api.sent_messages(group))
        await h.press(setup, pages[-1], turn[0]["callback_data"])
        await settle(api, h.app)
        pages.append(api.sent_messages(group)[seen:][-1])
    w.buttons["a:open"] = find_button(pages, lambda b: b["text"] == "任务2")

    async def open_card(label: str) -> JsonDict:
        message, data = find_button(pages + item_msgs, lambda b: b["text"] == label)
        seen = len(api.sent_messages(group))
        await h.press(setup, message, data)
        await settle(api, h.app)
        [card] = api.sent_messages(group)[seen:]
        return card

    item_msgs = await ask(h, coord0, group, "/item 9")
    w.buttons["c:open"] = find_button(item_msgs, lambda b: b["text"] == "细则9.1")
    cards = {label: await open_card(label) for label in ("任务2", "任务11", "任务17", "细则9.1", "细则9.2", "细则9.3")}
    w.buttons["a:ev"] = find_button([cards["任务2"]], lambda b: b["callback_data"].startswith("a:ev"))
    w.buttons["a:done"] = find_button([cards["任务11"]], lambda b: b["callback_data"].startswith("a:done"))
    w.buttons["a:done/coordinator"] = find_button([cards["任务17"]], lambda b: b["callback_data"].startswith("a:done"))
    w.buttons["c:claim"] = find_button([cards["细则9.1"]], lambda b: b["callback_data"].startswith("c:claim"))
    w.buttons["c:claim/coordinator"] = find_button([cards["细则9.2"]], lambda b: b["callback_data"].startswith("c:claim"))
    w.buttons["c:ev"] = find_button([cards["细则9.3"]], lambda b: b["callback_data"].startswith("c:ev"))

    # Things waiting for review: two assignments, two claims, two files.
    for text in ("/done 5", "/done 8", "/claim 11.1", "/claim 11.2"):
        [ok] = await ask(h, setup, group, text)
        assert "⚠️" not in ok["text"], (text, ok["text"])
    [prompt] = await ask(h, setup, group, "/evidence 9")
    for n in (1, 2):
        await h.send_file(setup, group, f"材料{n}.pdf", PDF + bytes([n]), reply_to=prompt, mime_type="application/pdf")
    reviews = await ask(h, coord0, group, "/review")
    a5, a8 = assignment_id(h, 5), assignment_id(h, 8)
    w.buttons["a:ok"] = find_button(reviews, lambda b: b["callback_data"].startswith(f"a:ok:{a5}:"))
    w.buttons["a:rt"] = find_button(reviews, lambda b: b["callback_data"].startswith(f"a:rt:{a8}:"))
    w.buttons["c:ok"] = find_button(reviews, lambda b: b["callback_data"].startswith("c:ok:"))
    first_claim = w.buttons["c:ok"][1].split(":")[2]
    w.buttons["c:rt"] = find_button(reviews, lambda b: b["callback_data"].startswith("c:rt:")
                                    and b["callback_data"].split(":")[2] != first_claim)
    w.buttons["e:ok"] = find_button(reviews, lambda b: b["callback_data"].startswith("e:ok:"))
    first_ev = w.buttons["e:ok"][1].split(":")[2]
    w.buttons["e:rt"] = find_button(reviews, lambda b: b["callback_data"].startswith("e:rt:")
                                    and b["callback_data"].split(":")[2] != first_ev)

    # A page of a long /mytasks (the lead unit's liaison has more than a page).
    w.buttons["m:pg"] = find_button([lst], lambda b: b["callback_data"].startswith("m:pg:"))

    # A deadline set on a holiday (元旦 2022), with the button that moves it to the next working day.
    moved = await ask(h, coord0, group, "/deadline 12 2022-01-01 年底前完成")  # and the units' notice
    w.buttons["t:wd"] = find_button(moved, lambda b: b["callback_data"].startswith("t:wd:"))
    # Files sent without a reply: the bot asks which task each is for (one per allowed presser).
    for n, key in ((3, "f:to"), (4, "f:to/coordinator")):
        [question] = await h.send_file(setup, group, f"无回复{n}.pdf", PDF + bytes([n]), mime_type="application/pdf")
        w.buttons[key] = find_button([question], lambda b: b["callback_data"].startswith("f:to:"))

    # Approved tasks linked to criteria: /task offers to claim them with the task's files.
    for no in (10, 18):
        aid = assignment_id(h, no, UNIT)
        with transaction(h.engine) as s:
            progress.submit_assignment(session=s, assignment_id=aid, actor=Actor.cli(), now=h.clock())
            progress.approve_assignment(session=s, assignment_id=aid, actor=Actor.cli(), now=h.clock())
    [t10] = await ask(h, coord0, group, "/task 10")
    [t18] = await ask(h, coord0, group, "/task 18")
    w.buttons["l:cl"] = find_button([t10], lambda b: b["callback_data"].startswith("l:cl:"))
    w.buttons["l:cl/coordinator"] = find_button([t18], lambda b: b["callback_data"].startswith("l:cl:"))

    # A plan workbook sent back: its preview, to apply or to drop (made afresh for the coordinator's
    # cells, as other cells change the plan and a preview of an older plan is refused).
    w.buttons["p:ok"] = await plan_preview(w, "p:ok")
    w.buttons["p:no"] = await plan_preview(w, "p:no")
    w.chats[api.private_chat(coord0).id] = api.private_chat(coord0)

    # The unused invites, each with a revoke button.
    await ask(h, coord0, coord0, "/invite 区财政局")
    invites = await ask(h, coord0, group, "/invites")
    w.buttons["i:rv"] = find_button(invites, lambda b: b["callback_data"].startswith("i:rv:"))

    # A nudge in the group, with open and snooze buttons.
    seen = len(api.sent_messages(group))
    await run_once(engine=h.engine, bot=h.app.bot, now=MONDAY, config=fast_config())
    await settle(api, h.app)
    nudges = [m for m in api.sent_messages(group)[seen:] if m.get("reply_markup")]
    assert nudges, "the scheduler sent no nudge with buttons to the group"
    with h.db() as s:
        ours = set(s.exec(select(Assignment.id).join(Unit, Unit.id == Assignment.unit_id).where(Unit.name == UNIT)))
    with h.db() as s:  # tasks other cells submit or open are no good for snoozing
        busy = set(s.exec(select(Assignment.id).join(Task, Task.id == Assignment.task_id)
                          .where(Task.no.in_([2, 4, 5, 6, 8, 9, 11, 17]))))  # type: ignore[attr-defined]
    ours -= busy
    snoozable = []
    for m in nudges:
        for row in m["reply_markup"]["inline_keyboard"]:
            for b in row:
                parts = b["callback_data"].split(":")
                if parts[1] == "z" and parts[3] == "1" and int(parts[2]) in ours:
                    snoozable.append((m, b["callback_data"]))
    assert len({d.split(":")[2] for _, d in snoozable}) >= 2, "need two of 区市场监管局's tasks in a nudge"
    w.buttons["qcn:z"] = snoozable[0]
    w.buttons["qcn:z/coordinator"] = next(x for x in snoozable if x[1].split(":")[2] != snoozable[0][1].split(":")[2])
    w.buttons["qcn:t"] = find_button(nudges, lambda b: b["callback_data"].startswith("qcn:t:"))
    await settle(api, h.app)
    return w


# ======================================================================= one cell


@dataclass
class Cell:
    user: SimUser
    chat: SimChat
    send: Callable[[], Awaitable[Any]]


def _new_invite(h: Harness) -> str:
    with transaction(h.engine) as s:
        unit = s.exec(select(Unit).where(Unit.name == UNIT)).one()
        invite = mm.create_invite(s, campaign_id=h.campaign_id, role=Role.liaison, unit_id=unit.id,
                                  created_by=None, actor=Actor.cli(), now=h.clock(), ttl_hours=72)
        return invite.token


def _new_evidence(h: Harness, uploader: SimUser) -> int:
    """A file of 区市场监管局's task 9, handed in by ``uploader`` (or the setup liaison)."""
    data = PDF + hashlib.sha256(str(uploader.id).encode()).digest()
    sha, _ = store_blob(h.settings.storage.dir, data)
    with transaction(h.engine) as s:
        member = s.exec(select(Member).where(Member.telegram_user_id == uploader.id)).first()
        unit = s.exec(select(Unit).where(Unit.name == UNIT)).one()
        task = s.exec(select(Task).where(Task.no == 9)).one()
        ev = add_evidence(s, Upload(campaign_id=h.campaign_id, unit_id=unit.id,  # type: ignore[arg-type]
                                    member_id=member.id if member else None, sha256=sha, size=len(data),
                                    mime_type="application/pdf", original_name="撤回测试.pdf", task_id=task.id),
                          actor=Actor.cli(), now=h.clock())
        return ev.id  # type: ignore[return-value]


async def plan_preview(w: World, verb: str) -> tuple[JsonDict, str]:
    """/plan, then its workbook sent back with one change: the preview and its ``verb`` button."""
    h, api, coord0 = w.h, w.h.api, w.setup_coordinator
    [book] = await ask(h, coord0, coord0, "/plan")
    wb = load_workbook(io.BytesIO(api.world.files[book["document"]["file_id"]].data))
    tasks = wb["任务"]
    row = next(r for r in range(2, tasks.max_row + 1) if tasks.cell(r, 1).value == 16)
    w.counter += 1
    tasks.cell(row, 4).value = f"（第{w.counter}次修改）" + str(tasks.cell(row, 4).value)
    out = io.BytesIO()
    wb.save(out)
    chat = api.private_chat(coord0)
    before = len(api.sent_messages(chat))
    await api.send_document(coord0, chat, "工作计划.xlsx", out.getvalue(), reply_to=book,
                            mime_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
    await settle(api, h.app)
    return find_button(api.sent_messages(chat)[before:], lambda b: b["callback_data"].startswith(f"{verb}:"))


def _answered_instruction(h: Harness) -> int:
    """A 批示 to 区市场监管局 that it answered (closable), made from the server."""
    from models import supervision as sv

    with transaction(h.engine) as s:
        unit = s.exec(select(Unit).where(Unit.name == UNIT)).one()
        author = s.exec(select(Member).where(Member.role == Role.coordinator)).first()
        inst = sv.create_instruction(session=s, campaign_id=h.campaign_id, author_member_id=author.id,  # type: ignore[union-attr,arg-type]
                                     target_kind="unit", target_id=unit.id, text="请报送进展",  # type: ignore[arg-type]
                                     actor=Actor.cli(), now=h.clock(), today=h.clock().date(), answer_working_days=3)
        sv.answer_instruction(session=s, instruction_id=inst.id, campaign_id=h.campaign_id, unit_id=unit.id,  # type: ignore[arg-type]
                              member_id=None, text="已落实", actor=Actor.cli(), now=h.clock())
        return inst.id  # type: ignore[return-value]


async def prepare(w: World, row: Row, role: Standing) -> Cell:
    """Who does the cell's thing, where, and how; targets made before the snapshot."""
    h, api = w.h, w.h.api
    user = w.people[role]
    if role == Standing.stranger and row.scope == "private":
        user = w.fresh("路人")  # a stranger's first message of the hour (bot.gate)
    if row.name == "/start <invite>" and role in (Standing.stranger, Standing.removed):
        user = w.fresh("新人")
        if role == Standing.removed:
            add(h, user, "liaison", UNIT)
            remove(h, user)
    if row.is_button:
        key = f"{row.name}/coordinator" if role == Standing.coordinator and f"{row.name}/coordinator" in w.buttons else row.name
        message, data = w.buttons[key]
        if row.name in ("p:ok", "p:no") and role == Standing.coordinator:
            message, data = await plan_preview(w, row.name)
        where = w.chats.get(message["chat"]["id"], w.group)
        live = api.message(where, message["message_id"])
        assert live is not None

        async def press() -> Any:
            return await api.press_button(user, live, data, strict=False)

        return Cell(user, where, press)
    if row.scope == "reply":
        return await _reply_cell(w, row, user)
    name = row.name.split()[0][1:]
    arg = ""
    if row.name == "/start <invite>":
        arg = _new_invite(h)
    elif name == "progress":
        arg = "2 40 起草中"
    elif name == "done":
        arg = "6" if role == Standing.coordinator else "4"
    elif name == "evidence":
        arg = "2"
    elif name == "claim":
        arg = "8.2" if role == Standing.coordinator else "8.1"
    elif name in ("unit", "invite"):
        arg = UNIT
    elif name == "task":
        arg = "7"
    elif name == "item":
        arg = "9"
    elif name == "deadline":
        arg = f"9 {(h.clock() + timedelta(days=60 + w.counter)).date().isoformat()} 按区政府要求调整"
        w.counter += 1
    elif name == "remove":
        spare = w.fresh("待移出")
        add(h, spare, "liaison", OTHER_UNIT)
        arg = str(spare.id)
    elif name == "withdraw":
        arg = str(_new_evidence(h, user if role == Standing.liaison_responsible else w.setup_liaison))
    elif name == "export":
        arg = "台账"
    elif name == "nudges":
        arg = "on"
    elif name == "addunit":
        arg = f"新街道{w.counter} 街道"
        w.counter += 1
    elif name == "assign":
        arg = f"10.1 {OTHER_UNIT if w.counter % 2 else UNIT}"
        w.counter += 1
    elif name == "waive":
        arg = f"30.1 本区不具备承办条件{w.counter}"
        w.counter += 1
    elif name == "taskunits":
        arg = "3 区委组织部、区委宣传部" + ("、区委党校" if w.counter % 2 else "")
        w.counter += 1
    elif name == "instruct":
        arg = "9 请加快推进，本周内报送进展"
    elif name == "close":
        arg = str(_answered_instruction(h))
    elif name == "supervise":
        arg = f"9 {UNIT} 请说明进展 {(h.clock() + timedelta(days=30)).date().isoformat()}"
    elif name == "bulletin":
        arg = ""
    elif name not in ("start", "help", "whoami", "mytasks", "status", "review", "members", "bindgroup", "invites",
                      "plan"):
        raise AssertionError(f"/{name} has no cell recipe: add one to prepare() (the matrix covers every command)")
    text = f"/{name} {arg}".rstrip()
    if row.scope == "private":
        chat = api.private_chat(user)
    elif row.scope == "unbound":
        chat = api.make_group(f"新群{w.counter}", members=[user])
        w.counter += 1
        await api.send_text(user, chat, "大家好")  # first sight: the chat row and the one notice
        await settle(api, h.app)
    else:
        chat = w.group

    async def say() -> Any:
        return await api.send_text(user, chat, text)

    return Cell(user, chat, say)


async def _reply_cell(w: World, row: Row, user: SimUser) -> Cell:
    """A reply in the work group to a fresh 批示 or 督办单 notice (answered first when closing)."""
    h, api = w.h, w.h.api
    if row.name.startswith("reply:instruction"):
        notices = await ask(h, w.setup_coordinator, w.group, f"/instruct {UNIT} 请报送本月进展")
        target = next(m for m in notices if "回复本消息" in (m.get("text") or ""))
    else:
        day = (h.clock() + timedelta(days=30)).date().isoformat()
        await ask(h, w.setup_coordinator, w.setup_coordinator, f"/supervise 9 {UNIT} 请说明进展 {day}")
        target = next(m for m in reversed(api.sent_messages(w.group)) if "督办单" in (m.get("text") or ""))
        if row.name.endswith("办结"):
            await api.send_text(w.setup_liaison, w.group, "已办理完毕", reply_to=target)
            await settle(api, h.app)
    text = "办结" if row.name.endswith("办结") else "已落实到位"

    async def say() -> Any:
        return await api.send_text(user, w.group, text, reply_to=target)

    return Cell(user, w.group, say)


def gate_outcome(row: Row, role: Standing, user_id: int) -> list[str] | None:
    """What the gate answers a cell it stops (None: it lets the cell through to the handlers)."""
    if row.is_button:
        return None
    if role == Standing.stranger and row.scope == "private" and row.name != "/start <invite>":
        return [re.sub(r"</?code>", "", STRANGER_TEXT.format(user_id=user_id))]
    if row.scope == "unbound" and role != Standing.coordinator:
        return []
    return None


CELLS = [pytest.param(row, role, id=f"{row.name}|{role.value}") for row in ROWS for role in Standing]


@pytest.mark.parametrize(("row", "role"), CELLS)
async def test_cell(world: World, row: Row, role: Standing) -> None:
    w, h, api = world, world.h, world.h.api
    cell = await prepare(w, row, role)
    await settle(api, h.app)
    before = snapshot(h.engine)
    seen = len(api.sent_messages(cell.chat))
    sent = await cell.send()
    await settle(api, h.app)
    after = snapshot(h.engine)
    effective = expected_role(role, row.action)
    may = allowed(effective, row.action)
    refusal = refusal_message(effective, row.action)
    if row.is_button and role == Standing.stranger and cell.chat is not w.group:
        # A stranger's press in a private chat (a /plan preview) is answered by the gate.
        answer = api.callback_answers.get(sent)
        assert answer is not None and answer.get("show_alert") and answer["text"] == STRANGER_ALERT, answer
        assert not diff(before, after), f"{row.name} by a stranger changed something"
        return
    gated = gate_outcome(row, role, cell.user.id)
    if gated is not None:
        # Stopped at the gate (bot.gate), before the permission table is asked: a stranger in
        # private gets the one short answer of the hour, an outsider's /bindgroup in an unbound
        # group silence; either way nothing changes.
        quoting = [m for m in api.sent_messages(cell.chat)[seen:]
                   if (m.get("reply_to_message") or {}).get("message_id") == sent["message_id"]]
        assert [m.get("text") for m in quoting] == gated, f"{row.name} by {role}: {quoting}"
        assert not diff(before, after), f"{row.name} by {role} was stopped at the gate, yet changed something"
        return
    if row.is_button:
        answer = api.callback_answers.get(sent)
        assert answer is not None, f"{row.name}: the press was never answered"
        said = answer.get("text") or ""
        shown = [m.get("text", "") for m in api.sent_messages(cell.chat)[seen:]]
    else:
        quoting = [m for m in api.sent_messages(cell.chat)[seen:]
                   if (m.get("reply_to_message") or {}).get("message_id") == sent["message_id"]]
        assert quoting, f"{row.name} by {role}: no answer"
        said = quoting[0].get("text") or quoting[0].get("caption") or ""
        shown = [said]
    changes = diff(before, after)
    assert "出错了" not in said and not any("出错了" in t for t in shown), f"{row.name} by {role}: {said}"
    if may:
        assert refusal not in said, f"{row.name} by {role} is allowed by the table but was refused: {said}"
        check = check_writes(h.engine, before, after)
        assert not check.problems, check.problems
        assert set(check.by_action) == set(WRITES.get(row.name, ())), (
            f"{row.name} by {role}: wrote {check.by_action}, expected {sorted(WRITES.get(row.name, ()))}; "
            f"answer {said!r}")
        if not WRITES.get(row.name):
            assert set(changes) <= {"botmessage"}, f"{row.name} by {role} only reads, yet changed {list(changes)}"
    else:
        if row.is_button:
            assert answer.get("show_alert") and said == refusal[:200], (
                f"{row.name} by {role}: expected the alert {refusal!r}, got {answer}")
            assert len(shown) == 0, f"{row.name} by {role}: refused, yet the bot said {shown}"
        else:
            refusal = OWN_REFUSALS.get(row.name, refusal)
            assert said == f"⚠️ {refusal}", f"{row.name} by {role}: expected the refusal {refusal!r}, got {said!r}"
        assert not changes, f"{row.name} by {role} was refused, yet changed {list(changes)}"
    assert re.search(r"[\u4e00-\u9fff]", said) or (may and not said), f"{row.name} by {role}: not Chinese: {said!r}"
