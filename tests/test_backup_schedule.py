"""The daily backup runs inside the bot as a JobQueue job when configured."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from sqlalchemy.engine import Engine

from bot.app import build_application, running
from infra.backup import verify_backup
from scheduler.backups import BACKUP_JOB
from standin import BotApiStandin
from tests.harness import TOKEN, FakeClock, make_settings


async def test_daily_backup_job_writes_a_verified_backup(
    standin: BotApiStandin, seeded_engine: Engine, db_url: str, tmp_path: Path, clock: FakeClock
) -> None:
    backups = tmp_path / "backups"
    settings = make_settings(
        db_url=db_url,
        storage_dir=tmp_path / "evidence",
        backup={"enabled": True, "dir": str(backups), "time": "02:30:00", "keep": 2,
                "key_file": str(tmp_path / "backup.key")},
    )
    app = build_application(
        settings=settings, engine=seeded_engine, clock=lambda: clock.now, token=TOKEN,
        base_url=standin.base_url, base_file_url=standin.base_file_url,
    )
    async with running(app, poll_timeout=1):
        (job,) = app.job_queue.get_jobs_by_name(BACKUP_JOB)
        trigger = job.job.trigger
        assert str(trigger.fields[5]) == "2" and str(trigger.fields[6]) == "30"  # hour, minute
        assert str(trigger.timezone) == "Asia/Shanghai"
        assert job.job.misfire_grace_time is None and job.job.coalesce is True
        for step in range(3):
            clock.now = clock.now + dt.timedelta(days=1, seconds=step)
            await job.callback(app)  # type: ignore[arg-type]
    written = sorted(p for p in backups.iterdir() if p.name.startswith("qcbot-"))
    assert len(written) == 2  # keep = 2: the oldest was pruned
    for path in written:
        manifest = verify_backup(path, key_file=settings.backup.key_file)
        assert manifest["tables"]["task"] == 19


async def test_no_backup_job_unless_enabled(
    standin: BotApiStandin, seeded_engine: Engine, db_url: str, tmp_path: Path, clock: FakeClock
) -> None:
    settings = make_settings(db_url=db_url, storage_dir=tmp_path / "evidence")
    app = build_application(
        settings=settings, engine=seeded_engine, clock=lambda: clock.now, token=TOKEN,
        base_url=standin.base_url, base_file_url=standin.base_file_url,
    )
    async with running(app, poll_timeout=1):
        assert app.job_queue.get_jobs_by_name(BACKUP_JOB) == ()
