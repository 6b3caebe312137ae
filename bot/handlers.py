"""Telegram handlers: parse the update, hand the work to ``bot.actions`` (one module per concern), answer.

Every handler is registered in ONE place, ``bot.app.register_handlers``; the
commands among them are listed once in ``bot.commands.COMMANDS`` (menus, /help
and the handlers come from that list).
"""

from __future__ import annotations

import asyncio
import html
import logging
import re
import traceback
from collections.abc import Callable
from pathlib import Path

from sqlmodel import Session
from telegram import Document, Message, PhotoSize, Update
from telegram.constants import ChatType
from telegram.error import BadRequest, TelegramError

from bot.actions import onboarding, reading, reporting, review, routing, supervision
from bot.actions import plan as planning
from bot.actions.common import Req
from bot.callbacks import FORGED, parse
from bot.context import Answer, Out, QcContext
from bot.export import send_status_chart
from bot.parsing import (
    check_note,
    normalize,
    parse_criterion_ref,
    parse_date,
    parse_item_no,
    parse_percent,
    parse_task_no,
)
from infra.files import store_new_blob
from infra.logging_setup import describe_update
from models.errors import DomainError, InvalidInput
from models.evidence import blob_in_use, check_content, known_blob
from models.members import Env
from models.messages import lookup, remember
from models.tables import SubjectKind
from reports.official import bulletin_docx

log = logging.getLogger(__name__)

ERROR_TEXT = "😥 出错了，这次操作没有完成。请稍后再试；如果问题持续，请联系协调员。"


def req(context: QcContext) -> Req:
    """The request's clock and configuration."""
    return Req(
        now=context.now(), today=context.today(), settings=context.settings,
        bot_username=context.bot.username,
    )


def _args(context: QcContext) -> list[str]:
    return list(context.args or [])


def _rest(update: Update) -> str:
    """The text after the command word, as typed (keeps spaces inside a note)."""
    text = (update.effective_message.text or "") if update.effective_message else ""
    parts = text.split(maxsplit=1)
    return parts[1].strip() if len(parts) > 1 else ""


def _replied_bot_message_id(update: Update, context: QcContext) -> int | None:
    msg = update.effective_message
    replied = msg.reply_to_message if msg is not None else None
    if replied is None or replied.from_user is None or replied.from_user.id != context.bot.id:
        return None
    return replied.message_id


# ================================================================= onboarding


async def on_start(update: Update, context: QcContext) -> None:
    """/start [邀请码]: join with an invite link or the bootstrap code, or say hello."""
    payload = _args(context)[0] if context.args else None
    rq = req(context)
    await context.act(update, lambda s, env: onboarding.start(s, env, rq, payload))


async def on_whoami(update: Update, context: QcContext) -> None:
    """/whoami: my role, unit and Telegram ID."""
    rq = req(context)
    await context.act(update, lambda s, env: onboarding.whoami(s, env, rq))


async def on_bindgroup(update: Update, context: QcContext) -> None:
    """/bindgroup: bind this group to the campaign (coordinator)."""
    rq = req(context)
    await context.act(update, lambda s, env: onboarding.bind_group(s, env, rq))


async def on_invites(update: Update, context: QcContext) -> None:
    """/invites: the unused invite links, each with a revoke button (coordinator)."""
    rq = req(context)
    await context.act(update, lambda s, env: onboarding.invites_list(s, env, rq))


async def on_invite(update: Update, context: QcContext) -> None:
    """/invite 区财政局 | leader: a single-use deep link (coordinator)."""
    rq, text = req(context), _rest(update)
    await context.act(update, lambda s, env: onboarding.invite(s, env, rq, text))


async def on_members(update: Update, context: QcContext) -> None:
    """/members: who is in the campaign (coordinator)."""
    rq = req(context)
    await context.act(update, lambda s, env: onboarding.members_list(s, env, rq))


async def on_remove(update: Update, context: QcContext) -> None:
    """/remove ID|@用户名: take someone out of the campaign (coordinator)."""
    rq, ref = req(context), _rest(update)
    await context.act(update, lambda s, env: onboarding.remove(s, env, rq, ref))


# ============================================================ liaisons' work


