"""The evidence archive: refusals, content-addressed storage, the same file twice, withdrawal."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlmodel import Session, select

from infra.db import transaction
from infra.files import blob_path, store_blob
from models.audit import Actor
from models.errors import Conflict, InvalidInput, PermissionDenied
from models.evidence import (
    Upload,
    check_content,
    check_upload,
    known_blob,
    safe_file_name,
    same_file,
    submit_evidence,
    withdraw_evidence,
)
from models.seed import import_seed, load_seed
from models.tables import (
    AuditLog,
    Criterion,
    Evidence,
    EvidenceState,
    Member,
    Role,
    ScoreItem,
    Task,
    Unit,
)
from tests.conftest import SEED_PATH

NOW = datetime(2021, 8, 2, 2, 0, tzinfo=UTC)
PDF = "application/pdf"
ALLOWED = ("application/pdf", "image/jpeg", "image/png", "text/plain")


@pytest.fixture
def world(session: Session) -> dict:
    rep = import_seed(session=session, doc=load_seed(SEED_PATH), now=NOW, actor=Actor.cli())
    cid = rep.campaign_id
    units = {u.name: u for u in session.exec(select(Unit).where(Unit.campaign_id == cid))}
    liaison = Member(campaign_id=cid, telegram_user_id=1001, display_name="张联络",
                     role=Role.liaison, unit_id=units["区委办"].id)
    other = Member(campaign_id=cid, telegram_user_id=1002, display_name="李联络",
                   role=Role.liaison, unit_id=units["区财政局"].id)
    coord = Member(campaign_id=cid, telegram_user_id=1003, display_name="王协调",
                   role=Role.coordinator, unit_id=units["区市场监管局"].id)
    session.add_all([liaison, other, coord])
    session.flush()
    item1 = session.exec(select(ScoreItem).where(ScoreItem.campaign_id == cid,
                                                 ScoreItem.no == 1)).one()
    item2 = session.exec(select(ScoreItem).where(ScoreItem.campaign_id == cid,
                                                 ScoreItem.no == 2)).one()
    crit = session.exec(select(Criterion).where(Criterion.item_id == item1.id,
                                                Criterion.no == 3)).one()
    task1 = session.exec(select(Task).where(Task.campaign_id == cid, Task.no == 1)).one()
    session.commit()
    return {"cid": cid, "units": units, "liaison": liaison, "other": other, "coord": coord,
            "item1": item1, "item2": item2, "crit": crit, "task1": task1}


@pytest.fixture
def store(tmp_path: Path) -> Path:
    return tmp_path / "evidence"


def _submit(session: Session, w: dict, data: bytes, tmp: Path, **target: int | None):
    sha, _ = store_blob(tmp, data)
    return submit_evidence(
        session, Upload(campaign_id=w["cid"], unit_id=w["liaison"].unit_id, member_id=w["liaison"].id,
                        sha256=sha, size=len(data), mime_type=PDF, original_name="会议纪要.pdf",
                        telegram_file_unique_id="AgAD-" + sha[:8], **target),
        actor=Actor(kind="telegram", member_id=w["liaison"].id), now=NOW,
    )


# ------------------------------------------------------------------------ refusals


def test_refuses_files_over_the_download_limit_before_download() -> None:
    with pytest.raises(InvalidInput) as exc:
        check_upload(size=20 * 1024 * 1024 + 1, mime_type=PDF, file_name="a.pdf",
                     max_mb=20, allowed_types=ALLOWED)
    assert "文件太大" in str(exc.value) and "20 MB" in str(exc.value)
    # Exactly at the limit is fine.
    assert check_upload(size=20 * 1024 * 1024, mime_type=PDF, file_name="a.pdf",
                        max_mb=20, allowed_types=ALLOWED) == PDF


def test_refuses_the_real_size_after_download_when_telegram_did_not_say() -> None:
    check_upload(size=None, mime_type=PDF, file_name="a.pdf", max_mb=1, allowed_types=ALLOWED)
    with pytest.raises(InvalidInput, match="文件太大"):
        check_content(b"%PDF" + b"0" * (1024 * 1024), mime_type=PDF, max_mb=1)


@pytest.mark.parametrize(
    ("mime", "name"),
    [("application/x-msdownload", "setup.exe"), (None, "script.sh"), ("video/mp4", "a.mp4")],
)
def test_refuses_types_outside_the_allow_list(mime: str | None, name: str) -> None:
    with pytest.raises(InvalidInput) as exc:
        check_upload(size=100, mime_type=mime, file_name=name, max_mb=20, allowed_types=ALLOWED)
    assert "不支持这种文件类型" in str(exc.value)
    assert "PDF" in str(exc.value)


def test_refuses_content_that_is_not_its_declared_type() -> None:
    with pytest.raises(InvalidInput, match="内容与类型不符"):
        check_content(b"MZ\x90\x00 not a pdf", mime_type=PDF, max_mb=20)


# ------------------------------------------------------------------------ storage


def test_storage_is_content_addressed_and_stores_once(tmp_path: Path) -> None:
    data = b"%PDF-1.4 minutes of the committee"
    sha, path = store_blob(tmp_path, data)
    assert sha == hashlib.sha256(data).hexdigest()
    assert path == tmp_path / sha[:2] / sha
    assert path.read_bytes() == data
    mtime = path.stat().st_mtime_ns
    assert store_blob(tmp_path, data) == (sha, path)
    assert path.stat().st_mtime_ns == mtime
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == [path]


@pytest.mark.parametrize(
    ("name", "safe"),
    [
        ("../../etc/passwd", "passwd"),
        ("..\\..\\boot.ini", "boot.ini"),
        ("会议纪要:终稿?.pdf", "会议纪要_终稿_.pdf"),
        ("   ", "证明材料.pdf"),
        ("..", "证明材料.pdf"),
        ("a\x00b\nc.pdf", "a_b_c.pdf"),
    ],
)
def test_user_names_never_become_paths(name: str, safe: str) -> None:
    assert safe_file_name(name, fallback="证明材料.pdf") == safe


def test_blob_path_only_takes_a_digest(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        blob_path(tmp_path, "../../etc/passwd")


# ------------------------------------------------------------------ the same file twice


def test_same_file_same_item_is_recognised(session: Session, world: dict, store: Path) -> None:
    data = b"%PDF-1.4 once"
    first = _submit(session, world, data, store, item_id=world["item1"].id)
    assert first.created and first.warning is None
    again = _submit(session, world, data, store, item_id=world["item1"].id)
    assert not again.created
    assert again.evidence.id == first.evidence.id
    assert "提交过" in (again.warning or "")
    rows = session.exec(select(Evidence).where(Evidence.campaign_id == world["cid"])).all()
    assert len(rows) == 1


def test_another_units_copy_of_a_file_is_never_named_to_a_liaison(
    session: Session, world: dict, store: Path
) -> None:
    """区财政局 hands in the file 区委办 handed in for task 1 (a joint document): it is filed for
    区财政局 too, and nothing tells 区财政局's liaison about 区委办's earlier hand-in."""
    data = b"%PDF-1.4 joint"
    first = _submit(session, world, data, store, task_id=world["task1"].id)
    theirs = {**world, "liaison": world["other"]}
    second = _submit(session, theirs, data, store, task_id=world["task1"].id)
    assert second.created and second.evidence.id != first.evidence.id
    assert second.warning is None
    again = _submit(session, theirs, data, store, task_id=world["task1"].id)
    assert not again.created and again.evidence.id == second.evidence.id


def test_same_file_for_another_item_is_reused_with_a_warning(
    session: Session, world: dict, store: Path
) -> None:
    data = b"%PDF-1.4 shared"
    first = _submit(session, world, data, store, item_id=world["item1"].id)
    second = _submit(session, world, data, store, criterion_id=world["crit"].id)
    assert second.created
    assert second.also_filed_for == (first.evidence,)
    assert second.warning is not None
    assert "评分项1（组织保障）" in second.warning
    assert "细则1.3" in second.warning
    third = _submit(session, world, data, store, task_id=world["task1"].id)
    assert third.created and "任务1" not in (third.warning or "").split("现同时")[0]
    # One blob on disk, three rows pointing at it.
    assert len([p for p in store.rglob("*") if p.is_file()]) == 1
    assert len(same_file(session, campaign_id=world["cid"], sha256=first.evidence.sha256)) == 3
    reuse = session.exec(select(AuditLog).where(AuditLog.action == "evidence.reuse")).all()
    assert len(reuse) == 2


def test_known_blob_lets_the_flow_skip_get_file(session: Session, world: dict, store: Path) -> None:
    data = b"%PDF-1.4 known"
    sub = _submit(session, world, data, store, item_id=world["item1"].id)
    uid = sub.evidence.telegram_file_unique_id
    assert known_blob(session, storage_dir=store, campaign_id=world["cid"],
                      telegram_file_unique_id=uid) == sub.evidence.sha256
    assert known_blob(session, storage_dir=store, campaign_id=world["cid"],
                      telegram_file_unique_id="AgAD-unknown") is None
    blob_path(store, sub.evidence.sha256).unlink()
    assert known_blob(session, storage_dir=store, campaign_id=world["cid"],
                      telegram_file_unique_id=uid) is None


# ---------------------------------------------------------------------- withdrawal


def test_uploader_withdraws_and_the_file_stays(session: Session, world: dict, store: Path) -> None:
    data = b"%PDF-1.4 withdraw me"
    sub = _submit(session, world, data, store, item_id=world["item1"].id)
    session.commit()
    later = datetime(2021, 8, 3, tzinfo=UTC)
    row = withdraw_evidence(session, evidence_id=sub.evidence.id, member=world["liaison"],
                            actor=Actor(kind="telegram", member_id=world["liaison"].id),
                            now=later, reason="发错了")
    session.commit()
    session.expire_all()
    row = session.get(Evidence, sub.evidence.id)
    assert row.state == EvidenceState.withdrawn
    assert row.withdrawn_at == later
    assert row.withdrawn_by_member_id == world["liaison"].id
    assert blob_path(store, row.sha256).read_bytes() == data
    log = session.exec(select(AuditLog).where(AuditLog.action == "evidence.withdraw")).one()
    assert log.entity_id == row.id and log.note == "发错了"
    assert log.before["state"] == "submitted" and log.after["state"] == "withdrawn"
    with pytest.raises(Conflict, match="已经撤回"):
        withdraw_evidence(session, evidence_id=row.id, member=world["liaison"],
                          actor=Actor.cli(), now=later)
    # Withdrawn, the same file may be handed in again for the same item.
    again = _submit(session, world, data, store, item_id=world["item1"].id)
    assert again.created and again.evidence.id != row.id


def test_another_liaison_may_not_withdraw_but_the_coordinator_may(
    session: Session, world: dict, store: Path
) -> None:
    sub = _submit(session, world, b"%PDF-1.4 x", store, item_id=world["item1"].id)
    with pytest.raises(PermissionDenied, match="不属于你的单位"):
        withdraw_evidence(session, evidence_id=sub.evidence.id, member=world["other"],
                          actor=Actor(kind="telegram", member_id=world["other"].id), now=NOW)
    with pytest.raises(PermissionDenied):
        withdraw_evidence(session, evidence_id=sub.evidence.id, member=None,
                          actor=Actor(kind="telegram"), now=NOW)
    row = withdraw_evidence(session, evidence_id=sub.evidence.id, member=world["coord"],
                            actor=Actor(kind="telegram", member_id=world["coord"].id), now=NOW)
    assert row.state == EvidenceState.withdrawn
    assert row.withdrawn_by_member_id == world["coord"].id


def test_removed_uploader_may_not_withdraw(session: Session, world: dict, store: Path) -> None:
    sub = _submit(session, world, b"%PDF-1.4 y", store, item_id=world["item1"].id)
    world["liaison"].active = False
    with pytest.raises(PermissionDenied):
        withdraw_evidence(session, evidence_id=sub.evidence.id, member=world["liaison"],
                          actor=Actor.cli(), now=NOW)


# ------------------------------------------------------------- through the real bot


def _stored_names(folder: Path) -> list[str]:
    return [p.name for p in Path(folder).rglob("*") if p.is_file()]


async def _liaison_with_prompt(harness, unit: str = "区委办"):  # noqa: ANN001, ANN202
    coord = await harness.coordinator("王主任")
    group = await harness.bound_group(coord)
    li = await harness.liaison("李四", unit, coordinator=coord)
    [prompt] = await harness.say(li, group, "/evidence 1")
    assert "回复本消息" in prompt["text"], prompt["text"]
    return coord, group, li, prompt


async def test_bot_archives_refuses_and_recognises_the_same_file(harness) -> None:  # noqa: ANN001
    coord, group, li, prompt = await _liaison_with_prompt(harness)
    data = b"%PDF-1.4 minutes of the first meeting"
    [ack] = await harness.send_file(li, group, "会议纪要.pdf", data, reply_to=prompt,
                                    mime_type="application/pdf", caption="第一次会议")
    assert "已收到" in ack["text"] and "会议纪要.pdf" in ack["text"]
    with harness.db() as s:
        [ev] = s.exec(select(Evidence)).all()
    assert ev.sha256 == hashlib.sha256(data).hexdigest()
    assert ev.caption == "第一次会议" and ev.mime_type == "application/pdf"
    assert ev.task_id is not None and ev.unit_id == harness.unit("区委办").id
    assert ev.telegram_file_id and ev.telegram_file_unique_id
    stored = blob_path(harness.settings.storage.dir, ev.sha256)
    assert stored.read_bytes() == data
    # No name from the user on the file system: only the digest.
    assert _stored_names(harness.settings.storage.dir) == [ev.sha256]

    # The very same file again: recognised, nothing new stored.
    [again] = await harness.send_file(li, group, "会议纪要(1).pdf", data, reply_to=prompt,
                                      mime_type="application/pdf")
    assert "无需重复提交" in again["text"] and again["text"].count("提交") == 2, again["text"]  # said once
    with harness.db() as s:
        assert len(s.exec(select(Evidence)).all()) == 1

    # Outside the allow-list, and over the Bot API's 20 MB download limit: refused.
    [refused] = await harness.send_file(li, group, "setup.exe", b"MZ\x90\x00",
                                        reply_to=prompt, mime_type="application/x-msdownload")
    assert "不支持这种文件类型" in refused["text"]
    big = b"%PDF" + b"\0" * (20 * 1024 * 1024)
    [too_big] = await harness.send_file(li, group, "扫描件.pdf", big, reply_to=prompt,
                                        mime_type="application/pdf")
    assert "文件太大" in too_big["text"] and "20 MB" in too_big["text"]
    # Downloaded: the first file, and its copy (a new Telegram file, recognised by sha256);
    # the refused ones never were.
    assert len(harness.api.calls_to("getFile")) == 2
    with harness.db() as s:
        assert len(s.exec(select(Evidence)).all()) == 1


async def test_bot_withdrawal_by_the_units_liaison_not_by_another_unit_or_a_former_uploader(harness) -> None:  # noqa: ANN001
    """Judged on who the person is now (the permission table's unit work): a liaison of the
    file's unit or a coordinator; not another unit's liaison, not the uploader once a leader."""
    coord, group, li, prompt = await _liaison_with_prompt(harness)
    await harness.send_file(li, group, "方案.pdf", b"%PDF-1.4 plan", reply_to=prompt,
                            mime_type="application/pdf")
    await harness.send_file(li, group, "附件.pdf", b"%PDF-1.4 annex", reply_to=prompt,
                            mime_type="application/pdf")
    with harness.db() as s:
        ev, annex = s.exec(select(Evidence).order_by(Evidence.id)).all()
    [listing] = await harness.say(li, li, "/withdraw")
    assert f"#{ev.id}" in listing["text"] and "方案.pdf" in listing["text"]
    other = await harness.liaison("赵六", "区住建局", coordinator=coord)
    [no] = await harness.say(other, other, f"/withdraw {ev.id}")
    assert "不属于你的单位" in no["text"]
    colleague = await harness.liaison("钱七", "区委办", coordinator=coord)
    [yes] = await harness.say(colleague, colleague, f"/withdraw {annex.id} 重复了")
    assert "已撤回" in yes["text"]
    [done] = await harness.say(li, group, f"/withdraw {ev.id} 发错了")
    assert "已撤回" in done["text"]
    [twice] = await harness.say(coord, coord, f"/withdraw {ev.id}")
    assert "已经撤回" in twice["text"]
    uploader = harness.member(li).id
    with harness.db() as s:
        row = s.get(Evidence, ev.id)
        assert row.state == EvidenceState.withdrawn
        assert row.withdrawn_by_member_id == uploader
        log = s.exec(select(AuditLog).where(AuditLog.action == "evidence.withdraw",
                                            AuditLog.entity_id == ev.id)).one()
        assert log.note == "发错了"
    assert blob_path(harness.settings.storage.dir, ev.sha256).is_file()
    [empty] = await harness.say(li, li, "/withdraw")
    assert "没有可以撤回" in empty["text"]
    # The uploader of a file who is a leader now (removed and invited again) may not withdraw it.
    await harness.send_file(li, group, "第三份.pdf", b"%PDF-1.4 third", reply_to=prompt,
                            mime_type="application/pdf")
    with harness.db() as s:
        third = s.exec(select(Evidence).order_by(Evidence.id.desc())).first()
    with transaction(harness.engine) as s:
        member = s.get(Member, harness.member(li).id)
        member.role, member.unit_id = Role.leader, None
    [refused] = await harness.say(li, li, f"/withdraw {third.id}")
    assert "领导账号为只读" in refused["text"]
