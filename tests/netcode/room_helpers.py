"""Shared helpers for tests that drive a real Room with the demo scenario."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from netcode.publisher import Publisher
from rooms.demo import DemoScenario
from rooms.events import OutputEvent, Replied
from rooms.records import Recorder
from rooms.room import Room, RoomConfig

TICK_HZ = 10
CONFIG = RoomConfig(
    tick_hz=TICK_HZ, grace_seconds=1.0, lease_seconds=1.0, checksum_every=3, keyframe_seconds=2.0
)
"""Ten ticks a second: a lease lasts 10 ticks, the grace period 10 ticks."""


def make_room(
    seed: int = 7,
    *,
    config: RoomConfig = CONFIG,
    recorder: Recorder | None = None,
    objects: int = 4,
    history_ticks: int | None = None,
    op_ring: int | None = None,
) -> Room:
    """A started demo room; optionally with a publisher whose rings are small."""
    room = Room(
        "r1", DemoScenario(seed, objects=objects), seed=seed, config=config, recorder=recorder
    )
    if history_ticks is not None or op_ring is not None:
        kwargs: dict[str, Any] = {"checksum_every": config.checksum_every}
        if history_ticks is not None:
            kwargs["history_ticks"] = history_ticks
        if op_ring is not None:
            kwargs["op_ring"] = op_ring
        room.publisher = Publisher(room.world, **kwargs)
    room.start()
    return room


def replies_of(outputs: list[OutputEvent]) -> dict[int, Replied]:
    return {event.reply_id: event for event in outputs if isinstance(event, Replied)}


def intent(room: Room, member: int, reply_id: int, action: str, **args: Any) -> Replied:
    """Submit one intent, tick, and return its reply."""
    room.submit(member, reply_id, action, args)
    return replies_of(room.tick())[reply_id]


def pose_values(x: float = 0.0, y: float = 1.6, z: float = 0.0) -> list[float]:
    return [x, y, z, 0.0, 0.0, 0.0, 1.0]


COORD = st.floats(-2.0, 2.0, allow_nan=False)
QUAT = st.tuples(*[st.floats(-1.0, 1.0, allow_nan=False)] * 3, st.sampled_from([-1.0, 0.5, 1.0]))
"""Any rotation axis; the last component keeps the quaternion far from zero."""
POSE = st.builds(lambda x, y, z, q: [x, y, z, *q], COORD, COORD, COORD, QUAT)
