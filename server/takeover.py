"""Restoring a room whose owner died, from what the owner kept in Valkey.

The backlog stream holds the room's latest keyframe and every record since
(`server/room_backlog.py`): the same records the replay log holds. A fresh `Room` built
from the room's `start` record is restored from the keyframe and fed the inputs that
followed (`Room.feed`), which makes it exactly the room the owner had, tick for tick;
the outputs it makes again are compared with the recorded ones as it goes. Every
member is then marked disconnected (their connections died with the owner), so they
resume within the grace period or leave.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass

from replay.format import data_equal
from rooms.events import INPUT_KINDS, Start, input_from_record
from rooms.records import MemoryRecorder, Record
from rooms.room import Room, RoomConfig
from rooms.scenario import Scenario
from server.client_socket import binary_frame
from server.directory import RoomEntry
from server.refusals import RoomRefused
from server.room_backlog import Numbered, unpack_batch
from server.valkey import Keys, Valkey

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Backlog:
    """The records Valkey holds for a room, each with its index in the replay log."""

    records: list[Numbered]

    @property
    def first(self) -> int:
        """The log index of the first record held (0 when nothing is held)."""
        return next((i for i, _ in self.records if i >= 0), 0)

    def plain(self) -> list[Record]:
        return [r for _, r in self.records]


@dataclass(frozen=True, slots=True)
class Restored:
    room: Room
    backlog: Backlog


async def read_backlog(valkey: Valkey, room_id: str) -> Backlog:
    entries = await valkey.call(valkey.client.xrange(Keys.room_records(room_id)))
    records: list[Numbered] = []
    for entry in entries:
        payload = entry.field_values[b"d"]
        assert isinstance(payload, bytes)
        records += unpack_batch(payload)
    return Backlog(records)


def rebuild(
    entry: RoomEntry, backlog: Backlog, make_scenario: Callable[[str, int], Scenario]
) -> Restored:
    """The room as its owner last recorded it; `RoomRefused` when the backlog cannot say."""
    plain = backlog.plain()
    keyframes = [i for i, r in enumerate(plain) if r.kind == "keyframe"]
    if not entry.start or not keyframes:
        raise RoomRefused("room_lost", "the room's state did not reach the cluster in time")
    start = input_from_record(Record("start", 0, json.loads(entry.start)))
    assert isinstance(start, Start)
    check = MemoryRecorder()
    room = Room(
        entry.id,
        make_scenario(entry.case, start.seed),
        seed=start.seed,
        config=RoomConfig.of(start),
        recorder=check,
        framer=binary_frame,
        title=start.title,
    )
    first = keyframes[-1]
    room.restore(plain[first])
    after = plain[first + 1 :]
    for record in after:
        if record.kind in INPUT_KINDS:
            room.feed(input_from_record(record))
    made = [r for r in check.records if r.kind not in INPUT_KINDS]
    recorded = [r for r in after if r.kind not in INPUT_KINDS]
    if len(made) != len(recorded) or not all(
        m.kind == r.kind and data_equal(m.data, r.data)
        for m, r in zip(made, recorded, strict=False)
    ):
        log.error("room %s: the restored room does not re-make the owner's records", entry.id)
    return Restored(room, backlog)
