"""``qcbot overview``: the province overview on the command line."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from infra.db import transaction
from models.audit import Actor
from models.seed import import_seed, load_seed
from qcbot.cli import main
from qcbot.commands.overview import plain
from tests.conftest import SEED_PATH

NOW = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)


def test_overview_prints_one_line_per_active_campaign(
    engine: Engine, db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = load_seed(SEED_PATH)
    with transaction(engine) as s:
        import_seed(session=s, doc=doc, now=NOW, actor=Actor.cli())
        import_seed(session=s, doc=doc, now=NOW, actor=Actor.cli(), slug="second",
                    shift_to=date(2026, 11, 2))
    config = tmp_path / "config.toml"
    config.write_text(f'[database]\nurl = "{db_url}"\n', encoding="utf-8")
    assert main(["-c", str(config), "overview", "--date", "2026-11-25"]) == 0
    out = capsys.readouterr().out
    assert "各区创建进度（截至2026年11月25日）" in out
    body = [line for line in out.splitlines() if line.startswith(("🔴", "🟢"))]
    assert len(body) == 2, out
    assert "<" not in out and "&amp;" not in out
    # The 2021 plan is long past (everything overdue); the shifted one is in its second phase.
    assert all(line.startswith("🔴") and "完成任务 0/19" in line for line in body)
    assert sorted(line.rsplit(" · ", 1)[1] for line in body) == sorted(["第二阶段", "已结束"])


def test_plain_strips_tags_and_entities() -> None:
    assert plain("<b>甲&amp;乙</b> &lt;3") == "甲&乙 <3"
