"""Both ends of one client's state sync, with no I/O.

`Subscriber` is the server's record of what one client holds: the tick its last frame
described (the baseline the next delta is built against), the op it resumed from, how
often it wants state, and since when it has been too slow to take a frame. `Follower`
is the client's side: it applies frames to a `Mirror`, says when to acknowledge and
when to ask for a snapshot, and where to resume after a dropped connection. The room
host, a spectator relay, the Python client and the property tests all use these, so
the rules live in one place.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

from netcode.mirror import Desync, Mirror
from netcode.publisher import Publisher
from netcode.views import Role, View

ACK_EVERY_TICKS: Final = 10
"""How often a client that acts (a participant, a facilitator) acknowledges what it holds."""
WATCHER_ACK_SECONDS: Final = 5
"""How often a spectator, which only watches, acknowledges. Acks are informational (the
server takes a written frame as delivered), so a watcher's ack is a keep-alive, well
inside the 30 s the server waits for a message; fewer acks from hundreds of spectators
spare the server a wake-up each."""


def ack_interval(role: str, tick_hz: int) -> int:
    """Ticks between acks for a client of `role` (as `welcome` names it) at `tick_hz`."""
    if role == Role.SPECTATOR:
        return max(ACK_EVERY_TICKS, WATCHER_ACK_SECONDS * tick_hz)
    return ACK_EVERY_TICKS


@dataclass(slots=True)
class Subscriber:
    view: View
    base: int | None = None
    """The tick of the last frame written to this client; None: it holds nothing yet."""
    resume_op: int | None = None
    """On resume, the op the client holds, until its first frame is written."""
    every: int = 1
    """State every this many ticks (more than 1 for low-bandwidth clients)."""
    behind_since: float | None = None

    @classmethod
    def resuming(cls, view: View, tick: int, op: int, every: int = 1) -> Subscriber:
        return cls(view, base=tick, resume_op=op, every=every)

    def due(self, tick: int) -> bool:
        """Whether this tick's frame is for this client (low-bandwidth clients skip some)."""
        return self.every == 1 or tick % self.every == 0

    def frame(self, publisher: Publisher) -> bytes:
        """Delta from its baseline, resume delta from its op, or a snapshot: whichever fits."""
        return publisher.frame(self.view, self.base, self.resume_op)

    def delivered(self, tick: int) -> None:
        """The frame for `tick` was written in full: it is the next baseline."""
        self.base = tick
        self.resume_op = None
        self.behind_since = None

    def missed(self, now: float, patience: float) -> bool:
        """The socket could not take the frame; True once it has been behind for `patience` s.

        Its baseline stays, so the next delta covers the gap.
        """
        if self.behind_since is None:
            self.behind_since = now
            return False
        return now - self.behind_since > patience

    def resync(self) -> None:
        """The client asked for a snapshot (its mirror disagreed)."""
        self.base = None
        self.resume_op = None

    def set_rate(self, frames_per_second: int, tick_hz: int) -> None:
        self.every = max(1, round(tick_hz / frames_per_second))


@dataclass(slots=True)
class FollowerStep:
    """What the client should do after a frame: acknowledge a tick, and/or ask to resync."""

    ack: int | None = None
    resync: bool = False
    applied: bool = False


@dataclass(slots=True)
class Follower:
    mirror: Mirror = field(default_factory=Mirror)
    ack_every: int = ACK_EVERY_TICKS
    awaiting_snapshot: bool = True
    """Until a snapshot arrives the mirror is stale: deltas are ignored."""
    last_ack: int = 0
    server_tick: int = 0
    resyncs: int = 0
    snapshots: int = 0
    checksum_share: int = 1
    """Verify one state checksum in this many (1: every one). Verifying re-encodes the
    whole view (milliseconds in a large room); a process that runs many clients of one room,
    like the load generator, shares the checking out among them (`checksum_turn`) instead
    of stalling on all of them at the same tick."""
    checksum_turn: int = 0
    checksums_seen: int = 0

    def welcomed(self, resumed: bool, ack_every: int = ACK_EVERY_TICKS) -> None:
        """A fresh session starts from a snapshot; a resumed one continues its mirror.
        `ack_every`: see `ack_interval`."""
        self.awaiting_snapshot = not resumed
        self.ack_every = ack_every

    def resume_point(self) -> dict[str, int] | None:
        """`{tick, op}` for a resume hello, or None when the mirror holds nothing."""
        if self.mirror.tick is None:
            return None
        return {"tick": self.mirror.tick, "op": self.mirror.op}

    def seen(self, tick: int) -> FollowerStep:
        """A state frame for `tick` arrived (decoded or not): is an ack due?"""
        self.server_tick = tick
        step = FollowerStep()
        if tick - self.last_ack >= self.ack_every:
            self.last_ack = tick
            step.ack = tick
        return step

    def receive(self, frame: dict[str, Any]) -> FollowerStep:
        """Apply one decoded state frame; say whether to ack and whether to ask for a snapshot."""
        step = self.seen(frame["k"])
        if "full" in frame:
            self.awaiting_snapshot = False
            self.snapshots += 1
        elif self.awaiting_snapshot:
            return step
        if "c" in frame and self.checksum_share > 1:
            self.checksums_seen += 1
            if (self.checksums_seen + self.checksum_turn) % self.checksum_share:
                frame = {key: value for key, value in frame.items() if key != "c"}
        try:
            self.mirror.apply(frame)
        except Desync:
            self.resyncs += 1
            self.awaiting_snapshot = True
            step.resync = True
            return step
        step.applied = True
        return step