async def on_mytasks(update: Update, context: QcContext) -> None:
    """/mytasks: my unit's open assignments and criteria, nearest deadline first."""
    rq = req(context)
    await context.act(update, lambda s, env: reading.my_tasks(s, env, rq))


async def on_progress(update: Update, context: QcContext) -> None:
    """/progress N 60 [说明]."""
    usage = "/progress 任务号 百分比 [说明]，例如 /progress 7 60 已完成初稿"
    parts = _rest(update).split(maxsplit=2)
    try:
        if len(parts) < 2:
            raise InvalidInput(f"用法：{usage}")
        task_no = parse_task_no(parts[0], usage=usage)
        percent = parse_percent(parts[1])
        note = check_note(parts[2] if len(parts) > 2 else None)
    except DomainError as err:
        await context.refuse(update, err)
        return
    rq = req(context)
    await context.act(update, lambda s, env: reporting.progress_cmd(s, env, rq, task_no, percent, note))


async def on_done(update: Update, context: QcContext) -> None:
    """/done N: my unit finished task N (goes to the coordinator's review)."""
    try:
        task_no = parse_task_no(_rest(update), usage="/done 任务号，例如 /done 7")
    except DomainError as err:
        await context.refuse(update, err)
        return
    rq = req(context)
    await context.act(update, lambda s, env: reporting.done_cmd(s, env, rq, task_no))


async def on_evidence(update: Update, context: QcContext) -> None:
    """/evidence N (or 8.1): the bot asks for the file as a reply."""
    usage = "/evidence 任务号（如 /evidence 7）或 /evidence 项号.细则号（如 /evidence 7.1）"
    text = normalize(_rest(update))
    try:
        if re.search(r"\d\s*[.\-_/。·]\s*\d", text):
            item_no, crit_no = parse_criterion_ref(text, usage=usage)
            ref: tuple = ("criterion", item_no, crit_no)
        else:
            ref = ("task", parse_task_no(text, usage=usage))
    except DomainError as err:
        await context.refuse(update, err)
        return
    rq = req(context)
    await context.act(update, lambda s, env: reporting.evidence_prompt(s, env, rq, ref))


async def on_claim(update: Update, context: QcContext) -> None:
    """/claim 8.1 [说明]: my unit meets criterion 1 of score item 8."""
    usage = "/claim 项号.细则号 [说明]，例如 /claim 7.1"
    parts = _rest(update).split(maxsplit=1)
    try:
        item_no, crit_no = parse_criterion_ref(parts[0] if parts else "", usage=usage)
        note = check_note(parts[1] if len(parts) > 1 else None)
    except DomainError as err:
        await context.refuse(update, err)
        return
    rq = req(context)
    await context.act(update, lambda s, env: reporting.claim_cmd(s, env, rq, item_no, crit_no, note))


async def on_text(update: Update, context: QcContext) -> None:
    """A text reply to one of the bot's messages: 完成 / 进度 60% / a note / a return reason."""
    msg = update.effective_message
    if msg is None or msg.text is None:
        return
    reply_to = _replied_bot_message_id(update, context)
    if reply_to is None and update.effective_chat.type != ChatType.PRIVATE:
        return
    if reply_to is not None:
        await context.settled(update.effective_chat.id)
    rq, text = req(context), msg.text
    await context.act(update, lambda s, env: routing.reply_text(s, env, rq, reply_to, text))


def _file_of(msg: Message) -> tuple[Document | PhotoSize, int | None, str | None, str | None] | None:
    """The file of a message (a document or the largest photo), its size, type and name."""
    if msg.document is not None:
        return msg.document, msg.document.file_size, msg.document.mime_type, msg.document.file_name
    if msg.photo:
        return msg.photo[-1], msg.photo[-1].file_size, "image/jpeg", None
    return None


