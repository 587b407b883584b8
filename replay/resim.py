"""Re-simulation: a fresh room fed a session's recorded inputs must make its outputs.

A fresh `Room` is built from the `start` record (scenario by name, seed, tick rate,
config) and fed the recorded input events (`Room.feed`), one at a time; every
record it makes is compared, in order, with the recorded stream. The first record
that differs is the divergence.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from replay.errors import ReplayError
from replay.format import data_equal
from rooms.demo import DemoScenario
from rooms.events import INPUT_KINDS, Start, input_from_record
from rooms.records import MemoryRecorder, Record
from rooms.room import Room, RoomConfig
from rooms.scenario import Scenario

ScenarioLookup = Callable[[str, int], Scenario]
"""(scenario name as recorded, seed) -> a fresh scenario; raises ReplayError if unknown."""


def demo_scenarios(name: str, seed: int) -> Scenario:
    """The scenarios the replay package knows itself; the server passes its own lookup."""
    if name == "demo":
        return DemoScenario(seed)
    raise ReplayError("unknown-scenario", f"cannot re-simulate scenario {name!r}")


RoomFactory = Callable[[Record, MemoryRecorder], Room]


def room_factory(scenarios: ScenarioLookup = demo_scenarios) -> RoomFactory:
    """Build fresh rooms from a `start` record: scenario, seed, tick rate and config."""

    def build(start: Record, recorder: MemoryRecorder) -> Room:
        event = input_from_record(start)
        assert isinstance(event, Start)
        return Room(
            event.room,
            scenarios(event.scenario, event.seed),
            seed=event.seed,
            config=RoomConfig.of(event),
            recorder=recorder,
            title=event.title,
        )

    return build


@dataclass(frozen=True, slots=True)
class Divergence:
    """The first record where the re-simulated room and the recording disagree."""

    index: int
    tick: int
    seconds: float
    expected: Record | None
    got: Record | None

    def describe(self) -> str:
        def show(r: Record | None) -> str:
            return "nothing" if r is None else f"{r.kind} {_short(r.data)}"

        return (
            f"record {self.index} (tick {self.tick}, t={self.seconds:.3f}s): "
            f"recorded {show(self.expected)}, re-simulation made {show(self.got)}"
        )


def _short(data: Any, limit: int = 300) -> str:
    text = repr(data)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def resimulate(records: Iterable[Record], make_room: RoomFactory) -> Divergence | None:
    """Compare a recorded stream with a fresh room's; None when they agree record for record."""
    made = MemoryRecorder()
    room: Room | None = None
    pending: deque[Record] = deque()
    hz = 1
    for index, recorded in enumerate(records):
        if room is None:
            if recorded.kind != "start":
                return Divergence(index, recorded.tick, 0.0, recorded, None)
            room = make_room(recorded, made)
            hz = room.config.tick_hz
        if recorded.kind in INPUT_KINDS:
            room.feed(input_from_record(recorded))
            pending.extend(made.records)
            made.records.clear()
        got = pending.popleft() if pending else None
        if (
            got is None
            or got.kind != recorded.kind
            or got.tick != recorded.tick
            or not data_equal(got.data, recorded.data)
        ):
            return Divergence(index, recorded.tick, recorded.tick / hz, recorded, got)
    return None  # records left pending: the recording stopped within the last input's outputs
