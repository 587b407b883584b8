"""The media worker process: asyncio + aiortc, controlled over a unix socket.

Started by ``server.media_supervisor`` as ``python -m media.worker --control
PATH``; it connects to the supervisor's socket and serves requests until that
socket closes (or its parent process changes), then closes every peer
connection and exits, so it can never outlive the server.

Requests are maps ``{"id": n, "cmd": ..., ...}`` answered by ``{"id": n,
"ok": true, ...}`` or ``{"id": n, "ok": false, "error": {...}}``; unsolicited
events are ``{"ev": "event", "room": ..., "member": ... | None, "msg": {...}}``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import msgpack

from media import errors
from media.aiortc_internals import (
    CodecGuard,
    install_consent_freshness,
    missing_internals,
    sockets_per_pc,
    use_host_addresses,
)
from media.control import FrameDecoder, FrameError, encode_frame
from media.errors import SignalError, internal_error
from media.limits import PeerLedger, PeerLimits
from media.room import Room

logger = logging.getLogger("media.worker")

#: Largest rtc message (encoded) accepted from a client.
MAX_MESSAGE_BYTES = 64 * 1024
#: Requests handled at once; beyond this the worker stops reading its socket.
MAX_CONCURRENT_REQUESTS = 64
#: Events queued for the supervisor before new ones are dropped.
MAX_PENDING_EVENTS = 1024
PARENT_CHECK_S = 1.0
#: How often the forwarding watchdog samples every room's counters.
WATCH_INTERVAL_S = 1.0


class Worker:
    def __init__(
        self, ice_servers: list[dict[str, Any]], guard: CodecGuard, limits: PeerLimits
    ) -> None:
        self.rooms: dict[str, Room] = {}
        self.guard = guard
        self.ledger = PeerLedger(limits)
        self._ice_servers = ice_servers
        self._events: asyncio.Queue[dict[str, Any]] = asyncio.Queue(MAX_PENDING_EVENTS)
        self.dropped_events = 0

    def _room(self, room_id: Any, create: bool = True) -> Room | None:
        if not isinstance(room_id, str):
            raise SignalError(errors.BAD_MESSAGE, "'room' must be a string")
        room = self.rooms.get(room_id)
        if room is None and create:
            room = self.rooms[room_id] = Room(
                room_id,
                self._ice_servers,
                lambda member, msg: self.emit(room_id, member, msg),
                self.ledger,
            )
        return room

    def emit(self, room_id: str, member_id: str | None, message: dict[str, Any]) -> None:
        try:
            self._events.put_nowait(
                {"ev": "event", "room": room_id, "member": member_id, "msg": message}
            )
        except asyncio.QueueFull:
            self.dropped_events += 1

    async def next_event(self) -> dict[str, Any]:
        return await self._events.get()

    async def handle(self, request: dict[str, Any]) -> dict[str, Any]:
        cmd = request.get("cmd")
        if cmd == "signal":
            return {"replies": await self._signal(request)}
        if cmd == "leave":
            room = self._room(request.get("room"), create=False)
            if room is not None:
                await room.leave(str(request.get("member")))
            return {}
        if cmd == "close_room":
            room = self._room(request.get("room"), create=False)
            if room is not None:
                del self.rooms[room.id]
                await room.close()
            return {}
        if cmd == "record_start":
            room = self._room(request.get("room"))
            assert room is not None
            room.start_recording(Path(request["dir"]), float(request["session_start"]))
            return {}
        if cmd == "record_stop":
            room = self._room(request.get("room"), create=False)
            return {"files": room.stop_recording() if room is not None else []}
        if cmd == "stats":
            return self.stats()
        if cmd == "ping":
            return {"pid": os.getpid()}
        raise SignalError(errors.BAD_MESSAGE, f"unknown command {cmd!r}")

    async def _signal(self, request: dict[str, Any]) -> list[dict[str, Any]]:
        message = request.get("msg")
        try:
            if not isinstance(message, dict):
                raise SignalError(errors.BAD_MESSAGE, "rtc message must be a map")
            if len(msgpack.packb(message, use_bin_type=True)) > MAX_MESSAGE_BYTES:
                raise SignalError(errors.TOO_LARGE, f"rtc message over {MAX_MESSAGE_BYTES} bytes")
            room = self._room(request.get("room"))
            assert room is not None
            return await room.signal(str(request.get("member")), str(request.get("role")), message)
        except SignalError as exc:
            if exc.pc is None and isinstance(message, dict) and isinstance(message.get("pc"), str):
                exc.pc = message["pc"]
            return [exc.to_message()]

    def stats(self) -> dict[str, Any]:
        sources = [s for room in self.rooms.values() for s in room.tracks.values()]
        outputs = [o for s in sources for o in s.outputs.values()]
        return {
            "pid": os.getpid(),
            "rooms": len(self.rooms),
            "tracks": len(sources),
            "outputs": len(outputs),
            "received": sum(s.packets for s in sources),
            "forwarded": sum(o.forwarded for o in outputs),
            "nacked": sum(o.tap.nacked for o in outputs),
            "retransmitted": sum(o.tap.retransmitted for o in outputs),
            "encoders": self.guard.encoders,
            "decoders": self.guard.decoders,
            "dropped_events": self.dropped_events,
            "pcs": {d: self.ledger.held(d) for d in ("publish", "subscribe")},
            "refused_pcs": dict(self.ledger.refused),
            "limits": self.ledger.limits.model_dump(),
            "faults": dict(sum((room.faults for room in self.rooms.values()), Counter[str]())),
        }

    async def watch(self) -> None:
        """The forwarding watchdog: every room, once a second (see ``Room.watch``)."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(WATCH_INTERVAL_S)
            for room in list(self.rooms.values()):
                try:
                    await room.watch(loop.time())
                except Exception:  # one room's fault never stops the others' watch
                    logger.exception("watchdog of room %s failed", room.id)

    async def close(self) -> None:
        for room in list(self.rooms.values()):
            with contextlib.suppress(Exception):
                await room.close()
        self.rooms.clear()


