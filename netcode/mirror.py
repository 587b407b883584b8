"""The client's copy of one view of a room, kept equal to the server's by applying frames.

A `Mirror` takes decoded state frames in order. It raises `Desync` when a frame does
not fit (a delta for a tick it does not hold, an op on an entity it lacks, a checksum
that disagrees); the client then asks for a snapshot and the mirror repairs itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from netcode.codec import checksum
from netcode.state import LOG_TAIL


class Desync(Exception):
    """The mirror no longer matches the server's view; ask for a snapshot."""


class Mirror:
    def __init__(self) -> None:
        self.tick: int | None = None
        self.op: int = 0
        self.entities: dict[int, list[Any]] = {}
        self.logs: dict[str, list[Any]] = {}
        self.poses: dict[int, list[int]] = {}
        self.deltas = 0

    def apply(self, frame: Mapping[str, Any]) -> None:
        """Apply one state frame (a decoded `{"t": "s", ...}` map)."""
        if "full" in frame:
            self._apply_snapshot(frame)
        else:
            self._apply_delta(frame)
        self.tick = frame["k"]
        self.op = frame["o"]
        if "c" in frame and frame["c"] != self.checksum():
            raise Desync(f"checksum mismatch at tick {frame['k']}")

    def _apply_snapshot(self, frame: Mapping[str, Any]) -> None:
        full = frame["full"]
        self.entities = {
            int(eid): [kind, dict(fields)] for eid, (kind, fields) in full["e"].items()
        }
        self.logs = {ch: list(entries) for ch, entries in full["l"].items()}
        self.poses = {int(eid): list(p) for eid, p in full["p"].items()}

    def _apply_delta(self, frame: Mapping[str, Any]) -> None:
        if "b" in frame:
            if frame["b"] != self.tick:
                raise Desync(f"delta against tick {frame['b']}, mirror holds {self.tick}")
        elif frame.get("r") != self.op:
            raise Desync(f"resume delta from op {frame.get('r')}, mirror holds op {self.op}")
        for op in frame.get("ops", ()):
            self._apply_op(op)
        poses = frame.get("p", {})
        if frame.get("pf"):
            self.poses = {int(eid): list(p) for eid, p in poses.items()}
        else:
            for eid, pose in poses.items():
                self.poses[int(eid)] = list(pose)
            for eid in frame.get("g", ()):
                self.poses.pop(int(eid), None)
        self.deltas += 1

    def _apply_op(self, op: list[Any]) -> None:
        match op:
            case ["new", eid, kind, fields]:
                self.entities[eid] = [kind, dict(fields)]
            case ["set", eid, field, value]:
                entity = self.entities.get(eid)
                if entity is None:
                    raise Desync(f"op on entity {eid}, which the mirror does not hold")
                entity[1][field] = value
            case ["del", eid]:
                self.entities.pop(eid, None)
                self.poses.pop(eid, None)
            case ["log", channel, entry]:
                tail = self.logs.setdefault(channel, [])
                tail.append(entry)
                if len(tail) > LOG_TAIL:
                    del tail[: len(tail) - LOG_TAIL]
            case _:
                raise Desync(f"unknown op {op!r}")

    def view_state(self) -> dict[str, Any]:
        return {"e": self.entities, "l": self.logs, "p": self.poses}

    def checksum(self) -> int:
        return checksum(self.view_state())

    # -- convenience for bots, tests and the UI --------------------------------
    def find(self, kind: str) -> dict[int, dict[str, Any]]:
        return {eid: fields for eid, (k, fields) in self.entities.items() if k == kind}

    def field(self, eid: int, name: str, default: Any = None) -> Any:
        entity = self.entities.get(eid)
        return default if entity is None else entity[1].get(name, default)
