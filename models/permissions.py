"""Who may do what: ONE table of roles × actions.

The bot's handlers never decide permissions themselves; they call :func:`check`
with the acting member and, for unit-scoped actions, the units responsible for
the thing being acted on. The table is data so that a permission-matrix test can
iterate over every (role, action) pair.

A person's :class:`Standing` is their role *in one request* (``models.tables.Role`` is the role
they hold in the campaign): a liaison is "of the responsible unit" or "of
another unit" relative to the task, assignment or criterion at hand. For actions
that are not about a unit's work (``responsible_unit_required`` is false) both
liaison roles always have the same rights (a test checks this).
"""

from __future__ import annotations

from collections.abc import Collection
from enum import StrEnum

from models.errors import PermissionDenied
from models.tables import Member, Role


class Standing(StrEnum):
    """A person's standing in one request: their campaign role, seen against the thing at hand."""

    stranger = "stranger"
    liaison_responsible = "liaison_responsible"
    liaison_other = "liaison_other"
    leader = "leader"
    coordinator = "coordinator"
    removed = "removed"


class Action(StrEnum):
    # everybody
    help = "help"
    whoami = "whoami"
    redeem_invite = "redeem_invite"
    # reading
    view_status = "view_status"
    view_unit = "view_unit"
    view_task = "view_task"
    view_item = "view_item"
    my_tasks = "my_tasks"
    # a unit's own work
    report_progress = "report_progress"
    submit = "submit"
    upload_evidence = "upload_evidence"
    claim_criterion = "claim_criterion"
    # the coordinator's office
    review = "review"
    bind_group = "bind_group"
    invite = "invite"
    list_members = "list_members"
    remove_member = "remove_member"
    extend_deadline = "extend_deadline"
    export = "export"
    # the plan: the workbook, units, who owes a criterion, a task's units
    edit_plan = "edit_plan"
    # a liaison's own settings
    nudge_settings = "nudge_settings"
    # put off the nudges of one of the unit's tasks (暂缓提醒)
    snooze_nudge = "snooze_nudge"
    # supervision (批示, 督办单, 通报)
    instruct = "instruct"
    answer_instruction = "answer_instruction"
    close_instruction = "close_instruction"
    supervise = "supervise"
    answer_supervision = "answer_supervision"
    close_supervision = "close_supervision"
    bulletin = "bulletin"


EVERYONE: frozenset[Standing] = frozenset(Standing)
LIAISONS: frozenset[Standing] = frozenset({Standing.liaison_responsible, Standing.liaison_other})
READERS: frozenset[Standing] = LIAISONS | {Standing.leader, Standing.coordinator}
COORDINATOR: frozenset[Standing] = frozenset({Standing.coordinator})
UNIT_WORK: frozenset[Standing] = frozenset({Standing.liaison_responsible, Standing.coordinator})

#: The table: which roles may perform each action.
PERMISSIONS: dict[Action, frozenset[Standing]] = {
    Action.help: EVERYONE,
    Action.whoami: EVERYONE,
    # A stranger or a removed member joins through an invite; members already have a role.
    Action.redeem_invite: frozenset({Standing.stranger, Standing.removed}),
    Action.view_status: frozenset({Standing.leader, Standing.coordinator}),
    Action.view_unit: READERS,
    Action.view_task: READERS,
    Action.view_item: READERS,
    Action.my_tasks: LIAISONS | {Standing.coordinator},
    Action.report_progress: UNIT_WORK,
    Action.submit: UNIT_WORK,
    Action.upload_evidence: UNIT_WORK,
    Action.claim_criterion: UNIT_WORK,
    Action.review: COORDINATOR,
    Action.bind_group: COORDINATOR,
    Action.invite: COORDINATOR,
    Action.list_members: COORDINATOR,
    Action.remove_member: COORDINATOR,
    Action.extend_deadline: COORDINATOR,
    Action.export: COORDINATOR | {Standing.leader},
    Action.edit_plan: COORDINATOR,
    Action.nudge_settings: LIAISONS,
    Action.snooze_nudge: UNIT_WORK,
    # A leader writes and closes 批示 (the only writes a leader makes); the unit answers.
    Action.instruct: frozenset({Standing.leader, Standing.coordinator}),
    # Only the unit itself answers (a coordinator's “请尽快答复” is no answer of the unit's).
    Action.answer_instruction: frozenset({Standing.liaison_responsible}),
    Action.close_instruction: frozenset({Standing.leader, Standing.coordinator}),
    Action.supervise: COORDINATOR,
    Action.answer_supervision: frozenset({Standing.liaison_responsible}),
    Action.close_supervision: COORDINATOR,
    Action.bulletin: COORDINATOR,
}

