"""One client's WebSocket after the handshake, and the only owner of its socket.

The socket is a plain non-blocking socket: the descriptor trio accepted, detached from
trio's wrapper, so a client costs one descriptor. One reader and one writer use it: the
session's task reads (`receive`, and at the very end `finish`), and the writer task
(`run_writer`) drains the outbox. A session may lend its reading to its room for a
while (`read_now`, called from the room's tick, never waiting), and then waits with
`wait_over` until the connection is over; nothing else waits on the socket. A third task
(`watch_silence`) only sleeps until the client has been silent too long.

Writes are the hot path: a room writes the same prebuilt frame to hundreds of sockets
per tick, so `offer` and `send` write on the spot when nothing is queued (a synchronous
non-blocking `send`; trio runs one task at a time, so it never interleaves with the
writer, which only writes while something is queued). A state frame that does not fit
is skipped (the next delta covers the gap); a message that must arrive (welcome,
replies, errors, pongs, close) is queued, and everything queued counts against one
limit: overflowing it closes the connection. Nothing the room does ever waits on a client.

Reading takes everything the socket has at each wake-up, checks frame headers before
wsproto sees the bytes (`FrameGuard`), and hands all complete messages over in one list.
A wake-up is just the wait for the socket: no cancel scope and no deadline per wait
(they cost more than the wait itself); a close or a silent client interrupts the wait
with `notify_closing`, which both directions' waits take as "look at the state again".
"""

from __future__ import annotations

import socket
import struct
from collections import deque
from typing import Final

import trio
from wsproto import WSConnection
from wsproto.connection import ConnectionState
from wsproto.events import BytesMessage, CloseConnection, Ping, Pong, TextMessage

from netcode.codec import MAX_CLIENT_MESSAGE
from server.frame_guard import FrameGuard, FrameRefused, whole_binary_frames

READ_SIZE: Final = 65536
READ_BUDGET: Final = 4 * READ_SIZE
"""Most bytes read in one wake-up, so one busy client cannot starve the others."""
CLOSE_GRACE_SECONDS: Final = 2.0
CLOSE_NORMAL: Final = 1000
CLOSE_POLICY: Final = 1008
CLOSE_INTERNAL_ERROR: Final = 1011


def binary_frame(payload: bytes) -> bytes:
    """A complete, unmasked, final binary WebSocket frame (RFC 6455 section 5.2).

    Servers never mask and we negotiate no extensions, so one frame's bytes are the
    same for every client: built once, written many times.
    """
    size = len(payload)
    if size < 126:
        header = bytes((0x82, size))
    elif size < 65536:
        header = struct.pack("!BBH", 0x82, 126, size)
    else:
        header = struct.pack("!BBQ", 0x82, 127, size)
    return header + payload


class Refusal(Exception):
    """The client broke a rule of the transport: tell it `code` in a `bye`, then close
    with the RFC 6455 `close_code`."""

    def __init__(self, code: str, message: str, close_code: int) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.close_code = close_code


