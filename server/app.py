"""The server process: one port for HTTP and WebSocket, one nursery owning every room.

`Server.run` listens, runs each room as a task of its own nursery, and on SIGINT or
SIGTERM (or cancellation) ends every room, tells each client why, and returns with
nothing left running.
"""

from __future__ import annotations

import importlib.util
import logging
import secrets
import signal
from collections.abc import Callable
from functools import partial
from typing import Any
from urllib.parse import urlencode

import trio

from netcode.views import Role
from replay.continuation import continue_session
from replay.errors import ReplayError
from replay.signing import derive_key
from replay.writer import SessionWriter, new_session_id
from rooms.room import Room, RoomConfig
from server import tokens
from server.api import Api
from server.client_session import Session
from server.client_socket import ClientSocket, binary_frame
from server.cluster import Cluster
from server.config import Settings
from server.connections import Connections
from server.directory import RoomEntry
from server.media_bridge import MediaBridge
from server.media_supervisor import MediaConfig, MediaSupervisor
from server.metrics import Metrics
from server.refusals import RoomRefused
from server.room_backlog import TeeRecorder
from server.room_host import RoomHost
from server.scenarios import DEFAULT_CASE, CaseLibrary
from server.takeover import Restored
from server.valkey import open_valkey

log = logging.getLogger(__name__)
VERSION = "0.1.0"
MAX_FINISHED_ROOMS = 64
"""Ended rooms still listed by the API (newest kept); older ones live on as recordings."""


