"""The command menus (setMyCommands) of every scope, kept in step with who is who.

Every menu comes from the ONE list, ``bot.commands.COMMANDS`` (:func:`bot.commands.menu`):

* every private chat and every group: a liaison's menu (the defaults);
* a coordinator's or leader's private chat (``BotCommandScopeChat``): their role's menu, for
  the membership their private chat resolves to (as ``models.members.resolve`` decides:
  an active membership first, the configured campaign when there are several);
* a coordinator or leader in each bound group of their campaign (``BotCommandScopeChatMember``).

A scope that should show the defaults (a removed coordinator, a liaison) is deleted.

:class:`MenuSync` does all of it in ONE background task, so that nothing waits for it:
at start-up the defaults, then each active campaign in turn (a province of 120 campaigns
is about 1,100 calls, seconds of work, while updates are already being answered); after a
change, just the scopes of the person who joined or was removed, or of the group that was
bound. Such a targeted job goes before the rest of the start-up pass. Each job reads the
database when it runs, so a change made while a job sends is queued again behind it: the
last word on a scope is always the current state. Errors are logged, never raised; a
shutdown drops what is left (the next start-up sets every menu again).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select
from telegram import (
    BotCommand,
    BotCommandScope,
    BotCommandScopeAllGroupChats,
    BotCommandScopeAllPrivateChats,
    BotCommandScopeChat,
    BotCommandScopeChatMember,
)
from telegram.error import BadRequest, NetworkError, TelegramError
from telegram.ext import Application

from bot.commands import Scope, menu
from infra.db import read_only
from models import members as mm
from models.permissions import Standing, standing_of
from models.tables import Campaign, Chat, ChatKind, Member, Role

log = logging.getLogger(__name__)

#: The roles with a menu of their own; everybody else sees the defaults.
OWN_MENU = frozenset({Standing.coordinator, Standing.leader})
#: Who shows in the default menus (private chats and groups).
DEFAULT_ROLE = Standing.liaison_responsible
#: Memberships that may have had a menu of their own (liaisons never had one).
MENU_MEMBER_ROLES = (Role.coordinator, Role.leader)
#: Waiting after the Bot API could not be reached, before trying again (longer each time).
UNREACHABLE_BACKOFF_S = (5.0, 30.0, 120.0, 300.0)


@dataclass(frozen=True, slots=True)
class MenuOp:
    """One call: set ``commands`` for ``scope``, or delete its own menu (``commands=None``)."""

    scope: BotCommandScope
    commands: tuple[BotCommand, ...] | None

    def __str__(self) -> str:
        where = {k: v for k, v in self.scope.to_dict().items() if k != "type"}
        what = "delete" if self.commands is None else f"{len(self.commands)} commands"
        return f"{self.scope.type}{where or ''} ({what})"


# ------------------------------------------------------------------ jobs


@dataclass(frozen=True, slots=True)
class Defaults:
    """The menus of every private chat and every group."""


@dataclass(frozen=True, slots=True)
class Everything:
    """The start-up pass: expands into one :class:`CampaignMenus` per active campaign."""


@dataclass(frozen=True, slots=True)
class CampaignMenus:
    """Every coordinator's and leader's scopes in one campaign (removed ones: deleted)."""

    campaign_id: int


@dataclass(frozen=True, slots=True)
class PersonMenus:
    """One person (a Telegram user): their private chat and their chat-member scope in
    the bound groups of each campaign they belong to."""

    user_id: int


@dataclass(frozen=True, slots=True)
class GroupMenus:
    """One group (a Telegram chat): its campaign's coordinators and leaders in it."""

    chat_id: int


Job = Defaults | Everything | CampaignMenus | PersonMenus | GroupMenus


# ------------------------------------------------------------------ what to send


def _own_menu(member: Member | None, scope: Scope) -> tuple[BotCommand, ...] | None:
    """The menu of ``member`` in ``scope`` when their role has one, else None (defaults)."""
    role = standing_of(member)
    return tuple(menu(role, scope)) if role in OWN_MENU else None


def _private_op(session: Session, user_id: int, memberships: Sequence[Member], slug: str) -> MenuOp | None:
    """The menu of the person's private chat: the role of the membership it resolves to."""
    chat_id = next((m.private_chat_id for m in memberships if m.private_chat_id), None)
    if chat_id is None:  # never opened a private chat with the bot
        return None
    if len(memberships) == 1:  # the one campaign it can resolve to
        member: Member | None = memberships[0]
    else:  # the rule of models.members.resolve for a private chat (kept in ONE place)
        campaign = mm.private_campaign(session, user_id, slug)
        member = next((m for m in memberships if campaign is not None and m.campaign_id == campaign.id), None)
    return MenuOp(BotCommandScopeChat(chat_id), _own_menu(member, Scope.private))


