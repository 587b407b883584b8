"""A scripted GR-S session: a real `Room` with the demo scenario, driven by bots.

Members join, move their head and hands every tick (poses at the tick rate), chat,
grab and release objects and write notes; the demo scenario drifts seven vitals each
second and logs an event every five. Deterministic for a seed, so tests can compare
replays with the live room and re-simulate it; the bench uses it as the GR-S load.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from netcode.views import Role
from rooms.demo import DemoScenario
from rooms.records import Recorder
from rooms.room import PARTS, Room, RoomConfig


def make_room(
    recorder: Recorder,
    seed: int = 1,
    tick_hz: int = 30,
    keyframe_seconds: float = 10.0,
    checksum_every: int = 30,
    objects: int = 20,
) -> Room:
    return Room(
        "synthetic",
        DemoScenario(seed, objects=objects),
        seed=seed,
        recorder=recorder,
        config=RoomConfig(
            tick_hz=tick_hz, keyframe_seconds=keyframe_seconds, checksum_every=checksum_every
        ),
    )


class Bots:
    """Scripted members of a room; `run()` plays `seconds` of session."""

    def __init__(self, room: Room, participants: int = 8, seed: int = 1) -> None:
        self.room = room
        self.rng = random.Random(seed * 7919)
        self.participants = participants
        self.members: list[int] = []
        self.held: dict[int, int] = {}
        self._pose: dict[int, list[float]] = {}

    def run(
        self,
        seconds: float,
        on_tick: Callable[[Room], None] | None = None,
        end: bool = True,
    ) -> None:
        room, rng = self.room, self.rng
        room.start({"server": "0.1.0", "case": "demo-1"})
        for i in range(self.participants):
            role = Role.FACILITATOR if i == 0 else Role.PARTICIPANT
            self.members.append(room.join(role, f"Dr {chr(65 + i)}").id)
        room.join(Role.SPECTATOR, "Observer")
        hz = room.config.tick_hz
        objects = room.world.find("object")
        for n in range(int(seconds * hz)):
            if n > 0:
                for m in self.members:
                    self._move(m)
            if n % (5 * hz) == 2 * hz:
                self._act(rng.choice(self.members), objects, n)
            room.tick()
            if on_tick is not None:
                on_tick(room)
        if end:
            room.submit(self.members[0], 10**6, "end", {"reason": "debrief"})
            room.tick()
            if on_tick is not None:
                on_tick(room)

    def _move(self, member: int) -> None:
        pose = self._pose.setdefault(member, [0.0, 1.6, 0.0])
        pose[0] += self.rng.uniform(-0.01, 0.01)
        pose[2] += self.rng.uniform(-0.01, 0.01)
        parts = {
            p: [pose[0], pose[1] - 0.3 * (p != "head"), pose[2], 0.0, 0.0, 0.0, 1.0] for p in PARTS
        }
        self.room.pose(member, parts)

    def _act(self, member: int, objects: list[int], n: int) -> None:
        rng = self.rng
        choice = rng.randrange(4 if objects else 2)
        args: dict[str, Any]
        if choice == 0:
            action, args = "chat", {"text": f"message {n}"}
        elif choice == 1:
            action, args = "note", {"text": f"note {n}"}
        elif member in self.held:
            action, args = "release", {"obj": self.held.pop(member)}
        else:
            obj = rng.choice(objects)
            action, args = "grab", {"obj": obj}
            self.held[member] = obj
        self.room.submit(member, n, action, args)


def run_session(
    recorder: Recorder,
    seconds: float,
    *,
    participants: int = 8,
    seed: int = 1,
    on_tick: Callable[[Room], None] | None = None,
    **room_kw: Any,
) -> Room:
    room = make_room(recorder, seed=seed, **room_kw)
    Bots(room, participants, seed).run(seconds, on_tick)
    return room
