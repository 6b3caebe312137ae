"""Shared machinery of the hostile-input suites (fuzz, permission matrix, concurrency).

A pytest plugin: the test modules that need it say ``pytest_plugins = ["tests.fuzzing"]``
(``tests/conftest.py`` is not touched). It adds

* the options ``--fuzz-updates N`` and ``--fuzz-seed S`` (``S`` = ``random`` draws one
  and prints it, so a failure can be replayed with ``--fuzz-seed``). pytest reads options
  before it imports test modules, so they exist when the plugin is loaded up front:
  ``python -m pytest -p tests.fuzzing tests/test_fuzz.py --fuzz-seed S`` (``make fuzz-long`` does);
  ``QCBOT_FUZZ_UPDATES`` / ``QCBOT_FUZZ_SEED`` work without ``-p``;
* :func:`relax_flood_control`: the application's ``AIORateLimiter`` keeps Telegram's
  pace (30 sends a second, 20 a minute per group), which would make ten thousand updates
  take hours. The stand-in's flood limits are off, so the limiter only slows the run down;
  this swaps it for the same limiter with the rates switched off (retries kept);
* :class:`ErrorLog`: every log record at ERROR or above, from any logger, while a block runs
  (the application's ONE error handler logs each unhandled exception at ERROR);
* :func:`snapshot` / :func:`diff`: every row of every table, before and after;
* :func:`check_writes`: the rules a diff must obey — every new or changed row is explained
  by an audit row, the audit row's actor was allowed by ``models.permissions.PERMISSIONS``
  to do that, and the final row agrees with the last audit row's ``after``;
* ``module_harness``: one stand-in + REAL application per test module (module event loop),
  for suites of many small end-to-end cells.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pytest
import pytest_asyncio
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel
from telegram.ext import AIORateLimiter, Application

import models.tables as t
from bot.app import build_application, running
from bot.polling import PROCESS
from infra.db import make_engine, read_only
from models.permissions import PERMISSIONS, Action, allowed, standing_of
from standin import BotApiStandin
from tests.dbutil import fresh_database_url

if TYPE_CHECKING:  # imported when used: with ``-p tests.fuzzing`` this module loads before conftest
    from tests.harness import Harness

JsonDict = dict[str, Any]

#: The seed ``make test`` uses (the date the campaign's clock starts in the harness).
DEFAULT_SEED = 20211101


# ====================================================================== options


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("qcbot fuzzing")
    group.addoption("--fuzz-updates", type=int, default=None,
                    help="how many random updates tests/test_fuzz.py sends (default: its fast size)")
    group.addoption("--fuzz-seed", default=None,
                    help=f"seed of the fuzz generator (default {DEFAULT_SEED}; 'random' draws one)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """A test function with ``fuzz_budget = N`` (its default size) gets a timeout that grows
    with ``--fuzz-updates``: at least 20 updates a second, plus two minutes for the scene."""
    raw = config.getoption("--fuzz-updates", default=None) or os.environ.get("QCBOT_FUZZ_UPDATES")
    for item in items:
        default = getattr(getattr(item, "function", None), "fuzz_budget", None)
        if default is not None:
            updates = int(raw) if raw else default
            item.add_marker(pytest.mark.timeout(120 + updates // 20))


@dataclass(frozen=True)
class FuzzConfig:
    updates: int | None
    seed: int


@pytest.fixture(scope="session")
def fuzz_config(request: pytest.FixtureRequest) -> FuzzConfig:
    raw = request.config.getoption("--fuzz-seed", default=None) or os.environ.get("QCBOT_FUZZ_SEED")
    updates = request.config.getoption("--fuzz-updates", default=None) or os.environ.get("QCBOT_FUZZ_UPDATES")
    if raw is None:
        seed = DEFAULT_SEED
    elif str(raw).lower() == "random":
        seed = random.SystemRandom().randrange(1, 2**31)
    else:
        seed = int(raw)
    return FuzzConfig(updates=int(updates) if updates else None, seed=seed)


# ====================================================================== the stack


def relax_flood_control(app: Application) -> None:
    """Same limiter class, rates off: the run is not paced like Telegram (retries stay)."""
    app.bot._rate_limiter = AIORateLimiter(overall_max_rate=0, group_max_rate=0, max_retries=3)  # type: ignore[attr-defined]


def app_busy(app: Application) -> int:
    """Updates the application holds: queued, being handled right now, or answers not sent yet
    (``bot.replies``)."""
    replies = app.bot_data.get("replies")
    return (app.update_queue.qsize() + app.update_processor.current_concurrent_updates
            + (replies.queued if replies is not None else 0))


def _quiet(api: BotApiStandin, app: Application) -> bool:
    # ``pending``: updates PTB has not confirmed. It confirms a batch by its next getUpdates,
    # which it sends right after queueing the batch, so 0 means every update reached PTB.
    return api.updates.pending == 0 and app_busy(app) == 0


async def settle(api: BotApiStandin, app: Application, *, timeout: float = 60.0) -> None:  # noqa: ASYNC109
    """Wait until every update reached the application AND no handler of it runs, and no
    Bot API call is in flight.

    ``api.wait_idle`` alone sees only HTTP traffic: a handler busy in the database for
    longer than its quiet period would be taken for idle.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        await api.wait_idle(timeout=max(0.5, deadline - loop.time()), quiet=0.005)
        if _quiet(api, app):
            await asyncio.sleep(0.005)
            if _quiet(api, app) and api.updates.unfetched == 0:
                return
        if loop.time() >= deadline:
            raise AssertionError(f"the application is still busy after {timeout}s: {app_busy(app)} update(s)")
        await asyncio.sleep(0.02)


