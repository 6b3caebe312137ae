"""Regenerate infra/migrations/versions/0001_initial.py from the models.

Only while qcbot has no deployment to upgrade (before the first release): it
rewrites the initial revision so the whole schema stays one readable file.
After a release, add revisions with ``alembic revision --autogenerate``.
Run: ``.venv/bin/python scripts/regen_initial_migration.py``.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

from alembic import command
from sqlmodel import SQLModel

import models.tables  # noqa: F401  (registers the tables)
from infra.migrate import MIGRATIONS_DIR, alembic_config


def main() -> int:
    target = MIGRATIONS_DIR / "versions" / "0001_initial.py"
    target.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        cfg = alembic_config(f"sqlite:///{Path(tmp) / 'empty.sqlite3'}")
        cfg.attributes["target_metadata"] = SQLModel.metadata
        command.revision(cfg, message="initial", autogenerate=True, rev_id="0001")
    generated = next((MIGRATIONS_DIR / "versions").glob("0001_*.py"))
    if generated != target:
        generated.rename(target)
    subprocess.run([sys.executable, "-m", "ruff", "format", str(target)], check=False)
    subprocess.run([sys.executable, "-m", "ruff", "check", "--fix", "-q", str(target)], check=False)
    print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
