"""Runs one room: its tick loop, the clients attached to it, and the fan-out.

Fan-out is the hot path. After each tick every client gets the frame for its view and
baseline; the publisher encodes each distinct (view, baseline) once, already framed
for the WebSocket, and the same bytes are offered to every socket that shares them. A
client whose socket is full is skipped (its baseline stays, so the next delta covers
the gap); one that stays behind for `slow_drop_seconds` is dropped with a reason.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import trio

from netcode.codec import (
    PROTOCOL_VERSION,
    Ack,
    Intent,
    Ping,
    PoseUpdate,
    Prefs,
    Resume,
    Resync,
    Rtc,
    encode,
)
from netcode.sync import Subscriber
from netcode.views import Role, View
from replay.writer import SessionWriter
from rooms.actions import IntentRefused
from rooms.events import MemberExpired, MemberRemoved, Replied, RoomEnded
from rooms.room import Member, Room, RoomStatus
from server.boundary import report_fault
from server.client_socket import ClientSocket
from server.config import Settings
from server.metrics import Metrics
from server.tokens import Grant

log = logging.getLogger(__name__)
RtcHandler = Callable[["RoomHost", "Link", Rtc], None]
DetachHook = Callable[["RoomHost", int], None]
StopHook = Callable[["RoomHost"], Awaitable[None]]
TickHook = Callable[["RoomHost"], None]
Companion = Callable[[], Awaitable[None]]
FLUSH_INTERVAL_SECONDS = 0.5
FLUSH_RETRY_MAX_SECONDS = 5.0
STOP_HOOK_SECONDS = 60.0
"""Longest a room's end waits for a hook (e.g. remuxing its media) before sealing."""


@dataclass(eq=False, slots=True)
class Link:
    """A connected client of this room."""

    member: Member
    sock: ClientSocket
    session: str
    sync: Subscriber