class ErrorLog(logging.Handler):
    """Collects every record at ERROR or above while installed on the root logger."""

    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.records: list[logging.LogRecord] = []
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1
        if len(self.records) < 50:  # a handler failing in a loop must not eat the memory
            self.records.append(record)

    def __enter__(self) -> ErrorLog:
        logging.getLogger().addHandler(self)
        return self

    def __exit__(self, *exc: object) -> None:
        logging.getLogger().removeHandler(self)

    def report(self, limit: int = 5) -> str:
        shown = []
        for r in self.records[:limit]:
            text = r.getMessage()
            if r.exc_text:
                text += "\n" + r.exc_text
            shown.append(f"[{r.name}] {text[:3000]}")
        return f"{self.count} error record(s):\n" + "\n---\n".join(shown)


def failed_calls(api: BotApiStandin) -> list[str]:
    """The bot's own Bot API calls that got a 4xx (or any non-200) answer. Not counted: an edit
    that two presses raced to make (the second is "message is not modified"; the bot takes it as done)."""
    return [f"{c.method} -> {c.status} {c.description} {str(c.params)[:300]}"
            for c in api.calls if c.status != 200
            and not (c.method == "editMessageText" and "message is not modified" in (c.description or ""))]


# ====================================================================== snapshots

Snapshot = dict[str, dict[tuple, JsonDict]]


def snapshot(engine: Engine) -> Snapshot:
    """Every row of every table, keyed by table name and primary key."""
    out: Snapshot = {}
    with engine.connect() as conn:
        for table in SQLModel.metadata.sorted_tables:
            pk = [c.name for c in table.primary_key.columns]
            rows: dict[tuple, JsonDict] = {}
            for row in conn.execute(sa.select(table)).mappings():
                data = dict(row)
                rows[tuple(data[k] for k in pk)] = data
            out[table.name] = rows
    return out


@dataclass
class TableDiff:
    new: dict[tuple, JsonDict] = field(default_factory=dict)
    changed: dict[tuple, tuple[JsonDict, JsonDict]] = field(default_factory=dict)
    deleted: dict[tuple, JsonDict] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.new or self.changed or self.deleted)

    def changed_columns(self, key: tuple) -> set[str]:
        old, new = self.changed[key]
        return {k for k in new if old.get(k) != new.get(k)}


def diff(before: Snapshot, after: Snapshot) -> dict[str, TableDiff]:
    """What changed, table by table (only tables with a change)."""
    out: dict[str, TableDiff] = {}
    for name in after:
        old, new = before.get(name, {}), after[name]
        d = TableDiff(
            new={k: v for k, v in new.items() if k not in old},
            changed={k: (old[k], v) for k, v in new.items() if k in old and old[k] != v},
            deleted={k: v for k, v in old.items() if k not in new},
        )
        if d:
            out[name] = d
    return out


