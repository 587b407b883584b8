"""A room's records since its latest keyframe, kept in Valkey for a successor.

The owner hands each tick's records (the same records its replay log gets) to a
bounded channel; a companion task appends them, one stream entry a tick, through the
room's fenced lease. The entry holding a keyframe drops every earlier entry, so the
stream is always "the latest keyframe and the records since": what a successor needs
to restore the room (`server/takeover.py`). If Valkey cannot keep up, or is away,
entries are dropped until the next keyframe starts the stream afresh; a failover in
that window loses the records since the last keyframe that reached Valkey.
"""

from __future__ import annotations

import logging
from typing import Final

import msgpack
import trio

from replay.writer import SessionWriter
from rooms.records import Record
from server.room_lease import RoomLease, Superseded
from server.valkey import Keys, ValkeyUnavailable

log = logging.getLogger(__name__)
QUEUED_TICKS: Final = 90
"""Tick batches waiting for Valkey (3 s at 30 Hz) before the backlog gives up until the
next keyframe."""
MAX_ENTRIES: Final = 4000
"""Cap on the stream: keyframes come every 10 s (300 ticks), so this is only a backstop."""


Numbered = tuple[int, Record]
"""A record and its index in the replay log (-1: the log had to drop it)."""


def pack_batch(records: list[Numbered]) -> bytes:
    rows = [[index, r.kind, r.tick, r.data] for index, r in records]
    return msgpack.packb(rows, use_bin_type=True)  # type: ignore[no-any-return]


def unpack_batch(payload: bytes) -> list[Numbered]:
    rows = msgpack.unpackb(payload, raw=False, strict_map_key=False)
    return [(int(i), Record(str(kind), int(tick), dict(data))) for i, kind, tick, data in rows]


class TeeRecorder:
    """Gives each record to the replay log and keeps it, with its index in the log, for
    the tick's backlog entry (a successor appends what its copy of the log lacks)."""

    def __init__(self, writer: SessionWriter) -> None:
        self.writer = writer
        self.pending: list[Numbered] = []

    def record(self, record: Record) -> None:
        index = self.writer.write(record)
        self.pending.append((-1 if index is None else index, record))

    def take(self) -> list[Numbered]:
        batch, self.pending = self.pending, []
        return batch


class RoomBacklog:
    """Feeds the room's backlog stream and says how far the replay log may be written.

    `durable_limit` is the index below which every record has reached Valkey: the
    node writes its replay log only up to there, so the log on the shared disk never
    holds a record a successor could not know of. (An owner cut off from Valkey keeps
    its records buffered; once Valkey accepts its next keyframe entry, which proves it
    still owns the room, everything before it may be written.)
    """

    def __init__(self, lease: RoomLease, tee: TeeRecorder) -> None:
        self.lease = lease
        self.tee = tee
        self.durable_limit = 0
        self._send, self._receive = trio.open_memory_channel[tuple[bytes, bool, int]](QUEUED_TICKS)
        self._broken = False
        self.superseded = trio.Event()

    def on_tick(self, _host: object) -> None:
        """After a tick: queue its records (never waits; drops when Valkey is behind)."""
        batch = self.tee.take()
        if not batch:
            return
        keyframe = any(r.kind == "keyframe" for _, r in batch)
        if self._broken and not keyframe:
            return
        upto = max(index for index, _ in batch) + 1
        try:
            self._send.send_nowait((pack_batch(batch), keyframe, upto))
            self._broken = False
        except trio.WouldBlock:
            if not self._broken:
                log.warning(
                    "room %s: Valkey is behind; backlog paused until a keyframe",
                    self.lease.room_id,
                )
            self._broken = True

    async def run(self) -> None:
        """Append queued batches until the room stops or its lease is superseded."""
        stream = Keys.room_records(self.lease.room_id)
        skipping = False
        async for payload, keyframe, upto in self._receive:
            if skipping and not keyframe:
                continue  # these would not follow on from what Valkey holds
            try:
                await self.lease.append(stream, payload, MAX_ENTRIES, starting_point=keyframe)
            except ValkeyUnavailable:
                skipping = True
                continue
            except Superseded:
                self.superseded.set()
                return
            skipping = False
            self.durable_limit = max(self.durable_limit, upto)

    async def hand_over(self) -> None:
        """Append what is still queued (the room stopped ticking): the successor starts
        from the very last tick."""
        self.on_tick(None)  # inputs received since the last tick
        stream = Keys.room_records(self.lease.room_id)
        while True:
            try:
                payload, keyframe, _ = self._receive.receive_nowait()
            except trio.WouldBlock:
                return
            await self.lease.append(stream, payload, MAX_ENTRIES, starting_point=keyframe)
