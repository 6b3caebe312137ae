"""The plan in the chat (coordinator): /plan's workbook and the one sent back, /addunit,
/assign, /waive, /taskunits; and the claim a linked task offers once approved.

Every change is ``models.plan``'s (through the seed importer); this module parses, checks the
permission and words the answer. A returned workbook is previewed (nothing changes) and
applied only by its 确认导入 button, while the live plan is still the one previewed.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import Session, col, select

from bot.actions import review
from bot.actions.common import Req, member_of
from bot.callbacks import FORGED, button
from bot.context import Answer, Out, Subject
from infra.files import blob_path
from models import links, plan, wording
from models.audit import record
from models.errors import Conflict, InvalidInput
from models.members import Env
from models.owners import responsible_unit_ids
from models.permissions import Action, check
from models.tables import Assignment, AuditLog, Criterion, ScoreItem, SubjectKind, Task
from reports.planbook import read_plan, write_plan

#: A plan workbook is a few hundred KB; anything much larger is not one.
MAX_PLAN_BYTES = 5 * 1024 * 1024
PREVIEW, APPLIED, DROPPED = "plan.preview", "plan.apply", "plan.cancel"


@dataclass(frozen=True, slots=True)
class Workbook:
    data: bytes
    file_name: str
    caption: str
    #: The plan.export audit row: it holds the plan's digest, so a workbook sent back is checked
    #: against the plan it was taken from.
    export_id: int


def workbook(session: Session, env: Env, req: Req) -> Workbook:
    """/plan: the live plan as a workbook (audited: who took the plan when)."""
    check(member=env.member, action=Action.edit_plan)
    if env.is_group:
        raise InvalidInput("工作计划请在与机器人的私聊中导出和修改（发送 /plan）。")
    doc = plan.live_plan(session=session, campaign_id=env.campaign_id)
    row = record(session=session, actor=env.actor, action="plan.export", entity="campaign",
                 entity_id=env.campaign_id, at=req.now, campaign_id=env.campaign_id, before=None,
                 after={"tasks": len(doc.tasks), "units": len(doc.units), "links": len(doc.links),
                        "live": plan.plan_digest(doc)})
    session.flush()
    name = f"{doc.campaign.district}_工作计划_{req.today:%Y%m%d}.xlsx"
    caption = (f"📋 工作计划（{wording.full_date(req.today)}）：单位 {len(doc.units)} 个、任务 {len(doc.tasks)} 项、"
               f"评分项 {len(doc.score_items)} 项、任务与细则的关联 {len(doc.links)} 条。"
               "在 Excel 中修改后，<b>回复本消息</b>发回工作簿；我会先列出变化，确认后才导入。")
    return Workbook(write_plan(doc), name, caption, row.id)  # type: ignore[arg-type]


def check_returned(session: Session, env: Env, *, size: int | None, file_name: str | None) -> None:
    """Before downloading a workbook replying to /plan's message: who and what."""
    check(member=env.member, action=Action.edit_plan)
    if not (file_name or "").lower().endswith(".xlsx"):
        raise InvalidInput("请发回 Excel 工作簿（.xlsx 文件）。")
    if size is not None and size > MAX_PLAN_BYTES:
        raise InvalidInput("这个文件太大，不是工作计划工作簿（应小于 5 MB）。")