def describe(changes: dict[str, TableDiff]) -> str:
    parts = []
    for name, d in changes.items():
        cols = sorted({c for k in d.changed for c in d.changed_columns(k)})
        parts.append(f"{name}: +{len(d.new)} ~{len(d.changed)}{cols} -{len(d.deleted)}")
    return "; ".join(parts) or "no change"


# ====================================================================== the rules

#: Audit action → the permission-table action that entitles it. An audit action
#: missing here fails :func:`check_writes` (add it, with the row that governs it).
AUDIT_ACTIONS: dict[str, Action] = {
    "assignment.progress": Action.report_progress,
    "assignment.submit": Action.submit,
    "assignment.approve": Action.review,
    "assignment.return": Action.review,
    "criterion.claim": Action.claim_criterion,
    "criterion.verify": Action.review,
    "criterion.reject": Action.review,
    "evidence.add": Action.upload_evidence,
    "evidence.reuse": Action.upload_evidence,
    "evidence.withdraw": Action.upload_evidence,
    "evidence.accept": Action.review,
    "evidence.return": Action.review,
    "task.deadline": Action.extend_deadline,
    "chat.bind": Action.bind_group,
    "invite.create": Action.invite,
    "invite.revoke": Action.invite,
    "member.join": Action.redeem_invite,
    "invite.use": Action.redeem_invite,
    "member.remove": Action.remove_member,
    "nudge.snooze": Action.snooze_nudge,
    "ledger.export": Action.export,
    "member.private_nudges": Action.nudge_settings,
    # The plan, changed by the coordinator (the workbook, /addunit, /assign, /waive, /taskunits).
    **{f"plan.{verb}": Action.edit_plan for verb in ("export", "preview", "apply", "cancel")},
    **{f"seed.{verb}": Action.edit_plan
       for verb in ("create", "update", "import", "retire", "unretire", "link", "unlink", "delete")},
    "instruction.create": Action.instruct,
    "instruction.answer": Action.answer_instruction,
    "instruction.close": Action.close_instruction,
    "supervision.issue": Action.supervise,
    "supervision.answer": Action.answer_supervision,
    "supervision.close": Action.close_supervision,
    "bulletin.issue": Action.bulletin,
}
#: Audit actions about the actor's own member row: nobody changes another's.
OWN_MEMBER_ACTIONS = frozenset({"member.private_nudges"})

#: Columns a request may change without an audit row: the bot's bookkeeping about
#: chats and people (names, where to reach them), never who may do what.
BOOKKEEPING = {
    "chat": {"title", "ignored_notice_sent", "reachable", "unreachable_reason"},
    "member": {"display_name", "username", "private_chat_id", "reachable", "unreachable_reason"},
}
#: Tables a Telegram request never changes (the plan, the scheduler's outbox), except the plan
#: in a request that audits a plan change (``seed.*``: the coordinator's, as _judge checks).
FROZEN = {"campaign", "phase", "unit", "taskgroup", "scoreitem", "itemunit", "criterion",
          "criterionunit", "scorecategory", "taskcriterion", "outbox"}
PLAN_TABLES = FROZEN - {"outbox"}
ASSIGNMENT_FIELDS = ("state", "percent", "note", "return_reason", "version")
ASSESSMENT_FIELDS = ("state", "unit_id", "claim_note", "reason", "version")


@dataclass
class WriteCheck:
    problems: list[str] = field(default_factory=list)
    audits: int = 0
    by_action: dict[str, int] = field(default_factory=dict)

    def fail(self, text: str) -> None:
        if len(self.problems) < 200:
            self.problems.append(text)


def _unit_of_entity(session: Session, audit: t.AuditLog) -> int | None:
    """The responsible unit an audited write was about (None: not unit-scoped)."""
    if audit.entity == "assignment" and audit.entity_id is not None:
        a = session.get(t.Assignment, audit.entity_id)
        return a.unit_id if a else None
    if audit.entity == "evidence" and audit.entity_id is not None:
        ev = session.get(t.Evidence, audit.entity_id)
        return ev.unit_id if ev else None
    if audit.entity == "criterion":
        return (audit.after or {}).get("unit_id")
    if audit.entity == "supervision":
        return (audit.after or {}).get("unit_id")
    if audit.entity == "instruction" and audit.action == "instruction.answer":
        units = (audit.after or {}).get("unit_ids") or []
        return units[0] if len(units) == 1 else None
    return None


