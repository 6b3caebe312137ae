"""``qcbot bench``: the synthetic province and the benchmarks (a source checkout's tool).

    qcbot bench seed --database-url URL [--campaigns 120] [--seed 42]
    qcbot bench run [--quick] [--sqlite-only | --postgres-only]     (what ``make bench`` runs)

The code lives in ``bench/`` at the repository root, which is not installed with the
package: this module puts the root on ``sys.path`` (it is there in an editable install).
"""

from __future__ import annotations

import argparse
import sys
from datetime import date
from pathlib import Path

from qcbot.cli import CommandError

REPO = Path(__file__).resolve().parents[2]


def _bench_importable() -> None:
    if not (REPO / "bench" / "seeder.py").exists():
        raise CommandError(f"bench/ 不在 {REPO}：基准测试只能在源码目录中运行。"
                           " (the benchmarks need a source checkout)")
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("bench", help="benchmarks: build a synthetic province, measure")
    bsub = p.add_subparsers(dest="bench_command", required=True)
    seed = bsub.add_parser("seed", help="fill a database with the synthetic province (deterministic)")
    seed.add_argument("--database-url", required=True, help="sqlite:///path or postgresql://... (created if missing)")
    seed.add_argument("--campaigns", type=int, default=120)
    seed.add_argument("--seed", type=int, default=42, help="random seed (same seed, same database)")
    seed.add_argument("--scale", type=float, default=1.0,
                      help="multiply campaigns, evidence and audit volumes, e.g. 0.05 for a quick one")
    seed.add_argument("--today", type=date.fromisoformat, default=None, metavar="YYYY-MM-DD",
                      help="the anchor day the province is seen from (default 2026-09-14)")
    seed.set_defaults(func=cmd_seed)
    run = bsub.add_parser("run", help="run the benchmarks (make bench); see BENCHMARKS.md")
    run.add_argument("rest", nargs=argparse.REMAINDER, help="arguments of bench/run.py (--quick ...)")
    run.set_defaults(func=cmd_run)


def cmd_seed(args: argparse.Namespace) -> int:
    _bench_importable()
    from bench.dbs import ensure_database
    from bench.seeder import DEFAULT_TODAY, ProvinceSpec, build_province
    from models.db import make_engine
    from models.migrate import upgrade

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
            raise CommandError(str(exc)) from None
    finally:
        engine.dispose()
    print(report.summary())
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    _bench_importable()
    from bench.run import main as bench_main

    rest = [a for a in args.rest if a != "--"]
    return int(bench_main(rest) or 0)
