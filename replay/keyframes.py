"""Rebuilding the state at a moment: a keyframe plus the records that follow it.

A keyframe record's data holds `case` (`CaseState.export()`), `poses` (the pose
table), `scenario` (the scenario's `snapshot()`) and `room` (room-level state).
Ops are re-applied through `CaseState`'s own methods, so a rebuilt state is the
state the room had, field visibility and op numbering included.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from netcode.state import CaseState, StateError
from netcode.views import View
from replay.errors import ReplayError
from rooms.records import Record


def ops_of(data: Mapping[str, Any]) -> Iterator[tuple[int | None, list[Any]]]:
    """(seq, canonical op) pairs of an `op` record: one op, or a batch under `ops`."""
    if "ops" in data:
        for item in data["ops"]:
            if isinstance(item, Mapping):
                yield item.get("seq"), list(item["op"])
            else:
                yield item[0], list(item[1])
    else:
        yield data.get("seq"), list(data["op"])


def apply_op(world: CaseState, op: list[Any]) -> None:
    """Make `op` (a canonical op as recorded) on `world`."""
    match op[0]:
        case "new":
            _, eid, kind, fields = op
            made = world.create(
                kind, {k: v for k, (v, _) in fields.items()},
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
    """What the room held at `tick`, as `view` sees it."""

    tick: int
    seconds: float
    view: View
    case: dict[str, Any]
    """`CaseState.view_state(view)`"""
    poses: dict[Any, Any]
    members: dict[Any, dict[str, Any]]
    room: dict[str, Any]
    scenario: dict[str, Any]
    """The scenario snapshot of the keyframe the state was rebuilt from (facilitator data)."""


@dataclass(slots=True)
class Reconstruction:
    """A state being rolled forward record by record."""

    world: CaseState = field(default_factory=CaseState)
    poses: dict[Any, Any] = field(default_factory=dict)
    members: dict[Any, dict[str, Any]] = field(default_factory=dict)
    room: dict[str, Any] = field(default_factory=dict)
    scenario: dict[str, Any] = field(default_factory=dict)
    tick: int = 0

    @classmethod
    def from_keyframe(cls, record: Record) -> Reconstruction:
        data = record.data
        try:
            world = CaseState.restore(data["case"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ReplayError("bad-keyframe", f"keyframe at tick {record.tick}: {exc}") from exc
        room = dict(data.get("room") or {})
        members = {m["member"]: dict(m) for m in room.get("members", []) if "member" in m}
        return cls(
            world, dict(data.get("poses") or {}), members, room,
            dict(data.get("scenario") or {}), record.tick,
        )

    def apply(self, record: Record) -> None:
        self.tick = record.tick
        kind, data = record.kind, record.data
        if kind == "op":
            for seq, op in ops_of(data):
                try:
                    apply_op(self.world, op)
                except (StateError, ValueError, TypeError, KeyError) as exc:
                    raise ReplayError(
                        "bad-op", f"op {seq} at tick {record.tick} does not apply: {exc}"
                    ) from exc
                if seq is not None and self.world.op_seq != seq:
                    raise ReplayError(
                        "bad-op", f"op {seq} at tick {record.tick} lands as {self.world.op_seq}"
                    )
            self.world.drain()
        elif kind == "poses":
            for eid, pose in data.get("poses", data).items():
                if pose is None:
                    self.poses.pop(eid, None)
                else:
                    self.poses[eid] = pose
        elif kind == "join":
            self.members[data.get("member")] = dict(data)
        elif kind == "leave":
            member = self.members.pop(data.get("member"), None)
            avatar = (member or {}).get("avatar", data.get("avatar"))
            if avatar is not None:
                self.poses.pop(avatar, None)
        elif kind == "keyframe":
            fresh = Reconstruction.from_keyframe(record)
            self.world, self.poses, self.room = fresh.world, fresh.poses, fresh.room
            self.scenario = fresh.scenario
            if fresh.members:
                self.members = fresh.members

    def state(self, view: View, tick_hz: int) -> ReplayState:
        return ReplayState(
            self.tick, self.tick / (tick_hz or 1), view, self.world.view_state(view),
            dict(self.poses), {k: dict(v) for k, v in self.members.items()},
            dict(self.room), dict(self.scenario),
        )
