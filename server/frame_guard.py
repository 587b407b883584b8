"""Reads the WebSocket frame headers in a client's byte stream, ahead of wsproto.

wsproto parses every frame but knows no size limit: a data frame's payload is handed
on piece by piece as it arrives, so a client could stream gigabytes in one frame that
is refused only when it ends. The guard sees each header as soon as its bytes arrive
and refuses, before any of the payload is read, a data message whose declared size
passes the limit and a text frame (this protocol is binary only). It only hops from
header to header; wsproto still checks everything else (masking, opcodes, control
frames, UTF-8) and turns a violation into a close with the RFC 6455 code.

What clients send nearly always is simpler: whole, final, masked binary frames, several
per read at most. `whole_binary_frames` splits and unmasks exactly those (between
messages, when neither the guard nor wsproto holds a partial frame), which costs a few
microseconds where wsproto's general parser costs twenty-odd per message; anything else
(a partial frame, a fragment, a control frame, RSV bits, an unmasked or overlong header)
goes the long way, through the guard and wsproto.
"""

from __future__ import annotations

from typing import Final

TEXT: Final = 0x1
BINARY: Final = 0x2
CONTINUATION: Final = 0x0
CLOSE_UNSUPPORTED_DATA: Final = 1003
CLOSE_TOO_BIG: Final = 1009
FIN_BINARY: Final = 0x80 | BINARY
MASKED: Final = 0x80


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


def whole_binary_frames(data: bytes, max_message: int) -> list[bytes] | None:
    """The unmasked payloads of `data` when it is nothing but whole, final, masked binary
    frames of at most `max_message` bytes, with minimal length headers; None otherwise."""
    payloads: list[bytes] = []
    position, end = 0, len(data)
    while position < end:
        if data[position] != FIN_BINARY or position + 1 == end or data[position + 1] < MASKED:
            return None
        length = data[position + 1] - MASKED
        mask_at = position + 2
        if length == 126:
            length = int.from_bytes(data[mask_at : mask_at + 2], "big")
            mask_at += 2
            if length < 126:
                return None  # overlong (or cut short): wsproto refuses it
        elif length == 127:
            return None
        start = mask_at + 4
        stop = start + length
        if stop > end or length > max_message:
            return None
        payloads.append(_unmask(data[start:stop], data[mask_at:start]))
        position = stop
    return payloads


def _unmask(payload: bytes, mask: bytes) -> bytes:
    """RFC 6455 5.3: byte i XOR mask[i % 4], as one integer XOR."""
    size = len(payload)
    key = (mask * (size // 4 + 1))[:size]
    return (int.from_bytes(payload, "little") ^ int.from_bytes(key, "little")).to_bytes(
        size, "little"
    )


class FrameGuard:
    def __init__(self, max_message: int) -> None:
        self.max_message = max_message
        self._header = bytearray()
        self._payload_left = 0
        self._message_size = 0

    @property
    def between_messages(self) -> bool:
        """Whether the stream so far ends with a whole message: no partial header or
        payload, no fragmented message open (so wsproto, fed the same bytes, holds none)."""
        return not self._header and not self._payload_left and not self._message_size

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
