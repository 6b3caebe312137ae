"""The seeded synthetic province of each database, built once and kept."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from bench import dbs
from bench.seeder import REPO, ProvinceSpec, build_province

OUT = REPO / "bench" / "out"
PG_URL = os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/qcbot_bench")
PG_SEED_PREFIX = "qcbot_bench_seed_"


def fingerprint(spec: ProvinceSpec) -> str:
    """Changes when the province would come out different (spec, seeder, plan, schema)."""
    h = hashlib.sha256(json.dumps({**asdict(spec), "today": spec.today.isoformat()}, sort_keys=True).encode())
    files = [REPO / "bench" / "seeder.py", REPO / "bench" / "names.py", REPO / "data" / "seed.json",
             REPO / "models" / "tables.py"]
    files += sorted((REPO / "models" / "seed").glob("*.py"))
    migrations = sorted((REPO / "infra" / "migrations" / "versions").glob("*.py"))
    if not migrations:  # the schema would silently drop out of the fingerprint
        raise RuntimeError("no migrations under infra/migrations/versions")
    files += migrations
    for f in files:
        h.update(f.name.encode())
        h.update(f.read_bytes())
    return h.hexdigest()[:10]


def seed_urls(backend: str, fp: str, pg_url: str, *, work: str = "work") -> tuple[str, str]:
    """(seed URL, work URL) of ``backend``; ``fp`` is ``c<campaigns>_<fingerprint>``."""
    if backend == "sqlite":
        return f"sqlite:///{OUT / f'province-{fp}.sqlite3'}", f"sqlite:///{OUT / f'{work}.sqlite3'}"
    return dbs.with_database(pg_url, f"{PG_SEED_PREFIX}{fp}"), dbs.with_database(pg_url, f"qcbot_bench_{work}")


def ensure_province(backend: str, spec: ProvinceSpec, pg_url: str, say: Callable[[str], None]) -> tuple[str, dict[str, Any]]:
    """The seeded province of ``backend`` (built if missing); (URL, seed report)."""
    from infra.db import make_engine
    from infra.migrate import upgrade

    fp = f"c{spec.campaigns}_{fingerprint(spec)}"
    url, _ = seed_urls(backend, fp, pg_url)
    marker = OUT / f"province-{backend}-{fp}.json"
    exists = dbs.pg_exists(url) if backend == "postgresql" else Path(sa.engine.make_url(url).database).exists()
    if exists and marker.exists():
        return url, json.loads(marker.read_text())
    _drop_stale(backend, fp, pg_url)
    dbs.drop_database(url)
    dbs.ensure_database(url)
    say(f"building the synthetic province on {backend} ({spec.campaigns} campaigns; once, then kept) ...")
    engine = make_engine(url)
    try:
        upgrade(engine)
        report = build_province(engine, spec, progress=say)
    except BaseException:
        engine.dispose()
        dbs.drop_database(url)
        raise
    engine.dispose()
    if backend == "sqlite":  # fold the WAL into the file, so that a plain copy is complete
        raw = sqlite3.connect(sa.engine.make_url(url).database)
        raw.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        raw.close()
    say(report.summary())
    data = {"fingerprint": fp, "seconds": round(report.seconds, 1), "rows": report.rows,
            "phases": report.phases, "coordinator": report.coordinator, "spec": report.spec}
    marker.write_text(json.dumps(data, ensure_ascii=False, indent=1))
    return url, data


def _drop_stale(backend: str, fp: str, pg_url: str) -> None:
    """Older provinces of this size (another fingerprint) of this backend: removed to save disk."""
    size = fp.split("_", 1)[0]
    for f in OUT.glob(f"province-{backend}-{size}_*.json"):
        if fp not in f.name:
            f.unlink()
    if backend == "sqlite":
        for f in OUT.glob(f"province-{size}_*.sqlite3*"):
            if fp not in f.name:
                f.unlink()
        return
    import psycopg

    admin, _ = dbs._pg_admin(pg_url)  # noqa: SLF001
    with psycopg.connect(admin, autocommit=True) as conn:
        names = [r[0] for r in conn.execute("SELECT datname FROM pg_database")]
    for name in names:
        if name.startswith(f"{PG_SEED_PREFIX}{size}_") and not name.endswith(fp):
            dbs.drop_database(dbs.with_database(pg_url, name))
