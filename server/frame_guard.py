"""Reads the WebSocket frame headers in a client's byte stream, ahead of wsproto.

wsproto parses every frame but knows no size limit: a data frame's payload is handed
on piece by piece as it arrives, so a client could stream gigabytes in one frame that
is refused only when it ends. The guard sees each header as soon as its bytes arrive
and refuses, before any of the payload is read, a data message whose declared size
passes the limit and a text frame (this protocol is binary only). It only hops from
header to header; wsproto still checks everything else (masking, opcodes, control
frames, UTF-8) and turns a violation into a close with the RFC 6455 code.
"""

from __future__ import annotations

from typing import Final

TEXT: Final = 0x1
BINARY: Final = 0x2
CONTINUATION: Final = 0x0
CLOSE_UNSUPPORTED_DATA: Final = 1003
CLOSE_TOO_BIG: Final = 1009


class FrameRefused(Exception):
    """A frame header the server refuses: `code` for the `bye`, `close_code` for RFC 6455."""

    def __init__(self, code: str, message: str, close_code: int) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.close_code = close_code


def _header_size(second_byte: int) -> int:
    """Bytes in a frame header, given its second byte (length code and mask bit)."""
    length_code = second_byte & 0x7F
    extended = 2 if length_code == 126 else 8 if length_code == 127 else 0
    return 2 + extended + (4 if second_byte & 0x80 else 0)


class FrameGuard:
    def __init__(self, max_message: int) -> None:
        self.max_message = max_message
        self._header = bytearray()
        self._payload_left = 0
        self._message_size = 0

    def feed(self, data: bytes) -> None:
        """Watch `data`, the next bytes of the stream; raises `FrameRefused`."""
        position, end = 0, len(data)
        while position < end:
            if self._payload_left:
                step = min(self._payload_left, end - position)
                self._payload_left -= step
                position += step
                continue
            wanted = 2 if len(self._header) < 2 else _header_size(self._header[1])
            take = min(wanted - len(self._header), end - position)
            self._header += data[position : position + take]
            position += take
            if len(self._header) >= 2 and len(self._header) == _header_size(self._header[1]):
                self._on_header(self._header)
                self._header.clear()

    def _on_header(self, header: bytearray) -> None:
        final, opcode, length_code = header[0] & 0x80, header[0] & 0x0F, header[1] & 0x7F
        length = length_code
        if length_code == 126:
            length = int.from_bytes(header[2:4], "big")
        elif length_code == 127:
            length = int.from_bytes(header[2:10], "big")
        if opcode == TEXT:
            raise FrameRefused(
                "bad_frame", "this protocol uses binary msgpack frames only", CLOSE_UNSUPPORTED_DATA
            )
        if opcode in (BINARY, CONTINUATION):
            if opcode == BINARY:
                self._message_size = 0
            self._message_size += length
            if self._message_size > self.max_message:
                raise FrameRefused(
                    "too_large",
                    f"a message may have at most {self.max_message} bytes",
                    CLOSE_TOO_BIG,
                )
            if final:
                self._message_size = 0
        self._payload_left = length
