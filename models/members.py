"""People and chats: members, invites, the bootstrap code, bound groups, unit look-up.

Nothing here commits; the caller's ``transaction(engine)`` does. Every write that
changes who may do what records itself in the audit log.
"""

from __future__ import annotations

import re
import secrets
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from models.audit import Actor, record, snapshot
from models.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from models.tables import Campaign, Chat, ChatKind, Invite, Member, Role, Unit

#: Deep-link payloads: at most 64 characters of [A-Za-z0-9_-] (Telegram's rule).
PAYLOAD_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
BOOTSTRAP_PREFIX = "boot_"
_BOOT_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
MEMBER_FIELDS = ("role", "unit_id", "active", "display_name", "removed_at")
ROLE_LABELS = {Role.coordinator: "协调员", Role.liaison: "联络员", Role.leader: "领导"}
LEADER_WORDS = frozenset({"leader", "领导", "leaders", "区领导"})
COORDINATOR_WORDS = frozenset({"coordinator", "协调员", "coordinators"})


@dataclass(frozen=True, slots=True)
class ChatInfo:
    """The chat an update came from (plain data, no Telegram objects)."""

    id: int
    type: str  # "private", "group", "supergroup", "channel"
    title: str | None = None

    @property
    def is_private(self) -> bool:
        return self.type == "private"

    @property
    def kind(self) -> ChatKind:
        return ChatKind.private if self.is_private else ChatKind.group


@dataclass(frozen=True, slots=True)
class UserInfo:
    """The person who sent an update."""

    id: int
    name: str = ""
    username: str | None = None


@dataclass(slots=True)
class Env:
    """Where a request comes from: its campaign, chat row and member (if any)."""

    campaign: Campaign | None
    chat: Chat
    member: Member | None
    user: UserInfo
    chat_info: ChatInfo

    @property
    def campaign_id(self) -> int:
        if self.campaign is None or self.campaign.id is None:
            raise NotFound("尚未配置活动，请先导入活动计划（qcbot seed import）。")
        return self.campaign.id

    @property
    def is_group(self) -> bool:
        return not self.chat_info.is_private

    @property
    def actor(self) -> Actor:
        return Actor(
            kind="telegram",
            member_id=self.member.id if self.member is not None else None,
            telegram_id=self.user.id,
        )


# ------------------------------------------------------------------ campaigns


def active_campaigns(session: Session, ids: Iterable[int] | None = None) -> list[Campaign]:
    """The active campaigns by id, or those of ``ids`` that are active."""
    q = select(Campaign).where(Campaign.active == True).order_by(col(Campaign.id))  # noqa: E712
    if ids is not None:
        q = q.where(col(Campaign.id).in_(list(ids)))
    return list(session.exec(q))


def binding_for_group(
    session: Session, *, telegram_user_id: int, preferred_slug: str = ""
) -> tuple[Campaign | None, Member | None]:
    """For /bindgroup in a group bound to no campaign: the campaign and the sender's membership.

    The campaign is one the sender coordinates (the deployment's ``preferred_slug`` when they
    coordinate several). With none, the campaign is None and the membership is their best one
    anywhere (an active one first), so that a liaison is refused as a liaison, not as a stranger.
    """
    campaign: Campaign | None = None
    member: Member | None = None
    for c in active_campaigns(session):
        assert c.id is not None
        found = get_member(session, campaign_id=c.id, telegram_user_id=telegram_user_id)
        if found is not None and found.active and found.role == Role.coordinator:
            if campaign is None or c.slug == preferred_slug:
                campaign, member = c, found
        elif found is not None and campaign is None and (member is None or (found.active and not member.active)):
            member = found
    return campaign, member


def default_campaign(session: Session, *, slug: str = "") -> Campaign | None:
    """The campaign of this deployment: ``slug`` if given, else the first active one."""
    if slug:
        found = session.exec(select(Campaign).where(Campaign.slug == slug)).first()
        if found is None:
            raise NotFound(f"没有找到活动“{slug}”（配置项 campaign.slug）。")
        return found
    campaigns = active_campaigns(session)
    return campaigns[0] if campaigns else None