def previewed(session: Session, env: Env, req: Req, *, data: bytes, sha256: str, file_name: str,
              export_id: int | None) -> Out:
    """A returned workbook: the change it makes (nothing changed yet), with 确认导入 / 取消.
    Refused when the plan changed since that workbook was exported (it would undo those changes)."""
    check(member=env.member, action=Action.edit_plan)
    base = plan.live_plan(session=session, campaign_id=env.campaign_id)
    taken = session.get(AuditLog, export_id) if export_id is not None else None
    if taken is None or taken.action != "plan.export" or taken.campaign_id != env.campaign_id:
        raise InvalidInput("请回复我最近发出的工作计划工作簿消息发送（发送 /plan 获取）。")
    if (taken.after or {}).get("live") != plan.plan_digest(base):
        raise Conflict("这份工作簿导出后，工作计划已有其他修改；按它导入会撤销那些修改。"
                       "请重新发送 /plan 导出最新的工作簿，在新工作簿上修改后发回。")
    doc = read_plan(data, base=base)
    change = plan.preview(session=session, campaign_id=env.campaign_id, doc=doc, actor=env.actor, now=req.now)
    if not change.changed:
        return Out("📋 这份工作簿与现行工作计划相同，没有需要导入的变化。")
    row = record(session=session, actor=env.actor, action=PREVIEW, entity="campaign", entity_id=env.campaign_id,
                 at=req.now, campaign_id=env.campaign_id, before=None,
                 after={"sha256": sha256, "file_name": file_name[:200], "live": plan.plan_digest(base),
                        "changes": len(change.lines)},
                 note="预览工作计划的修改")
    session.flush()
    text = f"📋 《{wording.esc(file_name)}》将对工作计划做如下修改（尚未生效）：\n{wording.esc(change.text())}"
    buttons = [[("✅ 确认导入", button("p", "ok", row.id)), ("取消", button("p", "no", row.id))]]  # type: ignore[arg-type]
    return Out(text, buttons=buttons, subject=Subject(SubjectKind.plan_preview, row.id, env.campaign_id, None))


def _preview_row(session: Session, env: Env, preview_id: int) -> AuditLog:
    row = session.get(AuditLog, preview_id)
    if row is None or row.action != PREVIEW or row.campaign_id != env.campaign_id:
        raise InvalidInput(FORGED)
    done = session.exec(select(AuditLog).where(
        col(AuditLog.action).in_([APPLIED, DROPPED]), AuditLog.entity == "plan_preview",
        AuditLog.entity_id == preview_id)).first()
    if done is not None:
        raise Conflict("这次修改已经处理过了（已导入或已取消）。")
    return row


def decided(session: Session, env: Env, req: Req, preview_id: int, apply: bool, chat_id: int,
            message_id: int) -> Answer:
    """确认导入 (the plan is still the one previewed: apply the workbook) or 取消."""
    check(member=env.member, action=Action.edit_plan)
    plan.lock(session=session, campaign_id=env.campaign_id)  # two presses queue here: one applies
    row = _preview_row(session, env, preview_id)
    after = row.after or {}
    if not apply:
        record(session=session, actor=env.actor, action=DROPPED, entity="plan_preview", entity_id=preview_id,
               at=req.now, campaign_id=env.campaign_id, before=None, after=None, note="取消导入工作计划")
        return Answer("已取消", outs=[Out("📋 已取消，工作计划没有改动。", edit=(chat_id, message_id))])
    base = plan.live_plan(session=session, campaign_id=env.campaign_id)
    if plan.plan_digest(base) != after.get("live"):
        raise Conflict("预览之后工作计划已有其他修改。请重新发送 /plan 导出最新的工作簿再修改。")
    try:
        data = blob_path(req.settings.storage.dir, str(after.get("sha256"))).read_bytes()
    except (OSError, ValueError):
        raise Conflict("预览的工作簿已不在服务器上，请重新发送。") from None
    doc = read_plan(data, base=base)
    change = plan.apply(session=session, campaign_id=env.campaign_id, doc=doc, actor=env.actor, now=req.now)
    record(session=session, actor=env.actor, action=APPLIED, entity="plan_preview", entity_id=preview_id,
           at=req.now, campaign_id=env.campaign_id, before=None, after={"changes": len(change.lines)},
           note="导入工作计划")
    who = wording.esc(member_of(env).display_name or "")
    text = (f"✅ 工作计划已更新（{who} · {wording.when(req.now, req.settings.campaign.tz)}），"
            f"共 {len(change.lines)} 处修改，已记入操作日志。")
    outs = [Out(text, edit=(chat_id, message_id))]
    for task_id, old in change.moved:  # a moved deadline reaches its units, as /deadline's does
        task = session.get(Task, task_id)
        if task is not None:
            outs += review.deadline_notices(session, task, review.moved_words(session, task, old))
    return Answer("已导入", outs=outs)


