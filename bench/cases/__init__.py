"""The benchmarks, one module each; every ``run(ctx)`` returns result rows (dicts).

A row: ``name``, ``what`` (what was measured, in words), ``unit``, the summary
(``n``, ``median``, ``p95``, ``max``), the ``target`` and whether it was ``met``,
and ``extra`` details.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from bench.seeder import ProvinceSpec

TZ = ZoneInfo("Asia/Shanghai")


@dataclass
class Ctx:
    backend: str  # "sqlite" or "postgresql"
    seed_url: str  # the seeded province (never written)
    work_url: str  # a fresh copy of it, for this run's benchmarks
    spec: ProvinceSpec
    quick: bool
    out: Path
    seed_report: dict[str, Any] = field(default_factory=dict)

    def anchor(self, hour: int = 10, minute: int = 0) -> datetime:
        """The province's "today" at ``hour``:``minute`` in Asia/Shanghai, as UTC."""
        t = self.spec.today
        return datetime(t.year, t.month, t.day, hour, minute, tzinfo=TZ).astimezone(UTC)


def row(name: str, what: str, summary: dict[str, Any], *, unit: str = "ms",
        target: str = "", met: bool | None = None, **extra: Any) -> dict[str, Any]:
    return {"name": name, "what": what, "unit": unit, **summary, "target": target, "met": met,
            "extra": extra}