async def on_file(update: Update, context: QcContext) -> None:
    """A document or photo replied to a task/criterion message: evidence.

    Sent without replying to anything (in the group or in private), the bot asks which of the
    sender's unit's open tasks it is for (:func:`on_button` files it when they press one); a
    non-member's file in the group, or a file replying to a person, is left alone.
    Size and type are checked before ``getFile``; the bytes are stored
    content-addressed under storage.dir, then recorded in one transaction.
    """
    msg = update.effective_message
    assert msg is not None
    found = _file_of(msg)
    if found is None:
        return
    f, size, mime, name = found
    reply_to = _replied_bot_message_id(update, context)
    private = update.effective_chat.type == ChatType.PRIVATE
    rq, caption = req(context), msg.caption
    if reply_to is None and (private or msg.reply_to_message is None):
        file_message_id = msg.message_id
        await context.act(update, lambda s, env: reporting.file_question(
            s, env, rq, file_message_id, private=private, size=size, mime_type=mime, file_name=name, caption=caption))
        return
    if reply_to is None:
        return
    await context.settled(update.effective_chat.id)
    is_plan, export_id = await _is_plan_reply(update, context, reply_to)
    if is_plan:
        await _plan_returned(update, context, f, size, name, export_id)
        return
    try:
        out = await _store_file(update, context, f, size, name, caption, lambda s, env: reporting.file_target(
            s, env, rq, reply_to, size=size, mime_type=mime, file_name=name, caption=caption))
    except DomainError as err:
        await context.refuse(update, err)
        return
    if out is not None:
        context.answer(update, [out])


async def _store_file(
    update: Update, context: QcContext, f: Document | PhotoSize, size: int | None, name: str | None,
    caption: str | None, decide: Callable[[Session, Env], reporting.FileTarget | Out | None],
) -> Out | None:
    """Decide where a file goes (``decide``), download and store it, record it: the line to say.

    A DomainError means nothing was recorded (a file stored for nothing is removed again)."""
    rq = req(context)
    storage = context.settings.storage
    new_blob: Path | None = None
    try:
        target = await context.in_env(update, decide)
        if target is None or isinstance(target, Out):
            return target
        sha = await context.db(
            lambda s: known_blob(s, storage_dir=storage.dir, campaign_id=target.campaign_id,
                                 telegram_file_unique_id=f.file_unique_id)
        )
        if sha is None:
            data = await _download(context, f.file_id)
            check_content(data, mime_type=target.mime_type, max_mb=storage.max_file_mb)
            sha, new_blob = await asyncio.to_thread(store_new_blob, storage.dir, data)
            length = len(data)
        else:
            length = size or 0
        out = await context.in_env(
            update,
            lambda s, env: reporting.file_stored(
                s, env, rq, target, sha256=sha, size=length, original_name=name, caption=caption,
                file_id=f.file_id, file_unique_id=f.file_unique_id,
            ),
        )
    except DomainError:
        if new_blob is not None:  # stored for nothing, unless someone filed the same bytes meanwhile
            stored = new_blob
            if not await context.db(lambda s: blob_in_use(s, stored.name)):
                await asyncio.to_thread(stored.unlink, missing_ok=True)
        raise
    return out


async def _download(context: QcContext, file_id: str) -> bytes:
    try:
        tg_file = await context.bot.get_file(file_id)
    except BadRequest as exc:
        if "too big" in str(exc).lower():
            raise InvalidInput("文件太大，超过 20 MB，机器人无法下载。请压缩或拆分后重新发送。") from None
        raise
    return bytes(await tg_file.download_as_bytearray())


# ================================================================ the plan


async def _is_plan_reply(update: Update, context: QcContext, reply_to: int) -> tuple[bool, int | None]:
    chat_id = update.effective_chat.id  # type: ignore[union-attr]

    def kind(session: Session) -> tuple[bool, int | None]:
        row = lookup(session, chat_id=chat_id, message_id=reply_to)
        return (row is not None and row.subject_kind == SubjectKind.plan), (row.subject_id if row else None)

    return await context.db(kind)


async def _plan_returned(update: Update, context: QcContext, f: Document | PhotoSize, size: int | None,
                         name: str | None, export_id: int | None) -> None:
    """A workbook replying to /plan's message: checked, stored, previewed with 确认导入."""
    rq = req(context)
    try:
        await context.in_env(update, lambda s, env: planning.check_returned(s, env, size=size, file_name=name))
        data = await _download(context, f.file_id)
        sha, _ = await asyncio.to_thread(store_new_blob, context.settings.storage.dir, data)
    except DomainError as err:
        await context.refuse(update, err)
        return
    await context.act(update, lambda s, env: planning.previewed(s, env, rq, data=data, sha256=sha,
                                                                 file_name=name or "工作计划.xlsx",
                                                                 export_id=export_id))