def check_writes(engine: Engine, before: Snapshot, after: Snapshot, *,
                 sent: set[tuple[int, int]] | None = None) -> WriteCheck:
    """Every difference between two snapshots must be a write someone was entitled to.

    * nothing is deleted, the audit log only grows, the plan and the outbox never change;
    * a new or changed row of a recorded table has an audit row about it, written after
      ``before``; the row's final values equal the last such audit row's ``after``;
      an assignment's or assessment's version grew by exactly its number of audit rows;
    * each new audit row's actor (a member of the campaign, or nobody) had, in their
      situational role (a liaison is "responsible" when the entity is their unit's), the
      right the permission table gives for that action;
    * changed columns outside the audited ones are bookkeeping (:data:`BOOKKEEPING`);
    * ``sent``: new BotMessage rows name messages the bot really sent (chat, message id).
    """
    result = WriteCheck()
    changes = diff(before, after)
    plan_edit = any(str(row.get("action", "")).startswith("seed.")
                    for row in changes.get("auditlog", TableDiff()).new.values())
    for name, d in changes.items():
        # Links without history (who owes an item or a criterion, task-criterion links) follow the plan.
        linkish = name in ("itemunit", "criterionunit", "taskcriterion")
        if d.deleted and name != "snooze" and not (plan_edit and linkish):
            result.fail(f"{name}: {len(d.deleted)} row(s) deleted, e.g. {next(iter(d.deleted.values()))}")
        if name in FROZEN and not (plan_edit and name in PLAN_TABLES):
            result.fail(f"{name} changed by requests: {describe({name: d})}")
    audit_diff = changes.get("auditlog", TableDiff())
    if audit_diff.changed or audit_diff.deleted:
        result.fail("the audit log was rewritten (changed or deleted rows)")
    new_audit_ids = sorted(k[0] for k in audit_diff.new)
    result.audits = len(new_audit_ids)

    with read_only(engine) as s:
        audits = [s.get(t.AuditLog, i) for i in new_audit_ids]
        # Who each member was when they acted: the "before" rows, replayed through the
        # window's member.* audit rows (a join, a removal) in the order they were written.
        state = {row["id"]: t.Member(**row) for row in before.get("member", {}).values()}
        joined = {a.actor_telegram_id for a in audits if a is not None and a.action == "member.join"}
        by_entity: dict[tuple[str, int | None], list[t.AuditLog]] = defaultdict(list)
        for a in audits:
            assert a is not None
            by_entity[(a.entity, a.entity_id)].append(a)
            result.by_action[a.action] = result.by_action.get(a.action, 0) + 1
            member = state.get(a.actor_member_id) if a.actor_member_id is not None else None
            _judge(result, s, a, member, joined)
            if a.entity == "member" and a.entity_id is not None and a.after and "active" in a.after:
                current = state.get(a.entity_id) or t.Member(id=a.entity_id, campaign_id=a.campaign_id or 0,
                                                             telegram_user_id=a.actor_telegram_id or 0,
                                                             role=t.Role.liaison)
                for name in ("role", "unit_id", "active"):
                    if name in a.after:
                        setattr(current, name, t.Role(a.after[name]) if name == "role" else a.after[name])
                state[a.entity_id] = current

        def audited(entity: str, ident: int | None, prefix: str = "") -> list[t.AuditLog]:
            return [a for a in by_entity.get((entity, ident), []) if a.action.startswith(prefix)]

        # -- every changed row is explained
        for name, d in changes.items():
            if name == "auditlog":
                continue
            keys = list(d.new) + list(d.changed)
            for key in keys:
                row = d.new.get(key) or d.changed[key][1]
                cols = set(row) if key in d.new else d.changed_columns(key)
                ident = key[0] if len(key) == 1 else None
                if name == "assignment" and plan_edit and (
                        cols <= {"retired"} or key not in d.changed):
                    # The plan gave a unit a task, or took it away (kept, retired): seed.* audited.
                    if not audited("assignment", ident, "seed."):
                        result.fail(f"assignment {ident} added or retired by the plan without an audit row")
                elif name == "assignment":
                    rows = audited("assignment", ident, "assignment.")
                    if not rows:
                        result.fail(f"assignment {ident} changed {sorted(cols)} without an audit row")
                        continue
                    last = rows[-1].after or {}
                    got = {f: _json(row[f]) for f in ASSIGNMENT_FIELDS}
                    if {f: last.get(f) for f in ASSIGNMENT_FIELDS} != got:
                        result.fail(f"assignment {ident}: row {got} != last audit {last}")
                    old_version = d.changed[key][0]["version"] if key in d.changed else 0
                    if row["version"] - old_version != len(rows):
                        result.fail(f"assignment {ident}: version {old_version}→{row['version']} "
                                    f"but {len(rows)} audited write(s)")
                elif name == "assessment":
                    rows = audited("criterion", row["criterion_id"], "criterion.")
                    if not rows:
                        result.fail(f"assessment of criterion {row['criterion_id']} changed without audit")
                        continue
                    last = rows[-1].after or {}
                    got = {f: _json(row[f]) for f in ASSESSMENT_FIELDS}
                    if {f: last.get(f) for f in ASSESSMENT_FIELDS} != got:
                        result.fail(f"assessment {ident}: row {got} != last audit {last}")
                    old_version = d.changed[key][0]["version"] if key in d.changed else 0
                    if row["version"] - old_version != len(rows):
                        result.fail(f"assessment {ident}: version {old_version}→{row['version']} "
                                    f"but {len(rows)} audited write(s)")
                elif name == "evidence":
                    rows = audited("evidence", ident)
                    if not rows:
                        result.fail(f"evidence {ident} {'added' if key in d.new else 'changed'} without audit")
                    elif (rows[-1].after or {}).get("state") not in (None, _json(row["state"])):
                        result.fail(f"evidence {ident}: state {row['state']} != audit {rows[-1].after}")
                elif name == "invite":
                    action = ("invite.create" if key in d.new else
                              "invite.revoke" if cols == {"revoked"} else "invite.use")
                    if not [a for a in audited("invite", ident) if a.action == action]:
                        result.fail(f"invite {ident}: {sorted(cols)} without {action}")
                elif name == "task" and plan_edit:
                    # The plan changed the task (its text, plan date, retired): each field audited.
                    rows = audited("task", ident, "seed.") + audited("task", ident, "task.")
                    done = {k for a in rows for k in (a.after or {})}
                    if not rows or cols - done - {"deadline", "planned_deadline"}:
                        result.fail(f"task {ident}: {sorted(cols)} changed by the plan without an audit row")
                elif name == "task":
                    rows = audited("task", ident, "task.")
                    if cols - {"deadline"}:
                        result.fail(f"task {ident}: columns {sorted(cols)} changed")
                    if not rows or (rows[-1].after or {}).get("deadline") != _json(row["deadline"]):
                        result.fail(f"task {ident}: deadline {row['deadline']} without a matching audit row")
                elif name == "snooze":
                    rows = audited("assignment", row["assignment_id"], "nudge.snooze")
                    if not rows or (rows[-1].after or {}).get("until") != _json(row["until"]):
                        result.fail(f"snooze of assignment {row['assignment_id']} without a matching audit row")
                elif name == "chat":
                    if key in d.new:
                        if row["campaign_id"] is not None:
                            result.fail(f"chat {row['telegram_chat_id']} created already bound")
                        continue
                    rest = cols - BOOKKEEPING["chat"]
                    if rest and not audited("chat", ident, "chat.bind"):
                        result.fail(f"chat {row['telegram_chat_id']}: {sorted(rest)} changed without chat.bind")
                elif name == "member":
                    if key in d.new:
                        if not audited("member", ident, "member."):
                            result.fail(f"member {ident} added without audit")
                        continue
                    rest = cols - BOOKKEEPING["member"]
                    if rest and not audited("member", ident, "member."):
                        result.fail(f"member {ident}: {sorted(rest)} changed without audit")
                elif name == "botmessage":
                    if sent is not None and key in d.new and (row["telegram_chat_id"], row["message_id"]) not in sent:
                        result.fail(f"BotMessage for a message the bot never sent: {row}")
                elif name in ("instruction", "supervision", "bulletin"):
                    if not audited(name, ident, f"{name}."):
                        result.fail(f"{name} {ident}: {sorted(cols)} changed without audit")
                elif name == "instructionanswer":
                    if key not in d.new or not audited("instruction", row["instruction_id"], "instruction.answer"):
                        result.fail(f"instruction answer {ident} without an instruction.answer audit row")
                elif name == "handledupdate":  # bot.polling: a mark in each writing transaction
                    if key not in d.new or row["process"] != PROCESS:
                        result.fail(f"handled-update mark {row} changed, or not this process's")
                elif name not in FROZEN:
                    result.fail(f"{name} {key}: {sorted(cols)} changed — no rule for this table")
        marks = len(changes.get("handledupdate", TableDiff()).new)
        if marks > len(new_audit_ids):
            result.fail(f"{marks} handled-update marks for {len(new_audit_ids)} audited writes")
    return result


