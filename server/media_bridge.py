"""Glue between rooms and the media workers: signalling, events, recording.

A client's `rtc` message is relayed to the supervisor from a task of its own (the room
never awaits media), at most a few in flight per client. Worker events go back to the
room's clients; speaking events become room inputs, so they are in the state and the
recording. Each room's media is recorded beside its session log and listed in its
manifest when the room ends.
"""

from __future__ import annotations

import logging
from typing import Any, Final

import trio

from media.errors import internal_error
from netcode.codec import Rtc, encode
from netcode.views import Role
from rooms.actions import IntentRefused
from server.media_supervisor import MediaSupervisor
from server.room_host import Link, RoomHost

log = logging.getLogger(__name__)
MAX_IN_FLIGHT: Final = 4
"""rtc messages of one client being handled at once; more are refused."""


class MediaBridge:
    def __init__(self, supervisor: MediaSupervisor, nursery: trio.Nursery) -> None:
        self.supervisor = supervisor
        self._nursery = nursery
        self._hosts: dict[str, RoomHost] = {}
        self._in_flight: dict[tuple[str, int], int] = {}

    def attach(self, host: RoomHost) -> None:
        """Give a new room media: signalling, leave notices and recording."""
        self._hosts[host.room.id] = host
        host.rtc_handler = self.relay
        host.on_detach.append(self._left)
        host.on_stop.append(self._room_stopped)
        if host.writer is not None:
            directory = host.writer.path / "media"
            directory.mkdir(exist_ok=True)
            self._nursery.start_soon(
                self.supervisor.start_recording, host.room.id, directory, host.created_at
            )

    def relay(self, host: RoomHost, link: Link, message: Rtc) -> None:
        key = (host.room.id, link.member.id)
        if self._in_flight.get(key, 0) >= MAX_IN_FLIGHT:
            link.sock.send(
                encode(
                    {
                        "t": "rtc",
                        "op": "error",
                        "code": "rate_limited",
                        "message": "wait for your earlier rtc messages' replies",
                    }
                )
            )
            return
        self._in_flight[key] = self._in_flight.get(key, 0) + 1
        self._nursery.start_soon(self._signal, host, link, message.model_dump())

    async def _signal(self, host: RoomHost, link: Link, message: dict[str, Any]) -> None:
        key = (host.room.id, link.member.id)
        try:
            message.pop("t", None)
            role = link.member.role.value
            if link.member.role is not Role.SPECTATOR and host.room.is_presenter(link.member.id):
                role = "presenter"
            try:
                replies = await self.supervisor.signal(
                    host.room.id, str(link.member.id), role, message
                )
            except Exception as exc:  # this message's fault boundary: the room carries on
                where = f"rtc message of member {link.member.id} in room {host.room.id}"
                error = internal_error(where, exc)
                error.pc = message["pc"] if isinstance(message.get("pc"), str) else None
                replies = [error.to_message()]
            for reply in replies:
                link.sock.send(encode({"t": "rtc", **reply}))
        finally:
            self._in_flight[key] -= 1
            if not self._in_flight[key]:
                del self._in_flight[key]

    def _left(self, host: RoomHost, member_id: int) -> None:
        self._nursery.start_soon(self._leave_unless_back, host, member_id)

    async def _leave_unless_back(self, host: RoomHost, member_id: int) -> None:
        """A dropped connection keeps its media while the member may resume (the grace
        period); a member who is gone for good (or removed) has its pcs closed."""
        with trio.move_on_after(host.room.config.grace_seconds + 1):
            while member_id not in host.links and member_id in host.room.members:
                await trio.sleep(1)
        if member_id not in host.links:
            await self.supervisor.leave(host.room.id, str(member_id))

    async def _room_stopped(self, host: RoomHost) -> None:
        """Remux the room's media and list the tracks in its manifest."""
        self._hosts.pop(host.room.id, None)
        try:
            entries = await self.supervisor.stop_recording(host.room.id)
            await self.supervisor.close_room(host.room.id)
        except Exception:  # media must never cost the session its recording
            log.exception("media recording of room %s could not be finished", host.room.id)
            return
        if host.writer is None:
            return
        for entry in entries:
            host.writer.add_media_track(
                entry["track"],
                entry["kind"],
                member=entry.get("member"),
                uri=f"media/{entry['file']}",
                clock_offset_ms=float(entry["offset_ms"]),
                layout=entry.get("layout"),
                frames=entry.get("frames"),
                duration_ms=entry.get("duration_ms"),
            )

    async def on_event(self, room_id: str, member_id: str | None, message: dict[str, Any]) -> None:
        """A worker event: to one member, or to everyone in the room."""
        host = self._hosts.get(room_id)
        if host is None:
            return
        if message.get("op") == "fault":  # the worker's watchdog: for operators, not clients
            log.warning("media in room %s: %r", room_id, message)
            host.metrics.media_faults.labels(
                str(message.get("what")), str(message.get("recovery", "none"))
            ).inc()
            return
        if message.get("op") == "speaking":
            try:
                host.room.set_speaking(int(message["member"]), bool(message["speaking"]))
            except (KeyError, ValueError, IntentRefused):
                log.warning("media: speaking event not applied: %r", message)
        payload = encode({"t": "rtc", **message})
        if member_id is None:
            for link in list(host.links.values()):
                link.sock.send(payload)
        elif member_id.isdigit():
            host.send_to(int(member_id), {"t": "rtc", **message})