async def on_plan(update: Update, context: QcContext) -> None:
    """/plan: the live plan as a workbook; a workbook sent back replying to it is previewed."""
    rq = req(context)
    try:
        book = await context.in_env(update, lambda s, env: planning.workbook(s, env, rq))
        campaign_id = await context.in_env(update, lambda s, env: env.campaign_id)
    except DomainError as err:
        await context.refuse(update, err)
        return
    message = update.effective_message
    assert message is not None
    sent = await message.reply_document(book.data, filename=book.file_name, caption=book.caption,
                                        parse_mode="HTML", do_quote=True)
    now = context.now()

    def remember_it(session: Session) -> None:
        remember(session, campaign_id=campaign_id, chat_id=sent.chat_id, message_id=sent.message_id,
                 kind=SubjectKind.plan, subject_id=book.export_id, now=now)

    await context.db(remember_it)


async def on_addunit(update: Update, context: QcContext) -> None:
    """/addunit 单位名 [区直单位|街道|驻区单位]: a new responsible unit."""
    usage = "/addunit 单位名称 类型（区直单位、街道或驻区单位，默认区直单位），例如 /addunit 红光街道 街道"
    parts = _rest(update).split()
    if not parts or len(parts) > 2:
        await context.refuse(update, InvalidInput(f"用法：{usage}"))
        return
    rq, kind = req(context), parts[1] if len(parts) > 1 else "区直单位"
    await context.act(update, lambda s, env: planning.add_unit(s, env, rq, parts[0], kind))


async def on_assign(update: Update, context: QcContext) -> None:
    """/assign 10.1 区市场监管局: who owes a criterion."""
    usage = "/assign 项号.细则号 单位名称，例如 /assign 10.1 区市场监管局"
    parts = _rest(update).split(maxsplit=1)
    try:
        if len(parts) < 2:
            raise InvalidInput(f"用法：{usage}")
        item_no, crit_no = parse_criterion_ref(parts[0], usage=usage)
    except DomainError as err:
        await context.refuse(update, err)
        return
    rq, units = req(context), _unit_names(parts[1])
    await context.act(update, lambda s, env: planning.assign(s, env, rq, f"{item_no}.{crit_no}", units))


async def on_waive(update: Update, context: QcContext) -> None:
    """/waive 10.1 原因: give a criterion up (its points count as lost), with the reason."""
    usage = "/waive 项号.细则号 原因，例如 /waive 10.1 本区没有法定计量检定机构"
    parts = _rest(update).split(maxsplit=1)
    try:
        if not parts:
            raise InvalidInput(f"用法：{usage}")
        item_no, crit_no = parse_criterion_ref(parts[0], usage=usage)
        if len(parts) < 2:
            raise InvalidInput(f"请写明放弃的原因（会显示在评分项和台账中）。用法：{usage}")
        reason = check_note(parts[1], what="放弃原因")
    except DomainError as err:
        await context.refuse(update, err)
        return
    rq = req(context)
    await context.act(update, lambda s, env: planning.waive(s, env, rq, f"{item_no}.{crit_no}", reason or ""))


async def on_taskunits(update: Update, context: QcContext) -> None:
    """/taskunits 7 区财政局、区发改委: the units carrying a task (the first leads)."""
    usage = "/taskunits 任务号 单位1、单位2（第一个为牵头单位），例如 /taskunits 7 区财政局、区发改委"
    parts = _rest(update).split(maxsplit=1)
    try:
        if len(parts) < 2:
            raise InvalidInput(f"用法：{usage}")
        no = parse_task_no(parts[0], usage=usage)
    except DomainError as err:
        await context.refuse(update, err)
        return
    rq, units = req(context), _unit_names(parts[1])
    await context.act(update, lambda s, env: planning.task_units(s, env, rq, no, units))


def _unit_names(text: str) -> list[str]:
    return [p for p in re.split(r"[、，,；;\s]+", normalize(text)) if p]


