"""Telegram side of the dossier: /export, /withdraw and the /status picture.

* ``/export`` (coordinator, leaders; private chat): the ledger workbook, then the
  evidence dossier ZIP as documents (sendDocument). A dossier over Telegram's
  50 MB upload limit comes as several ZIPs, each complete, and the bot says so.
  ``/export 台账`` sends the workbook only.
* ``/withdraw 编号 [原因]``: its uploader or a coordinator withdraws an evidence
  file; it stays in the archive and the audit log. ``/withdraw`` alone lists the
  asker's files that can still be withdrawn.
* :func:`send_status_chart`: the /status picture (score by category, tasks by unit).

Database work runs in worker threads and is kept short: the ledger is read in
one read-only session and detached, and the workbook and ZIPs are written
after it closed, so an export never holds SQLite's lock while it compresses.
"""

from __future__ import annotations

import asyncio
import logging
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from sqlmodel import Session, col, select
from telegram import Update

from bot.context import Out, QcContext
from models import wording
from models.audit import record
from models.errors import DomainError, InvalidInput
from models.evidence import ACTIVE_STATES, target_label, withdraw_evidence
from models.members import Env
from models.permissions import Action, check
from models.status import campaign_status
from models.tables import Evidence
from reports.charts import ChartData, chart_data_from_status, render_chart
from reports.dossier import DossierResult, write_dossier
from reports.ledger import (
    Ledger,
    ledger_file_name,
    load_ledger,
    write_ledger_xlsx,
)

log = logging.getLogger(__name__)

#: ``bot_data`` key: the largest ZIP volume sent, in bytes (default: Telegram's 50 MB).
PART_BYTES_KEY = "export_part_bytes"
#: Seconds allowed for uploading one document.
UPLOAD_TIMEOUT = 600
LEDGER_ONLY_WORDS = frozenset({"台账", "xlsx", "excel", "表格", "ledger"})


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


# ========================================================================= /export


@dataclass(frozen=True, slots=True)
class _Built:
    xlsx: Path
    dossier: DossierResult | None
    items: int
    evidence: int


def _build(ledger: Ledger, *, folder: Path, storage_dir: Path, with_zip: bool, part_bytes: int) -> _Built:
    xlsx = folder / ledger_file_name(ledger)
    write_ledger_xlsx(ledger, xlsx)
    dossier = None
    if with_zip:
        dossier = write_dossier(ledger, storage_dir=storage_dir, out=folder / "zip" / xlsx.name,
                                part_limit=part_bytes)
    return _Built(xlsx=xlsx, dossier=dossier, items=len(ledger.items), evidence=len(ledger.files))


async def on_export(update: Update, context: QcContext) -> None:
    """/export [台账]: the ledger workbook and the evidence dossier, as documents."""
    message = update.effective_message
    assert message is not None
    words = {w.lower() for w in (context.args or [])}
    with_zip = not (words & LEDGER_ONLY_WORDS)
    now, today = context.now(), context.today()
    settings = context.settings

    def allowed(session: Session, env: Env) -> int:
        check(member=env.member, action=Action.export)
        record(session=session, actor=env.actor, action="ledger.export", entity="campaign",
               entity_id=env.campaign_id, at=now, campaign_id=env.campaign_id,
               after={"zip": with_zip})
        return env.campaign_id

    try:
        campaign_id = await context.in_env(update, allowed)
    except DomainError as err:
        await context.refuse(update, err)
        return
    await message.reply_text("⏳ 正在生成台账" + ("和证明材料包" if with_zip else "") + "，请稍候……",
                             do_quote=True)
    # A test may shrink the volumes through bot_data; otherwise the configuration decides.
    part_bytes = int(context.bot_data.get(PART_BYTES_KEY, settings.export.part_bytes))
    with tempfile.TemporaryDirectory(prefix="qcbot-export-") as tmp:
        try:
            ledger = await asyncio.to_thread(
                load_ledger, context.engine, campaign_id=campaign_id, today=today, now=now,
                yellow_working_days=settings.campaign.yellow_working_days,
            )
            built = await asyncio.to_thread(
                _build, ledger, folder=Path(tmp), storage_dir=settings.storage.dir,
                with_zip=with_zip, part_bytes=part_bytes,
            )
        except DomainError as err:
            await context.refuse(update, err)
            return
        chat_id = message.chat_id
        with built.xlsx.open("rb") as fh:
            await context.bot.send_document(
                chat_id, fh, filename=built.xlsx.name, write_timeout=UPLOAD_TIMEOUT,
                caption=f"📒 台账（{wording.full_date(today)}）：自评表、任务表、单位汇总、材料清单、操作日志。"
                        f"可直接打印（A4 横向）。",
            )
        if built.dossier is None:
            return
        paths = built.dossier.paths
        for k, path in enumerate(paths, start=1):
            part = f"第 {k}/{len(paths)} 部分，" if len(paths) > 1 else ""
            with path.open("rb") as fh:
                await context.bot.send_document(
                    chat_id, fh, filename=path.name, write_timeout=UPLOAD_TIMEOUT,
                    caption=f"🗂 证明材料包（{part}{_mb(path.stat().st_size)}）",
                )
        total = built.dossier.total_bytes
        if built.dossier.split:
            text = (f"✅ 已导出：{built.evidence} 份证明材料，共 {_mb(total)}，超过 Telegram 单个文件 "
                    f"{_mb(part_bytes)} 的上限，已分为 <b>{len(paths)} 个压缩包</b>发送。"
                    f"每个压缩包都可以单独解压，都附有完整台账（索引）。")
        else:
            text = (f"✅ 已导出：{built.evidence} 份证明材料，按评分项和任务分文件夹存放，"
                    f"台账（索引）在压缩包根目录。")
        await context.deliver(update, [Out(text, quote=False)])


