"""THE list of commands: name, Chinese description, where it works, what it needs.

The command handlers, the menus of every scope (groups, private chats, each
coordinator's and leader's private chat) and /help are all built from
:data:`COMMANDS`, so they cannot drift. Who may use a command comes from
``models.permissions.PERMISSIONS`` through the command's :class:`Action`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from telegram import BotCommand, Update
from telegram.constants import ChatType

from bot import export as ex
from bot import handlers as h
from bot import nudges
from bot.context import QcContext
from models.members import ROLE_LABELS
from models.permissions import Action, Standing, allowed, standing_of

Handler = Callable[[Update, Any], Awaitable[None]]


class Scope(StrEnum):
    group = "group"
    private = "private"


BOTH = frozenset({Scope.group, Scope.private})
PRIVATE = frozenset({Scope.private})
GROUP = frozenset({Scope.group})


@dataclass(frozen=True, slots=True)
class Command:
    name: str
    description: str  # the menu line (Chinese)
    usage: str  # how to type it, for /help
    scopes: frozenset[Scope]
    action: Action
    callback: Handler
    #: Shown in menus (False: works, but only /help mentions it).
    in_menu: bool = True

    def roles(self) -> frozenset[Standing]:
        """Who may use it: from the permission table."""
        return frozenset(role for role in Standing if allowed(role, self.action))


async def on_help(update: Update, context: QcContext) -> None:
    """/help: what the asking person may do here."""
    from models.members import resolve  # noqa: F401  (resolved through in_env)

    def text(session, env) -> str:  # noqa: ANN001
        return help_text(standing_of(env.member), private=not env.is_group)

    context.reply(update, await context.in_env(update, text))


COMMANDS: tuple[Command, ...] = (
    Command("start", "开始使用 / 通过邀请链接加入", "/start", PRIVATE, Action.help, h.on_start),
    Command("help", "我可以使用的命令", "/help", BOTH, Action.help, on_help),
    Command("mytasks", "本单位的待办任务和细则", "/mytasks", BOTH, Action.my_tasks, h.on_mytasks),
    Command("progress", "填报进度：/progress 任务号 百分比 [说明]", "/progress 7 60 已完成初稿", BOTH,
            Action.report_progress, h.on_progress),
    Command("done", "报告任务完成：/done 任务号", "/done 7", BOTH, Action.submit, h.on_done),
    Command("evidence", "提交证明材料：/evidence 任务号", "/evidence 7（然后回复提示消息发送文件）", BOTH,
            Action.upload_evidence, h.on_evidence),
    Command("claim", "申报细则达标：/claim 项号.细则号", "/claim 7.1", BOTH, Action.claim_criterion, h.on_claim),
    Command("status", "全区创建进度和预计得分", "/status", BOTH, Action.view_status, h.on_status),
    Command("unit", "查看单位进度：/unit 单位名", "/unit 区财政局", BOTH, Action.view_unit, h.on_unit),
    Command("task", "查看任务：/task 任务号", "/task 7", BOTH, Action.view_task, h.on_task),
    Command("item", "查看评分项：/item 项号", "/item 7", BOTH, Action.view_item, h.on_item),
    Command("review", "待审核事项（通过/退回）", "/review", BOTH, Action.review, h.on_review),
    Command("deadline", "调整任务期限：/deadline 任务号 日期 原因", "/deadline 7 2027年6月30日 等待区政府常务会议审议", BOTH,
            Action.extend_deadline, h.on_deadline),
    Command("bindgroup", "把本群绑定为工作群", "/bindgroup（在工作群里发送）", GROUP, Action.bind_group,
            h.on_bindgroup),
    Command("invite", "生成联络员/领导邀请链接", "/invite 区财政局 或 /invite 领导", PRIVATE, Action.invite,
            h.on_invite),
    Command("invites", "未使用的邀请链接（可撤销）", "/invites", BOTH, Action.invite, h.on_invites),
    Command("members", "成员列表", "/members", PRIVATE, Action.list_members, h.on_members),
    Command("remove", "移除成员：/remove ID 或 @用户名", "/remove 123456789", PRIVATE, Action.remove_member,
            h.on_remove),
    Command("nudges", "私聊提醒开关：/nudges on 或 off", "/nudges on（在私聊中接收到期提醒）", BOTH,
            Action.nudge_settings, nudges.on_nudges),
    Command("whoami", "我的身份", "/whoami", BOTH, Action.whoami, h.on_whoami),
    Command("withdraw", "撤回证明材料：/withdraw 编号", "/withdraw 12 发错了（只发 /withdraw 列出可撤回的）", BOTH,
            Action.upload_evidence, ex.on_withdraw),
    Command("instruct", "领导批示（批示）：/instruct 任务号 批示内容", "/instruct 7 请加快推进，本周内报送进展（或回复任务、评分项、单位消息）",
            BOTH, Action.instruct, h.on_instruct),
    Command("close", "批示办结：/close 批示编号", "/close 3", BOTH, Action.close_instruction, h.on_close),
    Command("supervise", "下发督办单：/supervise 任务号 单位 原因 答复期限", "/supervise 7 区财政局 逾期未报送 2027年3月15日",
            BOTH, Action.supervise, h.on_supervise),
    Command("bulletin", "工作通报（预览；/bulletin 发布 后发送）", "/bulletin 发布 表扬 区财政局 批评 区发改委", BOTH,
            Action.bulletin, h.on_bulletin),
    Command("export", "导出台账和证明材料包", "/export（只要台账：/export 台账）", PRIVATE, Action.export,
            ex.on_export),
    Command("plan", "导出工作计划（Excel），改后回复发回即可导入", "/plan（改好后回复该消息发回工作簿）", PRIVATE,
            Action.edit_plan, h.on_plan),
    Command("addunit", "新增责任单位：/addunit 单位名 类型", "/addunit 红光街道 街道", PRIVATE, Action.edit_plan,
            h.on_addunit),
    Command("assign", "指定细则的责任单位：/assign 项号.细则号 单位", "/assign 10.1 区市场监管局", PRIVATE,
            Action.edit_plan, h.on_assign),
    Command("waive", "放弃细则（计为已失分）：/waive 项号.细则号 原因", "/waive 10.1 本区没有法定计量检定机构", PRIVATE,
            Action.edit_plan, h.on_waive),
    Command("taskunits", "调整任务的责任单位：/taskunits 任务号 单位、单位", "/taskunits 7 区财政局、区发改委", PRIVATE,
            Action.edit_plan, h.on_taskunits),
)

BY_NAME: dict[str, Command] = {c.name: c for c in COMMANDS}

_WRONG_CHAT = {
    Scope.group: "“/{name}”只能在工作群里使用。",
    Scope.private: "“/{name}”只能在与我的私聊中使用：请点我的头像 → 发消息，再发送 /{name}。",
}


def scoped(cmd: Command) -> Handler:
    """Wrap a command's handler: in the wrong kind of chat, say where it works instead."""

    async def handler(update: Update, context: QcContext) -> None:
        chat = update.effective_chat
        here = Scope.private if chat is not None and chat.type == ChatType.PRIVATE else Scope.group
        if here not in cmd.scopes:
            (only,) = cmd.scopes
            context.reply(update, _WRONG_CHAT[only].format(name=cmd.name))
            return
        await cmd.callback(update, context)

    handler.__doc__ = cmd.callback.__doc__
    handler.__name__ = f"cmd_{cmd.name}"
    return handler


