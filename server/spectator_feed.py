"""The owner's side of a room's spectator feed: one entry a tick into a capped stream.

Relays serve a room's spectators from this stream (`server/relay.py`); the entry format
is `netcode.spectator_feed`. The room's loop never waits on Valkey: after each tick's
fan-out a hook builds the tick's entry and hands it to a bounded channel, and a
companion task of the room appends the entries.

Each append is one script that checks two things at once: that this node still holds
the room's lease with its epoch (a superseded owner publishes nothing, and its feed
ends), and that the entry's delta chains onto the stream's newest entry. When the
channel is full, or an append fails (Valkey slow or down), entries are dropped and the
next one carries a delta over the gap (after a gap longer than the publisher's history,
a snapshot). An append that timed out may still land later; the chain check then
refuses whatever no longer follows, and says which entry the stream ends with, so the
next entry chains onto that. Relays thus always find a stream they can follow.
"""

from __future__ import annotations

import contextlib
import logging
import time
from typing import Final

import trio
from pydantic import ValidationError

from netcode.spectator_feed import FeedWriter, Outgoing, RoomMeta
from netcode.views import Role
from rooms.actions import IntentRefused
from rooms.events import Replied
from rooms.room import RoomStatus
from server.relay_questions import READ_BLOCK_MS, Answer, Question, post
from server.room_host import RoomHost
from server.room_lease import FENCE, LeaseMissing, RoomLease, Superseded
from server.valkey import Keys, Valkey, ValkeyUnavailable, text

log = logging.getLogger(__name__)
FEED_SECONDS: Final = 30.0
"""How much of the feed the stream keeps (its cap, in ticks, is this times the tick rate):
a relay that restarts within it continues where it was."""
SNAPSHOT_SECONDS: Final = 2.0
"""A snapshot of the spectator view this often: a relay starts or recovers within this."""
QUEUE_ENTRIES: Final = 64
"""Entries waiting to be appended at most (about 2 s at 30 Hz); more are dropped."""
LAST_ENTRY_SECONDS: Final = 5.0
ENDED_FEED_SECONDS: Final = 3600
"""How long an ended room's feed stays in Valkey (relays say goodbye from it)."""

_APPEND: Final = (
    FENCE
    + """
local head = redis.call('GET', KEYS[3]) or ''
if ARGV[4] ~= '*' and head:match('^[^|]*') ~= ARGV[4] then
  return {0, head}
end
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', 'd', ARGV[3])
redis.call('SET', KEYS[3], ARGV[5])
return {1, ARGV[5]}
"""
)
"""KEYS: lease, stream, the stream's head. ARGV: lease token, max entries, payload, the
tick the entry chains onto ('*': a snapshot, it needs no chain), `tick|op` of the entry.
nil when the lease is another owner's, -1 when Valkey holds none (`LeaseMissing`); else
{1, head} appended or {0, head} refused."""


def _head(value: bytes | str) -> tuple[int, int] | None:
    tick, _, op = text(value).partition("|")
    return (int(tick), int(op)) if tick and op else None


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
        self.head_key = f"{self.key}:head"
        self.max_entries = round(FEED_SECONDS * config.tick_hz)
        self._send, self._receive = trio.open_memory_channel[Outgoing](QUEUE_ENTRIES)
        self._held: tuple[int, int] | None = None
        """(tick, op head) of the newest entry the stream holds, as far as this owner knows."""
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
            self.writer.take_back()  # the next entry covers this tick too
            self._dropped()

    def _dropped(self) -> None:
        self.dropped += 1
        self.host.metrics.feed_entries.labels("dropped").inc()

    def _lost(self) -> None:
        """An entry did not reach the stream: the next one chains onto what it holds."""
        self._dropped()
        held = self._held
        self.writer.rebase(None if held is None else held[0], 0 if held is None else held[1])

    async def run(self) -> None:
        """Append entries as they come, until the room's loop ends or the lease is lost."""
        async for entry in self._receive:
            held = None if self._held is None else self._held[0]
            if entry.base != held and not entry.snapshot:
                self._lost()  # it chains onto an entry the stream does not have
                continue
            try:
                appended, head = await self._append(entry)
            except ValkeyUnavailable as exc:
                if not self._unreachable:
                    log.warning("room %s: spectator feed not written (%s)", self.lease.room_id, exc)
                self._unreachable = True
                self._lost()
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
            self._unreachable = False
            self._held = head
            if appended:
                self.appended += 1
                self.host.metrics.feed_entries.labels("appended").inc()
            else:
                self._lost()  # an append that timed out landed after all

    async def _append(self, entry: Outgoing) -> tuple[bool, tuple[int, int] | None]:
        """Append fenced and chained: (appended, the stream's head after)."""
        valkey = self.lease.valkey
        result = await valkey.call(
            valkey.client.eval(
                _APPEND,
                keys=[Keys.room_lease(self.lease.room_id), self.key, self.head_key],
                args=[
                    self.lease.token,
                    self.max_entries,
                    entry.payload,
                    "*" if entry.snapshot else str(entry.base),
                    f"{entry.tick}|{entry.op_head}",
                ],
            )
        )
        if result == -1:
            raise LeaseMissing(f"room {self.lease.room_id}: Valkey holds no lease for it")
        if result is None:
            raise Superseded(f"room {self.lease.room_id}: epoch {self.lease.epoch} superseded")
        assert isinstance(result, list | tuple) and len(result) == 2, result
        appended, head = result
        return bool(appended), _head(head if isinstance(head, bytes | str) else "")

    async def finish(self, host: RoomHost) -> None:
        """The room's loop stopped: if the room ended, tell relays (they say goodbye)."""
        if not host.ended or self.superseded.is_set():
            return  # a room that moves to another node goes on there
        entry = self.writer.last_entry(
            host.room.publisher, time.time(), host.goodbye_code, host.room.end_reason
        )
        valkey = self.lease.valkey
        try:
            with trio.move_on_after(LAST_ENTRY_SECONDS):
                await self.lease.append(self.key, entry, self.max_entries, starting_point=False)
                for key in (self.key, self.head_key):
                    await valkey.call(valkey.client.expire(key, ENDED_FEED_SECONDS))
        except (ValkeyUnavailable, Superseded) as exc:
            log.warning("room %s: relays not told the room ended (%s)", self.lease.room_id, exc)