# ======================================================================= /withdraw

_NUMBER = re.compile(r"^#?(\d{1,9})$")


def parse_evidence_no(text: str) -> int:
    match = _NUMBER.match(text.strip())
    if match is None:
        raise InvalidInput("请写证明材料编号，例如 /withdraw 12（编号见“材料清单”或 /withdraw 列表）。")
    return int(match.group(1))


def _my_files(session: Session, env: Env) -> Out:
    check(member=env.member, action=Action.my_tasks)
    rows = list(session.exec(
        select(Evidence)
        .where(Evidence.campaign_id == env.campaign_id, Evidence.member_id == env.member.id,  # type: ignore[union-attr]
               col(Evidence.state).in_(list(ACTIVE_STATES)))
        .order_by(col(Evidence.created_at).desc(), col(Evidence.id).desc())
        .limit(15)
    ))
    if not rows:
        return Out("你目前没有可以撤回的证明材料。")
    lines = ["你提交的证明材料（最近 15 份）：撤回请发送 /withdraw 编号 [原因]"]
    for ev in rows:
        where = target_label(session, task_id=ev.task_id, item_id=ev.item_id,
                             criterion_id=ev.criterion_id)
        lines.append(f"#{ev.id} {wording.esc(where)}《{wording.esc(ev.file_name)}》")
    return Out("\n".join(lines))


async def on_withdraw(update: Update, context: QcContext) -> None:
    """/withdraw 编号 [原因]: withdraw an evidence file (uploader or coordinator)."""
    args = list(context.args or [])
    now = context.now()
    if not args:
        await context.act(update, _my_files)
        return
    try:
        number = parse_evidence_no(args[0])
    except DomainError as err:
        await context.refuse(update, err)
        return
    reason = " ".join(args[1:]).strip() or None

    def do(session: Session, env: Env) -> Out:
        ev = withdraw_evidence(session, evidence_id=number, member=env.member, actor=env.actor,
                               now=now, campaign_id=env.campaign_id, reason=reason)
        return Out(f"↩️ 已撤回证明材料 #{ev.id}《{wording.esc(ev.file_name)}》。"
                   f"文件仍保留在档案和操作日志中，不再列入台账和材料包。")

    await context.act(update, do)


# ==================================================================== /status chart


async def send_status_chart(update: Update, context: QcContext) -> None:
    """Send the /status picture to the chat of ``update`` (after the /status text).

    Silently does nothing when the asker may not see the status (the text
    handler already said why). Best effort: the picture follows the text in the chat's queue,
    and a chart that cannot be drawn or sent is logged, not reported as a failed /status.
    """
    message = update.effective_message
    if message is None:
        return
    today = context.today()
    yellow = context.settings.campaign.yellow_working_days

    def data(session: Session, env: Env) -> ChartData:
        check(member=env.member, action=Action.view_status)
        status = campaign_status(session=session, campaign_id=env.campaign_id, today=today,
                                 yellow_working_days=yellow)
        return chart_data_from_status(status)

    try:
        chart = await context.in_env(update, data)
        png = await asyncio.to_thread(render_chart, chart)
    except DomainError:
        return
    except Exception:  # the text went out: a missing picture is logged, not called a failure
        log.exception("the /status chart could not be drawn (the text was sent)")
        return
    context.send_later(message.chat_id, context.bot.send_photo(
        message.chat_id, png, caption="📊 各类别得分与各单位任务完成情况"))