class Server:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings.with_secrets()
        self.cases = CaseLibrary(self.settings.cases_folder)
        self.cases.refresh()
        self.metrics = Metrics()
        self.rooms: dict[str, RoomHost] = {}
        self.api = Api(self)
        self.port = self.settings.port
        self._room_nursery: trio.Nursery | None = None
        self.on_room_created: list[Callable[[RoomHost], None]] = []
        self.media: MediaBridge | None = None
        self.cluster: Cluster | None = None
        self._preparing: set[str] = set()
        """Rooms being created or restored, not yet running (their ids are taken)."""
        """Set when this process is a node of a cluster (`--redis`)."""

    # -- rooms ------------------------------------------------------------------
    async def create_room(
        self, title: str, case: str, seed: int | None = None, room_id: str | None = None
    ) -> RoomHost:
        """Create and start a room; `RoomRefused` says why it cannot be (a code, a sentence)."""
        host = await self.prepare_room(title, case, seed, room_id)
        self.launch(host)
        return host

    async def prepare_room(
        self,
        title: str,
        case: str,
        seed: int | None = None,
        room_id: str | None = None,
        *,
        backlog: bool = False,
    ) -> RoomHost:
        """A started room and its host, not yet ticking (`launch` does that).

        With `backlog`, the room's recorder also keeps each tick's records for the
        cluster (`server/room_backlog.py`).
        """
        if self._room_nursery is None:
            raise RuntimeError("the server is not running")
        room_id = room_id or secrets.token_urlsafe(6).replace("-", "x").replace("_", "y")
        self._check_room_can_open(room_id)
        seed = secrets.randbelow(2**31) if seed is None else seed
        scenario = self.cases.make_scenario(case, seed)
        config = RoomConfig(
            tick_hz=self.settings.tick_hz, grace_seconds=self.settings.grace_seconds
        )
        self._preparing.add(room_id)
        try:
            writer = await self._new_recording(room_id)
        except RoomRefused:
            self._preparing.discard(room_id)
            raise
        room = Room(
            room_id,
            scenario,
            seed=seed,
            config=config,
            framer=binary_frame,
            title=title or f"{case} room",
            recorder=TeeRecorder(writer) if backlog else writer,
        )
        room.start({"server": VERSION, "case": case})
        host = RoomHost(room, self.settings, self.metrics, writer)
        log.info("room %s created (case %s, seed %d)", room_id, case, seed)
        return host

    async def _new_recording(self, room_id: str) -> SessionWriter:
        try:
            return await trio.to_thread.run_sync(
                partial(
                    SessionWriter,
                    self.settings.data_dir,
                    new_session_id(room_id),
                    server_version=VERSION,
                    signing_key=derive_key(self.settings.secret),
                )
            )
        except OSError as exc:
            log.error("room %s: cannot start its recording: %s", room_id, exc.strerror)
            raise RoomRefused(
                "storage_unavailable", "the server cannot record a new session now; try later"
            ) from None

    async def resume_room(self, restored: Restored, entry: RoomEntry) -> RoomHost:
        """Host a room restored from its backlog (a takeover): the same session goes on.

        Its recording continues the session's log where the previous owner's flushes
        ended, with the backlog's records that had not reached the disk; every member is
        marked disconnected (their connections died with the old owner).
        """
        room = restored.room
        self._check_room_can_open(room.id)
        self._preparing.add(room.id)
        try:
            writer = await trio.to_thread.run_sync(
                partial(
                    continue_session,
                    self.settings.data_dir,
                    entry.session,
                    restored.backlog.first,
                    [r for i, r in restored.backlog.records if i >= 0],
                    signing_key=derive_key(self.settings.secret),
                    server_version=VERSION,
                )
            )
        except (OSError, ReplayError) as exc:
            self._preparing.discard(room.id)
            raise RoomRefused("recording_unavailable", f"the session cannot go on: {exc}") from None
        room.recorder = TeeRecorder(writer)
        for member_id in list(room.members):
            room.disconnect(member_id)
        return RoomHost(room, self.settings, self.metrics, writer)

    async def discard(self, host: RoomHost) -> None:
        """Give up a prepared room that will not run here (its recording left as it is)."""
        self._preparing.discard(host.room.id)
        if host.writer is not None:
            await trio.to_thread.run_sync(host.writer.abandon)

    def launch(self, host: RoomHost) -> None:
        """Start a prepared (or restored) room's loop: from now on clients find it."""
        assert self._room_nursery is not None
        self._preparing.discard(host.room.id)
        self.rooms[host.room.id] = host
        for hook in self.on_room_created:
            hook(host)
        self._room_nursery.start_soon(host.run, name=f"room {host.room.id}")

    def _check_room_can_open(self, room_id: str) -> None:
        finished = [rid for rid, h in self.rooms.items() if h.stopped]
        for rid in finished[: max(0, len(finished) - MAX_FINISHED_ROOMS)]:
            del self.rooms[rid]  # its recording stays in the data directory
        existing = self.rooms.get(room_id)
        if room_id in self._preparing or (existing is not None and not existing.stopped):
            raise RoomRefused("room_exists", f"there is already a room {room_id!r}")
        live = sum(1 for h in self.rooms.values() if not h.ended)
        if live >= self.settings.max_rooms:
            raise RoomRefused(
                "too_many_rooms", f"this server runs at most {self.settings.max_rooms} rooms"
            )

    def issue_token(
        self,
        room_id: str,
        role: Role,
        name: str = "",
        ttl_seconds: int | None = None,
        *,
        seats: int | None = None,
    ) -> str:
        return tokens.issue(
            self.settings.secret,
            room_id,
            role,
            name or role.value.title(),
            ttl_seconds or self.settings.token_ttl_seconds,
            seats,
        )

    def join_entry(
        self,
        room_id: str,
        role: Role,
        name: str = "",
        ttl_seconds: int | None = None,
        *,
        seats: int | None = None,
    ) -> dict[str, Any]:
        token = self.issue_token(room_id, role, name, ttl_seconds, seats=seats)
        query = urlencode({"room": room_id, "token": token})
        base = self.settings.base_url()
        return {
            "role": role.value,
            "token": token,
            "link": f"{base}/?{query}",
            "ws": base.replace("http", "ws", 1) + "/ws",
        }

    def join_bundle(self, room_id: str) -> dict[str, dict[str, Any]]:
        """A join link for each role, as `serve --demo` prints and the create API returns."""
        return {role.value: self.join_entry(room_id, role) for role in Role}

    def refresh_gauges(self) -> None:
        statuses: dict[str, int] = {"running": 0, "paused": 0, "ended": 0, "created": 0}
        for host in self.rooms.values():
            statuses[host.room.status.value] = statuses.get(host.room.status.value, 0) + 1
        for status, count in statuses.items():
            self.metrics.rooms.labels(status).set(count)

    # -- running ------------------------------------------------------------------
    async def run(
        self,
        *,
        task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
        demo: bool = False,
        demo_case: str = DEFAULT_CASE,
        on_ready: Callable[[Server], None] | None = None,
    ) -> None:
        """Serve until SIGINT/SIGTERM or cancellation, then shut down cleanly."""
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async with trio.open_nursery() as nursery:
                listeners = await trio.open_tcp_listeners(
                    self.settings.port, host=self.settings.host
                )
                self.port = listeners[0].socket.getsockname()[1]
                if self.settings.port == 0:
                    self.settings = self.settings.model_copy(update={"port": self.port})
                if self.settings.redis_url:
                    await nursery.start(self._join_cluster)
                # Media outlives the rooms even when the server is cancelled: ending a room
                # remuxes its recorded tracks, which needs the workers.
                media_scope = trio.CancelScope(shield=True)
                await self._start_media(nursery, media_scope)
                try:
                    async with trio.open_nursery() as rooms:
                        self._room_nursery = rooms
                        async with trio.open_nursery() as clients:
                            clients.start_soon(self._serve, listeners, clients)
                            if demo:
                                await self._open_demo(demo_case)
                            if on_ready is not None:
                                on_ready(self)
                            task_status.started(self.port)
                            nursery.start_soon(self._watch_signals, signals, clients)
                            await trio.sleep_forever()
                finally:
                    with trio.CancelScope(shield=True):
                        await self._end_all_rooms("the server is shutting down")
                        if self.cluster is not None:
                            await self.cluster.withdraw()
                    media_scope.cancel()
                    nursery.cancel_scope.cancel()

    async def _join_cluster(self, *, task_status: trio.TaskStatus[None]) -> None:
        """Be a node of the cluster in Valkey (docs/operations.md) while the server runs."""
        async with open_valkey(self.settings.redis_url) as valkey:
            self.cluster = Cluster(self, valkey)
            await self.cluster.run(task_status=task_status)

    async def _open_demo(self, case: str) -> None:
        """The demo room: here, or wherever the cluster placed it (once per cluster)."""
        if self.cluster is None:
            await self.create_room("Demo grand round", case, room_id="demo")
            return
        await self.cluster.create("Demo grand round", case, None, "demo", room_id="demo")

    async def _start_media(self, nursery: trio.Nursery, scope: trio.CancelScope) -> None:
        """Start the media workers, unless disabled; without them rooms run without media."""
        if self.settings.media_workers == 0:
            return
        if importlib.util.find_spec("aiortc") is None:
            log.warning("media disabled: aiortc is not installed (install the 'media' extra)")
            return
        config = MediaConfig(
            data_dir=self.settings.data_dir / "media-control",
            workers=self.settings.media_workers,
            ice_servers=list(self.settings.ice_servers),
            ice_host_addresses=self.settings.ice_host_addresses,
            peer_limits=self.settings.media_peer_limits,
        )

        async def on_event(room: str, member: str | None, message: dict[str, Any]) -> None:
            if self.media is not None:
                await self.media.on_event(room, member, message)

        supervisor = MediaSupervisor(config, on_event)

        async def supervise(*, task_status: trio.TaskStatus[None]) -> None:
            with scope:
                await supervisor.run(task_status=task_status)

        await nursery.start(supervise)
        self.media = MediaBridge(supervisor, nursery)
        self.on_room_created.append(self.media.attach)

    async def serve_websocket(self, sock: ClientSocket, peer: str) -> None:
        await Session(self, sock, peer).run()

    async def _serve(self, listeners: list[trio.SocketListener], clients: trio.Nursery) -> None:
        await Connections(self).serve(listeners, clients)

    async def _watch_signals(self, signals: Any, clients: trio.Nursery) -> None:
        async for signum in signals:
            log.info("signal %s: shutting down", signal.Signals(signum).name)
            if self.cluster is not None:
                await self.cluster.drain()
            await self._end_all_rooms("the server is shutting down")
            clients.cancel_scope.cancel()
            return

    async def _end_all_rooms(self, reason: str) -> None:
        for host in self.rooms.values():
            host.request_end(reason)
        with trio.move_on_after(5):
            for host in list(self.rooms.values()):
                await host.wait_stopped()
        if self._room_nursery is not None:
            self._room_nursery.cancel_scope.cancel()
