"""Rebuilding the state at a moment: a keyframe plus the records that follow it.

A keyframe record's data is `Room.export()`: `world` (`CaseState.export()`), `poses`
(the published pose table), `members`, `leases`, `status`, `scenario`. Ops are
re-applied through `CaseState`'s own methods, so a rebuilt state is the state the
room had, field visibility, log tails and op numbering included.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from netcode.codec import checksum
from netcode.state import CaseState, StateError
from netcode.views import View
from replay.errors import ReplayError
from rooms.records import Record

MALFORMED = (StateError, ValueError, TypeError, KeyError, IndexError, AttributeError)
"""What malformed recorded data raises when applied: reported as a `ReplayError`."""


def apply_op(world: CaseState, op: list[Any]) -> None:
    """Make `op` (a canonical op as recorded) on `world`."""
    match op[0]:
        case "new":
            _, eid, kind, fields = op
            made = world.create(
                kind,
                {k: v for k, (v, _) in fields.items()},
                {k: View(vis) for k, (_, vis) in fields.items()},
            )
            if made != eid:
                raise StateError(f"op creates entity {eid}, the state would make {made}")
        case "set":
            _, eid, name, value, vis = op
            world.set(eid, name, value, View(vis))
        case "del":
            world.delete(op[1])
        case "log":
            _, channel, entry, vis = op
            world.log(channel, entry, View(vis))
        case other:
            raise StateError(f"unknown op {other!r}")


@dataclass(slots=True)
class ReplayState:
    """What the room held after `tick`, as `view` sees it."""

    tick: int
    seconds: float
    view: View
    case: dict[str, Any]
    """`CaseState.view_state(view)`: {"e": entities, "l": log tails}"""
    poses: dict[int, list[int]]
    """Published (quantized) poses by entity id."""
    room: dict[str, Any]
    """Room-level state (status, members, leases, scenario) as of the keyframe used."""
    keyframe_tick: int | None

    def client_state(self) -> dict[str, Any]:
        """What a client of this view holds ({e, l, p}), the form room checksums cover."""
        return {**self.case, "p": self.poses}

    def checksum(self) -> int:
        return checksum(self.client_state())


@dataclass(slots=True)
class Reconstruction:
    """A state being rolled forward record by record (from the start or a keyframe)."""

    world: CaseState = field(default_factory=CaseState)
    poses: dict[int, list[int]] = field(default_factory=dict)
    room: dict[str, Any] = field(default_factory=dict)
    keyframe_tick: int | None = None

    @classmethod
    def from_keyframe(cls, record: Record) -> Reconstruction:
        data = record.data
        try:
            world = CaseState.restore(data["world"])
            poses = {int(k): list(v) for k, v in data["poses"].items()}
            room = {k: v for k, v in data.items() if k not in ("world", "poses")}
        except MALFORMED as exc:
            raise ReplayError("bad-keyframe", f"keyframe at tick {record.tick}: {exc}") from exc
        return cls(world, poses, room, record.tick)

    def apply(self, record: Record, *, playing: bool = False) -> None:
        """Roll forward by one record; records that do not change state are ignored.

        `playing`: the state is being published as it goes (a play head moving on), so
        ops stay pending for the publisher and keyframes, which only repeat the state,
        are skipped.
        """
        try:
            self._apply(record, playing)
        except ReplayError:
            raise
        except MALFORMED as exc:
            raise ReplayError(
                "bad-record", f"{record.kind} record at tick {record.tick} does not apply: {exc!r}"
            ) from exc

    def _apply(self, record: Record, playing: bool) -> None:
        kind, data = record.kind, record.data
        if kind == "op":
            try:
                apply_op(self.world, data["op"])
            except MALFORMED as exc:
                raise ReplayError(
                    "bad-op", f"op {data.get('seq')} at tick {record.tick} does not apply: {exc}"
                ) from exc
            if self.world.op_seq != data.get("seq", self.world.op_seq):
                raise ReplayError(
                    "bad-op", f"op {data['seq']} at tick {record.tick} lands as {self.world.op_seq}"
                )
            if not playing:
                self.world.drain()
        elif kind == "poses":
            for eid, pose in data.get("p", {}).items():
                self.poses[int(eid)] = list(pose)
            for eid in data.get("g", []):
                self.poses.pop(int(eid), None)
        elif kind == "keyframe" and not playing:
            fresh = Reconstruction.from_keyframe(record)
            self.world, self.poses = fresh.world, fresh.poses
            self.room, self.keyframe_tick = fresh.room, fresh.keyframe_tick

    def state(self, view: View, tick: int, tick_hz: int) -> ReplayState:
        return ReplayState(
            tick,
            tick / (tick_hz or 1),
            view,
            self.world.view_state(view),
            {k: list(v) for k, v in self.poses.items()},
            dict(self.room),
            self.keyframe_tick,
        )


def keyframe_matches(recon: Reconstruction, record: Record) -> str | None:
    """None when a keyframe agrees with the rolled-forward state, else what differs."""
    fresh = Reconstruction.from_keyframe(record)
    if fresh.world.export() != recon.world.export():
        return "case state differs from the recorded ops"
    if fresh.poses != recon.poses:
        return "pose table differs from the recorded poses"
    return None
