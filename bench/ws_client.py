"""The WebSocket client side of a load-generator spectator, for a selector loop.

wsproto builds the upgrade request and the client's (masked) frames and checks the
server's 101 answer. Incoming frames are split by `FrameReader` instead of wsproto's
parser: wsproto spends about 30 us per small frame, which at 1,000 spectators and
30 frames a second is a whole core of the load generator's two. A server sends only
unmasked frames, and ours sends every message as one final frame, so the reader is a
few lines (RFC 6455 section 5.2) and refuses anything else.
"""

from __future__ import annotations

from typing import Final

from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, BytesMessage, CloseConnection, Request

OPCODE_BINARY: Final = 0x2
OPCODE_CLOSE: Final = 0x8
OPCODE_PING: Final = 0x9
MAX_HEADER_BYTES: Final = 16 * 1024


class HandshakeError(Exception):
    pass


class FrameError(Exception):
    pass


class FrameReader:
    """Splits what a server sends into (opcode, payload) messages."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        buffer = self._buffer
        buffer += data
        messages: list[tuple[int, bytes]] = []
        pos = 0
        available = len(buffer)
        while available - pos >= 2:
            first, second = buffer[pos], buffer[pos + 1]
            if second & 0x80:
                raise FrameError("a server frame must not be masked")
            if not first & 0x80 or first & 0x0F == 0:
                raise FrameError("fragmented message (this server sends whole frames)")
            size = second & 0x7F
            head = 2
            if size == 126:
                head = 4
                if available - pos < head:
                    break
                size = int.from_bytes(buffer[pos + 2 : pos + 4], "big")
            elif size == 127:
                head = 10
                if available - pos < head:
                    break
                size = int.from_bytes(buffer[pos + 2 : pos + 10], "big")
            end = pos + head + size
            if end > available:
                break
            messages.append((first & 0x0F, bytes(buffer[pos + head : end])))
            pos = end
        if pos:
            del buffer[:pos]
        return messages


class ClientHandshake:
    """One client connection's upgrade, then its outgoing frames."""

    def __init__(self, host: str, port: int, path: str = "/ws") -> None:
        self._ws = WSConnection(ConnectionType.CLIENT)
        self.request = self._ws.send(Request(host=f"{host}:{port}", target=path))
        self._header = bytearray()

    def receive(self, data: bytes) -> bytes | None:
        """Feed the server's answer; once it accepted, returns what followed the headers."""
        self._header += data
        end = self._header.find(b"\r\n\r\n")
        if end < 0:
            if len(self._header) > MAX_HEADER_BYTES:
                raise HandshakeError("no end of the HTTP response headers")
            return None
        self._ws.receive_data(bytes(self._header[: end + 4]))
        for event in self._ws.events():
            if isinstance(event, AcceptConnection):
                return bytes(self._header[end + 4 :])
            status = getattr(event, "status_code", "?")
            raise HandshakeError(f"upgrade refused (HTTP {status})")
        raise HandshakeError("the server's answer was not an upgrade")

    def message(self, payload: bytes) -> bytes:
        """One masked binary frame holding `payload`."""
        return self._ws.send(BytesMessage(data=payload))

    def close(self) -> bytes:
        return self._ws.send(CloseConnection(code=1000))
