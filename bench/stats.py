"""Summaries of samples: median, p95, max (nearest-rank percentiles)."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from typing import Any


def percentile(samples: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of ``samples``."""
    if not samples:
        return math.nan
    ordered = sorted(samples)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def summary(samples_s: Sequence[float], *, scale: float = 1000.0) -> dict[str, Any]:
    """``n``, ``median``, ``p95``, ``max`` and ``mean`` of samples in seconds, as milliseconds."""
    if not samples_s:
        return {"n": 0, "median": None, "p95": None, "max": None, "mean": None}
    return {
        "n": len(samples_s),
        "median": round(statistics.median(samples_s) * scale, 2),
        "p95": round(percentile(samples_s, 95) * scale, 2),
        "max": round(max(samples_s) * scale, 2),
        "mean": round(statistics.fmean(samples_s) * scale, 2),
    }