#: Actions on a unit's own work: the liaison must belong to a responsible unit.
RESPONSIBLE_UNIT_REQUIRED: dict[Action, bool] = {
    action: action
    in {Action.report_progress, Action.submit, Action.upload_evidence, Action.claim_criterion,
        Action.snooze_nudge, Action.answer_instruction, Action.answer_supervision}
    for action in Action
}


#: What a refused person reads, by role (the action's name is added when useful).
_REFUSALS: dict[Standing, str] = {
    Standing.stranger: "你还不是本活动的成员，不能使用此功能。请向协调员（区市场监管局）索取邀请链接。",
    Standing.removed: "你已被移出本活动，不能再使用此功能。如有疑问请联系协调员。",
    Standing.leader: "领导账号为只读（批示除外），不能进行此操作。",
    Standing.liaison_other: "这项工作不属于你的单位，不能代为填报。",
    Standing.liaison_responsible: "只有协调员（领导小组办公室）可以进行此操作。",
    Standing.coordinator: "协调员不能进行此操作。",
}


def standing_of(member: Member | None, responsible_unit_ids: Collection[int] | None = None) -> Standing:
    """The situational role of ``member`` for a request about ``responsible_unit_ids``.

    ``responsible_unit_ids=None`` means the request is not about a unit's work; a
    liaison then counts as ``liaison_responsible`` (their own context).
    """
    if member is None:
        return Standing.stranger
    if not member.active:
        return Standing.removed
    if member.role == Role.coordinator:
        return Standing.coordinator
    if member.role == Role.leader:
        return Standing.leader
    if responsible_unit_ids is None:
        return Standing.liaison_responsible
    if member.unit_id is not None and member.unit_id in set(responsible_unit_ids):
        return Standing.liaison_responsible
    return Standing.liaison_other


def allowed(role: Standing, action: Action) -> bool:
    """Whether the table lets ``role`` perform ``action``."""
    return role in PERMISSIONS[action]


def refusal_message(role: Standing, action: Action) -> str:
    """The Chinese explanation given to ``role`` when ``action`` is refused."""
    if role == Standing.liaison_responsible and action == Action.view_status:
        return "全区总体进度仅协调员和领导可查看；请用 /mytasks 查看本单位的任务。"
    if role == Standing.coordinator and action == Action.nudge_settings:
        return "私聊提醒供各单位联络员使用；协调员会直接收到逾期督办消息，无需设置。"
    if role == Standing.liaison_other and action == Action.snooze_nudge:
        return "这条提醒是其他单位的任务，只有该单位的联络员可以暂缓。"
    if role in (Standing.liaison_responsible, Standing.liaison_other) and action in (
        Action.instruct, Action.close_instruction
    ):
        return "只有区领导和协调员可以作出或办结批示；收到批示后请回复批示消息报送落实情况。"
    if role == Standing.coordinator and action == Action.redeem_invite:
        return "你已是本活动的协调员，无需再使用邀请链接。"
    if role in (Standing.liaison_responsible, Standing.liaison_other, Standing.leader) and (
        action == Action.redeem_invite
    ):
        return "你已是本活动的成员。如需更换单位或身份，请联系协调员先将你移出。"
    return _REFUSALS[role]


def check(
    *,
    member: Member | None,
    action: Action,
    responsible_unit_ids: Collection[int] | None = None,
) -> Standing:
    """Raise :class:`PermissionDenied` unless ``member`` may perform ``action``.

    For actions with ``RESPONSIBLE_UNIT_REQUIRED``, ``responsible_unit_ids`` must be
    given (the units responsible for the task/assignment/criterion). Returns the role.
    """
    if RESPONSIBLE_UNIT_REQUIRED[action] and responsible_unit_ids is None:
        raise ValueError(f"{action} needs responsible_unit_ids")
    role = standing_of(member, responsible_unit_ids if RESPONSIBLE_UNIT_REQUIRED[action] else None)
    if not allowed(role, action):
        raise PermissionDenied(refusal_message(role, action))
    return role
