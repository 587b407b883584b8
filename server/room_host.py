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
from netcode.views import Role
from replay.writer import SessionWriter
from rooms.actions import IntentRefused
from rooms.room import Member, Reply, Room, RoomStatus
from server.client_socket import ClientSocket
from server.config import Settings
from server.metrics import Metrics

log = logging.getLogger(__name__)
RtcHandler = Callable[["RoomHost", "Link", Rtc], None]
DetachHook = Callable[["RoomHost", int], None]
StopHook = Callable[["RoomHost"], Awaitable[None]]
FLUSH_INTERVAL_SECONDS = 0.5
STOP_HOOK_SECONDS = 60.0
"""Longest a room's end waits for a hook (e.g. remuxing its media) before sealing."""


@dataclass(eq=False, slots=True)
class Link:
    """A connected client of this room."""

    member: Member
    sock: ClientSocket
    session: str
    base: int | None = None
    resume_op: int | None = None
    behind_since: float | None = None
    every: int = 1
    """Send state every this many ticks (more than 1 for low-bandwidth clients)."""


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
        self._every: dict[int, int] = {}
        """Members that asked for a reduced state rate (`prefs`): it survives a resume."""
        self.created_at = time.time()
        self.rtc_handler: RtcHandler | None = None
        self.on_detach: list[DetachHook] = []
        self.on_stop: list[StopHook] = []
        self._stopped = trio.Event()

    @property
    def ended(self) -> bool:
        return self.room.status is RoomStatus.ENDED

    @property
    def stopped(self) -> bool:
        return self._stopped.is_set()

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
    def attach(self, sock: ClientSocket, role: Role, name: str, resume: Resume | None) -> Link:
        """Admit a client (resuming its session when it can) and send welcome + first state."""
        if len(self.links) >= self.settings.max_clients_per_room:
            raise IntentRefused("room_full", "this room has as many clients as it can take")
        member_id = self._sessions.get(resume.session) if resume else None
        resumed = (
            member_id is not None
            and member_id not in self.links
            and self.room.members.get(member_id) is not None
            and self.room.members[member_id].role is role
            and self.room.reconnect(member_id)
        )
        if resumed and resume is not None and member_id is not None:
            member = self.room.members[member_id]
            session = resume.session
            link = Link(
                member,
                sock,
                session,
                base=resume.tick,
                resume_op=resume.op,
                every=self._every.get(member.id, 1),
            )
        else:
            member = self.room.join(role, name)
            session = secrets.token_urlsafe(12)
            self._sessions[session] = member.id
            link = Link(member, sock, session)
        self.links[member.id] = link
        sock.send(
            encode(
                {
                    "t": "welcome",
                    "v": PROTOCOL_VERSION,
                    "room": self.room.id,
                    "title": self.room.title,
                    "role": role.value,
                    "name": member.name,
                    "member": member.id,
                    "session": session,
                    "resumed": bool(resumed),
                    "tick_hz": self.room.config.tick_hz,
                    "checksum_every": self.room.config.checksum_every,
                    "grace_seconds": self.room.config.grace_seconds,
                }
            )
        )
        if link.every == 1:  # a reduced-rate client gets its first frame on its grid
            self._send_state(link, time.monotonic())
        self.metrics.clients.labels(role.value).inc()
        return link

    def detach(self, link: Link) -> None:
        """The client's connection ended: keep its session for the grace period."""
        if self.links.get(link.member.id) is not link:
            return
        del self.links[link.member.id]
        self.metrics.clients.labels(link.member.role.value).dec()
        for hook in self.on_detach:
            hook(self, link.member.id)
        if self.ended or self._stopped.is_set():
            return
        self.room.disconnect(link.member.id)

    def handle(self, link: Link, message: Any) -> None:
        """One validated message from an attached client."""
        if self._stopped.is_set():
            raise IntentRefused("room_ended", "this room has stopped")
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
                        Reply(link.member.id, message.id, False, refused.code, refused.message)
                    )
            case Ack():
                pass  # written frames already count as the baseline; an ack keeps us alive
            case Prefs():
                link.every = max(1, round(self.room.config.tick_hz / message.rate))
                self._every[link.member.id] = link.every
            case Resync():
                link.base = None
                link.resume_op = None
            case Ping():
                link.sock.send(encode({"t": "pong", "id": message.id, "tick": self.room.tick_no}))
            case Rtc():
                if self.rtc_handler is None:
                    raise IntentRefused("media_unavailable", "media is not enabled on this server")
                self.rtc_handler(self, link, message)
            case _:
                raise IntentRefused("bad_message", "this message is not accepted after hello")

    def reply(self, reply: Reply) -> None:
        link = self.links.get(reply.member)
        if link is None:
            return
        message: dict[str, Any] = {"t": "reply", "id": reply.id, "ok": reply.ok}
        if not reply.ok:
            message["code"] = reply.code
            message["msg"] = reply.message
            self.metrics.errors.labels(reply.code).inc()
        link.sock.send(encode(message))

    def send_to(self, member_id: int, message: dict[str, Any]) -> None:
        link = self.links.get(member_id)
        if link is not None:
            link.sock.send(encode(message))

    # -- the tick loop ------------------------------------------------------------
    async def run(self) -> None:
        """Tick (and record) until the room ends; then say goodbye and seal the session."""
        try:
            async with trio.open_nursery() as nursery:
                if self.writer is not None:
                    nursery.start_soon(self._flush_forever, self.writer)
                try:
                    await self._tick_forever()
                finally:
                    nursery.cancel_scope.cancel()
        finally:
            with trio.CancelScope(shield=True):
                for hook in self.on_stop:
                    try:
                        with trio.move_on_after(STOP_HOOK_SECONDS):
                            await hook(self)
                    except Exception:  # a hook must never cost the session its seal
                        log.exception("room %s: a stop hook failed", self.room.id)
                if self.writer is not None:
                    await trio.to_thread.run_sync(self.writer.close)
                    self._report_recording(self.writer)
                self._stopped.set()

    async def _flush_forever(self, writer: SessionWriter) -> None:
        """Write the recording out at least once a second, off the room's thread."""
        while True:
            await trio.sleep(FLUSH_INTERVAL_SECONDS)
            await trio.to_thread.run_sync(writer.flush)
            self._report_recording(writer)

    def _report_recording(self, writer: SessionWriter) -> None:
        stats = writer.stats()
        self.metrics.recording_dropped.labels(self.room.id).set(stats["dropped"])
        self.metrics.recording_buffered.labels(self.room.id).set(stats["buffered"])

    async def _tick_forever(self) -> None:
        period = 1.0 / self.room.config.tick_hz
        idle_ticks = round(self.settings.idle_timeout_seconds * self.room.config.tick_hz)
        deadline = trio.current_time()
        try:
            while True:
                deadline += period
                now = trio.current_time()
                if deadline < now - 5 * period:
                    deadline = now  # far behind (a stall): resume the cadence, do not burst
                await trio.sleep_until(deadline)
                started = time.perf_counter()
                result = self.room.tick()
                for reply in result.replies:
                    self.reply(reply)
                for member_id in result.removed:
                    self._forget(member_id)
                for member_id in self.room.removed_by_facilitator:
                    self._forget(member_id)
                    if (removed := self.links.get(member_id)) is not None:
                        self.drop(removed, "removed", "the facilitator removed you from the room")
                self.room.removed_by_facilitator.clear()
                self._fan_out()
                self.metrics.tick_seconds.observe(time.perf_counter() - started)
                if result.ended:
                    break
                if self.room.tick_no - self.room.last_active_tick >= idle_ticks:
                    self.request_end("idle timeout: nobody connected")
        finally:
            with trio.CancelScope(shield=True):
                await self._goodbye()

    def _forget(self, member_id: int) -> None:
        self._every.pop(member_id, None)
        for session, member in list(self._sessions.items()):
            if member == member_id:
                del self._sessions[session]

    def _fan_out(self) -> None:
        now = time.monotonic()
        sent_bytes = frames = skipped = 0
        encodes_before = self.room.publisher.encodes
        for link in list(self.links.values()):
            if link.every > 1 and self.room.tick_no % link.every:
                continue  # a low-bandwidth client: the next delta covers these ticks
            size = self._send_state(link, now)
            if size:
                sent_bytes += size
                frames += 1
            elif size == 0:
                skipped += 1
        self.metrics.bytes_sent.inc(sent_bytes)
        self.metrics.frames_sent.inc(frames)
        if skipped:
            self.metrics.sends_skipped.inc(skipped)
        self.metrics.frame_encodes.inc(self.room.publisher.encodes - encodes_before)

    def _send_state(self, link: Link, now: float) -> int | None:
        """Offer `link` its frame; the size sent, 0 if skipped, None if dropped."""
        frame = self.room.publisher.frame(link.member.view, link.base, link.resume_op)
        if link.sock.offer(frame):
            link.base = self.room.tick_no
            link.resume_op = None
            link.behind_since = None
            return len(frame)
        if link.sock.closed:
            return None
        if link.behind_since is None:
            link.behind_since = now
        elif now - link.behind_since > self.settings.slow_drop_seconds:
            self.drop(link, "too_slow", "your connection could not keep up with the room")
            return None
        return 0

    def drop(self, link: Link, code: str, message: str) -> None:
        """Tell a client why it is being disconnected, then cut it off."""
        self.metrics.clients_dropped.labels(code).inc()
        link.sock.send(encode({"t": "bye", "code": code, "msg": message}))
        if link.sock.backlog:
            link.sock.abort(code)  # it cannot take the goodbye either
        else:
            link.sock.close_soon(code)

    async def _goodbye(self) -> None:
        reason = self.room.end_reason or "the room has ended"
        for link in list(self.links.values()):
            link.sock.send(encode({"t": "bye", "code": "room_ended", "msg": reason}))
        with trio.move_on_after(2):
            async with trio.open_nursery() as nursery:
                for link in list(self.links.values()):
                    nursery.start_soon(link.sock.aclose, "room ended")

    async def wait_stopped(self) -> None:
        await self._stopped.wait()