class ClientSocket:
    def __init__(
        self,
        sock: socket.socket,
        ws: WSConnection,
        *,
        queue_bytes: int,
        receive_timeout: float,
        leftover: bytes = b"",
        send_buffer: int = 0,
    ) -> None:
        sock.setblocking(False)
        # A state frame goes out when it is written: Nagle's algorithm would hold it until
        # the client acknowledged the previous one, and a client that sends little delays
        # its TCP acknowledgements (up to 40 ms on Linux), more than a tick.
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if send_buffer:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, send_buffer)
        self._sock = sock
        self._ws = ws
        self._guard = FrameGuard(MAX_CLIENT_MESSAGE)
        self._outbox: deque[memoryview] = deque()
        self._outbox_bytes = 0
        self.queue_bytes = queue_bytes
        """Most bytes of must-arrive messages waiting for the client (raised after hello)."""
        self._receive_timeout = receive_timeout
        self._deadline = trio.current_time() + receive_timeout
        self._wake = trio.Event()
        self._flushed = trio.Event()
        self._flushed.set()
        self._done = trio.Event()
        self._over = trio.Event()
        """Set once reading is over: closing, the peer gone, or silent too long."""
        self._silent = False
        """The client said nothing for `receive_timeout` seconds (see `watch_silence`)."""
        self._unread = leftover
        self._parts: list[bytes | bytearray] = []
        self._peer_gone = False
        self.closing = False
        """A close was asked for (or the client closed): no more reading or sending."""
        self.closed = False
        """The descriptor is closed."""
        self.close_reason = ""
        self.close_code = CLOSE_NORMAL
        self.client_close_code: int | None = None
        """The code of the client's own close frame, when it closed first."""

    @property
    def backlog(self) -> int:
        return self._outbox_bytes

    # -- writing --------------------------------------------------------------
    def offer(self, frame: bytes) -> bool:
        """Write a droppable state frame now; False (skipped) when the client is behind
        (something written earlier is still queued). What the socket does not take of
        the frame is queued for the writer: the client gets whole frames, and a replay's
        frame after a seek arrives even when it is the only one.

        The hot path of every tick, once per client: one test and one `send`."""
        if self._outbox or self.closing:
            return False
        try:
            sent = self._sock.send(frame)
        except BlockingIOError:
            sent = 0
        except OSError:
            self.abort("connection lost")
            return False
        if sent != len(frame):
            self._hold(memoryview(frame)[sent:])
        return True

    def send(self, payload: bytes) -> None:
        """Queue one message that must arrive (welcome, replies, errors, bye)."""
        if not self.closing:
            self._queue(binary_frame(payload))

    def _queue(self, data: bytes) -> None:
        """Write bytes that must arrive, counting them against the queue limit."""
        if self.closed:
            return
        if self._outbox_bytes + len(data) > self.queue_bytes:
            self.abort("send queue overflow")
            return
        self._write(data)

    def _write(self, data: bytes) -> None:
        if not self._outbox:
            try:
                sent = self._sock.send(data)
            except BlockingIOError:
                sent = 0
            except OSError:
                self.abort("connection lost")
                return
            if sent == len(data):
                return
            self._hold(memoryview(data)[sent:])
        else:
            self._hold(memoryview(data))

    def _hold(self, rest: memoryview) -> None:
        """Queue bytes the socket did not take, for the writer task."""
        if not self._outbox:
            self._flushed = trio.Event()
            self._wake.set()
        self._outbox.append(rest)
        self._outbox_bytes += len(rest)

    async def run_writer(self) -> None:
        """Drain the outbox whenever it has something; ends when the socket closes."""
        while not self.closed:
            await self._wake.wait()
            self._wake = trio.Event()
            while self._outbox:
                head = self._outbox[0]
                try:
                    sent = self._sock.send(head)
                except BlockingIOError:
                    try:
                        await trio.lowlevel.wait_writable(self._sock)
                    except trio.ClosedResourceError:
                        if self.closed:
                            return  # aborted while waiting
                    continue  # written to, or the reader was interrupted: try again
                except OSError:
                    self.abort("connection lost")
                    return
                self._outbox_bytes -= sent
                if sent == len(head):
                    self._outbox.popleft()
                else:
                    self._outbox[0] = head[sent:]
            self._flushed.set()

    # -- reading --------------------------------------------------------------
    async def receive(self) -> list[bytes]:
        """The next complete messages: all that one wake-up's bytes completed, at least one.

        [] once the connection is over (the client closed, or a close was asked for).
        Raises `Refusal` for a frame the transport refuses, and for a client that sent
        no message, nor ping, for `receive_timeout` seconds.
        """
        if self._unread:
            data, self._unread = self._unread, b""
            if messages := self._take(data):
                return messages
        while not self.closing and not self._peer_gone:
            self._refuse_if_silent()
            try:
                await trio.lowlevel.wait_readable(self._sock)
            except trio.ClosedResourceError:
                continue  # closed, closing or silent: the loop's tests say which
            if messages := self._take(self._read_available()):
                return messages
        return []

    def read_now(self) -> list[bytes]:
        """The complete messages the socket holds now, without waiting ([] when none).

        For a room that reads its members once per tick: one non-blocking read instead
        of a task woken for every message. Raises `Refusal` as `receive` does; once the
        connection is over (see `wait_over`) it returns [].
        """
        if self.closing or self._peer_gone:
            return []
        self._refuse_if_silent()
        data = self._read_available()
        if self._unread:
            data, self._unread = self._unread + data, b""
        return self._take(data)

    async def wait_over(self) -> None:
        """Wait until reading is over: a close was asked for or received, the peer went
        away, or it was silent for `receive_timeout` seconds (`read_now` then raises)."""
        await self._over.wait()

    def end_reading(self) -> None:
        """Wake `wait_over` although the connection goes on: the one it lent its reading
        to met something the session must deal with (a refusal, a fault)."""
        self._over.set()

    def _refuse_if_silent(self) -> None:
        if self._silent:
            raise Refusal(
                "timeout",
                f"no message from the client for {self._receive_timeout:g} s",
                CLOSE_POLICY,
            )

    async def watch_silence(self) -> None:
        """Interrupt the reader once the client has sent nothing (no message, nor ping)
        for `receive_timeout` seconds: `receive` then raises `Refusal` ("timeout"). It
        sleeps to the deadline as it stands, and again if a message moved it meanwhile,
        so the reader's wake-ups carry no deadline of their own."""
        while not self.closing:
            await trio.sleep_until(self._deadline)
            if trio.current_time() >= self._deadline and not self.closing:
                self._silent = True
                self._over.set()
                self._interrupt_waits()
                return

    def _interrupt_waits(self) -> None:
        """Wake the tasks waiting on the socket so that they look at its state again."""
        if not self.closed:
            trio.lowlevel.notify_closing(self._sock)

    def _read_available(self) -> bytes:
        """Everything the socket holds now (up to the budget); notes when the peer is gone."""
        chunks: list[bytes] = []
        total = 0
        while total < READ_BUDGET and not self.closed:
            try:
                chunk = self._sock.recv(READ_SIZE)
            except BlockingIOError:
                break
            except OSError:  # reset by the peer
                self._peer_gone = True
                self._over.set()
                break
            if not chunk:
                self._peer_gone = True
                self._over.set()
                break
            chunks.append(chunk)
            total += len(chunk)
            if len(chunk) < READ_SIZE:
                break  # drained: spare the extra call that would say so
        return b"".join(chunks)

    def _take(self, data: bytes) -> list[bytes]:
        """Complete messages in `data`; answers pings and the client's close on the way."""
        if not data or self.closing:
            return []
        if self._guard.between_messages:
            whole = whole_binary_frames(data, self._guard.max_message)
            if whole is not None:  # the common case, without wsproto (frame_guard.py)
                self._deadline = trio.current_time() + self._receive_timeout
                return whole
        try:
            self._guard.feed(data)
        except FrameRefused as refused:
            raise Refusal(refused.code, refused.message, refused.close_code) from None
        self._ws.receive_data(data)
        messages: list[bytes] = []
        ping: Ping | None = None
        heard = False
        for event in self._ws.events():
            if isinstance(event, BytesMessage):
                self._parts.append(event.data)
                if event.message_finished:
                    messages.append(b"".join(self._parts))
                    self._parts.clear()
                    heard = True
            elif isinstance(event, Ping):
                ping, heard = event, True
            elif isinstance(event, Pong):
                heard = True
            elif isinstance(event, CloseConnection):
                self._on_close(event)
                break
            elif isinstance(event, TextMessage):  # the guard refuses text at its header
                raise Refusal("bad_frame", "text frames are not accepted", 1003)
        if ping is not None and not self.closing:
            # RFC 6455 5.5.3: answering only the most recent ping of a burst is enough.
            self._queue(self._ws.send(ping.response()))
        if heard:
            self._deadline = trio.current_time() + self._receive_timeout
        return messages

    def _on_close(self, event: CloseConnection) -> None:
        state = self._ws.state
        if state is ConnectionState.OPEN:
            # wsproto reports a frame that breaks RFC 6455 as a close with the code to use
            # (the connection's state unchanged), not as an error.
            raise Refusal("bad_frame", f"WebSocket protocol error: {event.reason}", event.code)
        if state is ConnectionState.REMOTE_CLOSING:  # the client closes first: answer it
            self._queue(self._ws.send(event.response()))
            self.client_close_code = event.code
        self.close_reason = self.close_reason or "client closed"
        self.closing = True
        self._over.set()

    # -- closing --------------------------------------------------------------
    def close_soon(self, reason: str, code: int = CLOSE_NORMAL) -> None:
        """Stop reading and sending; the session's task then closes politely (`finish`)."""
        if self.closing:
            return
        self.close_reason = self.close_reason or reason
        self.close_code = code
        self.closing = True
        self._over.set()
        self._interrupt_waits()

    async def aclose(self, reason: str, code: int = CLOSE_NORMAL) -> None:
        """Ask for a polite close and wait until it is done (from a task other than the
        session's own, which does the closing)."""
        self.close_soon(reason, code)
        await self._done.wait()

    async def finish(self) -> None:
        """The session task's last step: flush what is queued, send a close frame,
        half-close, and read until the client closes too (closing with unread input
        makes the kernel send a reset, and the client could lose its `bye`). Bounded by
        `CLOSE_GRACE_SECONDS`; the descriptor is closed in any case."""
        self.closing = True
        with trio.move_on_after(CLOSE_GRACE_SECONDS):
            if not self.closed and self._ws.state is ConnectionState.OPEN:
                self._queue(self._ws.send(CloseConnection(self.close_code, self.close_reason)))
            await self._flushed.wait()
            if not self.closed:
                try:
                    self._sock.shutdown(socket.SHUT_WR)
                except OSError:
                    pass  # the client is already gone
                else:
                    await self._discard_until_eof()
        self.abort(self.close_reason or "closed")
        self._done.set()

    async def _discard_until_eof(self) -> None:
        while not self._peer_gone and not self.closed:
            try:
                await trio.lowlevel.wait_readable(self._sock)
            except trio.ClosedResourceError:
                return
            self._read_available()

    def abort(self, reason: str) -> None:
        """Close the descriptor at once, without a goodbye (the client is gone or
        hopelessly behind). Wakes both tasks; safe from any task."""
        if self.closed:
            return
        self.closed = self.closing = True
        self._over.set()
        self.close_reason = self.close_reason or reason
        self._outbox.clear()
        self._outbox_bytes = 0
        self._wake.set()
        self._flushed.set()
        trio.lowlevel.notify_closing(self._sock)
        self._sock.close()