def _memberships(session: Session, user_ids: Sequence[int]) -> dict[int, list[Member]]:
    """Each person's memberships in active campaigns (removed ones too)."""
    found: dict[int, list[Member]] = {u: [] for u in user_ids}
    if not user_ids:
        return found
    rows = session.exec(
        select(Member)
        .join(Campaign, col(Campaign.id) == col(Member.campaign_id))
        .where(col(Member.telegram_user_id).in_(user_ids), Campaign.active == True)  # noqa: E712
        .order_by(Member.campaign_id)
    )
    for m in rows:
        found[m.telegram_user_id].append(m)
    return found


def default_ops() -> list[MenuOp]:
    return [
        MenuOp(BotCommandScopeAllPrivateChats(), tuple(menu(DEFAULT_ROLE, Scope.private))),
        MenuOp(BotCommandScopeAllGroupChats(), tuple(menu(DEFAULT_ROLE, Scope.group))),
    ]


def campaign_ops(session: Session, campaign_id: int, *, slug: str) -> list[MenuOp]:
    """Each coordinator's and leader's private chat and chat-member scope in each bound
    group of the campaign; removed ones back to the defaults."""
    groups = [g.telegram_chat_id for g in mm.bound_groups(session, campaign_id)]
    people = [m for m in mm.list_members(session, campaign_id=campaign_id, include_removed=True)
              if m.role in MENU_MEMBER_ROLES]
    memberships = _memberships(session, [m.telegram_user_id for m in people])
    ops: list[MenuOp] = []
    for m in people:
        private = _private_op(session, m.telegram_user_id, memberships[m.telegram_user_id], slug)
        if private is not None:
            ops.append(private)
        own = _own_menu(m, Scope.group)
        ops += [MenuOp(BotCommandScopeChatMember(g, m.telegram_user_id), own) for g in groups]
    return ops


def person_ops(session: Session, user_id: int, *, slug: str) -> list[MenuOp]:
    """The scopes of one person: their private chat, and them in each bound group of each
    (active) campaign they are a member of. Nobody's member: nothing (the defaults)."""
    memberships = _memberships(session, [user_id])[user_id]
    if not memberships:
        return []
    ops: list[MenuOp] = []
    private = _private_op(session, user_id, memberships, slug)
    if private is not None:
        ops.append(private)
    for m in memberships:
        own = _own_menu(m, Scope.group)
        ops += [MenuOp(BotCommandScopeChatMember(g.telegram_chat_id, user_id), own)
                for g in mm.bound_groups(session, m.campaign_id)]
    return ops


def group_ops(session: Session, chat_id: int) -> list[MenuOp]:
    """The active coordinators and leaders of the group's campaign, in that group."""
    chat = session.exec(select(Chat).where(Chat.telegram_chat_id == chat_id)).first()
    if chat is None or chat.campaign_id is None or chat.kind != ChatKind.group:
        return []
    ops: list[MenuOp] = []
    for m in mm.list_members(session, campaign_id=chat.campaign_id):
        own = _own_menu(m, Scope.group)
        if own is not None:
            ops.append(MenuOp(BotCommandScopeChatMember(chat_id, m.telegram_user_id), own))
    return ops


# ------------------------------------------------------------------ the worker


