"""One room's spectators on a relay: a copy of the room kept from its feed, and the fan-out.

The relay never touches the room's loop. It reads the room's spectator feed (a capped
Redis Stream the owner appends to once a tick, `server/spectator_feed.py`) with a
blocking, bounded XREAD, applies each entry to its `RoomCopy` (a mirror of the
spectator view and the publisher's history) and serves its spectators exactly as the
owner serves its own: one frame per (baseline), shared by every spectator holding it,
offered to each socket and skipped when the socket is full, `too_slow` after
`slow_drop_seconds` behind.

It starts, or restarts, from a snapshot entry: the newest one at or before the stream
id it last held (so spectators resuming after a relay restart find their baselines in
the history it rebuilds), or the newest one of all when that id has left the stream.
A new owner's first entry (a higher epoch), or a gap, rebuilds the copy: every
spectator then gets a snapshot. With a broadcast delay each entry is held back until
it is that old. Valkey being away only pauses the feed: spectators stay connected.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any, Final, TypeVar

import trio
from coredis.response.types import StreamEntry

from netcode.codec import Ack, Intent, Ping, PoseUpdate, Prefs, Resume, Resync, Rtc, encode
from netcode.spectator_feed import FeedEntry, FeedError, RoomCopy, Step, decode_entry
from netcode.sync import Subscriber
from netcode.views import Role, View
from rooms.actions import IntentRefused
from server.client_socket import ClientSocket, binary_frame
from server.tokens import Grant
from server.valkey import Keys, ValkeyUnavailable, text

if TYPE_CHECKING:
    from server.relay import Relay

log = logging.getLogger(__name__)
T = TypeVar("T")
SPECTATOR: Final = View.SPECTATOR
READ_BLOCK_MS: Final = 500
"""Longest one XREAD waits for an entry (well within the Valkey call timeout)."""
READ_COUNT: Final = 256
"""Most entries one XREAD takes (a relay catching up serves them in one frame)."""
START_WINDOW: Final = 512
"""Entries looked back through for a snapshot to start from (snapshots come every 60)."""
RETRY_MAX_SECONDS: Final = 5.0
LINGER_SECONDS: Final = 60.0
"""How long a room with no spectators is still followed (for those about to resume)."""
HELD_TICKS_PER_SECOND: Final = 120
"""Entries a broadcast delay may hold a second at most (the highest tick rate)."""


@dataclass(eq=False, slots=True)
class Spectator:
    """A spectator connected to this relay."""

    member: int
    name: str
    sock: ClientSocket
    session: str
    token_id: str
    sync: Subscriber


class RelayRoom:
    def __init__(self, relay: Relay, room_id: str, position: str | None) -> None:
        self.relay = relay
        self.id = room_id
        self.key = Keys.spectator_feed(room_id)
        self.copy = RoomCopy(framer=binary_frame)
        self.spectators: dict[int, Spectator] = {}
        self.position = position
        """The stream id of the last entry read (kept so a restarted relay continues)."""
        self.ready = trio.Event()
        """The copy has state, having read the stream up to its newest entry (or the room
        has ended): a spectator resuming finds its baseline in the history by then."""
        self._caught_up = False
        self.closing = False
        """It has stopped reading its feed: a new copy serves hellos from now on."""
        self._held: deque[tuple[float, FeedEntry]] = deque()
        self._held_cap = round(relay.settings.broadcast_delay_seconds * HELD_TICKS_PER_SECOND)
        self._released = trio.Event()
        self._newest_tick: int | None = None
        self._empty_since: float | None = trio.current_time()
        self._unreachable = False

    # -- the feed -------------------------------------------------------------------
    async def run(self) -> None:
        """Follow the room's feed until it ends or nobody has watched it for a while."""
        metrics = self.relay.metrics
        try:
            last = await self._start()
            async with trio.open_nursery() as nursery:
                if self.relay.settings.broadcast_delay_seconds > 0:
                    nursery.start_soon(self._release_forever)
                await self._read_forever(last)
                nursery.cancel_scope.cancel()
        finally:
            self.closing = True
            self.ready.set()
            for gauge in (metrics.feed_lag_ticks, metrics.feed_lag_seconds):
                with contextlib.suppress(KeyError):
                    gauge.remove(self.id)

    async def _call(self, request: Callable[[], Awaitable[T]]) -> T:
        """One Valkey request, retried with backoff while Valkey is away (bounded waits)."""
        pause = 0.25
        while True:
            try:
                result = await self.relay.valkey.call(request())
            except ValkeyUnavailable as exc:
                if not self._unreachable:
                    log.warning("relay: room %s: feed unreachable (%s); retrying", self.id, exc)
                self._unreachable = True
                await trio.sleep(pause)
                pause = min(RETRY_MAX_SECONDS, pause * 2)
                continue
            if self._unreachable:
                log.info("relay: room %s: feed reachable again", self.id)
            self._unreachable = False
            return result

    async def _start(self) -> str:
        """Apply the snapshot entry to start from; the stream id to read on from."""
        client = self.relay.valkey.client
        metrics = self.relay.metrics
        if self.position is not None:
            position = self.position
            back = await self._call(
                lambda: client.xrevrange(self.key, end=position, start="-", count=START_WINDOW)
            )
            if back and text(back[0].identifier) == position:
                start = self._newest_snapshot(back)
                if start is not None:
                    metrics.stream_resumes.labels("position").inc()
                    return self._begin(*start)
        newest = await self._call(
            lambda: client.xrevrange(self.key, end="+", start="-", count=START_WINDOW)
        )
        start = self._newest_snapshot(newest)
        if start is not None:
            if self.position is not None:
                metrics.stream_resumes.labels("snapshot").inc()
            return self._begin(*start)
        # No snapshot yet (a room just starting, or none at all): wait for what comes.
        return text(newest[0].identifier) if newest else "0-0"

    @staticmethod
    def _newest_snapshot(entries: tuple[StreamEntry, ...]) -> tuple[str, FeedEntry] | None:
        for item in entries:  # newest first
            try:
                entry = _entry(item)
            except (FeedError, KeyError):
                continue
            if entry.snapshot:
                return text(item.identifier), entry
        return None

    def _begin(self, identifier: str, entry: FeedEntry) -> str:
        self.position = identifier
        self._take([entry])
        return identifier

    async def _read_forever(self, last: str) -> None:
        client = self.relay.valkey.client
        while not self.copy.ended and not self._abandoned():
            read = partial(client.xread, {self.key: last}, count=READ_COUNT, block=READ_BLOCK_MS)
            reply = await self._call(read)
            entries: list[FeedEntry] = []
            items = (reply or {}).get(self.key.encode(), ())
            for item in items:
                last = text(item.identifier)
                try:
                    entries.append(_entry(item))
                except (FeedError, KeyError) as exc:
                    self.relay.metrics.feed_steps.labels("unreadable").inc()
                    log.warning("relay: room %s: skipping entry %s (%s)", self.id, last, exc)
            self.position = last
            self._take(entries)
            if len(items) < READ_COUNT:
                self._caught_up = True
                self._check_ready()
        self.closing = True

    def _check_ready(self) -> None:
        if self._caught_up and (self.copy.publisher is not None or self.copy.ended):
            self.ready.set()

    def _abandoned(self) -> bool:
        since = self._empty_since
        return since is not None and trio.current_time() - since > LINGER_SECONDS

    def _take(self, entries: list[FeedEntry]) -> None:
        """Entries read from the stream: served now, or held for the broadcast delay."""
        if not entries:
            return
        self._newest_tick = entries[-1].tick
        if not self._held_cap:
            self._serve(entries)
            return
        delay = self.relay.settings.broadcast_delay_seconds
        now, wall = trio.current_time(), time.time()
        for entry in entries:
            age = max(0.0, wall - entry.wall)
            if len(self._held) >= self._held_cap:
                self._held.popleft()  # too many: the chain breaks, a snapshot heals it
            self._held.append((now + min(delay, max(0.0, delay - age)), entry))
        self._released.set()

    async def _release_forever(self) -> None:
        while True:
            if not self._held:
                self._released = trio.Event()
                await self._released.wait()
                continue
            await trio.sleep_until(self._held[0][0])
            now = trio.current_time()
            due: list[FeedEntry] = []
            while self._held and self._held[0][0] <= now:
                due.append(self._held.popleft()[1])
            self._serve(due)

    def _serve(self, entries: list[FeedEntry]) -> None:
        """Apply entries in order; every spectator gets the newest state, except that
        low-bandwidth spectators get theirs at the ticks of their grid (docs/protocol.md)."""
        low_rate = [s for s in self.spectators.values() if s.sync.every > 1]
        for entry in entries[:-1]:
            self._apply(entry)
            if low_rate:
                self._fan_out(low_rate)
        self._apply(entries[-1])
        self._fan_out(list(self.spectators.values()))
        self._check_ready()

    def _apply(self, entry: FeedEntry) -> None:
        step = self.copy.apply(entry)
        self.relay.metrics.feed_steps.labels(step.value).inc()
        if step is Step.RESET:
            for spectator in self.spectators.values():
                spectator.sync.resync()  # their baselines are not in the new history
        elif step is Step.ENDED:
            assert self.copy.ended is not None
            self._say_goodbye(*self.copy.ended)

    # -- fan-out ------------------------------------------------------------------------
    def _fan_out(self, spectators: list[Spectator]) -> None:
        publisher = self.copy.publisher
        if publisher is None:
            return
        metrics = self.relay.metrics
        if self._newest_tick is not None:
            metrics.feed_lag_ticks.labels(self.id).set(self._newest_tick - publisher.tick)
        metrics.feed_lag_seconds.labels(self.id).set(max(0.0, time.time() - self.copy.last_wall))
        tick = publisher.tick
        now = time.monotonic()
        sent_bytes = frames = skipped = 0
        for spectator in spectators:
            if not spectator.sync.due(tick) or spectator.sock.closing:
                continue
            size = self._send_state(spectator, now)
            if size:
                sent_bytes += size
                frames += 1
            elif size == 0:
                skipped += 1
        metrics.bytes_sent.inc(sent_bytes)
        metrics.frames_sent.inc(frames)
        if skipped:
            metrics.sends_skipped.inc(skipped)

    def _send_state(self, spectator: Spectator, now: float) -> int | None:
        """Offer a spectator its frame; the size sent, 0 if skipped, None if dropped."""
        publisher = self.copy.publisher
        assert publisher is not None
        frame = spectator.sync.frame(publisher)
        if spectator.sock.offer(frame):
            spectator.sync.delivered(publisher.tick)
            if publisher.is_snapshot(SPECTATOR, frame):
                self.relay.metrics.snapshots_served.inc()
            return len(frame)
        if spectator.sock.closed:
            return None
        if spectator.sync.missed(now, self.relay.settings.slow_drop_seconds):
            self.drop(spectator, "too_slow", "your connection could not keep up with the room")
            return None
        return 0

    def drop(self, spectator: Spectator, code: str, message: str) -> None:
        """Tell a spectator why it is being disconnected, then cut it off."""
        self.relay.metrics.clients_dropped.labels(code).inc()
        spectator.sock.send(encode({"t": "bye", "code": code, "msg": message}))
        if spectator.sock.backlog:
            spectator.sock.abort(code)
        else:
            spectator.sock.close_soon(code)

    def _say_goodbye(self, code: str, reason: str) -> None:
        for spectator in list(self.spectators.values()):
            spectator.sock.send(encode({"t": "bye", "code": code, "msg": reason}))
            spectator.sock.close_soon("room ended")

    # -- spectators ---------------------------------------------------------------------
    def attach(self, sock: ClientSocket, grant: Grant, resume: Resume | None) -> Spectator:
        """Admit a spectator (resuming its session when it can) and send welcome + state."""
        meta = self.copy.meta
        if self.copy.ended is not None:
            raise IntentRefused("room_ended", "this room has ended")
        if meta is None:
            raise IntentRefused("unknown_room", f"this relay has no feed for room {self.id!r}")
        relay = self.relay
        if relay.spectator_count() >= relay.settings.max_spectators:
            raise IntentRefused("room_full", "this relay serves as many spectators as it can")
        member = None if resume is None else relay.sessions.member(self.id, resume.session)
        resumed = member is not None and resume is not None
        if member is not None and (old := self.spectators.get(member)) is not None:
            self.detach(old)
            self.drop(old, "session_moved", "this session continued on another connection")
        else:
            in_use = sum(1 for s in self.spectators.values() if s.token_id == grant.token_id)
            if in_use >= grant.seats:
                raise IntentRefused(
                    "token_in_use",
                    f"this link already admits {grant.seats} people at once; ask for your own link",
                )
        if member is None:
            member = relay.sessions.new_member()
        session = relay.sessions.session(self.id, member)
        every = relay.state.rate(session)
        if resumed and resume is not None:
            sync = Subscriber.resuming(SPECTATOR, resume.tick, resume.op, every)
        else:
            sync = Subscriber(SPECTATOR, every=every)
        spectator = Spectator(member, grant.name, sock, session, grant.token_id, sync)
        self.spectators[member] = spectator
        self._empty_since = None
        welcome: dict[str, Any] = {
            "t": "welcome",
            "v": 1,
            "room": self.id,
            "title": meta.title,
            "role": Role.SPECTATOR.value,
            "name": grant.name,
            "member": member,
            "session": session,
            "resumed": resumed,
            "tick_hz": meta.tick_hz,
            "checksum_every": meta.checksum_every,
            "grace_seconds": meta.grace_seconds,
        }
        if relay.node_urls:
            welcome["nodes"] = list(relay.node_urls)
        sock.send(encode(welcome))
        relay.metrics.clients.labels(Role.SPECTATOR.value).inc()
        publisher = self.copy.publisher
        if publisher is not None and sync.due(publisher.tick):
            self._send_state(spectator, time.monotonic())
        return spectator

    def detach(self, spectator: Spectator) -> None:
        if self.spectators.get(spectator.member) is not spectator:
            return
        del self.spectators[spectator.member]
        self.relay.metrics.clients.labels(Role.SPECTATOR.value).dec()
        self.relay.state.left(spectator.session)
        if not self.spectators:
            self._empty_since = trio.current_time()

    def handle(self, spectator: Spectator, message: Any) -> None:
        """One validated message from a spectator of this relay."""
        if self.copy.ended is not None:
            raise IntentRefused("room_ended", "this room has ended")
        match message:
            case Ack():
                pass  # written frames already count as the baseline; an ack keeps us alive
            case Prefs():
                tick_hz = self.copy.meta.tick_hz if self.copy.meta is not None else 30
                spectator.sync.set_rate(message.rate, tick_hz)
                self.relay.state.set_rate(spectator.session, spectator.sync.every)
            case Resync():
                spectator.sync.resync()
            case Ping():
                tick = self.copy.tick or 0
                spectator.sock.send(encode({"t": "pong", "id": message.id, "tick": tick}))
            case Intent():
                self._intent(spectator, message)
            case PoseUpdate():
                raise IntentRefused("forbidden", "spectators have no poses to send")
            case Rtc():
                raise IntentRefused("media_unavailable", "voice and video are not served by relays")
            case _:
                raise IntentRefused("bad_message", "this message is not accepted after hello")

    def _intent(self, spectator: Spectator, intent: Intent) -> None:
        if intent.do == "ask":
            self.relay.questions.ask(self, spectator, intent)  # the room's owner replies
            return
        reply = {"t": "reply", "id": intent.id, "ok": False, "code": "forbidden"}
        reply["msg"] = "spectators may only ask"
        self.relay.metrics.errors.labels("forbidden").inc()
        spectator.sock.send(encode(reply))


def _entry(item: StreamEntry) -> FeedEntry:
    """The feed entry a stream entry holds (field `d`, as `RoomLease.append` writes it)."""
    payload = item.field_values[b"d"]
    return decode_entry(payload if isinstance(payload, bytes) else payload.encode())
