"""Backups that prove themselves: whatever is wrong with a backup is refused before anything is written.

Every refusal test restores with ``force`` into the populated source database (the
worst case: a refusal that came too late would overwrite it) and into a storage
directory that does not exist yet, and then checks that the rows are the same, no
evidence directory and no safety backup were made.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sqlite3
import stat
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from infra import backup as bk
from infra.backup import BackupError, create_backup, restore_backup, verify_backup
from infra.config import ConfigError, load_settings
from infra.db import make_engine
from infra.migrate import head_revision, upgrade
from qcbot.cli import main as cli_main
from tests.dbutil import backend
from tests.test_backup import _config, key_of, populate, resign, snapshot_rows

pg_only = pytest.mark.skipif(backend() != "postgresql", reason="PostgreSQL only (TEST_DATABASE_URL)")
sqlite_only = pytest.mark.skipif(backend() != "sqlite", reason="a SQLite database file")


@pytest.fixture
def source(db_url: str) -> Iterator[Engine]:
    eng = make_engine(db_url)
    upgrade(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def storage(tmp_path: Path) -> Path:
    path = tmp_path / "evidence"
    path.mkdir()
    return path


@pytest.fixture
def made(source: Engine, storage: Path, tmp_path: Path) -> Path:
    """A good backup of a populated database."""
    populate(source, storage)
    dest = tmp_path / "backups" / "b"
    create_backup(source, storage, dest, key_file=key_of(tmp_path))
    return dest


def manifest_of(dest: Path) -> dict[str, Any]:
    return json.loads((dest / "manifest.json").read_text(encoding="utf-8"))


def write_manifest(dest: Path, manifest: Any) -> None:
    (dest / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False), encoding="utf-8")


def evidence_rel(dest: Path) -> str:
    return next(rel for rel in manifest_of(dest)["files"] if rel.startswith("evidence/"))


def refused(dest: Path, engine: Engine, tmp_path: Path, match: str, *, key_file: Path | None = None) -> str:
    """Verify and restore (forced, into the populated database) must both refuse; nothing is written."""
    key_file = key_file or key_of(tmp_path)
    before = snapshot_rows(engine)
    new_storage = tmp_path / "restore-storage"
    safety = tmp_path / "safety"
    with pytest.raises(BackupError, match=match) as err:
        verify_backup(dest, key_file=key_file)
    with pytest.raises(BackupError, match=match):
        restore_backup(dest, engine, new_storage, key_file=key_file, force=True, safety_dir=safety)
    assert snapshot_rows(engine) == before
    assert not new_storage.exists()
    assert not safety.exists()
    return str(err.value)


def one_line_cli_refusal(
    tmp_path: Path, db_url: str, storage: Path, dest: Path, capsys: pytest.CaptureFixture[str]
) -> str:
    """``qcbot restore --verify-only`` and ``qcbot restore --force``: exit 1, one Chinese line, no traceback."""
    cfg = tmp_path / "cli"
    cfg.mkdir(exist_ok=True)
    config = _config(cfg, db_url, storage)
    shutil.copy2(key_of(tmp_path), cfg / "backup.key")
    lines = []
    for extra in (["--verify-only"], ["--force"]):
        capsys.readouterr()
        assert cli_main(["-c", str(config), "restore", *extra, str(dest)]) == 1
        out = capsys.readouterr()
        assert out.out == ""
        assert "Traceback" not in out.err
        assert len(out.err.strip().splitlines()) == 1, out.err
        assert out.err.startswith("错误：")
        lines.append(out.err.strip())
    assert not (cfg / "scheduled").exists()  # no pre-restore safety backup either
    return lines[0]


# ------------------------------------------------------------------ the signature


def _tamper_database(dest: Path) -> None:
    """What the security review did: edit the database in the backup, recompute its sum."""
    manifest = manifest_of(dest)
    db = dest / manifest["database"]["file"]
    if manifest["backend"] == "sqlite":
        conn = sqlite3.connect(db)
        with conn:
            conn.execute("CREATE TEMP TABLE m AS SELECT * FROM member LIMIT 1")
            conn.execute("UPDATE m SET id = id + 1000, telegram_user_id = 666, display_name = 'intruder', "
                         "role = 'coordinator', unit_id = NULL, private_chat_id = NULL")
            conn.execute("INSERT INTO member SELECT * FROM m")
            conn.execute(
                "CREATE TRIGGER promote AFTER INSERT ON member BEGIN "
                "UPDATE member SET role = 'coordinator' WHERE id = NEW.id; END"
            )
        conn.close()
        manifest["tables"]["member"] += 1
    else:
        with open(db, "ab") as fh:
            fh.write(b"\0" * 16)
    manifest["files"][manifest["database"]["file"]] = {
        "sha256": bk.sha256_file(db), "size": db.stat().st_size,
    }
    write_manifest(dest, manifest)  # the old signature stays: the attacker has no key


def test_a_tampered_database_with_a_recomputed_manifest_is_refused(
    made: Path, source: Engine, tmp_path: Path
) -> None:
    _tamper_database(made)
    message = refused(made, source, tmp_path, "签名不符")
    assert "清单在备份之后被改动过" in message


def test_a_changed_row_count_is_refused(made: Path, source: Engine, tmp_path: Path) -> None:
    manifest = manifest_of(made)
    manifest["tables"]["member"] += 1
    write_manifest(made, manifest)
    refused(made, source, tmp_path, "签名不符")


def test_a_manifest_signed_with_another_key_is_refused(made: Path, source: Engine, tmp_path: Path) -> None:
    _tamper_database(made)
    write_manifest(made, bk.sign_manifest(manifest_of(made), os.urandom(32)))
    refused(made, source, tmp_path, "不是用当前备份密钥")


def test_an_altered_file_is_refused_by_its_sum(made: Path, source: Engine, tmp_path: Path) -> None:
    path = made / evidence_rel(made)
    data = bytearray(path.read_bytes())
    data[10] ^= 0xFF
    path.write_bytes(bytes(data))
    refused(made, source, tmp_path, "sha256 校验失败")


def test_an_unsigned_backup_is_refused_with_the_way_forward(
    made: Path, source: Engine, storage: Path, db_url: str, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A backup written before manifests were signed: take a new one (no escape hatch)."""
    manifest = manifest_of(made)
    del manifest["signature"]
    write_manifest(made, manifest)
    message = refused(made, source, tmp_path, "没有签名")
    assert "重新备份" in message
    source.dispose()
    line = one_line_cli_refusal(tmp_path, db_url, storage, made, capsys)
    assert "没有签名" in line


