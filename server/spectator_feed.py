"""The owner's side of a room's spectator feed: one entry a tick into a capped stream.

Relays serve a room's spectators from this stream (`server/relay.py`); the entry format
is `netcode.spectator_feed`. The room's loop never waits on Valkey: after each tick's
fan-out a hook builds the tick's entry and hands it to a bounded channel, and a
companion task of the room appends the entries, fenced by the room's lease. When the
channel is full, or an append fails (Valkey slow or down), entries are dropped and the
next one is a snapshot, so a relay recovers without anything growing. When the lease
has been superseded (another node owns the room now), the feed ends: nothing this copy
of the room writes is accepted any more.
"""

from __future__ import annotations

import logging
import time
from typing import Final

import trio

from netcode.spectator_feed import FeedWriter, RoomMeta
from server.room_host import RoomHost
from server.room_lease import RoomLease, Superseded
from server.valkey import Keys, ValkeyUnavailable

log = logging.getLogger(__name__)
FEED_SECONDS: Final = 30.0
"""How much of the feed the stream keeps (its cap, in ticks, is this times the tick rate):
a relay that restarts within it continues where it was."""
SNAPSHOT_SECONDS: Final = 2.0
"""A snapshot of the spectator view this often: a relay starts or recovers within this."""
QUEUE_ENTRIES: Final = 64
"""Entries waiting to be appended at most (about 2 s at 30 Hz); more are dropped."""
LAST_ENTRY_SECONDS: Final = 5.0


class SpectatorFeed:
    """Publishes one room's spectator view for relays while this node owns the room."""

    def __init__(self, host: RoomHost, lease: RoomLease) -> None:
        self.host = host
        self.lease = lease
        config = host.room.config
        meta = RoomMeta(
            host.room.title, config.tick_hz, config.checksum_every, config.grace_seconds
        )
        self.writer = FeedWriter(lease.epoch, meta, round(SNAPSHOT_SECONDS * config.tick_hz))
        self.key = Keys.spectator_feed(host.room.id)
        self.max_entries = round(FEED_SECONDS * config.tick_hz)
        self._send, self._receive = trio.open_memory_channel[tuple[bytes, bool]](QUEUE_ENTRIES)
        self._skipping = False
        self._unreachable = False
        self.superseded = trio.Event()
        """Set when the lease refused an append: another node owns the room now."""
        self.appended = 0
        self.dropped = 0

    def on_tick(self, host: RoomHost) -> None:
        """After the tick's fan-out: hand its entry over, never waiting."""
        if self.superseded.is_set():
            return
        entry = self.writer.entry(host.room.publisher, time.time())
        try:
            self._send.send_nowait(entry)
        except trio.WouldBlock:
            self._drop()

    def _drop(self) -> None:
        self.dropped += 1
        self.host.metrics.feed_entries.labels("dropped").inc()
        self.writer.restart()

    async def run(self) -> None:
        """Append entries as they come, until the room's loop ends or the lease is lost."""
        async for entry, snapshot in self._receive:
            if self._skipping and not snapshot:
                self._drop()  # it chains onto an entry that was lost
                continue
            try:
                await self.lease.append(self.key, entry, self.max_entries, starting_point=False)
            except ValkeyUnavailable as exc:
                if not self._unreachable:
                    log.warning("room %s: spectator feed not written (%s)", self.lease.room_id, exc)
                self._unreachable = self._skipping = True
                self._drop()
                continue
            except Superseded:
                log.warning(
                    "room %s: superseded (epoch %d); its spectator feed stops",
                    self.lease.room_id,
                    self.lease.epoch,
                )
                self.superseded.set()
                return
            if self._unreachable:
                log.info("room %s: spectator feed written again", self.lease.room_id)
            self._skipping = self._unreachable = False
            self.appended += 1
            self.host.metrics.feed_entries.labels("appended").inc()

    async def finish(self, host: RoomHost) -> None:
        """The room's loop stopped: if the room ended, tell relays (they say goodbye)."""
        if not host.ended or self.superseded.is_set():
            return  # a room that moves to another node goes on there
        entry = self.writer.last_entry(
            host.room.publisher, time.time(), host.goodbye_code, host.room.end_reason
        )
        try:
            with trio.move_on_after(LAST_ENTRY_SECONDS):
                await self.lease.append(self.key, entry, self.max_entries, starting_point=False)
        except (ValkeyUnavailable, Superseded) as exc:
            log.warning("room %s: relays not told the room ended (%s)", self.lease.room_id, exc)


def attach_spectator_feed(host: RoomHost, lease: RoomLease) -> SpectatorFeed:
    """Publish `host`'s spectator view for relays while `lease` holds; call before the
    room's loop starts (its companion task starts with the loop)."""
    feed = SpectatorFeed(host, lease)
    host.on_tick.append(feed.on_tick)
    host.companions.append(feed.run)
    host.on_stop.append(feed.finish)
    return feed