def campaign_by_slug(session: Session, slug: str | None) -> Campaign:
    """For the command line: the named campaign or the deployment's default."""
    found = default_campaign(session, slug=slug or "")
    if found is None:
        raise NotFound("数据库中还没有活动，请先导入活动计划（qcbot seed import）。")
    return found


def private_campaign(session: Session, user_id: int, slug: str) -> Campaign | None:
    """In a private chat: the member's campaign; the configured one when several."""
    rows = list(
        session.exec(
            select(Campaign)
            .join(Member, col(Member.campaign_id) == col(Campaign.id))
            .where(Member.telegram_user_id == user_id, Campaign.active == True)  # noqa: E712
            .order_by(col(Member.active).desc(), col(Campaign.id))
        )
    )
    if len(rows) == 1:
        return rows[0]
    if len(rows) > 1:
        if slug:
            for c in rows:
                if c.slug == slug:
                    return c
        return rows[0]
    return default_campaign(session, slug=slug)


# ---------------------------------------------------------------------- chats


def see_chat(session: Session, info: ChatInfo, *, now: datetime, present: bool = True) -> Chat:
    """The row of a chat, created on first sight (title kept current).

    An update from a chat shows the bot is in it again (``present``): a chat the
    scheduler marked unreachable (bot removed, blocked) becomes reachable.
    """
    row = session.exec(select(Chat).where(Chat.telegram_chat_id == info.id)).first()
    if row is None:
        try:
            with session.begin_nested():  # two first updates of a chat may race here
                row = Chat(telegram_chat_id=info.id, kind=info.kind, title=info.title, created_at=now)
                session.add(row)
                session.flush()
        except IntegrityError:
            row = session.exec(select(Chat).where(Chat.telegram_chat_id == info.id)).one()
    elif info.title and row.title != info.title:
        row.title = info.title
    if present and not row.reachable:
        row.reachable = True
        row.unreachable_reason = None
    return row


def claim_ignored_notice(session: Session, chat: Chat) -> bool:
    """Whether this request is the one that tells an unbound chat it is ignored (once)."""
    result = session.exec(
        sa.update(Chat)
        .where(col(Chat.id) == chat.id, col(Chat.ignored_notice_sent) == False)  # noqa: E712
        .values(ignored_notice_sent=True)
    )
    return bool(result.rowcount)


def resolve(
    session: Session, *, chat: ChatInfo, user: UserInfo, slug: str, now: datetime
) -> Env:
    """Who is asking, from where, for which campaign.

    A group belongs to the campaign it was bound to (``None`` when unbound); a private
    chat to the member's campaign. The member's name and private chat are kept current.
    """
    chat_row = see_chat(session, chat, now=now)
    if chat.is_private:
        campaign = private_campaign(session, user.id, slug)
    else:
        campaign = session.get(Campaign, chat_row.campaign_id) if chat_row.campaign_id else None
    member = None
    if campaign is not None:
        member = get_member(session, campaign_id=campaign.id, telegram_user_id=user.id)  # type: ignore[arg-type]
        if member is not None:
            if user.name and member.display_name != user.name:
                member.display_name = user.name[:200]
            if user.username != member.username:
                member.username = user.username
            # A private chat with a person has that person's id: an update that says otherwise
            # (forged, or from a webhook caller who is not Telegram) changes no one's chat.
            if (chat.is_private and chat.id == user.id
                    and (member.private_chat_id != chat.id or not member.reachable)):
                member.private_chat_id = chat.id
                member.reachable = True
                member.unreachable_reason = None
    return Env(campaign=campaign, chat=chat_row, member=member, user=user, chat_info=chat)


