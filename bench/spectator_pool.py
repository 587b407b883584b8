"""A spectator process of the load generator: many spectators served by one selector loop.

    python -m bench.spectator_pool --url ws://127.0.0.1:PORT/ws --token T --marker-entity E

The coordinator (bench/loadgen.py) starts a few of these, as `load.cjs` forks its
spectator processes, and drives each with one JSON line per command on stdin; the
answer is one JSON line on stdout: `join` (count, gid_base, light, batch), `snap`
(counters, CPU, loop lag), `drain` (marker receipts), `quit`. It also quits when its
stdin closes, so it never outlives the coordinator.

Every spectator joins as any client does: WebSocket upgrade, `hello` with a spectator
token, `welcome`, then a state frame per tick. Each follows the reference client's rules
(`netcode.sync.Follower`, which the Python client uses): it acks when they say so and
asks for a snapshot when its mirror disagrees. A **full** spectator decodes every frame
into the follower's `Mirror` (checksums included) and reads the marker from its state;
a **light** one (the anchor's section 4.6) only counts the bytes, reads the tick from
the frame's first bytes for its acks and scans the raw frame for the marker. The server
sees the same traffic from both.

One loop over non-blocking sockets instead of a trio task per spectator: waking a task
per frame costs tens of microseconds in Python, and at 30 frames a second for hundreds
of spectators that cost would be the load generator's, not the server's.

Each marker receipt carries two times. `decoded` is the anchor's (its 4.3: after the
client decoded the frame); with up to 100 spectators a process, each turn of the loop
decodes one frame after another, so it includes the wait behind the spectators decoded
before it in the same turn, which our Python decoder makes longer than the anchor's
JavaScript one. `arrived` is when the frame's bytes were read from the socket: each turn
first reads every ready socket, then decodes, so it leaves that queue out and is the
server's side of the latency. A full spectator verifies one state checksum in
`CHECKSUM_SHARE` (each in its turn, so every checksum the server sends is verified by
some spectator): verifying one costs the reference `Mirror` about 0.75 ms, and the
server sends every spectator a checksum on the same tick, once a second, so 100
spectators verifying all of them stalled their process for 75-100 ms a second, every
frame behind that stall late; a real client verifies its own checksum on its own CPU
and holds up nobody. Once the spectators have joined, their long-lived state is
frozen out of the cyclic collector's sight (`gc.freeze`): a full collection walking it
stopped the loop for 100-800 ms, a pause no spectator of the anchor (V8 collects
incrementally) nor a real browser client has.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import gc
import heapq
import json
import os
import selectors
import socket
import sys
import time
from collections import deque
from collections.abc import Callable
from typing import Any, Final
from urllib.parse import urlsplit

from bench.markers import find_marker, marker_seq, state_frame_tick
from bench.stats import lag_summary, now_ms, process_cpu_seconds
from bench.ws_client import (
    OPCODE_BINARY,
    OPCODE_CLOSE,
    ClientHandshake,
    FrameError,
    FrameReader,
    HandshakeError,
)
from netcode.codec import PROTOCOL_VERSION, ProtocolError, decode_server_message, encode
from netcode.sync import Follower, ack_interval

LAG_RESOLUTION_MS: Final = 5.0
HANDSHAKE_TIMEOUT_S: Final = 10.0
JOIN_ATTEMPTS: Final = 3
RETRY_DELAY_S: Final = 0.2
RECEIVE_SIZE: Final = 64 * 1024
"""Per socket and turn of the loop: a spectator that fell behind does not hold up the others."""
CHECKSUM_SHARE: Final = 10
"""A full spectator verifies one checksum in this many, its turn set by its id (see the
module's docstring)."""
MAX_LAG_SAMPLES: Final = 200_000
"""Bounded: 5 ms samples for over 15 minutes, more than any window."""


class Spectator:
    """One spectator connection: handshake, then counting (light) or decoding (full)."""

    def __init__(self, pool: Pool, gid: int, light: bool) -> None:
        self.pool = pool
        self.gid = gid
        self.light = light
        self.sock: socket.socket | None = None
        self.handshake: ClientHandshake | None = None
        self.reader = FrameReader()
        self.phase = "idle"
        self.attempts = 0
        self.deadline = 0.0
        self.alive = False
        self.payload_bytes = 0
        self.tcp_bytes = 0
        self.frames = 0
        self.last_seq = -1
        self.follower = self.fresh_follower()
        self.unread = b""
        """Bytes read in this turn of the loop, decoded after every socket was read."""
        self.arrived = 0.0
        """When they were read (ms, CLOCK_MONOTONIC)."""

    def fresh_follower(self) -> Follower:
        """A follower holding nothing, verifying its share of the checksums."""
        return Follower(checksum_share=CHECKSUM_SHARE, checksum_turn=self.gid)

    # -- joining ------------------------------------------------------------------
    def connect(self) -> None:
        self.attempts += 1
        self.phase = "connecting"
        self.deadline = time.monotonic() + HANDSHAKE_TIMEOUT_S
        self.reader = FrameReader()
        self.follower = self.fresh_follower()
        self.handshake = ClientHandshake(self.pool.host, self.pool.port, self.pool.path)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock = sock
        code = sock.connect_ex((self.pool.host, self.pool.port))
        if code not in (0, errno.EINPROGRESS):
            self.fail(f"connect: {os.strerror(code)}")
            return
        self.pool.selector.register(sock, selectors.EVENT_WRITE, self)

    def on_ready(self) -> None:
        if self.sock is None:  # closed by an earlier event of the same turn (e.g. quit)
            return
        if self.phase == "connecting":
            error = self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if error:
                self.fail(f"connect: {os.strerror(error)}")
                return
            assert self.handshake is not None
            try:
                self.sock.send(self.handshake.request)  # a fresh socket's buffer takes it all
            except OSError as exc:
                self.fail(f"connect: {exc}")
                return
            self.phase = "upgrading"
            self.pool.selector.modify(self.sock, selectors.EVENT_READ, self)
            return
        try:
            data = self.sock.recv(RECEIVE_SIZE)
        except BlockingIOError:
            return
        except OSError as exc:
            self.lost(str(exc))
            return
        if not data:
            self.lost("the server closed the connection")
            return
        self.tcp_bytes += len(data)
        if not self.unread:
            self.arrived = now_ms()
            self.pool.read.append(self)
        self.unread += data

    def digest(self) -> None:
        """Take the bytes read in this turn: the handshake's answer, then frames."""
        data, self.unread = self.unread, b""
        if self.sock is None:  # lost since the bytes were read
            return
        try:
            if self.phase == "upgrading":
                assert self.handshake is not None
                rest = self.handshake.receive(data)
                if rest is None:
                    return
                self.phase = "welcoming"
                hello = {"t": "hello", "v": PROTOCOL_VERSION, "token": self.pool.token}
                self.send(encode(hello))
                data = rest
            for opcode, payload in self.reader.feed(data):
                if opcode == OPCODE_CLOSE:
                    self.lost("close frame")
                    return
                if opcode == OPCODE_BINARY:
                    self.payload_bytes += len(payload)
                    self.on_message(payload)
                    if self.sock is None:
                        return
        except (HandshakeError, FrameError, ProtocolError) as exc:
            self.lost(str(exc))

    def fail(self, reason: str) -> None:
        """A join attempt failed: try again a little later, at most `JOIN_ATTEMPTS` times."""
        self.close()
        self.pool.join_failed(self, reason)

    # -- streaming ----------------------------------------------------------------
    def on_message(self, payload: bytes) -> None:
        if self.phase == "welcoming":
            message = decode_server_message(payload)
            if message.get("t") != "welcome":
                self.fail(f"refused: {message.get('code')}: {message.get('msg')}")
                return
            self.phase = "streaming"
            self.alive = True
            self.follower.welcomed(
                resumed=False, ack_every=ack_interval(message["role"], message["tick_hz"])
            )
            self.pool.joined(self)
            return
        if self.light:
            tick = state_frame_tick(payload)
            if tick is None:
                if decode_server_message(payload).get("t") == "bye":
                    self.lost("bye")
                return
            self.frames += 1
            step = self.follower.seen(tick)
            seq = find_marker(payload, self.last_seq)
            if seq > 0:
                self.last_seq = seq
                self.pool.receipts.extend((self.gid, seq, now_ms(), self.arrived))
        else:
            message = decode_server_message(payload)
            kind = message.get("t")
            if kind == "bye":
                self.lost("bye")
                return
            if kind != "s":
                return
            self.frames += 1
            step = self.follower.receive(message)
            if step.applied:
                self.check_marker()
        if step.resync:
            self.pool.resyncs += 1
            self.send(encode({"t": "resync", "reason": "desync"}))
        if step.ack is not None:
            self.send(encode({"t": "ack", "tick": step.ack}))

    def check_marker(self) -> None:
        """After a frame was applied: a new marker in participant 0's head, stamped now."""
        head = self.follower.mirror.poses.get(self.pool.marker_entity)
        if head is not None:
            seq = marker_seq(head[0])
            if seq is not None and seq != self.last_seq:
                self.last_seq = seq
                self.pool.receipts.extend((self.gid, seq, now_ms(), self.arrived))

    def send(self, payload: bytes) -> None:
        """Send one message; a full socket buffer drops it (acks are informational)."""
        if self.sock is None or self.handshake is None:
            return
        try:
            self.sock.send(self.handshake.message(payload))
        except BlockingIOError:
            pass
        except OSError as exc:
            self.lost(str(exc))

    def lost(self, reason: str) -> None:
        if self.phase != "streaming":
            self.fail(reason)
            return
        self.close()
        self.phase = "closed"
        if self.alive and not self.pool.quitting:
            self.pool.disconnects += 1
        self.alive = False

    def close(self) -> None:
        sock, self.sock = self.sock, None
        if sock is not None:
            with contextlib.suppress(KeyError, ValueError):
                self.pool.selector.unregister(sock)
            sock.close()

    def leave(self) -> None:
        """Leave politely: a close frame, then close (as `leave(true)` does in the SDK)."""
        if self.sock is not None and self.handshake is not None and self.phase == "streaming":
            with contextlib.suppress(OSError):
                self.sock.send(self.handshake.close())
        self.alive = False
        self.phase = "closed"
        self.close()


class Pool:
    """The spectators of this process, its marker receipts and its loop's lag."""

    def __init__(self, url: str, token: str, marker_entity: int) -> None:
        parts = urlsplit(url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        self.path = parts.path or "/ws"
        self.token = token
        self.marker_entity = marker_entity
        self.selector = selectors.DefaultSelector()
        self.spectators: list[Spectator] = []
        self.receipts: list[float] = []
        """flat: gid, seq, decoded (ms), arrived (ms), ..."""
        self.read: list[Spectator] = []
        """Spectators that read bytes in this turn of the loop, in order."""
        self.disconnects = 0
        self.resyncs = 0
        self.quitting = False
        self.lag_ms: list[float] = []
        self._timers: list[tuple[float, int, Callable[[], None]]] = []
        self._timer_seq = 0
        self._waiting: deque[Spectator] = deque()
        self._joining: set[Spectator] = set()
        self._join_request: tuple[int, int] | None = None
        """(request id, batch) of the join in progress"""
        self._join_failed = 0

    # -- joins --------------------------------------------------------------------
    def start_join(self, request: int, count: int, gid_base: int, light: bool, batch: int) -> None:
        start = len(self.spectators)
        for i in range(start, start + count):
            spectator = Spectator(self, gid_base + i, light)
            self.spectators.append(spectator)
            self._waiting.append(spectator)
        self._join_request = (request, max(1, batch))
        self._join_failed = 0
        self._pump_joins()

    def _pump_joins(self) -> None:
        if self._join_request is None:
            return
        request, batch = self._join_request
        while self._waiting and len(self._joining) < batch:
            spectator = self._waiting.popleft()
            self._joining.add(spectator)
            spectator.connect()
        if not self._waiting and not self._joining:
            self._join_request = None
            gc.collect()
            gc.freeze()  # the joined spectators' state lives to the end (module doc)
            alive = sum(1 for s in self.spectators if s.alive)
            reply(request, {"n": alive, "failed": self._join_failed})

    def joined(self, spectator: Spectator) -> None:
        self._joining.discard(spectator)
        self._pump_joins()

    def join_failed(self, spectator: Spectator, reason: str) -> None:
        if spectator not in self._joining:
            return
        if spectator.attempts < JOIN_ATTEMPTS:
            spectator.phase = "retrying"
            self.after(RETRY_DELAY_S, spectator.connect)
            return
        self._joining.discard(spectator)
        self._join_failed += 1
        print(f"spectator {spectator.gid}: join failed: {reason}", file=sys.stderr)
        self._pump_joins()

    def _expire_handshakes(self, now: float) -> None:
        for spectator in list(self._joining):
            if spectator.phase != "retrying" and now > spectator.deadline:
                spectator.fail("no welcome within the handshake timeout")

    # -- timers and the loop --------------------------------------------------------
    def after(self, seconds: float, callback: Callable[[], None]) -> None:
        self._timer_seq += 1
        heapq.heappush(self._timers, (time.monotonic() + seconds, self._timer_seq, callback))

    def run(self, control: int) -> None:
        os.set_blocking(control, False)
        commands = Commands(self, control)
        self.selector.register(control, selectors.EVENT_READ, commands)
        next_lag = time.monotonic() + LAG_RESOLUTION_MS / 1000
        while not commands.done:
            now = time.monotonic()
            wake = next_lag if not self._timers else min(next_lag, self._timers[0][0])
            events = self.selector.select(max(0.0, wake - now))
            now = time.monotonic()
            if now >= next_lag:
                if len(self.lag_ms) < MAX_LAG_SAMPLES:
                    self.lag_ms.append((now - next_lag) * 1000)
                next_lag = now + LAG_RESOLUTION_MS / 1000
            for key, _ in events:
                key.data.on_ready()
            read, self.read = self.read, []
            for spectator in read:
                spectator.digest()
            while self._timers and self._timers[0][0] <= now:
                heapq.heappop(self._timers)[2]()
            if self._joining:
                self._expire_handshakes(now)

    # -- answers --------------------------------------------------------------------
    def snapshot(self, reset_lag: bool) -> dict[str, Any]:
        answer = {
            "t": now_ms(),
            "pid": os.getpid(),
            "cpu": process_cpu_seconds(os.getpid()),
            "clients": [
                [s.gid, s.payload_bytes, s.frames, s.tcp_bytes, 1 if s.alive else 0]
                for s in self.spectators
            ],
            "lag": lag_summary(self.lag_ms),
            "disconnects": self.disconnects,
            "resyncs": self.resyncs,
        }
        if reset_lag:
            self.lag_ms = []
        return answer

    def drain(self) -> list[float]:
        receipts, self.receipts = self.receipts, []
        return receipts

    def quit(self) -> None:
        self.quitting = True
        for spectator in self.spectators:
            spectator.leave()


class Commands:
    """The coordinator's commands, one JSON line each, read from the control pipe."""

    def __init__(self, pool: Pool, fd: int) -> None:
        self.pool = pool
        self.fd = fd
        self.buffer = b""
        self.done = False

    def on_ready(self) -> None:
        try:
            data = os.read(self.fd, 65536)
        except BlockingIOError:
            return
        if not data:  # the coordinator is gone: never linger
            self.pool.quit()
            self.done = True
            return
        self.buffer += data
        while b"\n" in self.buffer:
            line, self.buffer = self.buffer.split(b"\n", 1)
            self.handle(json.loads(line))

    def handle(self, command: dict[str, Any]) -> None:
        request = int(command["id"])
        match command["cmd"]:
            case "join":
                self.pool.start_join(
                    request,
                    int(command["count"]),
                    int(command["gid_base"]),
                    bool(command["light"]),
                    int(command["batch"]),
                )
            case "snap":
                reply(request, self.pool.snapshot(bool(command.get("reset_lag"))))
            case "drain":
                reply(request, self.pool.drain())
            case "quit":
                self.pool.quit()
                reply(request, True)
                self.done = True
            case other:
                reply(request, None, error=f"unknown command {other!r}")


def reply(request: int, result: Any, error: str | None = None) -> None:
    answer: dict[str, Any] = {"id": request, "res": result}
    if error is not None:
        answer["err"] = error
    sys.stdout.buffer.write(json.dumps(answer).encode() + b"\n")
    sys.stdout.buffer.flush()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True, help="the server's WebSocket URL")
    parser.add_argument("--token", required=True, help="a spectator join token")
    parser.add_argument("--marker-entity", type=int, required=True, help="the marked head")
    args = parser.parse_args()
    Pool(args.url, args.token, args.marker_entity).run(sys.stdin.fileno())


if __name__ == "__main__":
    main()