class QuestionDesk:
    """Takes the questions spectators on relays ask (`server/relay_questions.py`).

    Each asking spectator becomes a member of the room (a spectator, without an avatar)
    the first time it asks, so the room applies its rules to it as to anyone (who may
    ask, how often, how long) and records the question. Between questions the member is
    disconnected, so it expires after the room's grace period like any member who left,
    and it never keeps an empty room from ending idle. The room's reply goes back to the
    spectator's relay.
    """

    def __init__(self, host: RoomHost) -> None:
        self.host = host
        self.key = Keys.room_questions(host.room.id)
        self._members: dict[tuple[str, int], int] = {}
        """(relay, spectator) -> the room member asking for it"""
        self._askers: dict[int, tuple[str, int]] = {}
        self._send, self._receive = trio.open_memory_channel[tuple[str, Answer]](QUEUE_ENTRIES)

    async def run(self, valkey: Valkey) -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._read, valkey)
            nursery.start_soon(self._answer, valkey)

    async def _read(self, valkey: Valkey) -> None:
        last = ""
        while True:
            try:
                if not last:  # questions from before this owner were for another copy
                    newest = await valkey.call(valkey.client.xrevrange(self.key, count=1))
                    last = text(newest[0].identifier) if newest else "0-0"
                reply = await valkey.call(
                    valkey.client.xread({self.key: last}, count=64, block=READ_BLOCK_MS)
                )
            except ValkeyUnavailable:
                await trio.sleep(1.0)
                continue
            for item in (reply or {}).get(self.key.encode(), ()):
                last = text(item.identifier)
                try:
                    question = Question.model_validate_json(item.field_values[b"d"])
                except (ValidationError, KeyError):
                    log.warning("room %s: ignoring an unreadable question", self.host.room.id)
                    continue
                self._submit(question)

    def _submit(self, question: Question) -> None:
        room = self.host.room
        asker = (question.relay, question.spectator)
        if room.status is RoomStatus.ENDED:
            self._route_to(asker, Replied(0, question.id, False, "room_ended", "the room ended"))
            return
        member = self._members.get(asker)
        if member is None or not room.reconnect(member):
            self._forget_gone()
            member = room.join(Role.SPECTATOR, question.name).id
            self._members[asker] = member
            self._askers[member] = asker
            self.host.reply_routes[member] = self._route
        try:
            room.submit(member, question.id, "ask", {"text": question.text})
        except IntentRefused as refused:
            self._route(Replied(member, question.id, False, refused.code, refused.message))
        room.disconnect(member)

    def _forget_gone(self) -> None:
        """Drop the askers whose members have expired (bounded by the room's members)."""
        members = self.host.room.members
        for member in [m for m in self._askers if m not in members]:
            del self._members[self._askers.pop(member)]
            self.host.reply_routes.pop(member, None)

    def _route(self, reply: Replied) -> None:
        asker = self._askers.get(reply.member)
        if asker is not None:
            self._route_to(asker, reply)

    def _route_to(self, asker: tuple[str, int], reply: Replied) -> None:
        relay, spectator = asker
        answer = Answer(
            spectator=spectator, id=reply.reply_id, ok=reply.ok, code=reply.code, msg=reply.message
        )
        with contextlib.suppress(trio.WouldBlock):  # else the relay answers `room_busy`
            self._send.send_nowait((relay, answer))

    async def _answer(self, valkey: Valkey) -> None:
        async for relay, answer in self._receive:
            with contextlib.suppress(ValkeyUnavailable):  # else the relay answers `room_busy`
                await post(valkey, Keys.relay_replies(relay), answer)


def attach_spectator_feed(host: RoomHost, lease: RoomLease) -> SpectatorFeed:
    """Publish `host`'s spectator view for relays while `lease` holds, and take the
    questions their spectators ask. Call before the room's loop starts (the companion
    tasks start with the loop), and before anything that gives the lease up when the
    room stops (the feed's last entry needs it)."""
    feed = SpectatorFeed(host, lease)
    desk = QuestionDesk(host)
    host.on_tick.append(feed.on_tick)
    host.companions.append(feed.run)
    host.companions.append(lambda: desk.run(lease.valkey))
    host.on_stop.append(feed.finish)
    return feed