def _judge(result: WriteCheck, s: Session, a: t.AuditLog, member: t.Member | None, joined: set[int | None]) -> None:
    """Was the actor of audit row ``a`` (``member``: who they were then) entitled to it?"""
    if a.actor_kind != "telegram":
        result.fail(f"audit #{a.id} {a.action}: actor kind {a.actor_kind!r} during requests")
        return
    if member is not None and member.telegram_user_id != a.actor_telegram_id:
        result.fail(f"audit #{a.id}: member {member.id} is not Telegram user {a.actor_telegram_id}")
    if a.action == "invite.use":  # written by the new member, as part of their member.join
        if a.actor_telegram_id not in joined:
            result.fail(f"audit #{a.id}: an invite used without anyone joining")
        return
    if a.action in OWN_MEMBER_ACTIONS and (member is None or a.entity_id != member.id):
        result.fail(f"audit #{a.id} {a.action} by member {a.actor_member_id} on member {a.entity_id}")
    perm = AUDIT_ACTIONS.get(a.action)
    if perm is None:
        result.fail(f"audit #{a.id}: unknown audit action {a.action!r} (add it to AUDIT_ACTIONS)")
        return
    unit = _unit_of_entity(s, a)
    role = standing_of(member, [unit] if unit is not None else None)
    if not allowed(role, perm):
        result.fail(f"audit #{a.id} {a.action} by {role} (member {a.actor_member_id}, "
                    f"user {a.actor_telegram_id}) on {a.entity} {a.entity_id}: "
                    f"{perm} is for {sorted(PERMISSIONS[perm])}")