class MenuSync:
    """The background task that sends menus, one job at a time (see the module's docstring).

    ``start()`` from ``post_init`` (the application is not running yet, so this is a task of
    its own rather than ``Application.create_task``, which ``Application.stop`` would wait
    for); ``stop()`` from ``post_stop``/``post_shutdown``. Queuing is cheap and never waits.
    """

    def __init__(self, app: Application, *, engine: Engine, slug: str = "") -> None:
        self.app = app
        self.engine = engine
        self.slug = slug
        self._urgent: dict[Job, None] = {}  # an ordered set: one of each job
        self._backlog: deque[int] = deque()  # campaigns of the start-up pass still to do
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._failures = 0

    # ---------------------------------------------------------------- queuing

    def start(self) -> None:
        """Queue the start-up pass (defaults, then every active campaign); start the task."""
        self._closing = False
        self._stopping.clear()
        self._queue(Defaults())
        self._queue(Everything())
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(), name="qcbot-menus")

    def person(self, user_id: int) -> None:
        """Someone joined, was removed or opened their private chat: their scopes."""
        self._queue(PersonMenus(user_id))

    def group(self, chat_id: int) -> None:
        """A group was bound: its coordinators' and leaders' scopes in it."""
        self._queue(GroupMenus(chat_id))

    def _queue(self, job: Job) -> None:
        if self._closing:
            return
        self._urgent.pop(job, None)  # queued again: its place is at the end
        self._urgent[job] = None
        self._idle.clear()
        self._wake.set()

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def wait_idle(self) -> None:
        """Until every queued job is done (tests, tools)."""
        await self._idle.wait()

    async def stop(self, grace: float = 1.0) -> None:
        """Drop the rest of the start-up pass, finish a queued change within ``grace``
        seconds, then cancel: no task outlives the application."""
        self._closing = True
        self._backlog.clear()
        self._wake.set()
        self._stopping.set()
        task, self._task = self._task, None
        if task is None:
            return
        if not task.done():
            try:
                await asyncio.wait_for(task, grace)
            except TimeoutError:  # wait_for cancelled it (and waited for that)
                log.info("menus: stopped before all were sent (the next start-up sends them)")
        if task.done() and not task.cancelled() and task.exception() is not None:
            log.error("menus: the task failed", exc_info=task.exception())

    # ---------------------------------------------------------------- the task

    def _next(self) -> Job | None:
        if self._urgent:
            job = next(iter(self._urgent))
            del self._urgent[job]
            return job
        if self._backlog and not self._closing:
            return CampaignMenus(self._backlog.popleft())
        return None

    async def _run(self) -> None:
        while True:
            job = self._next()
            if job is None:
                self._idle.set()
                if self._closing:
                    return
                self._wake.clear()
                await self._wake.wait()
                continue
            try:
                await self._do(job)
            except Exception:  # a bug or the database: log it, go on with the next job
                log.exception("menus: %s failed", job)

    def _campaign_ids(self) -> list[int]:
        with read_only(self.engine) as session:
            return [c.id for c in mm.active_campaigns(session) if c.id is not None]

    def _plan(self, job: Job) -> list[MenuOp]:
        """What ``job`` sends, from the database as it is now (in a worker thread)."""
        if isinstance(job, Defaults):
            return default_ops()
        with read_only(self.engine) as session:
            if isinstance(job, CampaignMenus):
                return campaign_ops(session, job.campaign_id, slug=self.slug)
            if isinstance(job, PersonMenus):
                return person_ops(session, job.user_id, slug=self.slug)
            if isinstance(job, GroupMenus):
                return group_ops(session, job.chat_id)
        raise TypeError(f"not a menu job: {job!r}")

    async def _do(self, job: Job) -> None:
        if isinstance(job, Everything):
            ids = await asyncio.to_thread(self._campaign_ids)
            if not self._closing:
                self._backlog.extend(ids)
            return
        ops = await asyncio.to_thread(self._plan, job)
        for op in ops:
            if self._closing and isinstance(job, CampaignMenus):
                return
            try:
                await self._send(op)
            except BadRequest as exc:  # this scope only (a chat gone, a user not in it)
                log.warning("menu %s not set: %s", op, exc)
            except NetworkError as exc:  # the Bot API is out of reach: try again later
                await self._unreachable(job, exc)
                return
            except TelegramError as exc:
                log.warning("menu %s not set: %s", op, exc)
        self._failures = 0

    async def _send(self, op: MenuOp) -> None:
        bot = self.app.bot
        if op.commands is None:
            await bot.delete_my_commands(scope=op.scope)
        else:
            await bot.set_my_commands(op.commands, scope=op.scope)

    async def _unreachable(self, job: Job, exc: TelegramError) -> None:
        """Put ``job`` back at the front and wait a while (longer each time in a row)."""
        if self._closing:
            return
        delay = UNREACHABLE_BACKOFF_S[min(self._failures, len(UNREACHABLE_BACKOFF_S) - 1)]
        self._failures += 1
        log.warning("menus: Bot API unreachable (%s); trying %s again in %g s", exc, job, delay)
        if isinstance(job, CampaignMenus):
            self._backlog.appendleft(job.campaign_id)
        elif job not in self._urgent:
            self._urgent = {job: None, **self._urgent}
        try:
            await asyncio.wait_for(self._stopping.wait(), delay)  # stop() ends the wait
        except TimeoutError:
            pass
