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

from rooms.records import Record, Recorder
from server.room_lease import RoomLease, Superseded
from server.valkey import Keys, ValkeyUnavailable

log = logging.getLogger(__name__)
QUEUED_TICKS: Final = 90
"""Tick batches waiting for Valkey (3 s at 30 Hz) before the backlog gives up until the
next keyframe."""
MAX_ENTRIES: Final = 4000
"""Cap on the stream: keyframes come every 10 s (300 ticks), so this is only a backstop."""


def pack_batch(first: int, records: list[Record]) -> bytes:
    """One tick's records, numbered from `first` (the room's count of records before)."""
    rows = [[r.kind, r.tick, r.data] for r in records]
    return msgpack.packb([first, rows], use_bin_type=True)  # type: ignore[no-any-return]


def unpack_batch(payload: bytes) -> tuple[int, list[Record]]:
    first, rows = msgpack.unpackb(payload, raw=False, strict_map_key=False)
    return int(first), [Record(str(kind), int(tick), dict(data)) for kind, tick, data in rows]


class TeeRecorder:
    """Gives each record to the replay log and keeps it for the tick's backlog entry.

    `count` numbers the room's records from its start, as its replay log holds them,
    so a successor knows which backlog records its recording already has.
    """

    def __init__(self, log_recorder: Recorder, count: int = 0) -> None:
        self.log_recorder = log_recorder
        self.count = count
        self.pending: list[Record] = []

    def record(self, record: Record) -> None:
        self.log_recorder.record(record)
        self.pending.append(record)
        self.count += 1

    def take(self) -> tuple[int, list[Record]]:
        """The records since the last call, and the number of the first of them."""
        batch, self.pending = self.pending, []
        return self.count - len(batch), batch


class RoomBacklog:
    def __init__(self, lease: RoomLease, tee: TeeRecorder) -> None:
        self.lease = lease
        self.tee = tee
        self._send, self._receive = trio.open_memory_channel[tuple[bytes, bool]](QUEUED_TICKS)
        self._broken = False
        self.superseded = trio.Event()

    def on_tick(self, _host: object) -> None:
        """After a tick: queue its records (never waits; drops when Valkey is behind)."""
        first, batch = self.tee.take()
        if not batch:
            return
        restart = any(r.kind == "keyframe" for r in batch)
        if self._broken and not restart:
            return
        try:
            self._send.send_nowait((pack_batch(first, batch), restart))
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
        async for payload, restart in self._receive:
            if skipping and not restart:
                continue  # these would not follow on from what Valkey holds
            try:
                await self.lease.append(stream, payload, MAX_ENTRIES, restart=restart)
                skipping = False
            except ValkeyUnavailable:
                skipping = True
            except Superseded:
                self.superseded.set()
                return
