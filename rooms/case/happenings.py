"""What has happened in a running case, as expressions read it.

Counts and totals of actions are kept per action key and per prefix of it ("give",
"give:crystalloid"; "decide:cvs", "decide:cvs:met"), so `done`, `count`, `total` and
`since` are one dictionary lookup, and the memory is bounded by the case's vocabulary
(its drugs, tests, regions...), not by how many actions a session holds. The full
history of actions lives in the session's recording, not here.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Final

MAX_TIMES_KEPT: Final = 20
"""Times kept per event for the debrief timeline (the recording has every one)."""


def prefixes(key: str) -> list[str]:
    """ "decide:cvs:met" -> ["decide", "decide:cvs", "decide:cvs:met"]."""
    parts = key.split(":")
    return [":".join(parts[: i + 1]) for i in range(len(parts))]


class Happenings:
    """The `Env` of a running case: current values plus counts, totals and moments."""

    def __init__(self) -> None:
        self.values: dict[str, float] = {}
        self.tally: dict[str, list[float]] = {}
        """key or prefix -> [count, total amount, first time, last time]"""
        self.fired_at: dict[str, list[float]] = {}
        """event -> the first MAX_TIMES_KEPT times it fired"""
        self.fired_count: dict[str, int] = {}
        self.last_fired: dict[str, float] = {}
        self.phase = ""
        self.decided: dict[str, list[Any]] = {}
        """decision -> [option, at_s, judged correct]"""

    @property
    def t(self) -> float:
        return self.values.get("t", 0.0)

    # -- recording -----------------------------------------------------------------
    def action(self, key: str, amount: float = 0.0) -> None:
        t = self.t
        for prefix in prefixes(key):
            entry = self.tally.get(prefix)
            if entry is None:
                self.tally[prefix] = [1, amount, t, t]
            else:
                entry[0] += 1
                entry[1] += amount
                entry[3] = t

    def fire(self, event: str) -> None:
        times = self.fired_at.setdefault(event, [])
        if len(times) < MAX_TIMES_KEPT:
            times.append(self.t)
        self.fired_count[event] = self.fired_count.get(event, 0) + 1
        self.last_fired[event] = self.t

    def decide(self, decision: str, option: str, correct: bool) -> None:
        self.decided[decision] = [option, self.t, correct]

    # -- Env -------------------------------------------------------------------------
    def count(self, key: str) -> float:
        entry = self.tally.get(key)
        return entry[0] if entry else 0

    def total(self, key: str) -> float:
        entry = self.tally.get(key)
        return entry[1] if entry else 0.0

    def since(self, moment: str) -> float:
        last = self.last_fired.get(moment)
        if last is not None:
            return self.t - last
        entry = self.tally.get(moment)
        return self.t - entry[3] if entry else math.inf

    def fired(self, event: str) -> bool:
        return event in self.fired_count

    def in_phase(self, phase: str) -> bool:
        return self.phase == phase

    def correct(self, decision: str) -> bool:
        entry = self.decided.get(decision)
        return bool(entry and entry[2])

    def first(self, key: str) -> float | None:
        entry = self.tally.get(key)
        return entry[2] if entry else None

    # -- persistence -------------------------------------------------------------------
    def export(self) -> dict[str, Any]:
        return {
            "values": dict(self.values),
            "tally": {k: list(v) for k, v in self.tally.items()},
            "fired_at": {k: list(v) for k, v in self.fired_at.items()},
            "fired_count": dict(self.fired_count),
            "last_fired": dict(self.last_fired),
            "phase": self.phase,
            "decided": {k: list(v) for k, v in self.decided.items()},
        }

    def restore(self, data: Mapping[str, Any]) -> None:
        self.values.clear()
        self.values.update({k: float(v) for k, v in data["values"].items()})
        self.tally = {k: list(v) for k, v in data["tally"].items()}
        self.fired_at = {k: list(v) for k, v in data["fired_at"].items()}
        self.fired_count = dict(data["fired_count"])
        self.last_fired = dict(data["last_fired"])
        self.phase = str(data["phase"])
        self.decided = {k: list(v) for k, v in data["decided"].items()}