# ================================================================ coordinator


async def on_status(update: Update, context: QcContext) -> None:
    """/status: the whole campaign against the official score (coordinator, leaders)."""
    rq = req(context)
    await context.act(update, lambda s, env: reading.status(s, env, rq))
    await send_status_chart(update, context)


async def on_unit(update: Update, context: QcContext) -> None:
    """/unit 单位名: one unit's assignments and criteria."""
    rq, text = req(context), _rest(update)
    await context.act(update, lambda s, env: reading.unit_status(s, env, rq, text))


async def on_task(update: Update, context: QcContext) -> None:
    """/task N: a task and each responsible unit's state."""
    try:
        no = parse_task_no(_rest(update), usage="/task 任务号，例如 /task 7")
    except DomainError as err:
        await context.refuse(update, err)
        return
    rq = req(context)
    await context.act(update, lambda s, env: reading.task_view(s, env, rq, no))


async def on_item(update: Update, context: QcContext) -> None:
    """/item N: a score item, its criteria and points."""
    try:
        no = parse_item_no(_rest(update), usage="/item 评分项编号，例如 /item 7")
    except DomainError as err:
        await context.refuse(update, err)
        return
    rq = req(context)
    await context.act(update, lambda s, env: reading.item_view(s, env, rq, no))


async def on_review(update: Update, context: QcContext) -> None:
    """/review: what waits for the coordinator, with 通过/退回 buttons."""
    rq = req(context)
    await context.act(update, lambda s, env: review.review(s, env, rq))


async def on_deadline(update: Update, context: QcContext) -> None:
    """/deadline N YYYY-MM-DD 原因: move a task's deadline (audited with the reason; the units
    are told; reminders re-plan)."""
    usage = "/deadline 任务号 新日期 原因，例如 /deadline 7 2027年6月30日 等待区政府常务会议审议"
    parts = _rest(update).split(maxsplit=2)
    try:
        if len(parts) < 2:
            raise InvalidInput(f"用法：{usage}")
        no, new = parse_task_no(parts[0], usage=usage), parse_date(parts[1], usage=usage, today=context.today())
        if len(parts) < 3 or not parts[2].strip():
            raise InvalidInput(f"请写明调整原因（会告知相关单位并记入台账）。用法：{usage}")
        reason = check_note(parts[2], what="调整原因")
    except DomainError as err:
        await context.refuse(update, err)
        return
    rq = req(context)
    await context.act(update, lambda s, env: review.deadline(s, env, rq, no, new, reason))
    await context.plan_changed()


# ================================================================ supervision


async def on_instruct(update: Update, context: QcContext) -> None:
    """/instruct [任务号|单位] 批示内容 (or as a reply to a task, item, unit or nudge message): a 批示."""
    rq, text, reply_to = req(context), _rest(update), _replied_bot_message_id(update, context)
    await context.act(update, lambda s, env: supervision.instruct_cmd(s, env, rq, reply_to, text))


async def on_close(update: Update, context: QcContext) -> None:
    """/close N: 办结 批示 N (a leader or the coordinator)."""
    rq, text = req(context), _rest(update)
    await context.act(update, lambda s, env: supervision.close_cmd(s, env, rq, text))


async def on_supervise(update: Update, context: QcContext) -> None:
    """/supervise 任务号 单位 原因 答复期限: a numbered 督办单 (coordinator)."""
    usage = supervision.SUPERVISE_USAGE
    parts = _rest(update).split()
    try:
        if len(parts) < 3:
            raise InvalidInput(f"用法：{usage}")
        no = parse_task_no(parts[0], usage=usage)
        reply_by = parse_date(parts[-1], usage=usage, today=context.today())
        if len(parts) < 4:
            raise InvalidInput(f"请写明督办原因。用法：{usage}")
        unit, reason = parts[1], check_note(" ".join(parts[2:-1]), what="督办原因")
    except DomainError as err:
        await context.refuse(update, err)
        return
    rq = req(context)
    await context.act(update, lambda s, env: supervision.supervise(s, env, rq, no, unit, reason or "", reply_by))
    await context.plan_changed()