def _describe(request: dict[str, Any]) -> str:
    """Where a request failed, for the log: the command, and an rtc message's op."""
    cmd, room = request.get("cmd"), request.get("room")
    message = request.get("msg")
    op = message.get("op") if isinstance(message, dict) else None
    what = f"rtc {op!r} of member {request.get('member')!r}" if cmd == "signal" else repr(cmd)
    return f"media worker request {what} in room {room!r}"


async def serve(control: str, worker: Worker, parent_pid: int) -> None:
    reader, writer = await asyncio.open_unix_connection(control)
    write_lock = asyncio.Lock()
    tasks: set[asyncio.Task[None]] = set()

    async def send(message: dict[str, Any]) -> None:
        async with write_lock:
            writer.write(encode_frame(message))
            await writer.drain()

    async def answer(request: dict[str, Any]) -> None:
        try:
            reply = {"id": request.get("id"), "ok": True, **await worker.handle(request)}
        except SignalError as exc:
            reply = {"id": request.get("id"), "ok": False, "error": exc.to_message()}
        except Exception as exc:  # the request's fault boundary: a bug, reported by its id
            error = internal_error(_describe(request), exc)
            if isinstance(request.get("msg"), dict) and isinstance(request["msg"].get("pc"), str):
                error.pc = request["msg"]["pc"]
            reply = {"id": request.get("id"), "ok": False, "error": error.to_message()}
        with contextlib.suppress(ConnectionError):
            await send(reply)

    async def pump_events() -> None:
        while True:
            await send(await worker.next_event())

    async def watch_parent() -> None:
        while os.getppid() == parent_pid:
            await asyncio.sleep(PARENT_CHECK_S)

    decoder = FrameDecoder()
    pump = asyncio.ensure_future(pump_events())
    orphan = asyncio.ensure_future(watch_parent())
    watchdog = asyncio.ensure_future(worker.watch())
    try:
        await send({"ev": "hello", "pid": os.getpid()})
        while not orphan.done():
            if len(tasks) >= MAX_CONCURRENT_REQUESTS:
                await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
                continue
            read = asyncio.ensure_future(reader.read(65536))
            await asyncio.wait({read, orphan, pump}, return_when=asyncio.FIRST_COMPLETED)
            if not read.done():
                read.cancel()
                break
            data = read.result()
            if not data:
                break
            decoder.receive_data(data)
            for request in decoder.messages():
                task = asyncio.ensure_future(answer(request))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
    except (FrameError, ConnectionError) as exc:
        logger.warning("control connection ends: %s", exc)
    finally:
        pump.cancel()
        orphan.cancel()
        watchdog.cancel()
        for task in tasks:
            task.cancel()
        await worker.close()
        writer.close()


async def amain(args: argparse.Namespace) -> int:
    missing = await missing_internals()
    if missing:
        print("media worker: aiortc internals changed: " + ", ".join(missing), file=sys.stderr)
        return 3
    use_host_addresses(args.ice_host or None)
    install_consent_freshness(args.consent_interval, args.consent_timeout)
    guard = CodecGuard()
    guard.install()
    ice_servers = json.loads(args.ice_servers)
    limits = PeerLimits.model_validate_json(args.peer_limits).fitted(sockets_per_pc(ice_servers))
    await serve(args.control, Worker(ice_servers, guard, limits), args.parent_pid)
    return 0


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--control", required=True, help="unix socket of the supervisor")
    parser.add_argument(
        "--ice-servers", default="[]", help='JSON list of {"urls", "username", "credential"}'
    )
    parser.add_argument(
        "--ice-host",
        action="append",
        default=[],
        help="gather ICE host candidates only on this address (repeatable), e.g. 127.0.0.1",
    )
    parser.add_argument(
        "--consent-interval", type=float, default=5.0, help="seconds between ICE consent checks"
    )
    parser.add_argument(
        "--consent-timeout",
        type=float,
        default=30.0,
        help="seconds without a consent reply before a pc is given up (RFC 7675: 30)",
    )
    parser.add_argument(
        "--peer-limits",
        default="{}",
        help="JSON of media.limits.PeerLimits: pcs per member, room and worker, timeouts",
    )
    parser.add_argument(
        "--parent-pid", type=int, default=os.getppid(), help="exit when this process is gone"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="media.worker[%(process)d] %(message)s")
    sys.exit(asyncio.run(amain(args)))


if __name__ == "__main__":
    main()
