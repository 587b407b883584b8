"""A WebSocket client that sends whatever a test asks, valid or not (wsproto + a TCP stream)."""

from __future__ import annotations

import contextlib
import os
import struct
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import msgpack
import trio
from wsproto import ConnectionType, WSConnection
from wsproto.connection import ConnectionState
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Event,
    RejectConnection,
    Request,
)


def client_frame(
    opcode: int, payload: bytes, *, fin: bool = True, length: int | None = None
) -> bytes:
    """A masked client frame; `length` may declare a payload size other than the real one."""
    size = len(payload) if length is None else length
    first = (0x80 if fin else 0) | opcode
    if size < 126:
        header = bytes((first, 0x80 | size))
    elif size < 65536:
        header = struct.pack("!BBH", first, 0x80 | 126, size)
    else:
        header = struct.pack("!BBQ", first, 0x80 | 127, size)
    mask = os.urandom(4)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return header + mask + masked


class RawWebSocket:
    def __init__(self, stream: trio.SocketStream, ws: WSConnection) -> None:
        self.stream = stream
        self.ws = ws
        self.messages: list[dict[str, Any]] = []
        self.close_code: int | None = None
        self.eof = False

    async def send(self, event: Event) -> None:
        await self.stream.send_all(self.ws.send(event))

    async def send_message(self, message: Any) -> None:
        await self.send(BytesMessage(msgpack.packb(message)))

    async def send_raw(self, data: bytes) -> None:
        await self.stream.send_all(data)

    async def hello(self, token: str) -> dict[str, Any]:
        await self.send_message({"t": "hello", "v": 1, "token": token})
        return await self.receive("welcome")

    async def receive(self, kind: str, timeout: float = 10.0) -> dict[str, Any]:
        """The next server message of type `kind` (others are kept in `messages`)."""
        with trio.fail_after(timeout):
            while True:
                for message in self.messages:
                    if message.get("t") == kind:
                        self.messages.remove(message)
                        return message
                if self.eof:
                    raise ConnectionError(f"closed ({self.close_code}) before a {kind!r}")
                await self._read()

    async def until_closed(self, timeout: float = 10.0) -> None:
        """Read until the server closes the connection; `close_code` is its close frame's."""
        with trio.fail_after(timeout):
            while not self.eof:
                await self._read()

    async def _read(self) -> None:
        try:
            data = await self.stream.receive_some(65536)
        except trio.BrokenResourceError:
            data = b""
        if not data:
            self.eof = True
            return
        if self.ws.state is ConnectionState.CLOSED:
            return  # after the close handshake: nothing more to read
        self.ws.receive_data(data)
        for event in self.ws.events():
            if isinstance(event, BytesMessage):
                self.messages.append(msgpack.unpackb(event.data, strict_map_key=False))
            elif isinstance(event, CloseConnection):
                # Answer the server's close as a browser would, and say we send nothing
                # more (a close we started is complete with the server's answer).
                self.close_code = event.code
                if self.ws.state is not ConnectionState.REMOTE_CLOSING:
                    continue
                with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                    await self.stream.send_all(self.ws.send(event.response()))
                    await self.stream.send_eof()


@asynccontextmanager
async def raw_websocket(port: int) -> AsyncIterator[RawWebSocket]:
    """A handshaken WebSocket to the server on `port`; closed (abruptly) after the block."""
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    ws = WSConnection(ConnectionType.CLIENT)
    async with stream:
        await stream.send_all(ws.send(Request(host="127.0.0.1", target="/ws")))
        with trio.fail_after(10):
            while True:
                ws.receive_data(await stream.receive_some(65536))
                events = list(ws.events())
                if any(isinstance(e, AcceptConnection) for e in events):
                    break
                if any(isinstance(e, RejectConnection) for e in events):
                    raise ConnectionError("the server refused the WebSocket handshake")
        yield RawWebSocket(stream, ws)