async def on_bulletin(update: Update, context: QcContext) -> None:
    """/bulletin [发布 [表扬 单位…] [批评 单位…]]: the 通报, previewed or issued (text and DOCX)."""
    message = update.effective_message
    assert message is not None
    rq, text = req(context), _rest(update)
    try:
        plan = await context.in_env(update, lambda s, env: supervision.bulletin(s, env, rq, text))
    except DomainError as err:
        await context.refuse(update, err)
        return
    await context.deliver(update, plan.outs)
    data = await asyncio.to_thread(bulletin_docx, plan.data)
    name = f"{plan.data.title}（第{plan.data.issue}期）.docx"
    for chat_id in dict.fromkeys([message.chat_id, *plan.chat_ids]):  # the asker's chat may be a group
        try:
            await context.bot.send_document(chat_id, data, filename=name, caption=f"📄 {plan.data.title}（可直接打印）")
        except TelegramError as exc:
            log.warning("the bulletin document could not be sent to %s: %s", chat_id, exc)


# ==================================================================== buttons


async def on_button(update: Update, context: QcContext) -> None:
    """Any inline button: parsed strictly, checked against the database, answered."""
    query = update.callback_query
    assert query is not None
    message = query.message
    if not isinstance(message, Message):
        await query.answer(FORGED, show_alert=True)
        return
    try:
        btn = parse(query.data)
        if btn.kind == "f":
            await _file_chosen(update, context, message, btn.id)
            return
        rq = req(context)
        shown = message.text_html if message.text else ""
        answer: Answer = await context.in_env(
            update, lambda s, env: routing.press(s, env, rq, btn, message.chat_id, message.message_id, shown)
        )
    except DomainError as err:
        await query.answer(err.message[:200], show_alert=True)
        return
    await query.answer(answer.text[:200] or None, show_alert=answer.alert)
    if answer.outs:
        context.answer(update, answer.outs)
    if btn.kind in ("p", "t"):  # a plan applied or a deadline moved: the reminders re-plan now
        await context.plan_changed()


async def _file_chosen(update: Update, context: QcContext, question: Message, assignment_id: int) -> None:
    """A task pressed under “which task is this file for?”: file the message it replies to."""
    query = update.callback_query
    assert query is not None
    file_msg = question.reply_to_message
    found = _file_of(file_msg) if file_msg is not None else None
    if file_msg is None or found is None:
        raise InvalidInput("找不到原来的文件（可能已被删除），请重新发送。")
    f, size, mime, name = found
    rq, caption, file_message_id = req(context), file_msg.caption, file_msg.message_id
    out = await _store_file(update, context, f, size, name, caption, lambda s, env: reporting.chosen_target(
        s, env, rq, chat_id=question.chat_id, question_id=question.message_id, file_message_id=file_message_id,
        assignment_id=assignment_id, size=size, mime_type=mime, file_name=name, caption=caption))
    await query.answer("已归档")
    if out is not None:
        out.edit = (question.chat_id, question.message_id)  # the question becomes the answer
        context.answer(update, [out])


# ====================================================================== misc


async def on_unknown_command(update: Update, context: QcContext) -> None:
    """A command the bot does not know (private chats only)."""
    if update.effective_chat is not None and update.effective_chat.type == ChatType.PRIVATE:
        context.reply(update, "未知命令。发送 /help 查看你可以使用的命令。")


async def on_error(update: object, context: QcContext) -> None:
    """The ONE error handler: log update id, user id and traceback; tell the user briefly."""
    err = context.error
    tb = "".join(traceback.format_exception(None, err, err.__traceback__)) if err else ""
    if isinstance(update, Update):
        user = update.effective_user
        log.error(
            "update %s from user %s failed (%s):\n%s", update.update_id, user.id if user else None,
            describe_update(update, context.settings.logging.log_bodies), tb,
        )
        chat = update.effective_chat
        try:
            if update.callback_query is not None:
                await update.callback_query.answer(ERROR_TEXT, show_alert=True)
            elif chat is not None:
                await context.bot.send_message(chat.id, ERROR_TEXT)
        except TelegramError as exc:
            log.warning("could not tell chat about the error: %s", exc)
    else:
        log.error("error outside of an update (%r):\n%s", html.escape(str(update))[:200], tb)
