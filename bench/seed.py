"""``python -m bench.seed``: fill a database with the synthetic province (deterministic).

    python -m bench.seed --database-url URL [--campaigns 120] [--seed 42] [--scale 0.05]
"""

from __future__ import annotations

import argparse
from datetime import date

from bench.dbs import ensure_database
from bench.seeder import DEFAULT_TODAY, ProvinceSpec, build_province
from infra.db import make_engine
from infra.migrate import upgrade


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.seed", description=__doc__.split("\n\n")[0])
    p.add_argument("--database-url", required=True, help="sqlite:///path or postgresql://... (created if missing)")
    p.add_argument("--campaigns", type=int, default=120)
    p.add_argument("--seed", type=int, default=42, help="random seed (same seed, same database)")
    p.add_argument("--scale", type=float, default=1.0,
                   help="multiply campaigns, evidence and audit volumes, e.g. 0.05 for a quick one")
    p.add_argument("--today", type=date.fromisoformat, default=None, metavar="YYYY-MM-DD",
                   help="the anchor day the province is seen from (default 2026-09-14)")
    args = p.parse_args(argv)
    spec = ProvinceSpec(campaigns=args.campaigns, seed=args.seed, today=args.today or DEFAULT_TODAY)
    if args.scale != 1.0:
        spec = spec.scaled(args.scale)
    ensure_database(args.database_url)
    engine = make_engine(args.database_url)
    try:
        upgrade(engine)
        try:
            report = build_province(engine, spec, progress=print)
        except RuntimeError as exc:
            print(f"错误: {exc}")
            return 1
    finally:
        engine.dispose()
    print(report.summary())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
