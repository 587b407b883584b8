"""Figures as the anchor computes them: percentiles, summaries, process and machine CPU.

Percentiles are numpy's default (linear interpolation between order statistics), with
the anchor's one rule for missed markers: a percentile that reaches an infinite sample
is infinite. CPU is utime + stime of a process (all its threads, not its children), the
figure `/proc/<pid>/stat` gives and `load.cjs` reads.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy
import psutil


def now_ms() -> float:
    """CLOCK_MONOTONIC in ms: one clock for every process of the machine (Node's hrtime)."""
    return time.monotonic_ns() / 1e6


def percentile(values: Sequence[float], q: float) -> float | None:
    """numpy's linear percentile; infinite once it reaches an infinite (missed) sample."""
    if not values:
        return None
    ordered = numpy.sort(numpy.asarray(values, dtype=float))
    if math.isinf(ordered[math.ceil((len(ordered) - 1) * q / 100)]):
        return math.inf
    # Only the two order statistics around q count, and both are finite here.
    ordered[numpy.isinf(ordered)] = numpy.finfo(float).max
    return float(numpy.percentile(ordered, q))


def summarize(values: Sequence[float], digits: int = 1) -> dict[str, Any]:
    """n, median, p10, p90, p99, min, max (as `load.cjs` reports them)."""

    def rounded(x: float | None) -> float | str | None:
        if x is None:
            return None
        return round(x, digits) if math.isfinite(x) else "Infinity"

    return {
        "n": len(values),
        "median": rounded(percentile(values, 50)),
        "p10": rounded(percentile(values, 10)),
        "p90": rounded(percentile(values, 90)),
        "p99": rounded(percentile(values, 99)),
        "min": rounded(min(values)) if values else None,
        "max": rounded(max(values)) if values else None,
    }


def lag_summary(samples_ms: Sequence[float]) -> dict[str, float]:
    """Event-loop lag (how late a 5 ms timer fired): p50, p99, max in ms."""
    if not samples_ms:
        return {"p50": 0.0, "p99": 0.0, "max": 0.0}
    return {
        "p50": round(percentile(samples_ms, 50) or 0.0, 2),
        "p99": round(percentile(samples_ms, 99) or 0.0, 2),
        "max": round(max(samples_ms), 2),
    }


def process_cpu_seconds(pid: int) -> float | None:
    """utime + stime of `pid` (all threads), or None once it is gone."""
    try:
        times = psutil.Process(pid).cpu_times()
    except psutil.Error:
        return None
    return float(times.user + times.system)


def process_rss_mb(pid: int) -> float | None:
    try:
        return float(psutil.Process(pid).memory_info().rss) / 2**20
    except psutil.Error:
        return None


@dataclass(frozen=True, slots=True)
class MachineCpu:
    """Whole-machine CPU time (all cores) from /proc/stat, in seconds."""

    total: float
    busy: float
    steal: float

    @classmethod
    def now(cls) -> MachineCpu:
        t = psutil.cpu_times()
        busy = t.user + t.nice + t.system + t.irq + t.softirq
        return cls(total=busy + t.idle + t.iowait + t.steal, busy=busy, steal=t.steal)

    def busy_cores_since(self, earlier: MachineCpu) -> float:
        total = self.total - earlier.total
        return (self.busy - earlier.busy) / total * psutil.cpu_count() if total > 0 else 0.0

    def steal_fraction_since(self, earlier: MachineCpu) -> float:
        total = self.total - earlier.total
        return (self.steal - earlier.steal) / total if total > 0 else 0.0