def _said(change: plan.PlanChange, done: str) -> Out:
    if not change.changed:
        return Out("工作计划没有变化。")
    return Out(f"✅ {done}\n{wording.esc(change.text())}")


def add_unit(session: Session, env: Env, req: Req, name: str, kind: str) -> Out:
    """/addunit 单位名 [区直单位|街道|驻区单位]."""
    check(member=env.member, action=Action.edit_plan)
    change = plan.add_unit(session=session, campaign_id=env.campaign_id, name=name, kind=kind,
                           actor=env.actor, now=req.now)
    return _said(change, f"已添加单位“{wording.esc(name)}”（{kind}）。可用 /invite {wording.esc(name)} 邀请其联络员。")


def assign(session: Session, env: Env, req: Req, key: str, units: list[str]) -> Out:
    """/assign 项号.细则号 单位…: who owes a criterion."""
    check(member=env.member, action=Action.edit_plan)
    change = plan.assign_criterion(session=session, campaign_id=env.campaign_id, key=key, units=units,
                                   actor=env.actor, now=req.now)
    return _said(change, f"细则{wording.esc(key)}已指定责任单位。")


def waive(session: Session, env: Env, req: Req, key: str, reason: str) -> Out:
    """/waive 项号.细则号 原因: the criterion is given up (its points count as 已失分)."""
    check(member=env.member, action=Action.edit_plan)
    change = plan.waive_criterion(session=session, campaign_id=env.campaign_id, key=key, reason=reason,
                                  actor=env.actor, now=req.now)
    return _said(change, f"细则{wording.esc(key)}已放弃，计为{wording.LOST}。")


def task_units(session: Session, env: Env, req: Req, no: int, units: list[str]) -> Out:
    """/taskunits 任务号 单位…: the units that carry a task (the first leads)."""
    check(member=env.member, action=Action.edit_plan)
    change = plan.set_task_units(session=session, campaign_id=env.campaign_id, task_no=no, units=units,
                                 actor=env.actor, now=req.now)
    return _said(change, f"任务{no}的责任单位已调整。")


# ------------------------------------------------------------------ linked criteria


def claim_buttons(session: Session, a: Assignment) -> list[list[tuple[str, str]]]:
    """Under "task approved": one button per linked criterion the unit can now claim."""
    return [[(f"✋ 申报细则{item.no}.{crit.no}（附任务材料）", button("l", "cl", crit.id, a.id))]  # type: ignore[arg-type]
            for crit, item in links.claimable(session=session, assignment=a)]


def linked_claim(session: Session, env: Env, req: Req, criterion_id: int, assignment_id: int) -> Answer:
    """The button: claim the linked criterion with the approved task's files."""
    a = session.get(Assignment, assignment_id)
    crit = session.get(Criterion, criterion_id)
    if a is None or crit is None or a.campaign_id != env.campaign_id or crit.campaign_id != env.campaign_id:
        raise InvalidInput(FORGED)
    item = session.get(ScoreItem, crit.item_id)
    check(member=env.member, action=Action.claim_criterion,
          responsible_unit_ids=[u for u in responsible_unit_ids(session, crit, item) if u == a.unit_id])
    _, filed = links.claim_linked(session=session, assignment_id=a.id, criterion_id=crit.id,  # type: ignore[arg-type]
                                  actor=env.actor, now=req.now)
    task = session.get(Task, a.task_id)
    label = f"细则{item.no if item else '?'}.{crit.no}"
    files = f"，已附任务{task.no if task else '?'}的证明材料 {filed} 份" if filed else "（该任务没有证明材料，可另行提交）"
    return Answer("已申报", outs=[Out(f"✋ {label} 已申报达标{files}，待协调员审核。",
                                    subject=Subject(SubjectKind.criterion, crit.id, crit.campaign_id, a.unit_id))])
