"""Notices media that stopped moving while its input did not (sans-I/O: counters in,
verdicts out).

Two places can stall without an error: a publisher's pc whose datagrams keep arriving
while nothing reaches the forwarder (its receive path died: a DTLS loop ended, SRTP
fails, RTP is not routed), and one subscriber's copy of a track that forwards nothing
while the track's packets keep coming. The worker samples its counters once a second
and asks this class; it logs, counts and recovers what is reported.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Final

#: Seconds a stall must last before it is reported.
WINDOW_S: Final = 3.0
#: Packets that must have come in over the window for "nothing went out" to be a stall
#: (a publisher's RTCP alone, about one a second, is not input).
MIN_PACKETS: Final = 30


class Verdict(Enum):
    FLOWING = "flowing"
    STALLED = "stalled"
    """First stall: the caller restarts the thing in place."""
    STILL_STALLED = "still_stalled"
    """Stalled again right after a restart: the caller replaces it."""


@dataclass(slots=True)
class _Baseline:
    since: float
    came_in: int
    went_out: int
    stalls: int = 0


class Watchdog:
    def __init__(self, window_s: float = WINDOW_S, min_packets: int = MIN_PACKETS) -> None:
        self.window_s = window_s
        self.min_packets = min_packets
        self._baselines: dict[object, _Baseline] = {}

    def observe(self, key: object, now: float, came_in: int, went_out: int, live: bool) -> Verdict:
        """One sample of a monotonic in/out counter pair (e.g. datagrams arrived and
        packets tapped for a publisher's pc; packets tapped and forwarded for one
        subscriber's copy). `live` is false while out cannot move (not connected yet,
        muted): the window starts again."""
        base = self._baselines.get(key)
        if base is None or not live:
            self._baselines[key] = _Baseline(now, came_in, went_out, base.stalls if base else 0)
            return Verdict.FLOWING
        if now - base.since < self.window_s:
            return Verdict.FLOWING
        stalled = came_in - base.came_in >= self.min_packets and went_out == base.went_out
        stalls = base.stalls + 1 if stalled else 0
        self._baselines[key] = _Baseline(now, came_in, went_out, stalls)
        if not stalled:
            return Verdict.FLOWING
        return Verdict.STALLED if stalls == 1 else Verdict.STILL_STALLED

    def forget(self, key: object) -> None:
        self._baselines.pop(key, None)