def bind_group(session: Session, *, env: Env, campaign_id: int, now: datetime) -> bool:
    """Bind the group of ``env`` to ``campaign_id``; False when it already was."""
    chat = env.chat
    if chat.kind != ChatKind.group:
        raise InvalidInput("/bindgroup 只能在群组中使用：请把机器人拉进工作群后在群里发送。")
    if chat.campaign_id == campaign_id:
        return False
    if chat.campaign_id is not None:
        raise Conflict("本群已绑定到另一个活动，不能重复绑定。")
    before = snapshot(chat, ("campaign_id", "bound_at"))
    # First one wins, in one statement (two coordinators binding the same group at once).
    bound = session.exec(
        sa.update(Chat)
        .where(col(Chat.id) == chat.id, col(Chat.campaign_id).is_(None))
        .values(campaign_id=campaign_id, bound_at=now, ignored_notice_sent=False)
        .execution_options(synchronize_session=False)
    )
    session.refresh(chat)
    if bound.rowcount != 1:
        if chat.campaign_id == campaign_id:
            return False
        raise Conflict("本群已绑定到另一个活动，不能重复绑定。")
    record(
        session=session, actor=env.actor, action="chat.bind", entity="chat", entity_id=chat.id,
        at=now, campaign_id=campaign_id, before=before,
        after=snapshot(chat, ("campaign_id", "bound_at")), note=chat.title,
    )
    return True


def bound_groups(session: Session, campaign_id: int) -> list[Chat]:
    return list(
        session.exec(
            select(Chat).where(Chat.campaign_id == campaign_id, Chat.kind == ChatKind.group)
        )
    )


# -------------------------------------------------------------------- members


OWN_WORK = "这是你自己提交的事项，请由另一位协调员审核通过。"
OWN_WORK_ALONE = ("这是你自己提交的事项；本活动不允许协调员审核通过自己提交的事项"
                  "（配置项 campaign.self_review_when_alone）。")


def check_second_reviewer(
    session: Session, *, reviewer_member_id: int | None, submitter_member_id: int | None,
    campaign_id: int, alone_may_self_review: bool,
) -> None:
    """Four eyes: a coordinator does not approve what they handed in themselves while another
    active coordinator can; a one-person office may, if ``alone_may_self_review``."""
    if reviewer_member_id is None or reviewer_member_id != submitter_member_id:
        return
    others = [m for m in coordinators(session, campaign_id) if m.id != reviewer_member_id]
    if others:
        raise PermissionDenied(OWN_WORK)
    if not alone_may_self_review:
        raise PermissionDenied(OWN_WORK_ALONE)


def known_person(session: Session, telegram_user_id: int) -> bool:
    """Whether anyone of any campaign knows this person (a member, or a former one)."""
    return session.exec(select(Member.id).where(Member.telegram_user_id == telegram_user_id).limit(1)).first() is not None


def coordinates_anywhere(session: Session, telegram_user_id: int) -> bool:
    """Whether this person is an active coordinator of an active campaign."""
    return session.exec(
        select(Member.id)
        .join(Campaign, col(Campaign.id) == col(Member.campaign_id))
        .where(Member.telegram_user_id == telegram_user_id, Member.role == Role.coordinator,
               col(Member.active).is_(True), col(Campaign.active).is_(True))
        .limit(1)
    ).first() is not None


def get_member(session: Session, *, campaign_id: int, telegram_user_id: int) -> Member | None:
    return session.exec(
        select(Member).where(
            Member.campaign_id == campaign_id, Member.telegram_user_id == telegram_user_id
        )
    ).first()


def list_members(
    session: Session, *, campaign_id: int, include_removed: bool = False
) -> list[Member]:
    q = select(Member).where(Member.campaign_id == campaign_id)
    if not include_removed:
        q = q.where(Member.active == True)  # noqa: E712
    return list(session.exec(q.order_by(col(Member.role), col(Member.unit_id), col(Member.id))))


def coordinators(session: Session, campaign_id: int) -> list[Member]:
    return [m for m in list_members(session, campaign_id=campaign_id) if m.role == Role.coordinator]