class RoomHost:
    def __init__(
        self, room: Room, settings: Settings, metrics: Metrics, writer: SessionWriter | None = None
    ) -> None:
        self.room = room
        self.writer = writer
        self.settings = settings
        self.metrics = metrics
        self.links: dict[int, Link] = {}
        self._sessions: dict[str, int] = {}
        self._rates: dict[int, int] = {}
        """Members that asked for a reduced state rate (`prefs`): it survives a resume."""
        self._tokens: dict[int, str] = {}
        """Each attached member's join token, to bound a token's simultaneous members."""
        self.created_at = time.time()
        self.rtc_handler: RtcHandler | None = None
        self.on_detach: list[DetachHook] = []
        self.on_stop: list[StopHook] = []
        self.on_tick: list[TickHook] = []
        """Called after each tick's fan-out (e.g. to feed the room's spectator stream)."""
        self.companions: list[Companion] = []
        """Tasks that live and die with the room's loop (e.g. its lease renewal)."""
        self.reply_routes: dict[int, Callable[[Replied], None]] = {}
        """Members whose replies go elsewhere (spectators asking through a relay)."""
        self.on_new_session: list[Callable[[str, int], None]] = []
        """Told (session, member) when a client starts a session (a cluster shares them)."""
        self.peer_urls: list[str] = []
        """The cluster's nodes (WebSocket URLs), sent in `welcome`; empty on one machine."""
        self.flush_limit: Callable[[], int | None] = lambda: None
        """How far the replay log may be written (a cluster node: what Valkey holds)."""
        self._readers: dict[Link, Callable[[], None]] = {}
        """Members whose messages the tick reads (`lend_reading`), each with its reader."""
        self._stopped = trio.Event()
        self._goodbye_code = "room_ended"
        self._stepped_down: str | None = None
        self._goodbye_extra: dict[str, str] = {}
        """Why this copy stopped without ending the room (it moved to another node)."""

    @property
    def ended(self) -> bool:
        return self.room.status is RoomStatus.ENDED

    @property
    def stopped(self) -> bool:
        return self._stopped.is_set()

    @property
    def goodbye_code(self) -> str:
        """The `bye` code clients get when the room ends (`room_ended`, or why it failed)."""
        return self._goodbye_code

    def request_end(self, reason: str) -> None:
        """End the room at its next tick; nothing to do once it has ended or stopped."""
        if not self.ended and not self.stopped:
            self.room.request_end(reason)

    def info(self) -> dict[str, Any]:
        counts = {role.value: 0 for role in Role}
        for link in self.links.values():
            counts[link.member.role.value] += 1
        return {
            "id": self.room.id,
            "title": self.room.title,
            "status": self.room.status.value,
            "scenario": self.room.scenario.name,
            "tick": self.room.tick_no,
            "tick_hz": self.room.config.tick_hz,
            "clients": counts,
            "created_at": self.created_at,
            "session": self.writer.session_id if self.writer is not None else None,
        }

    # -- clients ----------------------------------------------------------------
    def attach(self, sock: ClientSocket, grant: Grant, resume: Resume | None) -> Link:
        """Admit a client (resuming its session when it can) and send welcome + first state.

        Resuming a session whose old connection is still open moves the session to the
        new connection: the old one is told `session_moved` and closed.
        """
        if len(self.links) >= self.settings.max_clients_per_room:
            raise IntentRefused("room_full", "this room has as many clients as it can take")
        member_id = self._sessions.get(resume.session) if resume else None
        member = self.room.members.get(member_id) if member_id is not None else None
        if member is not None and member.role is not grant.role:
            member = None
        if member is None:
            self._check_token_seats(grant)
        elif (old := self.links.pop(member.id, None)) is not None:
            self.metrics.clients.labels(old.member.role.value).dec()
            self.drop(old, "session_moved", "this session continued on another connection")
        resumed = member is not None and resume is not None and self.room.reconnect(member.id)
        if resumed and member is not None and resume is not None:
            session = resume.session
            sync = Subscriber.resuming(
                member.view, resume.tick, resume.op, self._rates.get(member.id, 1)
            )
        else:
            member = self.room.join(grant.role, grant.name)
            session = secrets.token_urlsafe(12)
            self._sessions[session] = member.id
            for hook in self.on_new_session:
                hook(session, member.id)
            sync = Subscriber(member.view)
        link = Link(member, sock, session, sync)
        self.links[member.id] = link
        self._tokens[member.id] = grant.token_id
        sock.send(
            encode(
                {
                    "t": "welcome",
                    "v": PROTOCOL_VERSION,
                    "room": self.room.id,
                    "title": self.room.title,
                    "role": grant.role.value,
                    "name": member.name,
                    "member": member.id,
                    "session": session,
                    "resumed": bool(resumed),
                    "tick_hz": self.room.config.tick_hz,
                    "checksum_every": self.room.config.checksum_every,
                    "grace_seconds": self.room.config.grace_seconds,
                    **({"nodes": self.peer_urls} if self.peer_urls else {}),
                }
            )
        )
        if sync.due(self.room.tick_no):  # a reduced-rate client gets its first frame on its grid
            self._send_state(link, time.monotonic())
        self.metrics.clients.labels(grant.role.value).inc()
        return link

    def _check_token_seats(self, grant: Grant) -> None:
        in_use = sum(1 for token in self._tokens.values() if token == grant.token_id)
        if in_use >= grant.seats:
            raise IntentRefused(
                "token_in_use",
                f"this link already admits {grant.seats} people at once; ask for your own link",
            )

    def adopt_sessions(self, sessions: dict[str, int]) -> None:
        """Sessions a previous owner started, so their clients resume here."""
        self._sessions.update(
            {session: member for session, member in sessions.items() if member in self.room.members}
        )

    def set_peers(self, urls: list[str]) -> None:
        """The cluster's nodes changed: tell every client where else the room can be
        found should its node go (`{"t": "nodes"}`, docs/protocol.md)."""
        if urls == self.peer_urls:
            return
        self.peer_urls = list(urls)
        update = encode({"t": "nodes", "nodes": self.peer_urls})
        for link in self.links.values():
            link.sock.send(update)

    def step_down(self, code: str, message: str, **extra: str) -> None:
        """Stop this copy without ending the room: it lives on elsewhere (moved, superseded).

        Clients get `bye` with `code` and reconnect through the cluster; the recording
        is left as it is for the new owner to continue.
        """
        if self._stepped_down is None and not self.ended:
            self._stepped_down = message
            self._goodbye_code = code
            self._goodbye_extra = extra

    def reads_each_tick(self, link: Link) -> bool:
        """Whether the tick reads this member's connection: those who stream poses
        (participants, facilitators); spectators, who only ack now and then, are read
        when they send."""
        return link.member.role is not Role.SPECTATOR

    def lend_reading(self, link: Link, read: Callable[[], None]) -> None:
        """From now on the start of each tick calls `read`, which handles what `link`'s
        client sent since the last one and never raises (its session's task owns the
        connection's faults)."""
        self._readers[link] = read

    def take_back_reading(self, link: Link) -> None:
        self._readers.pop(link, None)

    def detach(self, link: Link, *, left: bool = False) -> None:
        """The client's connection ended: keep its session for the grace period, unless
        it `left` on purpose (it closed the WebSocket with 1000, normal closure)."""
        if self.links.get(link.member.id) is not link:
            return
        del self.links[link.member.id]
        self._tokens.pop(link.member.id, None)
        self.metrics.clients.labels(link.member.role.value).dec()
        for hook in self.on_detach:
            hook(self, link.member.id)
        if self.ended or self._stopped.is_set() or self._stepped_down is not None:
            return  # over, or moving: the room's next owner keeps the member for its client
        if left:
            self._forget(link.member.id)
            self.room.leave(link.member.id)
        else:
            self.room.disconnect(link.member.id)

    def handle(self, link: Link, message: Any) -> None:
        """One validated message from an attached client."""
        if self._stopped.is_set() or self.ended:
            raise IntentRefused("room_ended", "this room has ended")
        match message:
            case PoseUpdate():
                parts = {
                    p: v
                    for p in ("head", "left", "right")
                    if (v := getattr(message, p)) is not None
                }
                self.room.pose(link.member.id, parts, message.objects)
            case Intent():
                try:
                    self.room.submit(link.member.id, message.id, message.do, message.args)
                except IntentRefused as refused:
                    self.reply(
                        Replied(link.member.id, message.id, False, refused.code, refused.message)
                    )
            case Ack():
                pass  # written frames already count as the baseline; an ack keeps us alive
            case Prefs():
                link.sync.set_rate(message.rate, self.room.config.tick_hz)
                self._rates[link.member.id] = link.sync.every
            case Resync():
                link.sync.resync()
            case Ping():
                link.sock.send(encode({"t": "pong", "id": message.id, "tick": self.room.tick_no}))
            case Rtc():
                if self.rtc_handler is None:
                    raise IntentRefused("media_unavailable", "media is not enabled on this server")
                self.rtc_handler(self, link, message)
            case _:
                raise IntentRefused("bad_message", "this message is not accepted after hello")

    def reply(self, reply: Replied) -> None:
        route = self.reply_routes.get(reply.member)
        if route is not None:
            route(reply)
            return
        link = self.links.get(reply.member)
        if link is None:
            return
        message: dict[str, Any] = {"t": "reply", "id": reply.reply_id, "ok": reply.ok}
        if not reply.ok:
            message["code"] = reply.code
            message["msg"] = reply.message
            self.metrics.errors.labels(reply.code).inc()
        link.sock.send(encode(message))

    def send_to(self, member_id: int, message: dict[str, Any]) -> None:
        link = self.links.get(member_id)
        if link is not None:
            link.sock.send(encode(message))

    # -- the room's life ------------------------------------------------------------
    async def run(self) -> None:
        """Tick (and record) until the room ends; then say goodbye and seal the session.

        This is the room's fault boundary: an unexpected error in the room, its case or
        its recording ends this room alone (`internal_error`), with its recording sealed.
        """
        try:
            async with trio.open_nursery() as nursery:
                if self.writer is not None:
                    nursery.start_soon(self._keep_recording, self.writer)
                for companion in self.companions:
                    nursery.start_soon(self._run_companion, companion)
                try:
                    await self._tick_forever()
                finally:
                    nursery.cancel_scope.cancel()
        finally:
            with trio.CancelScope(shield=True):
                await self._finish()

    async def _run_companion(self, companion: Callable[[], Awaitable[None]]) -> None:
        """A companion (backlog, spectator feed, question desk) inside the room's boundary:
        its unexpected error ends this room alone, as one in the tick would."""
        try:
            await companion()
        except Exception as exc:
            error_id = report_fault(f"a companion of room {self.room.id}", exc)
            self._fail("internal_error", f"internal error {error_id}; the room had to end")

    async def _finish(self) -> None:
        for hook in self.on_stop:
            try:
                with trio.move_on_after(STOP_HOOK_SECONDS):
                    await hook(self)
            except Exception as exc:  # a hook must never cost the session its seal
                report_fault(f"a stop hook of room {self.room.id}", exc)
        if self.writer is not None and self._stepped_down is not None:
            await trio.to_thread.run_sync(self.writer.abandon)
        elif self.writer is not None:
            try:
                await trio.to_thread.run_sync(self.writer.close)
            except OSError as exc:
                log.error(
                    "room %s: the recording could not be sealed (%s); what was written is intact",
                    self.room.id,
                    exc,
                )
            self._report_recording(self.writer, lag=0.0)
        self._stopped.set()

    def _fail(self, code: str, reason: str) -> None:
        """End this room now (its boundary caught an error); clients get `bye` with `code`."""
        self._goodbye_code = code
        self.metrics.rooms_failed.labels(code).inc()
        self.room.fail(reason)

    async def _keep_recording(self, writer: SessionWriter) -> None:
        """Write the recording out twice a second, off the room's thread.

        A failed flush (a full disk, no descriptors left) keeps its records buffered and
        is retried with backoff while the room runs; if the disk stays broken for
        `recording_failure_seconds` the room ends as `recording_failed`, with what was
        written intact.
        """
        last_written = time.monotonic()
        pause = FLUSH_INTERVAL_SECONDS
        while True:
            await trio.sleep(pause)
            try:
                await trio.to_thread.run_sync(writer.flush, self.flush_limit())
            except OSError as exc:
                lag = time.monotonic() - last_written
                self._report_recording(writer, lag)
                if pause == FLUSH_INTERVAL_SECONDS:
                    log.warning("room %s: recording not written (%s); retrying", self.room.id, exc)
                if lag > self.settings.recording_failure_seconds:
                    log.error("room %s: recording failed for %.0f s; ending", self.room.id, lag)
                    self._goodbye_code = "recording_failed"
                    self.metrics.rooms_failed.labels("recording_failed").inc()
                    self.request_end(f"the recording could not be written ({exc.strerror})")
                    return
                pause = min(FLUSH_RETRY_MAX_SECONDS, pause * 2)
                continue
            except Exception as exc:
                error_id = report_fault(f"the recording of room {self.room.id}", exc)
                self._fail("internal_error", f"internal error {error_id} while recording")
                return
            if pause != FLUSH_INTERVAL_SECONDS:
                log.info("room %s: recording written again", self.room.id)
            last_written = time.monotonic()
            pause = FLUSH_INTERVAL_SECONDS
            self._report_recording(writer, 0.0)

    def _report_recording(self, writer: SessionWriter, lag: float) -> None:
        stats = writer.stats()
        self.metrics.recording_dropped.labels(self.room.id).set(stats["dropped"])
        self.metrics.recording_buffered.labels(self.room.id).set(stats["buffered"])
        self.metrics.recording_lag.labels(self.room.id).set(lag)

    async def _tick_forever(self) -> None:
        period = 1.0 / self.room.config.tick_hz
        idle_ticks = round(self.settings.idle_timeout_seconds * self.room.config.tick_hz)
        deadline = trio.current_time()
        try:
            while not self.ended and self._stepped_down is None:
                deadline += period
                now = trio.current_time()
                if deadline < now - 5 * period:
                    deadline = now  # far behind (a stall): resume the cadence, do not burst
                await trio.sleep_until(deadline)
                if self.ended or self._stepped_down is not None:
                    break  # failed or moved meanwhile
                started = time.perf_counter()
                self._tick_once()
                self.metrics.tick_seconds.observe(time.perf_counter() - started)
                if self.room.tick_no - self.room.last_active_tick >= idle_ticks:
                    self.request_end("idle timeout: nobody connected")
        except Exception as exc:
            error_id = report_fault(f"room {self.room.id}", exc)
            self._fail("internal_error", f"internal error {error_id}; the room had to end")
        finally:
            with trio.CancelScope(shield=True):
                await self._goodbye()

    def _tick_once(self) -> None:
        for read in list(self._readers.values()):
            read()
        for event in self.room.tick():
            match event:
                case Replied():
                    self.reply(event)
                case MemberExpired():
                    self._forget(event.member)
                case MemberRemoved():
                    self._forget(event.member)
                    if (removed := self.links.get(event.member)) is not None:
                        self.drop(removed, "removed", f"{event.by} removed you from the room")
                case RoomEnded():
                    pass  # the loop sees `ended`; this tick's frames still go out
        self._fan_out()
        for hook in self.on_tick:
            hook(self)

    def _forget(self, member_id: int) -> None:
        self._rates.pop(member_id, None)
        for session, member in list(self._sessions.items()):
            if member == member_id:
                del self._sessions[session]

    def _fan_out(self) -> None:
        """Offer this tick's frames: the due clients grouped by the frame they need (view,
        baseline, resume point), each group's frame looked up once and written to its
        sockets in a tight loop; the few that could not take it are dealt with after."""
        tick = self.room.tick_no
        publisher = self.room.publisher
        groups: dict[tuple[View, int | None, int | None], list[Link]] = {}
        for link in self.links.values():
            sync = link.sync
            if sync.due(tick):
                key = (sync.view, sync.base, sync.resume_op)
                group = groups.get(key)
                if group is None:
                    groups[key] = [link]
                else:
                    group.append(link)
        encodes_before = publisher.encodes
        sent_bytes = frames = 0
        behind: list[Link] = []
        for (view, base, resume_op), group in groups.items():
            frame = publisher.frame(view, base, resume_op)
            written = 0
            for link in group:
                if link.sock.offer(frame):
                    link.sync.delivered(tick)
                    written += 1
                else:
                    behind.append(link)
            frames += written
            sent_bytes += written * len(frame)
        skipped = 0
        now = time.monotonic()
        for link in behind:
            if not link.sock.closed and not self._fell_behind(link, now):
                skipped += 1
        self.metrics.bytes_sent.inc(sent_bytes)
        self.metrics.frames_sent.inc(frames)
        if skipped:
            self.metrics.sends_skipped.inc(skipped)
        self.metrics.frame_encodes.inc(publisher.encodes - encodes_before)

    def _send_state(self, link: Link, now: float) -> int | None:
        """Offer `link` its frame; the size sent, 0 if skipped, None if dropped."""
        frame = link.sync.frame(self.room.publisher)
        if link.sock.offer(frame):
            link.sync.delivered(self.room.tick_no)
            return len(frame)
        if link.sock.closed or self._fell_behind(link, now):
            return None
        return 0

    def _fell_behind(self, link: Link, now: float) -> bool:
        """`link` could not take a frame: True (and dropped) once it has been behind too long."""
        if link.sync.missed(now, self.settings.slow_drop_seconds):
            self.drop(link, "too_slow", "your connection could not keep up with the room")
            return True
        return False

    def drop(self, link: Link, code: str, message: str) -> None:
        """Tell a client why it is being disconnected, then cut it off."""
        self.metrics.clients_dropped.labels(code).inc()
        link.sock.send(encode({"t": "bye", "code": code, "msg": message}))
        if link.sock.backlog:
            link.sock.abort(code)  # it cannot take the goodbye either
        else:
            link.sock.close_soon(code)

    async def _goodbye(self) -> None:
        reason = self._stepped_down or self.room.end_reason or "the room has ended"
        for link in list(self.links.values()):
            link.sock.send(
                encode(
                    {"t": "bye", "code": self._goodbye_code, "msg": reason, **self._goodbye_extra}
                )
            )
        with trio.move_on_after(2):
            async with trio.open_nursery() as nursery:
                for link in list(self.links.values()):
                    nursery.start_soon(link.sock.aclose, "room ended")

    async def wait_stopped(self) -> None:
        await self._stopped.wait()
