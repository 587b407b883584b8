"""A spectator relay: serves rooms' spectators from their feeds, never touching a room's loop.

`grandrounds relay --redis URL` joins a cluster as a relay (`NodeKind.RELAY`): it lists
itself in Valkey with its load under a lease, reads the cluster's signing secret from
Valkey (nodes put it there), and serves on its own port the web app's files,
`/healthz`, `/metrics` and `/ws` for spectators. A spectator speaks to a relay exactly
as to a room's node (docs/protocol.md); nodes send spectators to the least-loaded relay
(`bye moved`). Each room with spectators here is a `RelayRoom` following the room's
spectator feed (`server/relay_room.py`).

A spectator's session id is signed with the cluster's secret, so a relay that restarted
(or another relay) recognises it and the spectator resumes; each room's stream position
and the rates low-bandwidth spectators asked for are kept in the data directory, where
a restarted relay finds them. Operations: docs/operations.md, "Spectator relays".
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

import trio
from prometheus_client import Counter, Gauge
from pydantic import Field

from netcode.codec import encode
from netcode.views import Role
from rooms.actions import IntentRefused
from server.boundary import report_fault
from server.client_session import ClientSession
from server.client_socket import ClientSocket
from server.cluster import ClusterStartupError
from server.config import Settings
from server.connections import Connections
from server.files import app_file
from server.http import HttpRequest, HttpResponse, error_response, json_response
from server.metrics import Metrics
from server.nodes import HEARTBEAT_SECONDS, CpuMeter, NodeInfo, NodeKind, NodeRegistry
from server.relay_questions import RelayQuestions
from server.relay_room import RelayRoom, Spectator
from server.relay_state import RelaySessions, RelayState
from server.tokens import TokenError, is_review_token, verify
from server.valkey import Keys, Valkey, ValkeyUnavailable, open_valkey

log = logging.getLogger(__name__)
STARTUP_SECONDS: Final = 60.0
"""How long a relay waits at start for Valkey and for a node to share the secret."""
FEED_WAIT_SECONDS: Final = 5.0
"""How long a hello waits for a room's feed to give this relay a state."""
STATE_FILE: Final = "relay-state.json"
SAVE_SECONDS: Final = 1.0
RESTORE_SECONDS: Final = 60.0
"""How long positions read back at start wait for their rooms' spectators to return."""
MAX_RELAY_ROOMS: Final = 256


class RelaySettings(Settings):
    """A relay's settings: a node's (flags over `GRANDROUNDS_*`), and its own."""

    port: int = Field(default=8770, ge=0, le=65535)
    broadcast_delay_seconds: float = Field(default=0.0, ge=0.0, le=120.0)
    """Hold the room's state back this long before serving it (0: live)."""
    max_spectators: int = Field(default=5000, ge=1)
    """Spectators this relay serves at once, over all rooms; more get `room_full`."""


class RelayMetrics(Metrics):
    """A node's metrics (clients, bytes and frames sent, drops, errors, connections) and
    the relay's own."""

    def __init__(self) -> None:
        super().__init__()
        r = self.registry
        self.relay_rooms = Gauge(
            "grandrounds_relay_rooms", "Rooms whose feed this relay follows", registry=r
        )
        self.feed_lag_ticks = Gauge(
            "grandrounds_relay_feed_lag_ticks",
            "Ticks between the newest feed entry read and the state served",
            ["room"],
            registry=r,
        )
        self.feed_lag_seconds = Gauge(
            "grandrounds_relay_feed_lag_seconds",
            "Seconds from the owner making the entry served to now (owner's clock)",
            ["room"],
            registry=r,
        )
        self.stream_resumes = Counter(
            "grandrounds_relay_stream_resumes",
            "Rooms this relay went back to after a restart: from the stream id it held "
            "(position) or, when that had left the stream, from the newest snapshot",
            ["start"],
            registry=r,
        )
        self.snapshots_served = Counter(
            "grandrounds_relay_snapshots_served", "Snapshot frames sent to spectators", registry=r
        )
        self.feed_steps = Counter(
            "grandrounds_relay_feed_entries",
            "Feed entries applied: continued (a delta), reset (rebuilt from a snapshot), "
            "waiting (no state until a snapshot), ended, unreadable",
            ["step"],
            registry=r,
        )