def add_member(
    session: Session,
    *,
    campaign_id: int,
    telegram_user_id: int,
    role: Role,
    unit_id: int | None,
    name: str,
    username: str | None = None,
    private_chat_id: int | None = None,
    actor: Actor,
    now: datetime,
    action: str = "member.add",
) -> Member:
    """Make ``telegram_user_id`` a member with ``role`` (re-activating a removed one)."""
    if role == Role.liaison and unit_id is None:
        raise InvalidInput("联络员必须属于一个责任单位。")
    if role != Role.liaison:
        unit_id = None
    member = get_member(session, campaign_id=campaign_id, telegram_user_id=telegram_user_id)
    before = snapshot(member, MEMBER_FIELDS) if member is not None else None
    if member is None:
        member = Member(
            campaign_id=campaign_id, telegram_user_id=telegram_user_id, role=role,
            unit_id=unit_id, display_name=(name or "")[:200], username=username,
            private_chat_id=private_chat_id, created_at=now,
        )
        session.add(member)
    else:
        member.role = role
        member.unit_id = unit_id
        member.active = True
        member.removed_at = None
        if name:
            member.display_name = name[:200]
        if username:
            member.username = username
        if private_chat_id:
            member.private_chat_id = private_chat_id
    session.flush()
    record(
        session=session, actor=actor, action=action, entity="member", entity_id=member.id,
        at=now, campaign_id=campaign_id, before=before, after=snapshot(member, MEMBER_FIELDS),
    )
    return member


def add_coordinator(
    session: Session,
    *,
    campaign_id: int,
    telegram_user_id: int,
    name: str = "",
    actor: Actor,
    now: datetime,
) -> Member:
    """Make ``telegram_user_id`` a coordinator (from the CLI or the bootstrap code)."""
    if telegram_user_id <= 0:
        raise InvalidInput("Telegram 用户 ID 必须是正整数。")
    return add_member(
        session, campaign_id=campaign_id, telegram_user_id=telegram_user_id,
        role=Role.coordinator, unit_id=None, name=name, actor=actor, now=now,
        action="member.add_coordinator",
    )


def find_member(session: Session, *, campaign_id: int, ref: str) -> Member:
    """A member by Telegram ID, @username or display name (active ones first)."""
    text = ref.strip()
    if not text:
        raise InvalidInput("请写明要移除的成员：Telegram ID、@用户名或姓名。")
    members = list_members(session, campaign_id=campaign_id, include_removed=True)
    members.sort(key=lambda m: not m.active)
    if re.fullmatch(r"-?\d{1,20}", text):
        for m in members:
            if m.telegram_user_id == int(text):
                return m
    if text.startswith("@"):
        wanted = text[1:].lower()
        for m in members:
            if (m.username or "").lower() == wanted:
                return m
    by_name = [m for m in members if m.display_name == text and m.active]
    if len(by_name) == 1:
        return by_name[0]
    if len(by_name) > 1:
        raise InvalidInput(f"有多个成员叫“{_clip(text)}”，请改用 Telegram ID（见 /members）。")
    raise NotFound(f"没有找到成员“{_clip(text)}”。请用 /members 查看成员列表。")


def remove_member(session: Session, *, member: Member, actor: Actor, now: datetime) -> Member:
    """Deactivate ``member``; the last coordinator cannot be removed."""
    if not member.active:
        raise Conflict("该成员已被移出。")
    if member.role == Role.coordinator and len(coordinators(session, member.campaign_id)) <= 1:
        raise Conflict("不能移除唯一的协调员：请先添加另一位协调员。")
    before = snapshot(member, MEMBER_FIELDS)
    member.active = False
    member.removed_at = now
    session.flush()
    record(
        session=session, actor=actor, action="member.remove", entity="member",
        entity_id=member.id, at=now, campaign_id=member.campaign_id, before=before,
        after=snapshot(member, MEMBER_FIELDS),
    )
    return member


def member_label(session: Session, member: Member) -> str:
    """"张三（区财政局 · 联络员）" — for lists and confirmations."""
    role = ROLE_LABELS.get(member.role, str(member.role))
    unit = session.get(Unit, member.unit_id) if member.unit_id else None
    who = member.display_name or (f"@{member.username}" if member.username else str(member.telegram_user_id))
    where = f"{unit.name} · {role}" if unit else role
    return f"{who}（{where}）"


# ---------------------------------------------------------------------- units


