"""A trio client for a Grand Rounds room, built on the netcode mirror.

    async with connect(ws_url, token) as client:
        await client.wait_for(lambda m: m.find("monitor"))
        reply = await client.intent("chat", text="BP is dropping")

The client keeps a `Mirror` of its view, acks what it applied, repairs itself when a
checksum disagrees, and can resume its session after a dropped connection. Bots, the
load generator and the tests use it; so can anyone scripting a room.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import trio
from trio_websocket import ConnectionClosed, WebSocketConnection, connect_websocket_url

from netcode.codec import PROTOCOL_VERSION, decode_server_message, encode, encode_single
from netcode.mirror import Mirror
from netcode.sync import Follower, FollowerStep, ack_interval

CONNECT_TIMEOUT_SECONDS: Final = 20.0
MAX_HOPS: Final = 12
"""Connection attempts in one `open`: redirects, retries while a room moves, other nodes."""
RETRY_SECONDS: Final = 0.5
AUTO_RESUME_ATTEMPTS: Final = 8
REPLY_TIMEOUT_SECONDS: Final = 10.0
SEND_TIMEOUT_SECONDS: Final = 10.0
MAX_PENDING_REPLIES: Final = 256
MAX_ERRORS_KEPT: Final = 100


class ServerRefused(Exception):
    """The server said no (`bye` or `error` during hello): `code` and `message` say why."""

    def __init__(self, code: str, message: str, details: Mapping[str, Any] | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.details = dict(details or {})
        """The whole refusal (a `moved` carries `ws`, where to connect instead)."""


@dataclass(frozen=True, slots=True)
class Reply:
    id: int
    ok: bool
    code: str = ""
    message: str = ""


FrameHook = Callable[[Mapping[str, Any], float], None]


class RoomClient:
    """One connection (and its resumable session) to one room."""

    def __init__(
        self,
        url: str,
        token: str,
        nursery: trio.Nursery,
        *,
        light: bool = False,
        name: str | None = None,
        on_frame: FrameHook | None = None,
        auto_resume: bool = False,
    ) -> None:
        self.url = url
        self.token = token
        self.light = light
        self.name = name
        self.on_frame = on_frame
        self.auto_resume = auto_resume
        """Resume by itself when the connection is lost (or the room moved), as a page does."""
        self.resumes = 0
        self.follower = Follower()
        self.welcome: dict[str, Any] = {}
        self.errors: list[tuple[str, str]] = []
        self.bye: tuple[str, str] | None = None
        self.playback: dict[str, Any] = {}
        """The last `playback` message of a review stream (where its play head is)."""
        self.frames = 0
        self.bytes_received = 0
        self._nursery = nursery
        self._ws: WebSocketConnection | None = None
        self._next_id = 1
        self._replies: dict[int, tuple[trio.Event, list[Reply]]] = {}
        self._changed = trio.Event()
        self._closed = trio.Event()

    @property
    def mirror(self) -> Mirror:
        return self.follower.mirror

    @property
    def resyncs(self) -> int:
        return self.follower.resyncs

    @property
    def snapshots_received(self) -> int:
        return self.follower.snapshots

    # -- connection ---------------------------------------------------------------
    @property
    def connected(self) -> bool:
        return self._ws is not None and not self._closed.is_set()

    @property
    def member(self) -> int:
        return int(self.welcome["member"])

    async def open(self, *, resume: bool = False) -> None:
        """Connect and say hello; with `resume`, continue the previous session.

        In a cluster the client goes where it is told: a `bye` `moved` names the node
        (or relay) serving the room, and if its node is gone it tries the cluster's
        other nodes (`welcome.nodes`), as docs/protocol.md describes.
        """
        hello: dict[str, Any] = {"t": "hello", "v": PROTOCOL_VERSION, "token": self.token}
        point = self.follower.resume_point()
        if resume and self.welcome and point is not None:
            hello["resume"] = {"session": self.welcome["session"], **point}
        candidates = [self.url, *(u for u in self.welcome.get("nodes", ()) if u != self.url)]
        last: Exception | None = None
        with trio.fail_after(CONNECT_TIMEOUT_SECONDS):
            for _ in range(MAX_HOPS):
                url = candidates[0]
                try:
                    ws, message = await self._hello(url, hello)
                except OSError as exc:  # that node is gone: try the next one
                    last = exc
                    candidates = candidates[1:] + candidates[:1]
                    await trio.sleep(RETRY_SECONDS)
                    continue
                except ServerRefused as refused:
                    if refused.code == "moved" and refused.details.get("ws"):
                        candidates.insert(0, str(refused.details["ws"]))
                        continue
                    if refused.code in ("room_unavailable", "directory_unavailable"):
                        last = refused
                        await trio.sleep(RETRY_SECONDS)
                        continue
                    raise
                self.url = url
                break
            else:
                raise last or ServerRefused("too_many_hops", "the cluster kept moving the room")
        self.welcome = message
        self._ws = ws
        self._closed = trio.Event()
        self.follower.welcomed(
            resumed=bool(message.get("resumed", False)),
            ack_every=ack_interval(str(message["role"]), int(message["tick_hz"])),
        )
        self._nursery.start_soon(self._read, ws)

    async def _hello(
        self, url: str, hello: dict[str, Any]
    ) -> tuple[WebSocketConnection, dict[str, Any]]:
        ws = await connect_websocket_url(
            self._nursery, url, message_queue_size=64, max_message_size=2**24
        )
        await ws.send_message(encode(hello))
        while True:
            message = decode_server_message(await ws.get_message())  # type: ignore[arg-type]
            if message.get("t") == "welcome":
                return ws, message
            if message.get("t") in ("bye", "error"):
                with contextlib.suppress(Exception):
                    await ws.aclose()
                raise ServerRefused(message.get("code", "?"), message.get("msg", ""), message)

    async def close(self) -> None:
        ws, self._ws = self._ws, None
        if ws is not None:
            with trio.move_on_after(2), contextlib.suppress(Exception):
                await ws.aclose()
        self._closed.set()

    async def drop(self) -> None:
        """Lose the connection abruptly (no close handshake), as a network failure would."""
        ws, self._ws = self._ws, None
        if ws is not None:
            await ws._stream.aclose()  # the transport, under the WebSocket: a real cut
        self._closed.set()
        self._wake()

    async def reconnect(self) -> None:
        """Drop the connection if it is still up, then resume the session."""
        if self._ws is not None:
            await self.drop()
        await self.open(resume=True)

    # -- sending ------------------------------------------------------------------
    async def send(self, message: Mapping[str, Any]) -> None:
        if self._ws is None:
            raise ConnectionError("not connected")
        await _send(self._ws, encode(dict(message)))

    async def intent(self, action: str, **args: Any) -> Reply:
        """Send an intent and wait for the server's reply (ok, or a refusal with a code)."""
        if len(self._replies) >= MAX_PENDING_REPLIES:
            raise RuntimeError("too many intents awaiting replies")
        reply_id = self._next_id
        self._next_id += 1
        event, box = trio.Event(), list[Reply]()
        self._replies[reply_id] = (event, box)
        try:
            await self.send({"t": "intent", "id": reply_id, "do": action, "args": args})
            with trio.fail_after(REPLY_TIMEOUT_SECONDS):
                await event.wait()
        finally:
            self._replies.pop(reply_id, None)
        if not box:
            raise ConnectionError("the connection closed before the reply came")
        return box[0]

    async def send_pose(
        self,
        head: Sequence[float] | None = None,
        left: Sequence[float] | None = None,
        right: Sequence[float] | None = None,
        objects: Mapping[int, Sequence[float]] | None = None,
    ) -> None:
        """Send tracked poses: each (x, y, z, qx, qy, qz, qw), metres, as float32."""
        message: dict[str, Any] = {"t": "pose"}
        for part, pose in (("head", head), ("left", left), ("right", right)):
            if pose is not None:
                message[part] = list(pose)
        if objects:
            message["objects"] = {int(k): list(v) for k, v in objects.items()}
        if self._ws is None:
            raise ConnectionError("not connected")
        await _send(self._ws, encode_single(message))

    # -- waiting ------------------------------------------------------------------
    async def wait_for(self, predicate: Callable[[Mirror], Any], timeout: float = 10.0) -> Any:
        """Wait until `predicate(mirror)` is truthy after a frame; returns its value."""
        with trio.fail_after(timeout):
            while True:
                if self.mirror.tick is not None and not self.follower.awaiting_snapshot:
                    value = predicate(self.mirror)
                    if value:
                        return value
                if self._closed.is_set():
                    raise ConnectionError(f"connection closed: {self.bye}")
                await self._changed.wait()

    async def next_frame(self, timeout: float = 5.0) -> None:
        with trio.fail_after(timeout):
            await self._changed.wait()

    async def wait_closed(self, timeout: float = 10.0) -> None:
        with trio.fail_after(timeout):
            await self._closed.wait()

    def _wake(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    # -- receiving ------------------------------------------------------------------
    async def _read(self, ws: WebSocketConnection) -> None:
        try:
            while True:
                data = await ws.get_message()
                if self._ws is not ws:
                    # Dropped or replaced while this message waited in its queue: a stale
                    # frame applied after a resume would put the mirror out of step.
                    break
                assert isinstance(data, bytes | bytearray)
                self.bytes_received += len(data)
                if (
                    self.light
                    and data[1:4] == b"\xa1t\xa1"
                    and data[4:5] == b"s"
                    and self.frames % 30
                ):
                    self.frames += 1  # a state frame, counted but not decoded (load generator)
                    continue
                await self._handle(ws, decode_server_message(bytes(data)))
        except ConnectionClosed:
            pass
        finally:
            lost = self._ws is ws
            if lost:
                self._closed.set()
                self._ws = None
            with trio.CancelScope(shield=True), trio.move_on_after(2):
                await ws.aclose()  # the server closed first: release our side too
            for event, _ in self._replies.values():
                event.set()
            self._wake()
            if lost and self.auto_resume and (self.bye is None or self.bye[0] == "moved"):
                self._nursery.start_soon(self._resume_by_itself)

    async def _resume_by_itself(self) -> None:
        """Reconnect and resume after a lost connection, following the cluster."""
        for attempt in range(AUTO_RESUME_ATTEMPTS):
            await trio.sleep(min(2.0, 0.1 * 2**attempt))
            self.bye = None
            try:
                await self.open(resume=True)
            except (OSError, ServerRefused, trio.TooSlowError, ConnectionClosed):
                continue
            self.resumes += 1
            return

    async def _handle(self, ws: WebSocketConnection, message: dict[str, Any]) -> None:
        kind = message.get("t")
        if kind == "s":
            self.frames += 1
            step = self.follower.seen(message["k"]) if self.light else self._apply(message)
            if step.resync:
                await _send(ws, encode({"t": "resync", "reason": "desync"}))
            if step.ack is not None:
                await _send(ws, encode({"t": "ack", "tick": step.ack}))
        elif kind == "reply":
            pending = self._replies.get(message["id"])
            if pending is not None:
                pending[1].append(
                    Reply(
                        message["id"],
                        bool(message["ok"]),
                        message.get("code", ""),
                        message.get("msg", ""),
                    )
                )
                pending[0].set()
        elif kind == "error":
            if len(self.errors) < MAX_ERRORS_KEPT:
                self.errors.append((message.get("code", "?"), message.get("msg", "")))
        elif kind == "nodes":
            self.welcome["nodes"] = list(message.get("nodes", ()))
        elif kind == "bye":
            self.bye = (message.get("code", "?"), message.get("msg", ""))
            if self.bye[0] == "moved" and isinstance(message.get("ws"), str):
                self.url = message["ws"]  # where the room went: resume there
        elif kind == "playback":
            self.playback = message
        self._wake()

    def _apply(self, frame: dict[str, Any]) -> FollowerStep:
        step = self.follower.receive(frame)
        if step.applied and self.on_frame is not None:
            self.on_frame(frame, time.perf_counter())
        return step


async def _send(ws: WebSocketConnection, data: bytes) -> None:
    """Send one message; a server that stops reading for long is a failure, not a hang."""
    with trio.fail_after(SEND_TIMEOUT_SECONDS):
        await ws.send_message(data)


@contextlib.asynccontextmanager
async def connect(url: str, token: str, **options: Any) -> AsyncIterator[RoomClient]:
    """Connect to a room for the duration of the block; everything is closed after it."""
    refused: Exception | None = None
    async with trio.open_nursery() as nursery:
        client = RoomClient(url, token, nursery, **options)
        try:
            await client.open()
        except (ServerRefused, OSError, trio.TooSlowError) as exc:
            refused = exc  # raised below, outside the nursery, as itself
            nursery.cancel_scope.cancel()
        else:
            try:
                yield client
            finally:
                with trio.CancelScope(shield=True):
                    await client.close()
                nursery.cancel_scope.cancel()
    if refused is not None:
        raise refused


def still_pose(x: float, y: float, z: float) -> tuple[float, ...]:
    return (x, y, z, 0.0, 0.0, 0.0, 1.0)


def yaw_pose(x: float, y: float, z: float, yaw: float) -> tuple[float, ...]:
    """A pose turned `yaw` radians about the vertical axis."""
    return (x, y, z, 0.0, math.sin(yaw / 2), 0.0, math.cos(yaw / 2))