class RelayApi:
    """The relay's HTTP surface: health, metrics and the web app's files."""

    def __init__(self, relay: Relay) -> None:
        self.relay = relay

    async def route(self, request: HttpRequest) -> HttpResponse:
        path = request.path
        if path == "/healthz":
            relay = self.relay
            return json_response(
                200,
                {
                    "ok": True,
                    "relay": relay.node_id,
                    "rooms": len(relay.live_rooms()),
                    "spectators": relay.spectator_count(),
                },
            )
        if path == "/metrics":
            self.relay.metrics.relay_rooms.set(len(self.relay.live_rooms()))
            return HttpResponse(
                200, self.relay.metrics.render(), "text/plain; version=0.0.4; charset=utf-8"
            )
        if request.method == "GET" and not path.startswith("/api/"):
            found = await trio.to_thread.run_sync(app_file, path)
            if found is not None:
                headers = [("content-security-policy", found.policy)] if found.policy else []
                return HttpResponse(200, found.body, found.content_type, headers)
        return error_response(
            404, "not_found", "a spectator relay serves spectators; the API is on the nodes"
        )


class RelaySession(ClientSession):
    """A spectator of this relay, from hello to goodbye."""

    def __init__(self, relay: Relay, sock: ClientSocket, peer: str) -> None:
        super().__init__(relay.settings, relay.metrics, sock, peer)
        self.relay = relay
        self.room: RelayRoom | None = None
        self.spectator: Spectator | None = None

    async def _hello(self, data: bytes) -> bool:
        message = self._read_hello(data)
        if message is None:
            return False
        if is_review_token(message.token):
            self.refuse("unknown_session", "recorded sessions are reviewed on a node, not a relay")
            return False
        try:
            grant = verify(self.settings.secret, message.token)
        except TokenError as exc:
            self.refuse(exc.code, exc.message)
            return False
        if message.room is not None and message.room != grant.room:
            self.refuse("wrong_room", "this token is for a different room")
            return False
        if grant.role is not Role.SPECTATOR:
            node = self.relay.least_loaded_node()
            if node is None:
                self.refuse("directory_unavailable", "no node of the cluster is reachable")
            else:
                self.refuse("moved", "a relay serves spectators; join through a node", ws=node)
            return False
        try:
            room = await self.relay.room(grant.room)
            self.sock.queue_bytes = self.settings.send_queue_bytes
            self.spectator = room.attach(self.sock, grant, message.resume)
        except IntentRefused as refused:
            self.refuse(refused.code, refused.message)
            return False
        self.room = room
        return True

    def _dispatch(self, message: Any) -> None:
        assert self.room is not None and self.spectator is not None
        try:
            self.room.handle(self.spectator, message)
        except IntentRefused as refused:
            self._strike(refused.code, refused.message)

    def _detach(self) -> None:
        if self.room is not None and self.spectator is not None:
            self.room.detach(self.spectator)


