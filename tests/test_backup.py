"""Backups: restore into an empty database gives back every row and file; damage is caught."""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url
from sqlmodel import SQLModel

import qcbot
from infra import backup as bk
from infra.backup import (
    BackupError,
    backup_job,
    create_backup,
    prune,
    restore_backup,
    verify_backup,
)
from infra.db import make_engine, transaction
from infra.files import blob_path, store_blob
from infra.migrate import current_revision, head_revision, upgrade
from models.tables import (
    Assessment,
    AssessmentState,
    Assignment,
    AssignmentState,
    AuditLog,
    BotMessage,
    Campaign,
    Chat,
    ChatKind,
    Criterion,
    CriterionUnit,
    Evidence,
    EvidenceState,
    Invite,
    ItemUnit,
    Member,
    Outbox,
    OutboxState,
    Phase,
    Role,
    ScoreCategory,
    ScoreItem,
    Snooze,
    SubjectKind,
    Task,
    TaskGroup,
    Unit,
)
from qcbot.cli import main as cli_main
from tests.dbutil import backend, fresh_database_url

T0 = datetime(2026, 3, 2, 1, 30, 15, 123456, tzinfo=UTC)


# ------------------------------------------------------------------------ fixtures


@pytest.fixture
def source(db_url: str) -> Iterator[Engine]:
    """A migrated database (alembic_version filled, as in production)."""
    eng = make_engine(db_url)
    upgrade(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def storage(tmp_path: Path) -> Path:
    path = tmp_path / "evidence"
    path.mkdir()
    return path


def key_of(tmp_path: Path) -> Path:
    """The backup key of a test: outside every backup directory, as the configuration demands."""
    return tmp_path / "keys" / "backup.key"


def resign(dest: Path, manifest: dict[str, Any], tmp_path: Path) -> None:
    """Write ``manifest`` signed with the test's key: what qcbot itself would have written."""
    signed = bk.sign_manifest(manifest, bk.load_key(key_of(tmp_path)))
    (dest / "manifest.json").write_text(json.dumps(signed, ensure_ascii=False), encoding="utf-8")


def populate(engine: Engine, storage: Path) -> list[str]:
    """A small campaign touching every table; returns the evidence digests."""
    blobs = [
        b"%PDF-1.7 \xe8\xb4\xa8\xe9\x87\x8f\xe5\xbc\xba\xe5\x8c\xba" + bytes(range(256)) * 40,
        b"\x89PNG\r\n\x1a\n" + os.urandom(3000),
        "工作台账：第一季度\n".encode() * 50,
    ]
    shas = [store_blob(storage, data)[0] for data in blobs]
    with transaction(engine) as s:
        c = Campaign(slug="yaohai", name="瑶海区质量强区", district="瑶海区", doc_number="瑶办发〔2021〕25号",
                     doc_date=date(2021, 6, 1), seed_warnings=[{"code": "W1", "msg": "合计 102 ≠ 100"}],
                     created_at=T0, updated_at=T0)
        s.add(c)
        s.flush()
        units = [Unit(campaign_id=c.id, name=n, aliases=[n[1:]], is_lead=(i == 0), sort_order=i)
                 for i, n in enumerate(["区市场监管局", "区教体局", "区住建局"])]
        s.add_all(units)
        s.add(Phase(campaign_id=c.id, no=1, name="动员部署", end_date=date(2021, 7, 31)))
        g = TaskGroup(campaign_id=c.id, no=1, title="制定一个方案")
        s.add(g)
        s.flush()
        task = Task(campaign_id=c.id, group_id=g.id, no=1, title="编制实施方案", detail="含“引号”与 emoji 🎯",
                    deadline=date(2021, 8, 31), planned_deadline=date(2021, 8, 31))
        s.add(task)
        cat = ScoreCategory(campaign_id=c.id, no=1, name="质量基础", stated_points=20.5)
        s.add(cat)
        s.flush()
        item = ScoreItem(campaign_id=c.id, category_id=cat.id, no=1, max_points=1.5, all_members=True)
        s.add(item)
        s.flush()
        crit = Criterion(campaign_id=c.id, item_id=item.id, no=1, text="建立台账", points=0.5, tier_group="a")
        s.add(crit)
        s.flush()
        s.add(ItemUnit(item_id=item.id, unit_id=units[1].id))
        s.add(CriterionUnit(criterion_id=crit.id, unit_id=units[1].id))
        a = Assignment(campaign_id=c.id, task_id=task.id, unit_id=units[1].id,
                       state=AssignmentState.submitted, percent=80, submitted_at=T0, updated_at=T0)
        s.add(a)
        m = Member(campaign_id=c.id, telegram_user_id=7_123_456_789, display_name="张三", role=Role.liaison,
                   unit_id=units[1].id, private_chat_id=7_123_456_789, created_at=T0)
        s.add(m)
        s.add(Chat(telegram_chat_id=-1_001_234_567_890, campaign_id=c.id, kind=ChatKind.group,
                   title="质量强区工作群", bound_at=T0, created_at=T0))
        s.flush()
        s.add(Invite(campaign_id=c.id, token="inv-abc", role=Role.liaison, unit_id=units[2].id,
                     created_by_member_id=m.id, created_at=T0, expires_at=T0 + timedelta(hours=72)))
        s.add(Assessment(campaign_id=c.id, criterion_id=crit.id, state=AssessmentState.claimed,
                         unit_id=units[1].id, claimed_by_member_id=m.id, claimed_at=T0, updated_at=T0))
        for i, sha in enumerate([*shas, shas[0]]):
            s.add(Evidence(campaign_id=c.id, task_id=task.id, unit_id=units[1].id, member_id=m.id,
                           sha256=sha, size=len(blobs[i % 3]), mime_type="application/pdf",
                           file_name=f"证明材料{i}.pdf", caption="见附件" if i else None,
                           state=EvidenceState.accepted if i == 1 else EvidenceState.submitted,
                           created_at=T0 + timedelta(minutes=i)))
        s.add(BotMessage(campaign_id=c.id, telegram_chat_id=-1_001_234_567_890, message_id=42,
                         subject_kind=SubjectKind.evidence, subject_id=1, created_at=T0))
        s.flush()
        s.add(Snooze(campaign_id=c.id, assignment_id=a.id, until=date(2021, 8, 20), by_member_id=m.id,
                     created_at=T0))
        first = Outbox(campaign_id=c.id, idem_key="m|a1|nudge|2021-08-24", telegram_chat_id=-1_001_234_567_890,
                       kind="nudge", payload={"text": "请于 8 月 31 日前提交", "n": [1, 2.5]},
                       due_at=T0, state=OutboxState.sent, sent_at=T0, created_at=T0)
        s.add(first)
        s.flush()
        s.add(Outbox(campaign_id=c.id, idem_key="m|a1|nudge|2021-08-25", telegram_chat_id=-1_001_234_567_890,
                     kind="nudge", due_at=T0, state=OutboxState.merged, merged_into_id=first.id, created_at=T0))
        s.add(AuditLog(campaign_id=c.id, at=T0, actor_kind="cli", action="seed.import", entity="campaign",
                       entity_id=c.id, after={"slug": "yaohai", "名称": "瑶海区"}))
    return shas


def snapshot_rows(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, in primary-key order, as the models read them."""
    out: dict[str, list[tuple[Any, ...]]] = {}
    with engine.connect() as conn:
        for table in SQLModel.metadata.sorted_tables:
            out[table.name] = [tuple(r) for r in conn.execute(sa.select(table).order_by(*table.primary_key))]
        out["alembic_version"] = [tuple(r) for r in conn.execute(sa.text("SELECT * FROM alembic_version"))]
    return out


def empty_target(db_url: str, tmp_path: Path, name: str = "restored") -> str:
    """The URL of an empty database to restore into.

    SQLite: a new file. PostgreSQL: a dump restores into the schema it was
    taken from, so the per-test schema is dropped and created again, empty.
    """
    if backend() == "sqlite":
        return f"sqlite:///{tmp_path / f'{name}.sqlite3'}"
    eng = make_engine(db_url)
    with eng.connect() as conn:
        schema = conn.exec_driver_sql("SELECT current_schema()").scalar_one()
    with eng.begin() as conn:
        conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
        conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    eng.dispose()
    return db_url


# ---------------------------------------------------------------------- round trip


def test_restore_into_empty_database_gives_back_every_row_and_file(
    source: Engine, storage: Path, db_url: str, tmp_path: Path
) -> None:
    shas = populate(source, storage)
    before = snapshot_rows(source)
    dest = tmp_path / "backups" / "b1"

    result = create_backup(source, storage, dest, now=T0, key_file=key_of(tmp_path))

    m = json.loads((dest / "manifest.json").read_text(encoding="utf-8"))
    assert m == result.manifest
    assert m["backend"] == backend()
    assert m["schema_revision"] == head_revision()
    assert m["qcbot_version"] == qcbot.__version__
    created = datetime.fromisoformat(m["created_at"])
    assert created == T0 and created.tzinfo is not None
    assert m["tables"] == {name: len(rows) for name, rows in before.items()}
    assert set(m["tables"]) == {t.name for t in SQLModel.metadata.sorted_tables} | {"alembic_version"}
    assert m["evidence"]["count"] == 3 and m["evidence"]["missing"] == []
    for sha in shas:
        assert m["files"][f"evidence/{sha[:2]}/{sha}"]["sha256"] == sha
    assert len(m["files"]) == 4  # the database and three distinct evidence files
    assert result.problems == [] and result.bytes == sum(f["size"] for f in m["files"].values())
    assert not [p for p in dest.parent.iterdir() if ".partial-" in p.name]
    verify_backup(dest, key_file=key_of(tmp_path))
    source.dispose()

    target_url = empty_target(db_url, tmp_path)
    target = make_engine(target_url)
    new_storage = tmp_path / "restored-evidence"
    try:
        restored = restore_backup(dest, target, new_storage, key_file=key_of(tmp_path))
        assert restored.files_written == 3 and restored.files_present == 0
        assert snapshot_rows(target) == before
        assert current_revision(target) == head_revision()
        for sha in shas:
            assert bk.sha256_file(blob_path(new_storage, sha)) == sha
        # Sequences came back too: new rows do not collide with restored ids.
        with transaction(target) as s:
            s.add(AuditLog(at=T0, action="after.restore", entity="campaign"))
            s.add(Campaign(slug="second", name="第二个", district="庐阳区"))
        assert len(snapshot_rows(target)["auditlog"]) == len(before["auditlog"]) + 1

        # Now it holds rows: a second restore is refused without --force ...
        with pytest.raises(BackupError, match="不是空的.*--force"):
            restore_backup(dest, target, new_storage, key_file=key_of(tmp_path))
        # ... and with it, the database about to be overwritten is saved first.
        forced = restore_backup(dest, target, new_storage, force=True, safety_dir=tmp_path / "safety", key_file=key_of(tmp_path))
        assert forced.files_present == 3 and forced.files_written == 0
        assert snapshot_rows(target) == before
        assert forced.safety_backup is not None
        assert verify_backup(forced.safety_backup, key_file=key_of(tmp_path))["tables"]["campaign"] == 2
    finally:
        target.dispose()


def test_restore_into_empty_migrated_database_is_allowed(
    source: Engine, storage: Path, db_url: str, tmp_path: Path
) -> None:
    populate(source, storage)
    before = snapshot_rows(source)
    create_backup(source, storage, tmp_path / "b", key_file=key_of(tmp_path))
    source.dispose()
    target = make_engine(empty_target(db_url, tmp_path))
    try:
        upgrade(target)  # `qcbot db upgrade` ran on the new machine: tables, no rows
        restore_backup(tmp_path / "b", target, storage, key_file=key_of(tmp_path))
        assert snapshot_rows(target) == before
    finally:
        target.dispose()


# -------------------------------------------------------------------- verification


def test_a_corrupted_evidence_file_fails_verification_and_restore(
    source: Engine, storage: Path, db_url: str, tmp_path: Path
) -> None:
    shas = populate(source, storage)
    dest = tmp_path / "b"
    create_backup(source, storage, dest, key_file=key_of(tmp_path))
    source.dispose()
    rel = f"evidence/{shas[1][:2]}/{shas[1]}"
    path = dest / rel
    data = bytearray(path.read_bytes())
    data[100] ^= 0x01  # one flipped bit, same size
    path.write_bytes(bytes(data))

    with pytest.raises(BackupError) as err:
        verify_backup(dest, key_file=key_of(tmp_path))
    message = str(err.value)
    assert rel in message and "sha256 校验失败" in message and "1 个问题" in message

    target_url = empty_target(db_url, tmp_path)
    target = make_engine(target_url)
    new_storage = tmp_path / "restored"
    try:
        with pytest.raises(BackupError, match="sha256 校验失败"):
            restore_backup(dest, target, new_storage, key_file=key_of(tmp_path))
        # Nothing was touched: no rows, no files.
        with target.connect() as conn:
            names = sa.inspect(conn).get_table_names()
        assert names == [] or sum(bk.database_rows(target).values()) == 0
        assert not new_storage.exists()
    finally:
        target.dispose()


def test_every_kind_of_damage_is_named(source: Engine, storage: Path, tmp_path: Path) -> None:
    shas = populate(source, storage)
    dest = tmp_path / "b"
    result = create_backup(source, storage, dest, key_file=key_of(tmp_path))
    db_file = dest / result.manifest["database"]["file"]
    with open(db_file, "ab") as fh:
        fh.write(b"\0")
    (dest / f"evidence/{shas[0][:2]}/{shas[0]}").unlink()
    with pytest.raises(BackupError) as err:
        verify_backup(dest, key_file=key_of(tmp_path))
    assert "2 个问题" in str(err.value)
    assert "大小不符" in str(err.value) and "文件缺失" in str(err.value)

    (dest / "manifest.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(BackupError, match="manifest.json 已损坏"):
        verify_backup(dest, key_file=key_of(tmp_path))
    (dest / "manifest.json").unlink()
    with pytest.raises(BackupError, match="缺少 manifest.json"):
        verify_backup(dest, key_file=key_of(tmp_path))


@pytest.mark.skipif(backend() != "sqlite", reason="a database file")
def test_an_unreadable_target_is_not_overwritten(source: Engine, storage: Path, tmp_path: Path) -> None:
    populate(source, storage)
    create_backup(source, storage, tmp_path / "b", key_file=key_of(tmp_path))
    broken = tmp_path / "broken.sqlite3"
    broken.write_bytes(b"this was the database once" * 200)
    target = make_engine(f"sqlite:///{broken}")
    try:
        with pytest.raises(BackupError, match="无法读取.*移到别处"):
            restore_backup(tmp_path / "b", target, storage, force=True, key_file=key_of(tmp_path))
    finally:
        target.dispose()
    assert broken.read_bytes() == b"this was the database once" * 200


def test_refuses_a_backup_of_the_other_backend(source: Engine, storage: Path, tmp_path: Path) -> None:
    populate(source, storage)
    dest = tmp_path / "b"
    create_backup(source, storage, dest, key_file=key_of(tmp_path))
    manifest = json.loads((dest / "manifest.json").read_text(encoding="utf-8"))
    old, new = manifest["database"]["file"], ("database.pgdump" if backend() == "sqlite" else "database.sqlite3")
    (dest / old).rename(dest / new)
    manifest["files"][new] = manifest["files"].pop(old)
    manifest["backend"] = "postgresql" if backend() == "sqlite" else "sqlite"
    manifest["database"] = {"file": new, "schema": "public"}
    resign(dest, manifest, tmp_path)  # a genuine backup of the other backend
    with pytest.raises(BackupError, match="不支持跨数据库类型恢复"):
        restore_backup(dest, source, storage, force=True, key_file=key_of(tmp_path))


def test_refuses_a_backup_from_a_newer_schema(source: Engine, storage: Path, tmp_path: Path) -> None:
    populate(source, storage)
    dest = tmp_path / "b"
    create_backup(source, storage, dest, key_file=key_of(tmp_path))
    manifest = json.loads((dest / "manifest.json").read_text(encoding="utf-8"))
    manifest["schema_revision"] = "9999_from_the_future"
    resign(dest, manifest, tmp_path)  # as if a newer qcbot wrote it with this key
    with pytest.raises(BackupError, match="9999_from_the_future"):
        restore_backup(dest, source, storage, force=True, key_file=key_of(tmp_path))


def test_missing_evidence_is_reported_and_the_rest_is_backed_up(
    source: Engine, storage: Path, tmp_path: Path
) -> None:
    shas = populate(source, storage)
    blob_path(storage, shas[2]).unlink()
    corrupt = blob_path(storage, shas[1])
    corrupt.write_bytes(b"not what was handed in")

    result = create_backup(source, storage, tmp_path / "b", key_file=key_of(tmp_path))

    assert len(result.problems) == 2
    reasons = {m["sha256"]: m["reason"] for m in result.manifest["evidence"]["missing"]}
    assert reasons[shas[2]] == "missing" and reasons[shas[1]].startswith("corrupt")
    assert result.manifest["evidence"]["count"] == 1
    verify_backup(tmp_path / "b", key_file=key_of(tmp_path))  # what it holds is intact


def test_destination_must_be_new(source: Engine, storage: Path, tmp_path: Path) -> None:
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "x").write_text("x")
    with pytest.raises(BackupError, match="不是空目录"):
        create_backup(source, storage, tmp_path / "b", key_file=key_of(tmp_path))
    (tmp_path / "e").mkdir()
    create_backup(source, storage, tmp_path / "e", key_file=key_of(tmp_path))  # an empty directory is fine
    verify_backup(tmp_path / "e", key_file=key_of(tmp_path))


# --------------------------------------------------------------------- concurrency


def test_backup_while_another_connection_writes_stays_consistent(
    source: Engine, storage: Path, db_url: str, tmp_path: Path
) -> None:
    """Each write transaction adds two audit rows; a consistent copy never holds one alone."""
    populate(source, storage)
    with transaction(source) as s:  # some bulk, so that a copy takes a moment
        s.add_all(AuditLog(at=T0, action="bulk", entity="x", entity_id=-1, note="填充" * 40)
                  for _ in range(3000))
    writer_engine = make_engine(db_url)
    stop = threading.Event()
    errors: list[BaseException] = []
    written = [0]

    def write() -> None:
        try:
            k = 0
            while not stop.is_set():
                k += 1
                with transaction(writer_engine) as s:
                    s.add(AuditLog(at=T0, action="pair.first", entity="x", entity_id=k))
                    s.flush()
                    s.add(AuditLog(at=T0, action="pair.second", entity="x", entity_id=k))
                written[0] = k
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    thread = threading.Thread(target=write, daemon=True)
    thread.start()
    try:
        while written[0] < 20:
            time.sleep(0.005)
        results = [create_backup(source, storage, tmp_path / f"b{i}", key_file=key_of(tmp_path)) for i in range(3)]
        during = written[0]
        time.sleep(0.05)
    finally:
        stop.set()
        thread.join(timeout=30)
        writer_engine.dispose()
    assert not errors, errors
    assert written[0] > during >= 20  # the writer was never blocked for long
    counts = [r.manifest["tables"]["auditlog"] for r in results]
    assert counts == sorted(counts)

    source.dispose()
    last = results[-1]
    target = make_engine(empty_target(db_url, tmp_path))
    try:
        restore_backup(last.path, target, tmp_path / "restored", key_file=key_of(tmp_path))  # checks counts vs manifest
        with target.connect() as conn:
            per_key = conn.execute(sa.text(
                "SELECT entity_id, COUNT(*) FROM auditlog WHERE action LIKE 'pair.%' "
                "GROUP BY entity_id HAVING COUNT(*) <> 2"
            )).all()
            pairs = conn.execute(sa.text(
                "SELECT COUNT(*) FROM auditlog WHERE action = 'pair.first'")).scalar_one()
        assert per_key == []
        assert pairs > 0
    finally:
        target.dispose()


# ----------------------------------------------------------------- schedule, prune


def _fake_backup(root: Path, name: str) -> Path:
    path = root / name
    path.mkdir(parents=True)
    (path / "manifest.json").write_text("{}")
    return path


def test_prune_keeps_the_newest_scheduled_backups_and_nothing_else(tmp_path: Path) -> None:
    root = tmp_path / "backups"
    old = [_fake_backup(root, f"qcbot-2026030{d}T023000Z") for d in range(1, 6)]
    manual = _fake_backup(root, "before-upgrade")
    safety = _fake_backup(root, "pre-restore-20260301T000000Z-abc123")
    (root / "qcbot-20260309T023000Z").mkdir()  # no manifest: not a complete backup, kept
    fresh_partial = root / ".qcbot-20260310T023000Z.partial-0123456789ab"
    fresh_partial.mkdir()
    stale_partial = root / ".qcbot-20260201T023000Z.partial-ba9876543210"
    stale_partial.mkdir()
    long_ago = time.time() - 3 * 24 * 3600
    os.utime(stale_partial, (long_ago, long_ago))

    removed = prune(root, keep=2)

    assert sorted(removed) == sorted([*old[:3], stale_partial])
    left = sorted(p.name for p in root.iterdir())
    assert left == sorted([old[3].name, old[4].name, manual.name, safety.name,
                           "qcbot-20260309T023000Z", fresh_partial.name])
    assert prune(root, keep=2) == []
    assert prune(tmp_path / "nowhere", keep=3) == []
    with pytest.raises(ValueError):
        prune(root, keep=0)


def test_backup_job_writes_dated_backups_and_prunes(source: Engine, storage: Path, tmp_path: Path) -> None:
    populate(source, storage)
    root = tmp_path / "backups"
    made = [backup_job(source, storage, root, keep=2, now=T0 + timedelta(days=d), key_file=key_of(tmp_path)) for d in range(3)]
    assert [r.path.name for r in made] == [
        "qcbot-20260302T013015Z", "qcbot-20260303T013015Z", "qcbot-20260304T013015Z"]
    assert sorted(p.name for p in root.iterdir()) == [made[1].path.name, made[2].path.name]
    again = backup_job(source, storage, root, keep=2, now=T0 + timedelta(days=2), key_file=key_of(tmp_path))
    assert again.path.name == "qcbot-20260304T013015Z-1"


def test_backup_job_keeps_old_backups_while_evidence_is_damaged(
    source: Engine, storage: Path, tmp_path: Path
) -> None:
    shas = populate(source, storage)
    root = tmp_path / "backups"
    first = backup_job(source, storage, root, keep=1, now=T0, key_file=key_of(tmp_path))
    blob_path(storage, shas[0]).write_bytes(b"damaged")
    second = backup_job(source, storage, root, keep=1, now=T0 + timedelta(days=1), key_file=key_of(tmp_path))
    assert second.problems
    assert first.path.exists()  # it still holds the good copy


# -------------------------------------------------------------------- PostgreSQL


def test_pg_environment_carries_the_connection_without_argv() -> None:
    url = "postgresql+psycopg://qc:p%40ss@db.example:5433/qcbot?sslmode=require&options=-csearch_path%3Dx"
    env = bk.pg_environment(url, base={"PATH": "/bin"})
    assert env == {"PATH": "/bin", "PGHOST": "db.example", "PGPORT": "5433", "PGUSER": "qc",
                   "PGPASSWORD": "p@ss", "PGDATABASE": "qcbot", "PGSSLMODE": "require",
                   "PGOPTIONS": "-csearch_path=x"}
    with pytest.raises(BackupError, match="frobnicate"):
        bk.pg_environment("postgresql://u@h/d?frobnicate=1", base={})


@pytest.mark.skipif(backend() != "postgresql", reason="PostgreSQL only")
def test_pg_password_goes_through_the_environment(
    db_url: str, storage: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The test server trusts local connections, so any password is accepted.
    url = make_url(db_url).set(password="s3cret-Pw").render_as_string(hide_password=False)
    eng = make_engine(url)
    upgrade(eng)
    calls: list[tuple[list[str], dict[str, str]]] = []
    real_run = bk._run

    def spy(argv: list[str], env: dict[str, str], what: str) -> Any:
        calls.append((argv, env))
        return real_run(argv, env, what)

    monkeypatch.setattr(bk, "_run", spy)
    try:
        create_backup(eng, storage, tmp_path / "b", key_file=key_of(tmp_path))
        restore_backup(tmp_path / "b", eng, storage, key_file=key_of(tmp_path))
    finally:
        eng.dispose()
    assert [os.path.basename(argv[0]) for argv, _ in calls] == ["pg_dump", "pg_restore", "pg_restore"]
    for argv, env in calls:
        assert not any("s3cret" in a for a in argv)
        assert env["PGPASSWORD"] == "s3cret-Pw"


@pytest.mark.skipif(backend() != "postgresql", reason="PostgreSQL only")
def test_pg_restore_into_another_schema_is_refused(
    source: Engine, storage: Path, db_url: str, tmp_path: Path
) -> None:
    populate(source, storage)
    create_backup(source, storage, tmp_path / "b", key_file=key_of(tmp_path))
    with fresh_database_url(tmp_path) as other_url:
        other = make_engine(other_url)
        try:
            with pytest.raises(BackupError, match="只能恢复到同名 schema"):
                restore_backup(tmp_path / "b", other, storage, key_file=key_of(tmp_path))
        finally:
            other.dispose()


# --------------------------------------------------------------------------- CLI


def _config(tmp_path: Path, db_url: str, storage: Path) -> Path:
    tmp_path.mkdir(parents=True, exist_ok=True)
    cfg = tmp_path / "config.toml"
    cfg.write_text(
        f'[database]\nurl = "{db_url}"\n[storage]\ndir = "{storage}"\n'
        f'[backup]\ndir = "{tmp_path / "scheduled"}"\nkeep = 2\nkey_file = "{tmp_path / "backup.key"}"\n',
        encoding="utf-8",
    )
    return cfg


def test_cli_backup_verify_and_restore(
    source: Engine, storage: Path, db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    populate(source, storage)
    before = snapshot_rows(source)
    source.dispose()
    cfg = str(_config(tmp_path, db_url, storage))

    assert cli_main(["-c", cfg, "backup", str(tmp_path / "manual")]) == 0
    assert "备份完成" in capsys.readouterr().out
    assert cli_main(["-c", cfg, "backup"]) == 0
    assert len(list((tmp_path / "scheduled").iterdir())) == 1
    assert cli_main(["-c", cfg, "restore", "--verify-only", str(tmp_path / "manual")]) == 0
    assert "备份完好" in capsys.readouterr().out

    assert cli_main(["-c", cfg, "restore", str(tmp_path / "manual")]) == 1
    assert "--force" in capsys.readouterr().err

    target_url = empty_target(db_url, tmp_path)
    target_cfg = str(_config(tmp_path / "t", target_url, tmp_path / "t" / "ev"))
    # A new machine: without the key nothing can be checked, so nothing is restored ...
    assert cli_main(["-c", target_cfg, "restore", str(tmp_path / "manual")]) == 1
    assert "没有备份密钥" in capsys.readouterr().err
    # ... and with the operator's copy of the key it is.
    shutil.copy2(tmp_path / "backup.key", tmp_path / "t" / "backup.key")
    assert cli_main(["-c", target_cfg, "restore", str(tmp_path / "manual")]) == 0
    assert "恢复完成并已校验" in capsys.readouterr().out
    eng = make_engine(target_url)
    try:
        assert snapshot_rows(eng) == before
    finally:
        eng.dispose()
