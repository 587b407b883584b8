"""Both servers' figures side by side: every round's value, and the ratio of the medians."""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Result = dict[str, Any]


@dataclass(frozen=True)
class Figure:
    label: str
    read: Callable[[Result], Any]
    digits: int = 1
    ratio: bool = True


def _max_lag(r: Result) -> float:
    loadgen = r["loadgen"]
    procs = [p["event_loop_delay_ms"]["p99"] for p in loadgen["spectator_procs"]]
    return float(max([loadgen["coordinator"]["event_loop_delay_ms"]["p99"], *procs]))


FIGURES = (
    Figure("state bytes/s per spectator", lambda r: r["summary"]["spectator_bytes_per_s"], 0),
    Figure("state bytes/s per participant", lambda r: r["summary"]["participant_bytes_per_s"], 0),
    Figure("server CPU s/s", lambda r: r["summary"]["server_cpu_s_per_s"], 3),
    Figure("pose-to-spectator p50 (ms)", lambda r: r["latency_ms"]["pooled"]["p50"]),
    Figure("pose-to-spectator p99 (ms)", lambda r: r["latency_ms"]["pooled"]["p99"]),
    Figure(
        "  p99 at arrival, before decoding",
        lambda r: r["latency_ms"]["pooled_at_arrival"]["p99"],
        ratio=False,
    ),
    Figure(
        "  fastest spectator p50 (ms)",
        lambda r: r["latency_ms"]["fastest_spectator_per_marker"]["p50"],
    ),
    Figure(
        "  fastest spectator p99 (ms)",
        lambda r: r["latency_ms"]["fastest_spectator_per_marker"]["p99"],
    ),
    Figure("  marker receipts missed", lambda r: r["latency_ms"]["missed"], 0, ratio=False),
    Figure("join to first state (ms)", lambda r: r["summary"]["join_to_first_state_ms"]),
    Figure("server RSS (MB)", lambda r: r["server"]["rss_mb"], 0),
    Figure(
        "  server CPU in the kernel, whole run (%)",
        lambda r: r["server_system_share"] * 100,
        0,
        ratio=False,
    ),
    Figure("state frames/s per spectator", lambda r: r["messages_per_s"]["spectator"]["median"]),
    Figure("server ticks/s", lambda r: r["server"].get("ticks_per_s"), ratio=False),
    Figure("load-generator CPU s/s", lambda r: r["summary"]["loadgen_cpu_s_per_s"], 3),
    Figure("load-generator loop lag p99 (ms)", _max_lag, ratio=False),
    Figure("machine busy cores (of 2)", lambda r: r["summary"]["machine_busy_cores"], 2, False),
    Figure(
        "CPU pressure, last minute (%)",
        lambda r: r["machine_load_after"]["cpu_pressure_avg60"] * 100,
        0,
        ratio=False,
    ),
)


def _number(value: Any) -> float | None:
    if value == "Infinity":
        return float("inf")
    return float(value) if isinstance(value, int | float) else None


def _text(value: float | None, digits: int) -> str:
    if value is None:
        return "-"
    if value == float("inf"):
        return "inf"
    return f"{value:,.{digits}f}"


def _values(results: list[Result], figure: Figure) -> list[float | None]:
    out = []
    for r in results:
        try:
            out.append(_number(figure.read(r)))
        except (KeyError, TypeError, ValueError):
            out.append(None)
    return out


def _median(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def table(ours: list[Result], theirs: list[Result]) -> list[str]:
    """One line per figure: our rounds, their rounds, ratio of the medians (ours/theirs)."""
    lines = [f"{'figure':<34} {'Grand Rounds':>24} {'Colyseus 0.18':>24} {'ours/theirs':>11}"]
    for figure in FIGURES:
        mine, other = _values(ours, figure), _values(theirs, figure)
        a, b = _median(mine), _median(other)
        ratio = ""
        if figure.ratio and a is not None and b not in (None, 0.0):
            assert b is not None
            ratio = "inf" if a == float("inf") or b == float("inf") else f"{a / b:.2f}"
        lines.append(
            f"{figure.label:<34} "
            f"{' / '.join(_text(v, figure.digits) for v in mine) or '-':>24} "
            f"{' / '.join(_text(v, figure.digits) for v in other) or '-':>24} {ratio:>11}"
        )
    valid = [("yes" if r.get("valid") else "NO", r.get("warnings", [])) for r in (*ours, *theirs)]
    lines.append(
        f"{'valid (no warning)':<34} "
        f"{' / '.join(v for v, _ in valid[: len(ours)]):>24} "
        f"{' / '.join(v for v, _ in valid[len(ours) :]):>24}"
    )
    for name, results in (("Grand Rounds", ours), ("Colyseus", theirs)):
        for i, r in enumerate(results, 1):
            for warning in r.get("warnings", []):
                lines.append(f"  warning, {name} round {i}: {warning}")
    return lines


def round_line(name: str, index: int, r: Result) -> str:
    """One round's headline figures (or its error)."""
    if "error" in r:
        return f"round {index}  {name:<12} ERROR {r['error']}"
    s = r["summary"]
    return (
        f"round {index}  {name:<12} server {s['server_cpu_s_per_s']} CPU-s/s, "
        f"p50/p99 {s['latency_p50_ms']}/{s['latency_p99_ms']} ms, "
        f"join {s['join_to_first_state_ms']} ms, {s['spectator_bytes_per_s']} B/s per spectator, "
        f"load generator {s['loadgen_cpu_s_per_s']} CPU-s/s, "
        f"machine {s['machine_busy_cores']} cores busy, CPU pressure "
        f"{r.get('machine_load_after', {}).get('cpu_pressure_avg60', float('nan')):.0%}, "
        f"{'valid' if r.get('valid') else 'NOT valid'}"
    )


def ramp_lines(name: str, r: Result) -> list[str]:
    if "error" in r:
        return [f"{name}: ERROR {r['error']}"]
    lines = [
        f"{name}: max spectators with p99 < {r['p99_limit_ms']:g} ms = "
        f"{r['max_spectators_p99_under_limit']} (stop: {r['stop_reason']}); also keeping "
        f">= 27 frames/s and an unsaturated load generator: "
        f"{r['max_spectators_p99_under_limit_full_rate']}"
    ]
    for s in r["steps"]:
        lines.append(
            f"  {s['spectators']:>5} spectators: p50 {s['latency_p50_ms']} ms, "
            f"p99 {s['latency_p99_ms']} ms, frames/s {s['messages_per_s']['spectator']['median']}, "
            f"server {s['server_cpu_s_per_s']} s/s, load generator {s['loadgen_cpu_s_per_s']} s/s, "
            f"machine {s['machine_busy_cores']} cores"
            + ("" if s["pass"] else "  FAIL")
            + ("  (load generator saturated)" if s["loadgen_saturated"] else "")
        )
    return lines