class Relay:
    def __init__(self, settings: RelaySettings) -> None:
        self.settings = settings
        self.metrics = RelayMetrics()
        self.api = RelayApi(self)
        self.rooms: dict[str, RelayRoom] = {}
        self.port = settings.port
        self.node_id = settings.node_id
        self.node_urls: list[str] = []
        """WebSocket URLs of the cluster's live nodes (sent in `welcome`, for a client
        whose relay goes away)."""
        self.state = RelayState(settings.grace_seconds, 2 * settings.max_spectators)
        self.sessions = RelaySessions("")
        self.questions = RelayQuestions(self)
        self._nodes: list[NodeInfo] = []
        self._valkey: Valkey | None = None
        self._rooms_nursery: trio.Nursery | None = None
        self._cpu = CpuMeter()

    @property
    def valkey(self) -> Valkey:
        assert self._valkey is not None, "the relay is not running"
        return self._valkey

    def live_rooms(self) -> list[RelayRoom]:
        return [room for room in self.rooms.values() if not room.closing]

    def spectator_count(self) -> int:
        return sum(len(room.spectators) for room in self.rooms.values())

    def least_loaded_node(self) -> str | None:
        nodes = [n for n in self._nodes if not n.draining]
        return min(nodes, key=lambda n: n.load).ws if nodes else None

    def describe(self) -> NodeInfo:
        return NodeInfo(
            id=self.node_id,
            kind=NodeKind.RELAY,
            url=self.settings.base_url(),
            rooms=sorted(room.id for room in self.live_rooms()),
            clients=self.spectator_count(),
            cpu=self._cpu.read(),
        )

    async def serve_websocket(self, sock: ClientSocket, peer: str) -> None:
        await RelaySession(self, sock, peer).run()

    # -- rooms ------------------------------------------------------------------------
    async def room(self, room_id: str) -> RelayRoom:
        """This relay's copy of a room, following its feed from now if it was not yet;
        `IntentRefused` when the room has no feed (or ended)."""
        room = self.rooms.get(room_id)
        if room is None or room.closing:
            if len(self.live_rooms()) >= MAX_RELAY_ROOMS:
                raise IntentRefused("room_full", "this relay follows as many rooms as it can")
            assert self._rooms_nursery is not None
            room = RelayRoom(self, room_id, self.state.restored.pop(room_id, None))
            self.rooms[room_id] = room
            self._rooms_nursery.start_soon(self._follow, room)
        with trio.move_on_after(FEED_WAIT_SECONDS):
            await room.ready.wait()
        if room.copy.ended is not None:
            raise IntentRefused("room_ended", "this room has ended")
        if room.copy.meta is None:
            raise IntentRefused("unknown_room", f"there is no live room {room_id!r} to watch")
        return room

    async def _follow(self, room: RelayRoom) -> None:
        """Run one room's copy inside its own fault boundary."""
        try:
            await room.run()
        except Exception as exc:
            error_id = report_fault(f"relay copy of room {room.id}", exc)
            for spectator in list(room.spectators.values()):
                room.drop(spectator, "internal_error", f"the relay failed (error id {error_id})")
        finally:
            if self.rooms.get(room.id) is room:
                del self.rooms[room.id]

    # -- running ----------------------------------------------------------------------
    async def run(
        self,
        *,
        task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
        on_ready: Callable[[Relay], None] | None = None,
    ) -> None:
        """Serve until SIGINT/SIGTERM or cancellation; spectators are then disconnected
        (no `bye`: they reconnect, through a node, to a relay that is there)."""
        path = self.settings.data_dir / STATE_FILE
        async with open_valkey(self.settings.redis_url) as valkey:
            self._valkey = valkey
            await self._adopt_secret()
            await trio.to_thread.run_sync(self._load_state, path)
            with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                async with trio.open_nursery() as nursery:
                    listeners = await trio.open_tcp_listeners(
                        self.settings.port, host=self.settings.host
                    )
                    self.port = listeners[0].socket.getsockname()[1]
                    if self.settings.port == 0:
                        self.settings = self.settings.model_copy(update={"port": self.port})
                    self.node_id = self.settings.node_id or f"{self.settings.host}:{self.port}"
                    registry = NodeRegistry(valkey, self.describe)
                    nursery.start_soon(registry.heartbeat_forever)
                    nursery.start_soon(self._watch_nodes, registry)
                    nursery.start_soon(self._keep_state, path)
                    nursery.start_soon(self.questions.run)
                    try:
                        async with trio.open_nursery() as rooms:
                            self._rooms_nursery = rooms
                            async with trio.open_nursery() as clients:
                                clients.start_soon(Connections(self).serve, listeners, clients)
                                if on_ready is not None:
                                    on_ready(self)
                                task_status.started(self.port)
                                async for signum in signals:
                                    name = signal.Signals(signum).name
                                    log.info("signal %s: relay stopping", name)
                                    break
                                clients.cancel_scope.cancel()
                            rooms.cancel_scope.cancel()
                    finally:
                        with trio.CancelScope(shield=True), trio.move_on_after(2):
                            with contextlib.suppress(ValkeyUnavailable):
                                await registry.withdraw()
                            await trio.to_thread.run_sync(self._save_state, path)
                        nursery.cancel_scope.cancel()

    async def _adopt_secret(self) -> None:
        """Take the cluster's signing secret and admin key from Valkey (a node shares them)."""
        client = self.valkey.client
        with trio.move_on_after(STARTUP_SECONDS):
            waiting = ""
            while True:
                try:
                    stored = await self.valkey.call(client.hgetall(Keys.SECRETS))
                except ValkeyUnavailable as exc:
                    stored, reason = {}, f"waiting for Valkey ({exc})"
                else:
                    reason = "waiting for a node to share the cluster's secret"
                if stored.get(b"secret"):
                    shared = {k.decode(): v.decode() for k, v in stored.items()}
                    update: dict[str, Any] = {
                        k: shared[k] for k in ("secret", "admin_key") if k in shared
                    }
                    self.settings = self.settings.model_copy(update=update)
                    self.sessions = RelaySessions(self.settings.secret)
                    return
                if reason != waiting:
                    log.warning("relay: %s", reason)
                    waiting = reason
                await trio.sleep(1.0)
        raise ClusterStartupError(
            f"no cluster secret in Valkey after {STARTUP_SECONDS:g} s; start a node first"
        )

    async def _watch_nodes(self, registry: NodeRegistry) -> None:
        """Keep the cluster's live nodes; tell spectators when they change (`nodes`)."""
        while True:
            try:
                self._nodes = await registry.live(NodeKind.NODE)
            except ValkeyUnavailable:
                pass  # keep the last list
            else:
                urls = [node.ws for node in self._nodes]
                if urls != self.node_urls:
                    self.node_urls = urls
                    message = encode({"t": "nodes", "nodes": urls})
                    for room in self.live_rooms():
                        for spectator in room.spectators.values():
                            spectator.sock.send(message)
            await trio.sleep(HEARTBEAT_SECONDS)

    def _load_state(self, path: Path) -> None:
        try:
            self.state.load(path.read_text())
        except FileNotFoundError:
            return
        except (OSError, ValueError, TypeError) as exc:
            log.warning("relay: ignoring %s (%s); rooms start from their newest", path, exc)

    def _positions(self) -> dict[str, str]:
        return {r.id: r.position for r in self.live_rooms() if r.position is not None}

    async def _keep_state(self, path: Path) -> None:
        """Write the rooms' positions (and spectators' rates) every second they change."""
        saved: str | None = ""
        started = trio.current_time()
        while True:
            await trio.sleep(SAVE_SECONDS)
            if trio.current_time() - started > RESTORE_SECONDS:
                self.state.restored.clear()  # nobody came back for those rooms
            text = self.state.to_json(self._positions())
            if text == saved:
                continue
            try:
                await trio.to_thread.run_sync(self._write, path, text)
            except OSError as exc:
                if saved is not None:
                    log.warning("relay: cannot keep its state in %s (%s)", path, exc)
                saved = None
            else:
                saved = text

    def _save_state(self, path: Path) -> None:
        with contextlib.suppress(OSError):
            self._write(path, self.state.to_json(self._positions()))

    @staticmethod
    def _write(path: Path, text: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(text)
        os.replace(tmp, path)