def _clip(text: str, limit: int = 30) -> str:
    """User text quoted in a message: trimmed, at most ``limit`` characters."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _norm(text: str) -> str:
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", text)).lower()


def _district_prefixes(campaign: Campaign | None) -> list[str]:
    prefixes = ["合肥市", "安徽省"]
    if campaign is not None and campaign.district:
        d = _norm(campaign.district)
        prefixes.insert(0, d)
        m = re.match(r"^(.+?[市州盟])(.+[区县旗市])$", d)
        if m:
            prefixes.extend([m.group(2), m.group(1)])
    return prefixes


def _unit_keys(unit: Unit) -> set[str]:
    keys = {_norm(unit.name)}
    if unit.full_name:
        keys.add(_norm(unit.full_name))
    keys.update(_norm(a) for a in unit.aliases or [])
    return {k for k in keys if k}


def find_unit(session: Session, *, campaign_id: int, text: str, retired: bool = False) -> Unit:
    """A responsible unit by name, full name or alias, fuzzy enough for “财政局”.

    Exact matches first, then the name with or without the leading “区” or the
    district, then a unique substring match. Ambiguity and misses raise with the
    list of candidates. A unit the plan retired (已撤销) is found only with ``retired``
    (reading its record); otherwise it is refused by name.
    """
    query = _norm(text)
    if not query:
        raise InvalidInput("请写明单位名称，例如：/unit 区财政局")
    every = list(session.exec(select(Unit).where(Unit.campaign_id == campaign_id).order_by(col(Unit.sort_order), col(Unit.id))))
    units = [u for u in every if retired or not u.retired]
    gone = [u for u in every if u.retired and not retired and _norm(u.name) == query]
    if gone:
        raise InvalidInput(f"{gone[0].name}已从工作计划中撤销（保留其记录），不能再进行此操作。")
    keys = {u.id: _unit_keys(u) for u in units}
    variants = {query}
    for prefix in _district_prefixes(session.get(Campaign, campaign_id)):
        if query.startswith(prefix) and len(query) > len(prefix):
            variants.add(query[len(prefix):])
    for v in list(variants):
        variants.add(v[1:] if v.startswith("区") and len(v) > 1 else "区" + v)
    exact = [u for u in units if keys[u.id] & variants]
    if len(exact) == 1:
        return exact[0]
    candidates = exact or [
        u for u in units
        if len(query) >= 2 and any(v in k for v in variants for k in keys[u.id])
    ]
    if len(candidates) == 1:
        return candidates[0]
    if candidates:
        names = "、".join(u.name for u in candidates[:8])
        raise InvalidInput(f"“{_clip(text)}”对应多个单位：{names}。请写完整的单位名称。")
    names = "、".join(u.name for u in units)
    raise NotFound(f"没有找到单位“{_clip(text)}”。可选单位：{names}")


# -------------------------------------------------------------------- invites


def new_token() -> str:
    """A single-use deep-link token: 32 characters of [A-Za-z0-9_-]."""
    return secrets.token_urlsafe(24)


def create_invite(
    session: Session,
    *,
    campaign_id: int,
    role: Role,
    unit_id: int | None,
    created_by: Member | None,
    actor: Actor,
    now: datetime,
    ttl_hours: int,
    token: str | None = None,
) -> Invite:
    """A single-use invite that expires after ``ttl_hours``."""
    if role == Role.liaison and unit_id is None:
        raise InvalidInput("联络员邀请必须指定单位。")
    token = token or new_token()
    assert PAYLOAD_RE.match(token), token
    invite = Invite(
        campaign_id=campaign_id, token=token, role=role,
        unit_id=unit_id if role == Role.liaison else None,
        created_by_member_id=created_by.id if created_by is not None else None,
        created_at=now, expires_at=now + timedelta(hours=ttl_hours),
    )
    session.add(invite)
    session.flush()
    record(
        session=session, actor=actor, action="invite.create", entity="invite",
        entity_id=invite.id, at=now, campaign_id=campaign_id,
        after={"role": role.value, "unit_id": invite.unit_id, "expires_at": invite.expires_at},
    )
    return invite


REVOKED = "这个邀请链接已被协调员撤销，不能再使用。请向协调员重新索取。"


def open_invites(session: Session, *, campaign_id: int, now: datetime) -> list[Invite]:
    """Invites that could still be used: not used, not revoked, not expired (newest first)."""
    return list(session.exec(
        select(Invite).where(
            Invite.campaign_id == campaign_id, col(Invite.used_at).is_(None),
            col(Invite.revoked).is_(False), col(Invite.expires_at) > now,
        ).order_by(col(Invite.created_at).desc(), col(Invite.id).desc())
    ))


def invite_label(session: Session, invite: Invite) -> str:
    """What an invite makes its user: ``区财政局 联络员``, ``领导（只读）``, ``协调员``."""
    if invite.role == Role.liaison and invite.unit_id is not None:
        unit = session.get(Unit, invite.unit_id)
        return f"{unit.name if unit else '?'} 联络员"
    return "领导（只读）" if invite.role == Role.leader else ROLE_LABELS[invite.role]


def revoke_invite(
    session: Session, *, invite_id: int, campaign_id: int, actor: Actor, now: datetime,
) -> Invite:
    """Revoke an invite that was not used yet (first one wins, in one statement; audited)."""
    invite = session.get(Invite, invite_id)
    if invite is None or invite.campaign_id != campaign_id:
        raise NotFound("没有找到这个邀请。")
    done = session.exec(
        sa.update(Invite)
        .where(col(Invite.id) == invite_id, col(Invite.used_at).is_(None), col(Invite.revoked).is_(False))
        .values(revoked=True)
        .execution_options(synchronize_session=False)
    )
    session.refresh(invite)
    if done.rowcount != 1:
        if invite.used_at is not None:
            raise Conflict("这个邀请链接已被使用，无法撤销；如需让对方退出，请用 /remove。")
        raise Conflict("这个邀请链接已经撤销过了。")
    record(session=session, actor=actor, action="invite.revoke", entity="invite", entity_id=invite.id,
           at=now, campaign_id=campaign_id, before={"revoked": False}, after={"revoked": True})
    return invite


def ensure_bootstrap_code(
    session: Session, *, campaign_id: int, now: datetime, ttl_hours: int, renew: bool = False,
) -> tuple[str | None, bool]:
    """The one-time code that makes its sender the first coordinator, and whether it is new.

    ``(None, False)`` once the campaign has a coordinator. An unused, unexpired code is reused
    (``renew=False``) so that restarting the bot does not multiply valid codes; the caller
    shows a code only when it is new (it is printed once, never logged). ``renew`` revokes the
    unused codes and makes a new one (``qcbot admin bootstrap-code``, when the first was lost).
    """
    if coordinators(session, campaign_id):
        return None, False
    unused = list(session.exec(
        select(Invite).where(
            Invite.campaign_id == campaign_id,
            Invite.role == Role.coordinator,
            col(Invite.token).startswith(BOOTSTRAP_PREFIX),
            col(Invite.used_at).is_(None),
            Invite.revoked == False,  # noqa: E712
        ).order_by(col(Invite.id).desc())
    ))
    live = [i for i in unused if i.expires_at > now]
    if live and not renew:
        return live[0].token, False
    for old in unused:
        before = snapshot(old, ("revoked",))
        old.revoked = True
        session.flush()
        record(session=session, actor=Actor.cli() if renew else Actor.system(), action="invite.revoke",
               entity="invite", entity_id=old.id, at=now, campaign_id=campaign_id, before=before,
               after=snapshot(old, ("revoked",)), note="初始化代码已重新生成" if renew else "初始化代码已过期")
    code = BOOTSTRAP_PREFIX + "".join(secrets.choice(_BOOT_ALPHABET) for _ in range(10))
    invite = create_invite(
        session, campaign_id=campaign_id, role=Role.coordinator, unit_id=None, created_by=None,
        actor=Actor.cli() if renew else Actor.system(), now=now, ttl_hours=ttl_hours, token=code,
    )
    return invite.token, True


def redeem_invite(
    session: Session, *, token: str, user: UserInfo, private_chat_id: int | None, now: datetime
) -> Member:
    """Use an invite: the sender becomes a liaison of its unit, a leader or coordinator.

    Unknown, used, revoked and expired tokens are refused; so is a sender who is
    already an active member of that campaign (see ``models.permissions``).
    """
    from models.permissions import Action, check  # local: permissions imports tables only

    if not PAYLOAD_RE.match(token or ""):
        raise InvalidInput("邀请码格式不正确，请检查是否完整复制了链接。")
    invite = session.exec(select(Invite).where(Invite.token == token)).first()
    if invite is None:
        raise NotFound("邀请码无效。请向协调员重新索取邀请链接。")
    if invite.revoked:
        raise Conflict(REVOKED)
    if invite.used_at is not None:
        if invite.used_by_telegram_id == user.id:
            raise Conflict("你已经用过这个邀请链接了，无需重复加入。发送 /whoami 查看你的身份。")
        raise Conflict("这个邀请链接已被使用过（每个链接只能用一次）。请向协调员重新索取。")
    if invite.expires_at <= now:
        raise Conflict("这个邀请链接已过期。请向协调员重新索取。")
    if invite.role == Role.coordinator:
        # Two first coordinators at once (two codes, two people): one after the other, on the
        # campaign's row, so the second sees the first.
        session.exec(select(Campaign).where(col(Campaign.id) == invite.campaign_id).with_for_update()).first()
    if invite.token.startswith(BOOTSTRAP_PREFIX) and coordinators(session, invite.campaign_id):
        raise PermissionDenied("本活动已有协调员，初始化代码已失效。请联系现任协调员。")
    existing = get_member(session, campaign_id=invite.campaign_id, telegram_user_id=user.id)
    check(member=existing, action=Action.redeem_invite)
    actor = Actor(kind="telegram", member_id=existing.id if existing else None, telegram_id=user.id)
    before = snapshot(invite, ("used_at", "used_by_telegram_id"))
    # First one wins, in one statement: of several people opening the link at once, the
    # others find it used (PostgreSQL re-checks the WHERE after the winner commits).
    claimed = session.exec(
        sa.update(Invite)
        .where(col(Invite.id) == invite.id, col(Invite.used_at).is_(None), col(Invite.revoked).is_(False))
        .values(used_at=now, used_by_telegram_id=user.id)
        .execution_options(synchronize_session=False)
    )
    if claimed.rowcount != 1:
        raise Conflict("这个邀请链接已被使用过（每个链接只能用一次）。请向协调员重新索取。")
    session.refresh(invite)
    member = add_member(
        session, campaign_id=invite.campaign_id, telegram_user_id=user.id, role=invite.role,
        unit_id=invite.unit_id, name=user.name, username=user.username,
        private_chat_id=private_chat_id, actor=actor, now=now, action="member.join",
    )
    record(
        session=session, actor=Actor(kind="telegram", member_id=member.id, telegram_id=user.id),
        action="invite.use", entity="invite", entity_id=invite.id, at=now,
        campaign_id=invite.campaign_id, before=before,
        after=snapshot(invite, ("used_at", "used_by_telegram_id")),
    )
    return member


def parse_invite_target(session: Session, *, campaign_id: int, text: str) -> tuple[Role, Unit | None]:
    """``/invite 区财政局`` → (liaison, unit); ``/invite leader`` / ``领导`` → (leader, None);
    ``/invite coordinator`` / ``协调员`` → (coordinator, None): a second coordinator of the office."""
    words = text.strip()
    if not words:
        raise InvalidInput("用法：/invite 单位名称（如 /invite 区财政局），/invite leader 邀请领导，"
                           "或 /invite coordinator 邀请另一位协调员。")
    if _norm(words) in LEADER_WORDS:
        return Role.leader, None
    if _norm(words) in COORDINATOR_WORDS:
        return Role.coordinator, None
    return Role.liaison, find_unit(session, campaign_id=campaign_id, text=words)
