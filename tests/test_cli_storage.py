"""``qcbot storage check [--fix]``: files in the evidence store that no record refers to."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import select

from infra.db import transaction
from infra.files import blob_path, store_blob
from models.audit import Actor
from models.evidence import Upload, add_evidence
from models.seed import import_seed, load_seed
from models.tables import Task, Unit
from qcbot.cli import main
from tests.conftest import SEED_PATH

NOW = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)
PDF = b"%PDF-1.4 kept " + b"1" * 100


def _age(path: Path, days: float = 2) -> None:
    old = time.time() - days * 86400
    os.utime(path, (old, old))


def test_storage_check_finds_and_removes_only_what_no_record_refers_to(
    engine: Engine, db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    store = tmp_path / "evidence"
    with transaction(engine) as s:
        cid = import_seed(session=s, doc=load_seed(SEED_PATH), now=NOW, actor=Actor.cli()).campaign_id
        unit = s.exec(select(Unit).where(Unit.name == "区财政局")).one()
        task = s.exec(select(Task).where(Task.campaign_id == cid, Task.no == 7)).one()
        kept, _ = store_blob(store, PDF)
        add_evidence(s, Upload(campaign_id=cid, unit_id=unit.id, member_id=None, sha256=kept, size=len(PDF),
                               mime_type="application/pdf", original_name="方案.pdf", task_id=task.id),
                     actor=Actor.cli(), now=NOW)
    orphan, orphan_path = store_blob(store, b"%PDF-1.4 refused upload")
    young, young_path = store_blob(store, b"%PDF-1.4 being recorded right now")
    stray = orphan_path.parent / ".incoming-x.tmp"  # a crashed write's temporary file
    stray.write_bytes(b"half")
    for path in (blob_path(store, kept), orphan_path, stray):
        _age(path)
    config = tmp_path / "config.toml"
    config.write_text(f'[database]\nurl = "{db_url}"\n[storage]\ndir = "{store}"\n', encoding="utf-8")

    assert main(["-c", str(config), "storage", "check"]) == 1
    out = capsys.readouterr().out
    assert f"无记录引用：{orphan[:2]}/{orphan}" in out and f"不属于存储的文件：{orphan[:2]}/.incoming-x.tmp" in out
    assert "一小时内存入" in out and "加 --fix 删除" in out
    assert orphan_path.exists()  # nothing removed without --fix

    assert main(["-c", str(config), "storage", "check", "--fix"]) == 0
    assert not orphan_path.exists() and not stray.exists()
    assert blob_path(store, kept).exists() and young_path.exists()  # referenced, and too young
    assert young

    blob_path(store, kept).unlink()
    assert main(["-c", str(config), "storage", "check"]) == 1
    assert "缺失（有记录引用，文件不在）" in capsys.readouterr().out