def test_a_missing_key_is_refused_naming_the_setting(
    made: Path, source: Engine, storage: Path, db_url: str, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    elsewhere = tmp_path / "nowhere" / "backup.key"
    message = refused(made, source, tmp_path, "没有备份密钥", key_file=elsewhere)
    assert "backup.key_file" in message and "无法验证或恢复" in message
    assert not elsewhere.exists()  # verify and restore never make a key
    source.dispose()
    config = _config(tmp_path / "cli", db_url, storage)  # names tmp_path/cli/backup.key: absent
    assert cli_main(["-c", str(config), "restore", "--verify-only", str(made)]) == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "没有备份密钥" in err and "backup.key_file" in err


def test_a_readable_key_file_is_refused(made: Path, tmp_path: Path) -> None:
    os.chmod(key_of(tmp_path), 0o644)
    with pytest.raises(BackupError, match="权限过宽.*chmod 600"):
        verify_backup(made, key_file=key_of(tmp_path))


def test_a_damaged_key_file_is_never_replaced(made: Path, source: Engine, storage: Path, tmp_path: Path) -> None:
    key_of(tmp_path).write_bytes(b"short")
    with pytest.raises(BackupError, match="已损坏"):
        create_backup(source, storage, tmp_path / "b2", key_file=key_of(tmp_path))
    assert key_of(tmp_path).read_bytes() == b"short"


def test_the_key_is_made_once_private_and_never_shown_or_copied(
    source: Engine, storage: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    populate(source, storage)
    key_file = tmp_path / "state" / "backup.key"
    with caplog.at_level(logging.DEBUG):
        first = create_backup(source, storage, tmp_path / "backups" / "one", key_file=key_file)
        second = create_backup(source, storage, tmp_path / "backups" / "two", key_file=key_file)
    key = key_file.read_bytes()
    assert len(key) == 32
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(key_file.parent.stat().st_mode) == 0o700
    assert first.manifest["signature"]["key_id"] == second.manifest["signature"]["key_id"]
    shown = caplog.text + capsys.readouterr().out + first.summary() + json.dumps(first.manifest)
    for form in (key.hex(), key.hex().upper()):
        assert form not in shown
    for result in (first, second):
        for dirpath, _dirnames, filenames in os.walk(result.path):
            assert stat.S_IMODE(os.stat(dirpath).st_mode) == 0o700
            for name in filenames:
                path = Path(dirpath) / name
                assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
                data = path.read_bytes()
                assert key not in data and key.hex().encode() not in data


def test_the_key_must_lie_outside_the_backup_directory(
    source: Engine, storage: Path, tmp_path: Path
) -> None:
    backups = tmp_path / "backups"
    with pytest.raises(ConfigError, match="backup.key_file.*之内"):
        load_settings(env={}, overrides={"backup": {"dir": str(backups), "key_file": str(backups / "k")}})
    # Through a symlink the configuration cannot see: refused when used.
    backups.mkdir()
    (tmp_path / "alias").symlink_to(backups)
    with pytest.raises(BackupError, match="位于备份目录.*之内"):
        bk.backup_job(source, storage, backups, keep=2, key_file=tmp_path / "alias" / "backup.key")
    with pytest.raises(BackupError, match="位于备份目录.*之内"):
        create_backup(source, storage, backups / "b", key_file=backups / "b" / "backup.key")
    assert list(backups.iterdir()) == []


# ------------------------------------------------------------ what the directory holds


def test_a_symlink_to_a_file_outside_is_refused(made: Path, source: Engine, tmp_path: Path) -> None:
    rel = evidence_rel(made)
    outside = tmp_path / "outside"
    shutil.copy2(made / rel, outside)  # same bytes: only the link gives it away
    (made / rel).unlink()
    (made / rel).symlink_to(outside)
    message = refused(made, source, tmp_path, "符号链接")
    assert rel in message


def test_a_symlinked_directory_is_refused(made: Path, source: Engine, tmp_path: Path) -> None:
    rel = evidence_rel(made)
    subdir = (made / rel).parent
    shutil.copytree(subdir, tmp_path / "outside-dir")
    shutil.rmtree(subdir)
    subdir.symlink_to(tmp_path / "outside-dir")
    refused(made, source, tmp_path, "符号链接")


def test_a_symlinked_manifest_is_refused(made: Path, source: Engine, tmp_path: Path) -> None:
    shutil.copy2(made / "manifest.json", tmp_path / "manifest-outside.json")
    (made / "manifest.json").unlink()
    (made / "manifest.json").symlink_to(tmp_path / "manifest-outside.json")
    refused(made, source, tmp_path, "符号链接 manifest.json")


def test_a_fifo_is_refused(made: Path, source: Engine, tmp_path: Path) -> None:
    os.mkfifo(made / "evidence" / "pipe")
    message = refused(made, source, tmp_path, "命名管道 FIFO")
    assert "evidence/pipe" in message


def test_a_fifo_in_place_of_the_database_is_refused(made: Path, source: Engine, tmp_path: Path) -> None:
    db = made / manifest_of(made)["database"]["file"]
    db.unlink()
    os.mkfifo(db)
    refused(made, source, tmp_path, "命名管道 FIFO")


def test_a_file_the_manifest_does_not_list_is_refused(made: Path, source: Engine, tmp_path: Path) -> None:
    (made / "evidence" / "extra.sql").write_text("COPY x TO PROGRAM 'id'")
    refused(made, source, tmp_path, "evidence/extra.sql：清单中没有这个文件")


# ---------------------------------------------------------------- malformed manifests


def _set(path: list[str], value: Any) -> Any:
    def change(m: dict[str, Any]) -> None:
        target = m
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
    return change


def _drop(key: str) -> Any:
    return lambda m: m.pop(key)


def _add_file(rel: str) -> Any:
    return lambda m: m["files"].update({rel: {"sha256": "0" * 64, "size": 1}})


RAW_VARIANTS = {
    "not json": "{not json",
    "array": "[1, 2, 3]",
    "nan": '{"format": NaN}',
    "duplicate keys": '{"format": 1, "format": 1}',
    "deep nesting": "[" * 100_000 + "]" * 100_000,
    "not utf-8": b"\xff\xfe{}",
    "empty": "",
}
CHANGED_VARIANTS = {
    "missing files": _drop("files"),
    "missing tables": _drop("tables"),
    "format 2": _set(["format"], 2),
    "format as text": _set(["format"], "1"),
    "files is a list": _set(["files"], []),
    "row count as text": _set(["tables", "member"], "1"),
    "negative row count": _set(["tables", "member"], -1),
    "row count as bool": _set(["tables", "member"], True),
    "absolute path": _add_file("/etc/passwd"),
    "dotdot path": _add_file("evidence/../../../etc/passwd"),
    "unknown path": _add_file("notes.txt"),
    "bad sha": _set(["files", "database.sqlite3" if backend() == "sqlite" else "database.pgdump"],
                    {"sha256": "xyz", "size": 1}),
    "unknown backend": _set(["backend"], "mysql"),
    "database file elsewhere": _set(["database", "file"], "../outside.sqlite3"),
    "signature not an object": _set(["signature"], "abc"),
    "evidence count wrong": _set(["evidence", "count"], 99),
}


@pytest.mark.parametrize("variant", [*RAW_VARIANTS, *CHANGED_VARIANTS])
def test_a_malformed_manifest_gives_one_chinese_line(
    variant: str, made: Path, source: Engine, storage: Path, db_url: str, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    if variant in RAW_VARIANTS:
        raw = RAW_VARIANTS[variant]
        (made / "manifest.json").write_bytes(raw if isinstance(raw, bytes) else raw.encode())
    else:
        manifest = manifest_of(made)
        CHANGED_VARIANTS[variant](manifest)
        write_manifest(made, manifest)
    message = refused(made, source, tmp_path, "manifest.json")
    assert "拒绝" in message or "已损坏" in message
    source.dispose()
    one_line_cli_refusal(tmp_path, db_url, storage, made, capsys)


def test_a_correctly_signed_but_unsafe_path_is_still_refused(
    made: Path, source: Engine, tmp_path: Path
) -> None:
    """Shape is checked whatever the signature says (a key holder's mistake is refused too)."""
    manifest = manifest_of(made)
    manifest["files"]["evidence/../../x"] = {"sha256": "0" * 64, "size": 1}
    resign(made, manifest, tmp_path)
    refused(made, source, tmp_path, r"含有 \.\.")


# ----------------------------------------------------- what the database may hold


@sqlite_only
def test_a_signed_sqlite_backup_holding_a_trigger_is_refused(
    source: Engine, storage: Path, tmp_path: Path
) -> None:
    """A database someone gave a trigger, backed up as it is: the backup is genuine, the trigger is not qcbot's."""
    populate(source, storage)
    with source.begin() as conn:
        conn.exec_driver_sql(
            "CREATE TRIGGER promote AFTER INSERT ON member BEGIN "
            "UPDATE member SET role = 'coordinator' WHERE id = NEW.id; END"
        )
    dest = tmp_path / "b"
    create_backup(source, storage, dest, key_file=key_of(tmp_path))
    verify_backup(dest, key_file=key_of(tmp_path))  # the files are what was written
    target = make_engine(f"sqlite:///{tmp_path / 'target.sqlite3'}")
    try:
        with pytest.raises(BackupError, match="触发器“promote”"):
            restore_backup(dest, target, tmp_path / "restored", key_file=key_of(tmp_path))
    finally:
        target.dispose()
    assert not (tmp_path / "target.sqlite3").exists()
    assert not (tmp_path / "restored").exists()


TOC = """;
; Archive created at 2026-03-02 01:30:15 UTC
;
6; 2615 106976 SCHEMA - public qcbot
215; 1259 106977 TABLE public alembic_version qcbot
249; 1259 107321 TABLE public member qcbot
248; 1259 107320 SEQUENCE public member_id_seq qcbot
3664; 0 0 SEQUENCE OWNED BY public member_id_seq qcbot
3314; 2604 107324 DEFAULT public member id qcbot
3623; 0 106999 TABLE DATA public member qcbot
3682; 0 0 SEQUENCE SET public member_id_seq qcbot
3381; 2606 107207 CONSTRAINT public member member_pkey qcbot
3374; 1259 107178 INDEX public ix_member_unit_id qcbot
3459; 2606 107331 FK CONSTRAINT public member member_campaign_id_fkey qcbot
3700; 0 0 ACL public TABLE member qcbot
"""


def test_the_toc_check_keeps_what_qcbot_creates() -> None:
    kept, acl = bk.pg_restore_list(TOC, schema="public", tables=frozenset({"member", "alembic_version"}))
    assert [line.split(" ", 3)[3].split(" ")[0] for line in kept] == [
        "TABLE", "TABLE", "SEQUENCE", "SEQUENCE", "DEFAULT", "TABLE", "SEQUENCE", "CONSTRAINT", "INDEX",
        "FK",
    ]
    assert not any("SCHEMA" in line or "ACL" in line for line in kept)
    assert acl == 1


@pytest.mark.parametrize(
    ("line", "words"),
    [
        ("300; 1255 1 FUNCTION public evil() qcbot", "函数“FUNCTION public evil() qcbot”"),
        ("301; 2620 1 TRIGGER public member evil qcbot", "触发器"),
        ("302; 1259 1 VIEW public v qcbot", "视图"),
        ("303; 3079 1 EXTENSION - plpython3u", "扩展"),
        ("304; 2618 1 RULE public member r qcbot", "规则"),
        ("305; 0 1 TABLE DATA public spy qcbot", "没有表 'spy'"),
        ("306; 1259 1 TABLE other member qcbot", "schema 'other'"),
        ("307; 1259 1 TABLE public member; qcbot", ""),
        ("garbage", "无法解析"),
    ],
)
def test_the_toc_check_refuses_anything_else(line: str, words: str) -> None:
    with pytest.raises(BackupError, match="拒绝恢复") as err:
        bk.pg_restore_list(TOC + line + "\n", schema="public", tables=frozenset({"member", "alembic_version"}))
    assert words in str(err.value)
    assert "\n" not in str(err.value)


def test_the_tables_of_the_schema_come_from_the_migrations() -> None:
    tables = bk.schema_tables(head_revision())
    assert {"alembic_version", "member", "evidence", "auditlog"} <= tables


def _pg_has_tools() -> bool:
    return shutil.which("pg_dump") is not None and shutil.which("pg_restore") is not None


def _foreign_objects(engine: Engine) -> tuple[list[str], list[str]]:
    with engine.connect() as conn:
        functions = [r[0] for r in conn.exec_driver_sql(
            "SELECT p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
            "WHERE n.nspname = current_schema()")]
        triggers = [r[0] for r in conn.exec_driver_sql(
            "SELECT t.tgname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = current_schema() AND NOT t.tgisinternal")]
    return functions, triggers


@pg_only
@pytest.mark.skipif(not _pg_has_tools(), reason="pg_dump / pg_restore are not installed")
@pytest.mark.parametrize("crafted", ["function and trigger", "trigger only", "extra table", "view"])
def test_a_pg_dump_holding_what_qcbot_does_not_create_is_refused(
    crafted: str, source: Engine, storage: Path, db_url: str, tmp_path: Path
) -> None:
    """A dump of a database that someone gave a function and a trigger (its signature is genuine):
    restore refuses it before touching the database, which stays as it was."""
    populate(source, storage)
    marker = tmp_path / f"pwned-{uuid.uuid4().hex[:8]}"
    other_schema = f"x_{uuid.uuid4().hex[:12]}"
    fn_schema = f'"{other_schema}".' if crafted == "trigger only" else ""
    with source.begin() as conn:
        schema = conn.exec_driver_sql("SELECT current_schema()").scalar_one()
        if crafted in ("function and trigger", "trigger only"):
            if fn_schema:
                conn.exec_driver_sql(f'CREATE SCHEMA "{other_schema}"')
            conn.exec_driver_sql(
                f"CREATE FUNCTION {fn_schema}evil() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                f"COPY (SELECT 1) TO PROGRAM 'touch {marker}'; RETURN NEW; END $$"
            )
            conn.exec_driver_sql(
                f"CREATE TRIGGER evil AFTER INSERT ON member FOR EACH ROW EXECUTE FUNCTION {fn_schema}evil()"
            )
        elif crafted == "extra table":
            conn.exec_driver_sql("CREATE TABLE spy (x text)")
            conn.exec_driver_sql("INSERT INTO spy VALUES ('hello')")
        else:
            conn.exec_driver_sql("CREATE VIEW coordinators AS SELECT * FROM member")
    dest = tmp_path / "b"
    create_backup(source, storage, dest, key_file=key_of(tmp_path))
    toc = bk._run(["pg_restore", "--list", str(dest / "database.pgdump")], os.environ.copy(), "").stdout
    assert {"function and trigger": " FUNCTION ", "trigger only": " TRIGGER ", "extra table": " spy ",
            "view": " VIEW "}[crafted] in toc

    # The target: the same schema, emptied of the crafted objects but holding qcbot's rows.
    with source.begin() as conn:
        conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
        conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
        if fn_schema:
            conn.exec_driver_sql(f'DROP SCHEMA "{other_schema}" CASCADE')
    source.dispose()
    upgrade(source)
    populate(source, tmp_path / "other-evidence")
    before = snapshot_rows(source)
    with source.connect() as conn:
        tables_before = sorted(sa.inspect(conn).get_table_names())

    expected = {"function and trigger": "函数“FUNCTION", "trigger only": "触发器“TRIGGER",
                "extra table": "没有表 'spy'", "view": "视图“VIEW"}[crafted]
    with pytest.raises(BackupError, match="拒绝恢复") as err:
        restore_backup(dest, source, tmp_path / "restored", key_file=key_of(tmp_path), force=True,
                       safety_dir=tmp_path / "safety")
    assert expected in str(err.value)
    assert snapshot_rows(source) == before
    with source.connect() as conn:
        assert sorted(sa.inspect(conn).get_table_names()) == tables_before
        assert sa.inspect(conn).get_view_names() == []
    assert _foreign_objects(source) == ([], [])
    assert not (tmp_path / "restored").exists() and not (tmp_path / "safety").exists()
    assert not marker.exists()


@pg_only
@pytest.mark.skipif(not _pg_has_tools(), reason="pg_dump / pg_restore are not installed")
def test_pg_restore_runs_only_the_filtered_list(
    source: Engine, storage: Path, db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    populate(source, storage)
    create_backup(source, storage, tmp_path / "b", key_file=key_of(tmp_path))
    calls: list[list[str]] = []
    real_run = bk._run

    def spy(argv: list[str], env: dict[str, str], what: str) -> Any:
        calls.append(argv)
        if "--single-transaction" in argv:
            listing = next(a for a in argv if a.startswith("--use-list="))
            text = Path(listing.split("=", 1)[1]).read_text(encoding="utf-8")
            assert text.strip() and " SCHEMA " not in text and " FUNCTION " not in text
        return real_run(argv, env, what)

    monkeypatch.setattr(bk, "_run", spy)
    result = restore_backup(tmp_path / "b", source, tmp_path / "restored", key_file=key_of(tmp_path),
                            force=True)
    restore = calls[-1]
    for flag in ("--single-transaction", "--no-owner", "--no-privileges"):
        assert flag in restore
    assert any("超级用户" in w for w in result.warnings)  # the test server's role is a superuser
