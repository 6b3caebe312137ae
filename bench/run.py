"""``make bench``: the benchmarks at province scale, on SQLite and on PostgreSQL.

    python -m bench.run [--quick] [--backends sqlite,postgresql] [--only status,sweep,...]

For each database: the synthetic province (``bench.seeder``) is built once and kept
(a file under bench/out/, a PostgreSQL database ``qcbot_bench_seed_<hash>``; rebuilt when
the seeder, the seed plan or the schema change); every group of benchmarks that writes
runs on a fresh copy of it. Prints the table (median, p95, max; what, where, on what
machine) and writes it as JSON (bench/out/bench-<time>.json and bench/out/latest.json)
and Markdown (bench/out/latest.md).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import sqlite3
import sys
import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

from bench import dbs
from bench.cases import Ctx
from bench.province import OUT, PG_URL, ensure_province, seed_urls
from bench.seeder import ProvinceSpec

CASES = ("status", "overview", "sweep", "dispatch", "burst", "flood", "morning", "startup", "rss")
#: Benchmarks sharing one fresh copy of the province (in this order).
GROUPS: tuple[tuple[str, ...], ...] = (
    ("status", "overview", "burst"), ("flood",), ("sweep",), ("dispatch",), ("morning",), ("startup",), ("rss",))
PACKAGES = ("python-telegram-bot", "SQLAlchemy", "sqlmodel", "psycopg", "APScheduler", "aiohttp",
            "httpx", "alembic", "pydantic", "matplotlib")


# ============================================================================ machine


def machine(pg_url: str | None) -> dict[str, Any]:
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    info: dict[str, Any] = {
        "cores": os.cpu_count(), "ram_gb": round(psutil.virtual_memory().total / 2**30, 1), "cpu": cpu,
        "os": platform.platform(), "python": platform.python_version(), "sqlite": sqlite3.sqlite_version,
        "packages": versions, "load_average": [round(x, 2) for x in os.getloadavg()],
    }
    if pg_url:
        try:
            import psycopg

            admin, _ = dbs._pg_admin(pg_url)  # noqa: SLF001
            with psycopg.connect(admin, connect_timeout=3) as conn:
                info["postgresql"] = conn.execute("SHOW server_version").fetchone()[0]  # type: ignore[index]
        except Exception as exc:  # noqa: BLE001
            info["postgresql"] = f"unreachable ({type(exc).__name__})"
    return info


def pg_available(url: str) -> bool:
    try:
        import psycopg

        admin, _ = dbs._pg_admin(url)  # noqa: SLF001
        psycopg.connect(admin, connect_timeout=3).close()
        return True
    except Exception:  # noqa: BLE001
        return False


# ============================================================================ running


def run_case(name: str, ctx: Ctx) -> list[dict[str, Any]]:
    from bench.cases import burst, dispatch, flood, morning, startup, status, sweep

    fn = {"status": status.run_status, "overview": status.run_overview, "sweep": sweep.run_sweep,
          "dispatch": dispatch.run_dispatch, "burst": burst.run_burst, "flood": flood.run_flood,
          "morning": morning.run_morning,
          "startup": startup.run_startup, "rss": startup.run_rss_morning}[name]
    return fn(ctx)


def run_backend(backend: str, args: argparse.Namespace, spec: ProvinceSpec,
                say: Callable[[str], None]) -> list[dict[str, Any]]:
    seed_url, seed_report = ensure_province(backend, spec, args.pg_url, say)
    _, work_url = seed_urls(backend, seed_report["fingerprint"], args.pg_url)
    out = OUT / backend
    out.mkdir(parents=True, exist_ok=True)
    results: list[dict[str, Any]] = []
    for group in GROUPS:
        names = [n for n in group if n in args.only]
        if not names:
            continue
        dbs.clone_database(seed_url, work_url)
        ctx = Ctx(backend=backend, seed_url=seed_url, work_url=work_url, spec=spec, quick=args.quick,
                  out=out, seed_report=seed_report)
        for name in names:
            say(f"[{backend}] {name} ...")
            t0 = time.perf_counter()
            load_before = os.getloadavg()[0]
            try:
                rows = run_case(name, ctx)
            except Exception as exc:  # noqa: BLE001 - one failing benchmark must not hide the others
                traceback.print_exc()
                rows = [{"name": name, "what": f"FAILED: {type(exc).__name__}: {exc}", "unit": "", "n": 0,
                         "median": None, "p95": None, "max": None, "target": "", "met": False, "extra": {}}]
            load = os.getloadavg()[0]
            for r in rows:
                r["backend"] = backend
                r["load_before"] = round(load_before, 2)
                r["load_after"] = round(load, 2)
                results.append(r)
                say(f"    {r['name']}: {_cells(r)[2:5]} {r['unit']} (target {r['target']}; "
                    f"{'met' if r['met'] else 'MISSED' if r['met'] is False else '-'})")
            say(f"    ({time.perf_counter() - t0:.1f} s)")
    dbs.drop_database(work_url)
    return results


# ============================================================================ output


def _fmt(x: Any) -> str:  # noqa: ANN401
    if x is None:
        return "–"
    if isinstance(x, float):
        return f"{x:,.1f}" if abs(x) >= 10 else f"{x:,.2f}"
    return f"{x:,}" if isinstance(x, int) else str(x)


def _cells(r: dict[str, Any]) -> list[str]:
    ok = {True: "✅", False: "❌", None: ""}[r["met"]]
    return [r["name"], r["backend"], _fmt(r["median"]), _fmt(r["p95"]), _fmt(r["max"]), r["unit"],
            r["target"], ok, _fmt(r["n"])]


HEADER = ["benchmark", "database", "median", "p95", "max", "unit", "target", "met", "n"]


def table(results: list[dict[str, Any]]) -> str:
    rows = [HEADER] + [_cells(r) for r in results]
    widths = [max(_width(row[i]) for row in rows) for i in range(len(HEADER))]
    lines = []
    for k, row in enumerate(rows):
        lines.append("  ".join(c + " " * (w - _width(c)) for c, w in zip(row, widths, strict=True)))
        if k == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _width(s: str) -> int:
    import unicodedata

    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in s)


def markdown(results: list[dict[str, Any]], info: dict[str, Any], meta: dict[str, Any]) -> str:
    lines = [f"Run {meta['started']} ({'quick' if meta['quick'] else 'full'}, {meta['seconds']:.0f} s) on "
             f"{info['cores']} cores, {info['ram_gb']} GB RAM ({info['cpu']}), Python {info['python']}, "
             f"SQLite {info['sqlite']}, PostgreSQL {info.get('postgresql', '–')}; "
             + ", ".join(f"{k} {v}" for k, v in info["packages"].items() if v) + ".", "",
             "| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    for r in results:
        lines.append("| " + " | ".join(c.replace("|", "/") for c in _cells(r)) + " |")
    lines += ["", "What each row measured:", ""]
    for r in results:
        lines.append(f"* **{r['name']}** ({r['backend']}): {r['what']}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="fewer samples, a smaller dispatch and burst")
    p.add_argument("--backends", default="sqlite,postgresql")
    p.add_argument("--only", default=",".join(CASES), help=f"comma-separated subset of {','.join(CASES)}")
    p.add_argument("--pg-url", default=PG_URL, help="PostgreSQL server (its database name is ignored)")
    p.add_argument("--campaigns", type=int, default=120)
    args = p.parse_args(argv)
    args.only = [c.strip() for c in args.only.split(",") if c.strip()]
    unknown = set(args.only) - set(CASES)
    if unknown:
        p.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")
    OUT.mkdir(parents=True, exist_ok=True)
    started = datetime.now(UTC)
    t0 = time.perf_counter()

    def say(msg: str) -> None:
        print(msg, flush=True)

    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    if "postgresql" in backends and not pg_available(args.pg_url):
        say(f"PostgreSQL at {args.pg_url} does not answer: skipped.")
        backends.remove("postgresql")
    info = machine(args.pg_url if "postgresql" in backends else None)
    spec = ProvinceSpec(campaigns=args.campaigns)
    results: list[dict[str, Any]] = []
    for backend in backends:
        results += run_backend(backend, args, spec, say)
    meta = {"started": started.isoformat(timespec="seconds"), "quick": args.quick,
            "seconds": time.perf_counter() - t0, "backends": backends, "only": args.only,
            "province": {"campaigns": spec.campaigns, "today": spec.today.isoformat()}}
    doc = {"meta": meta, "machine": info, "results": results}
    stamp = started.strftime("%Y%m%dT%H%M%SZ")
    (OUT / f"bench-{stamp}.json").write_text(json.dumps(doc, ensure_ascii=False, indent=1, default=str))
    (OUT / "latest.json").write_text(json.dumps(doc, ensure_ascii=False, indent=1, default=str))
    (OUT / "latest.md").write_text(markdown(results, info, meta))
    say("")
    say(f"qcbot benchmarks — {info['cores']} cores, {info['ram_gb']} GB RAM, {info['cpu']}; Python {info['python']}; "
        f"SQLite {info['sqlite']}; PostgreSQL {info.get('postgresql', '–')}")
    say("packages: " + ", ".join(f"{k} {v}" for k, v in info["packages"].items() if v))
    say(f"province: {spec.campaigns} campaigns, seen on {spec.today.isoformat()}; "
        f"{'quick' if args.quick else 'full'} run, {meta['seconds']:.0f} s")
    say("")
    say(table(results))
    say("")
    for r in results:
        say(f"* {r['name']} ({r['backend']}): {r['what']}")
    say(f"\nJSON: {OUT / 'latest.json'}   Markdown: {OUT / 'latest.md'}")
    # Missed targets are in the table; only a benchmark that crashed fails the run.
    return 2 if any(r["what"].startswith("FAILED") for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
