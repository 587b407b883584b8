"""One client's WebSocket after the handshake.

wsproto parses everything the client sends. Writes are the hot path: a room writes the
same prebuilt frame to hundreds of sockets per tick, so `offer` tries a non-blocking
`send` on the spot and, if the socket's buffer is full, the frame is skipped (the next
delta covers the gap). Messages that must arrive go through a bounded outbox drained
by this connection's writer task; overflowing it closes the connection. Nothing the
room does ever waits on a client.
"""

from __future__ import annotations

import contextlib
import os
import socket
import struct
from collections import deque
from collections.abc import AsyncIterator
from typing import Final

import trio
from wsproto import WSConnection
from wsproto.events import BytesMessage, CloseConnection, Ping, TextMessage

from netcode.codec import MAX_CLIENT_MESSAGE

_READ_SIZE: Final = 65536
CLOSE_GRACE_SECONDS: Final = 2.0


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


class MessageTooLarge(Exception):
    pass


class TextFrame(Exception):
    pass


class ClientSocket:
    def __init__(
        self,
        stream: trio.SocketStream,
        ws: WSConnection,
        *,
        queue_bytes: int,
        receive_timeout: float,
        leftover: bytes = b"",
        send_buffer: int = 0,
    ) -> None:
        self._stream = stream
        self._ws = ws
        # A duplicate descriptor of the same (non-blocking) socket, for synchronous sends.
        self._raw = socket.socket(fileno=os.dup(stream.socket.fileno()))
        self._raw.setblocking(False)
        if send_buffer:
            self._raw.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, send_buffer)
        self._outbox: deque[memoryview] = deque()
        self._outbox_bytes = 0
        self._queue_bytes = queue_bytes
        self._receive_timeout = receive_timeout
        self._wake = trio.Event()
        self._flushed = trio.Event()
        self._flushed.set()
        self._leftover = leftover
        self._reading = trio.CancelScope()
        self._stop_reading = False
        self.closed = False
        self.close_reason = ""
        self.bytes_sent = 0

    @property
    def backlog(self) -> int:
        return self._outbox_bytes

    # -- writing --------------------------------------------------------------
    def offer(self, frame: bytes) -> bool:
        """Write a droppable state frame now; False (skipped) when the client is behind."""
        if self.closed or self._outbox:
            return False
        self._write(frame)
        return True

    def send(self, payload: bytes) -> None:
        """Queue one message that must arrive (welcome, replies, errors, bye)."""
        if self.closed:
            return
        if self._outbox_bytes + len(payload) > self._queue_bytes:
            self.abort("send queue overflow")
            return
        self._write(binary_frame(payload))

    def _write(self, data: bytes | memoryview) -> None:
        if not self._outbox:
            try:
                sent = self._raw.send(data)
            except BlockingIOError:
                sent = 0
            except OSError:
                self.abort("connection lost")
                return
            self.bytes_sent += sent
            if sent == len(data):
                return
            data = memoryview(data)[sent:]
        view = memoryview(data)
        self._outbox.append(view)
        self._outbox_bytes += len(view)
        self._flushed = trio.Event()
        self._wake.set()

    async def run_writer(self) -> None:
        """Drain the outbox whenever it has something; ends when the socket closes."""
        while not self.closed:
            await self._wake.wait()
            self._wake = trio.Event()
            while self._outbox and not self.closed:
                try:
                    await trio.lowlevel.wait_writable(self._raw)
                except (trio.ClosedResourceError, OSError):
                    return
                head = self._outbox[0]
                try:
                    sent = self._raw.send(head)
                except BlockingIOError:
                    continue
                except OSError:
                    self.abort("connection lost")
                    return
                self.bytes_sent += sent
                self._outbox_bytes -= sent
                if sent == len(head):
                    self._outbox.popleft()
                else:
                    self._outbox[0] = head[sent:]
            self._flushed.set()

    # -- reading --------------------------------------------------------------
    async def messages(self) -> AsyncIterator[bytes]:
        """Each complete binary message the client sends, until it closes.

        Raises `MessageTooLarge`, `TextFrame`, or `trio.TooSlowError` when the client
        says nothing for `receive_timeout` seconds.
        """
        parts: list[bytes] = []
        size = 0
        if self._leftover:
            self._ws.receive_data(self._leftover)
            self._leftover = b""
        while not self.closed:
            for event in self._ws.events():
                if isinstance(event, BytesMessage):
                    size += len(event.data)
                    if size > MAX_CLIENT_MESSAGE:
                        raise MessageTooLarge(f"message over {MAX_CLIENT_MESSAGE} bytes")
                    parts.append(bytes(event.data))
                    if event.message_finished:
                        message = b"".join(parts)
                        parts, size = [], 0
                        yield message
                elif isinstance(event, TextMessage):
                    if event.message_finished:
                        raise TextFrame("this protocol uses binary msgpack frames only")
                elif isinstance(event, Ping):
                    self._write(self._ws.send(event.response()))
                elif isinstance(event, CloseConnection):
                    if self._ws.state.name == "REMOTE_CLOSING":
                        self._write(self._ws.send(event.response()))
                    self.close_reason = self.close_reason or "client closed"
                    return
            if self._stop_reading:
                return
            data = b""
            self._reading = trio.CancelScope()  # one per read: `close_soon` cancels it
            with self._reading, trio.fail_after(self._receive_timeout):
                try:
                    data = await self._stream.receive_some(_READ_SIZE)
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    return
            if not data:  # the peer closed, or `close_soon` stopped the reading
                return
            self._ws.receive_data(data)

    # -- closing --------------------------------------------------------------
    async def _linger(self) -> None:
        """Half-close, then read until the peer closes too.

        Closing a socket with unread input makes the kernel send a reset, and the
        client may lose the `bye` it had not read yet; draining first avoids that.
        """
        try:
            self._raw.shutdown(socket.SHUT_WR)
            while await self._stream.receive_some(_READ_SIZE):
                pass
        except (
            OSError,
            trio.BrokenResourceError,
            trio.ClosedResourceError,
            trio.BusyResourceError,
        ):
            return

    def close_soon(self, reason: str) -> None:
        """Stop reading; the session then closes politely (flushing what is queued)."""
        self.close_reason = self.close_reason or reason
        self._stop_reading = True
        self._reading.cancel()

    def abort(self, reason: str) -> None:
        """Close at once, without a goodbye (the client is gone or hopelessly behind)."""
        if self.closed:
            return
        self.closed = True
        self.close_reason = self.close_reason or reason
        self._wake.set()
        self._flushed.set()
        self._stop_reading = True
        self._reading.cancel()
        with contextlib.suppress(OSError):  # shuts the connection for both descriptors
            self._raw.shutdown(socket.SHUT_RDWR)
        trio.lowlevel.notify_closing(self._raw)
        self._raw.close()

    async def aclose(self, reason: str, code: int = 1000) -> None:
        """Say goodbye properly: flush what is queued, send a close frame, then close."""
        if not self.closed:
            self.close_reason = self.close_reason or reason
            # wsproto refuses a second close if the client closed first: nothing to send.
            with contextlib.suppress(Exception):
                self._write(self._ws.send(CloseConnection(code=code, reason=reason[:120])))
            with trio.move_on_after(CLOSE_GRACE_SECONDS):
                await self._flushed.wait()
                await self._linger()
            self.abort(reason)
        with trio.CancelScope(shield=True):
            await self._stream.aclose()