def _json(value: Any) -> Any:
    if hasattr(value, "value"):
        return value.value
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def bot_message_keys(api: BotApiStandin) -> set[tuple[int, int]]:
    return {(chat_id, m["message_id"]) for chat_id, ms in api.world.bot_messages.items() for m in ms}


def quoted_answers(api: BotApiStandin) -> dict[tuple[int, int], int]:
    """How many messages the bot sent quoting each (chat, message id)."""
    counts: dict[tuple[int, int], int] = defaultdict(int)
    for c in api.calls:
        if c.status != 200 or c.method.lower() not in ("sendmessage", "sendphoto", "senddocument"):
            continue
        rp = c.params.get("reply_parameters") or {}
        target = rp.get("message_id") if isinstance(rp, dict) else None
        target = target or c.params.get("reply_to_message_id")
        if target is not None:
            counts[(int(c.params["chat_id"]), int(target))] += 1
    return counts


# ====================================================================== module harness


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def module_harness(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Harness]:
    """One stand-in + the REAL application for a whole module, on a fresh seeded database.

    Tests using it run in the module's event loop
    (``pytestmark = pytest.mark.asyncio(loop_scope="module")``).
    """
    from tests.harness import TOKEN, FakeClock, Harness, import_default_seed, make_settings

    tmp = tmp_path_factory.mktemp("module-harness")
    with fresh_database_url(tmp) as url:
        engine = make_engine(url)
        SQLModel.metadata.create_all(engine)
        campaign_id = import_default_seed(engine)
        settings = make_settings(db_url=url, storage_dir=tmp / "evidence")
        clock = FakeClock()
        try:
            async with BotApiStandin(token=TOKEN) as api:
                app = build_application(
                    settings=settings, engine=engine, clock=clock, token=api.token,
                    base_url=api.base_url, base_file_url=api.base_file_url,
                )
                relax_flood_control(app)
                async with running(app, poll_timeout=1):
                    h = Harness(api=api, app=app, engine=engine, settings=settings, clock=clock,
                                campaign_id=campaign_id)
                    try:
                        yield h
                    finally:
                        if h.read_engine is not None and h.read_engine is not engine:
                            h.read_engine.dispose()
        finally:
            engine.dispose()