def commands_for(role: Standing, scope: Scope, *, menu: bool = True) -> list[Command]:
    """The commands ``role`` may use in ``scope``, in list order."""
    return [
        c for c in COMMANDS
        if scope in c.scopes and allowed(role, c.action) and (c.in_menu or not menu)
    ]


def menu(role: Standing, scope: Scope) -> list[BotCommand]:
    """The menu (setMyCommands) for ``role`` in ``scope``."""
    return [BotCommand(c.name, c.description) for c in commands_for(role, scope)]


REPLY_HELP = (
    "💡 最简单的填报方式：直接<b>回复</b>我发的任务消息——\n"
    "• 回复“完成”：报告任务已完成（提交协调员审核）\n"
    "• 回复“进度 60%”或“60%”：更新进度\n"
    "• 回复其他文字：记录进展说明\n"
    "• 回复文件或照片：提交证明材料\n"
    "• 回复细则消息“达标”：申报该细则达标"
)


def help_text(role: Standing, *, private: bool) -> str:
    """/help for ``role``: commands here, then those that work in the other kind of chat."""
    here, there = (Scope.private, Scope.group) if private else (Scope.group, Scope.private)
    label = {Standing.stranger: "访客", Standing.removed: "已移出的成员", Standing.liaison_responsible: ROLE_LABELS["liaison"],
             Standing.liaison_other: ROLE_LABELS["liaison"]}.get(role, ROLE_LABELS.get(role.value, role.value))  # type: ignore[call-overload]
    lines = [f"你的身份：{label}", ""]
    if role in (Standing.stranger, Standing.removed):
        lines.append("请点击协调员发给你的邀请链接加入（或在私聊中发送 /start 邀请码）。")
    local = commands_for(role, here, menu=False)
    elsewhere = [c for c in commands_for(role, there, menu=False) if c not in local]
    lines += [f"/{c.name} — {c.description}\n   例：{c.usage}" for c in local]
    if elsewhere:
        lines.append("")
        lines.append("仅在私聊中可用：" if there == Scope.private else "仅在工作群中可用：")
        lines += [f"/{c.name} — {c.description}" for c in elsewhere]
    if role in (Standing.liaison_responsible, Standing.coordinator):
        lines += ["", REPLY_HELP]
    if role == Standing.leader:
        lines += ["", "领导账号除批示外为只读：可以查看进度和得分；回复任务、评分项、单位或提醒消息即可作出批示"
                  "（或发送 /instruct），单位报送落实情况后回复“办结”即可办结。"]
    return "\n".join(lines)
