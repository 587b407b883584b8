"""Supervises the media worker processes and relays signalling to them.

The room server (trio) owns rooms; media lives in separate asyncio + aiortc
processes (``media.worker``), one per core at scale. This module starts them,
restarts a dead one with bounded exponential backoff, assigns each room to a
worker, and speaks the length-prefixed msgpack control protocol
(``media.control``) over a unix socket in the data directory.

A worker dying never takes a room down: requests in flight get a
``worker_unavailable`` error, and once the replacement is up every room it held
is told ``{"op": "renegotiate", "reason": "worker_restarted"}`` so clients
publish and subscribe again. Workers exit when their control socket closes, so
none outlives the supervisor.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import socket
import sys
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import msgpack
import trio

from media.control import FrameDecoder, FrameError, encode_frame
from media.limits import PeerLimits

logger = logging.getLogger(__name__)

OnEvent = Callable[[str, str | None, dict[str, Any]], Awaitable[None]]

#: Largest client rtc message accepted (encoded size), checked before the worker.
MAX_MESSAGE_BYTES = 64 * 1024
_PACKAGE_ROOT = str(Path(__file__).resolve().parents[1])


@dataclass
class MediaConfig:
    data_dir: Path
    workers: int = 1
    #: STUN/TURN servers for real deployments: ``[{"urls": ..., "username": ...,
    #: "credential": ...}]``. None by default (loopback and LAN need none).
    ice_servers: list[dict[str, Any]] = field(default_factory=list)
    #: Gather ICE host candidates only on these addresses (e.g. ["127.0.0.1"]).
    ice_host_addresses: list[str] | None = None
    request_timeout_s: float = 15.0
    start_timeout_s: float = 15.0
    remux_timeout_s: float = 120.0
    backoff_initial_s: float = 0.2
    backoff_max_s: float = 5.0
    #: ICE consent freshness (RFC 7675): a check every interval; a pc whose peer
    #: answered none for the timeout is given up (and its member told, ``closed``).
    consent_interval_s: float = 5.0
    consent_timeout_s: float = 30.0
    #: How many pcs a member, a room and a worker may hold; offer and connect timeouts.
    peer_limits: PeerLimits = field(default_factory=PeerLimits)
    #: A worker that dies this often within the window is given up on.
    max_restarts: int = 10
    restart_window_s: float = 60.0
    event_queue: int = 1024


def _error(code: str, message: str) -> dict[str, Any]:
    return {"op": "error", "code": code, "message": message}


class WorkerUnavailable(Exception):
    """The worker is down, restarting, or did not answer in time."""


class _WorkerSlot:
    """One worker process and its restarts."""

    def __init__(self, index: int, supervisor: MediaSupervisor) -> None:
        self.index = index
        self.pid: int | None = None
        self.dead = False
        self.restarts = 0
        self._sup = supervisor
        self._config = supervisor.config
        self._path = self._config.data_dir / f"media-{index}.sock"
        self._stream: trio.SocketStream | None = None
        self._ready = trio.Event()
        self._send_lock = trio.Lock()
        self._ids = itertools.count(1)
        self._pending: dict[int, tuple[trio.Event, list[dict[str, Any]]]] = {}

    def _command(self) -> list[str]:
        command = [
            sys.executable,
            "-m",
            "media.worker",
            "--control",
            str(self._path),
            "--ice-servers",
            json.dumps(self._config.ice_servers),
            "--parent-pid",
            str(os.getpid()),
            "--consent-interval",
            str(self._config.consent_interval_s),
            "--consent-timeout",
            str(self._config.consent_timeout_s),
            "--peer-limits",
            self._config.peer_limits.model_dump_json(),
        ]
        for address in self._config.ice_host_addresses or []:
            command += ["--ice-host", address]
        return command

    async def run(self, first_ready: trio.Event) -> None:
        deaths: deque[float] = deque()
        backoff = self._config.backoff_initial_s
        restarted = False
        while True:
            started = trio.current_time()
            try:
                await self._run_once(restarted, first_ready)
            except* (OSError, trio.BrokenResourceError, trio.TooSlowError, FrameError) as group:
                logger.warning("media worker %d failed: %r", self.index, group.exceptions)
            self._fail_pending()
            now = trio.current_time()
            deaths.append(now)
            while deaths and now - deaths[0] > self._config.restart_window_s:
                deaths.popleft()
            if len(deaths) > self._config.max_restarts:
                logger.error("media worker %d keeps dying; giving up", self.index)
                self.dead = True
                first_ready.set()
                for room_id in self._sup.rooms_of(self.index):
                    await self._sup.deliver(
                        room_id, None, _error("worker_unavailable", "media is unavailable")
                    )
                return
            if now - started > 10 * self._config.backoff_max_s:
                backoff = self._config.backoff_initial_s
            await trio.sleep(backoff)
            backoff = min(backoff * 2, self._config.backoff_max_s)
            restarted = True
            self.restarts += 1

    async def _run_once(self, restarted: bool, first_ready: trio.Event) -> None:
        with trio.socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
            self._path.unlink(missing_ok=True)
            await listener.bind(str(self._path))
            listener.listen(1)
            env = dict(os.environ)
            env["PYTHONPATH"] = os.pathsep.join(
                p for p in (_PACKAGE_ROOT, env.get("PYTHONPATH")) if p
            )
            async with trio.open_nursery() as nursery:
                process: trio.Process = await nursery.start(
                    partial(trio.run_process, self._command(), check=False, env=env)
                )
                self.pid = process.pid
                try:
                    with trio.fail_after(self._config.start_timeout_s):
                        conn, _ = await listener.accept()
                    self._stream = trio.SocketStream(conn)
                    await self._serve(restarted, first_ready, nursery)
                finally:
                    stream, self._stream = self._stream, None
                    # Wake requests waiting for this worker; they fail fast.
                    waiting, self._ready = self._ready, trio.Event()
                    waiting.set()
                    if stream is not None:
                        with trio.CancelScope(shield=True):
                            await stream.aclose()
                    self.pid = None
                    nursery.cancel_scope.cancel()

    async def _serve(self, restarted: bool, first_ready: trio.Event, nursery: trio.Nursery) -> None:
        assert self._stream is not None
        decoder = FrameDecoder()
        while True:
            data = await self._stream.receive_some(65536)
            if not data:
                raise trio.BrokenResourceError("media worker closed its control socket")
            decoder.receive_data(data)
            for message in decoder.messages():
                request_id = message.get("id")
                if request_id in self._pending:
                    event, box = self._pending.pop(request_id)
                    box.append(message)
                    event.set()
                elif message.get("ev") == "event":
                    await self._sup.deliver(message["room"], message.get("member"), message["msg"])
                elif message.get("ev") == "hello":
                    self._ready.set()
                    first_ready.set()
                    if restarted:
                        nursery.start_soon(self._sup.worker_restarted, self.index)

    def _fail_pending(self) -> None:
        for event, _ in self._pending.values():
            event.set()
        self._pending.clear()

    async def request(self, message: dict[str, Any]) -> dict[str, Any]:
        if self.dead:
            raise WorkerUnavailable("media worker gave up after repeated failures")
        with trio.move_on_after(self._config.request_timeout_s) as scope:
            await self._ready.wait()
            stream = self._stream
            if stream is None:
                raise WorkerUnavailable("media worker is restarting")
            request_id = next(self._ids)
            event, box = trio.Event(), list[dict[str, Any]]()
            self._pending[request_id] = (event, box)
            try:
                async with self._send_lock:
                    await stream.send_all(encode_frame({"id": request_id, **message}))
                await event.wait()
            except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
                raise WorkerUnavailable("media worker connection lost") from exc
            finally:
                self._pending.pop(request_id, None)
        if scope.cancelled_caught:
            raise WorkerUnavailable("media worker did not answer in time")
        if not box:
            raise WorkerUnavailable("media worker died during the request")
        return dict(box[0])


class MediaSupervisor:
    """The room server's handle on media.

    Run :meth:`run` in a nursery (``await nursery.start(supervisor.run)``), then
    call :meth:`signal` with each client ``rtc`` message. Worker events reach
    ``on_event(room_id, member_id or None for the whole room, message)``.
    """

    def __init__(self, config: MediaConfig, on_event: OnEvent) -> None:
        self.config = config
        self._on_event = on_event
        self._slots = [_WorkerSlot(i, self) for i in range(max(1, config.workers))]
        self._assigned: dict[str, int] = {}
        self._recording: dict[str, tuple[Path, float]] = {}
        send, receive = trio.open_memory_channel[tuple[str, str | None, dict[str, Any]]](
            config.event_queue
        )
        self._events_in, self._events_out = send, receive

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        self.config.data_dir.mkdir(parents=True, exist_ok=True)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._deliver_events)
            ready = []
            for slot in self._slots:
                event = trio.Event()
                ready.append(event)
                nursery.start_soon(slot.run, event)
            for event in ready:
                await event.wait()
            task_status.started()

    # -- the room server's API ----------------------------------------------

    async def signal(
        self, room_id: str, member_id: str, role: str, message: dict[str, Any]
    ) -> list[dict[str, Any]]:
        """Handle one client rtc message; return the messages to send back to that client."""
        try:
            size = len(msgpack.packb(message, use_bin_type=True))
        except (TypeError, ValueError, OverflowError):
            return [_error("bad_message", "rtc message is not plain data")]
        if size > MAX_MESSAGE_BYTES:
            return [_error("too_large", f"rtc message over {MAX_MESSAGE_BYTES} bytes")]
        request = {"cmd": "signal", "room": room_id, "member": member_id, "role": role}
        try:
            reply = await self._slot_for(room_id).request({**request, "msg": message})
        except WorkerUnavailable as exc:
            return [_error("worker_unavailable", str(exc))]
        if not reply.get("ok"):
            return [reply["error"]]
        return list(reply["replies"])

    async def leave(self, room_id: str, member_id: str) -> None:
        """A member left the room: close their peer connections."""
        await self._quiet(room_id, {"cmd": "leave", "room": room_id, "member": member_id})

    async def close_room(self, room_id: str) -> None:
        await self._quiet(room_id, {"cmd": "close_room", "room": room_id})
        self._assigned.pop(room_id, None)
        self._recording.pop(room_id, None)

    async def start_recording(self, room_id: str, directory: Path, session_start: float) -> None:
        """Record every track of the room into ``directory``; times are seconds since
        ``session_start`` (unix time of the session clock's zero)."""
        self._recording[room_id] = (directory, session_start)
        await self._quiet(room_id, self._record_start(room_id))

    async def stop_recording(self, room_id: str) -> list[dict[str, Any]]:
        """Stop, remux each track (no re-encoding) and return the manifest entries:
        ``{"track", "member", "kind", "layout", "file", "frames", "offset_ms", "duration_ms"}``.
        """
        target = self._recording.pop(room_id, None)
        await self._quiet(room_id, {"cmd": "record_stop", "room": room_id})
        if target is None:
            return []
        directory = target[0]
        # Every segment, including those of a worker that died mid-recording.
        files = sorted(str(p) for p in directory.glob("*.frames"))
        if not files:
            return []
        with trio.fail_after(self.config.remux_timeout_s):
            done = await trio.run_process(
                [sys.executable, "-m", "media.remux", *files],
                capture_stdout=True,
                cwd=_PACKAGE_ROOT,
            )
        entries: list[dict[str, Any]] = json.loads(done.stdout)
        (directory / "tracks.json").write_text(json.dumps(entries, indent=2))
        return entries

    async def stats(self) -> list[dict[str, Any]]:
        out = []
        for slot in self._slots:
            try:
                out.append(await slot.request({"cmd": "stats"}))
            except WorkerUnavailable as exc:
                out.append({"ok": False, "error": str(exc)})
        return out

    def worker_pids(self) -> list[int | None]:
        return [slot.pid for slot in self._slots]

    # -- internals ------------------------------------------------------------

    def rooms_of(self, index: int) -> list[str]:
        return [room for room, i in self._assigned.items() if i == index]

    def _slot_for(self, room_id: str) -> _WorkerSlot:
        index = self._assigned.get(room_id)
        if index is None:
            alive = [s for s in self._slots if not s.dead] or self._slots
            load = {s.index: 0 for s in alive}
            for i in self._assigned.values():
                if i in load:
                    load[i] += 1
            index = min(load, key=lambda i: (load[i], i))
            self._assigned[room_id] = index
        return self._slots[index]

    def _record_start(self, room_id: str) -> dict[str, Any]:
        directory, session_start = self._recording[room_id]
        return {
            "cmd": "record_start",
            "room": room_id,
            "dir": str(directory),
            "session_start": session_start,
        }

    async def _quiet(self, room_id: str, request: dict[str, Any]) -> None:
        try:
            reply = await self._slot_for(room_id).request(request)
        except WorkerUnavailable as exc:
            logger.warning("media %s for room %s: %s", request["cmd"], room_id, exc)
            return
        if not reply.get("ok"):
            logger.warning("media %s for room %s: %s", request["cmd"], room_id, reply)

    async def worker_restarted(self, index: int) -> None:
        """Called by a slot when its replacement worker is up."""
        for room_id in self.rooms_of(index):
            if room_id in self._recording:
                slot = self._slots[index]
                with trio.move_on_after(self.config.request_timeout_s):
                    await slot.request(self._record_start(room_id))
            await self.deliver(room_id, None, {"op": "renegotiate", "reason": "worker_restarted"})

    async def deliver(self, room_id: str, member_id: str | None, message: dict[str, Any]) -> None:
        await self._events_in.send((room_id, member_id, message))

    async def _deliver_events(self) -> None:
        async for room_id, member_id, message in self._events_out:
            try:
                await self._on_event(room_id, member_id, message)
            except Exception:
                logger.exception("media on_event failed for room %s", room_id)
