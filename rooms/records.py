"""What a room tells its recorder: one `Record` per thing that happened, in order.

The replay writer is one implementation (with I/O, in the server); tests use a list.
Re-simulating a session means feeding the recorded inputs ("join", "leave", "intent",
"pose", "tick") to a fresh room with the recorded seed and comparing the outputs
("op", "checksum", "keyframe").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class Record:
    kind: str
    """Inputs: start, join, reconnect, disconnect, leave, intent, pose, end, tick.
    Outputs: reply, op, poses, checksum, keyframe, expire, ended."""
    tick: int
    data: dict[str, Any]


class Recorder(Protocol):
    def record(self, record: Record) -> None:
        """Take one record; must not block (the room never waits on the disk)."""


class MemoryRecorder:
    """Keeps records in a list: for tests and re-simulation."""

    def __init__(self) -> None:
        self.records: list[Record] = []

    def record(self, record: Record) -> None:
        self.records.append(record)


class NullRecorder:
    def record(self, record: Record) -> None:
        return None
