"""Control-socket framing between the trio supervisor and a media worker.

Sans-I/O, like wsproto: bytes in, decoded messages out, so the same code
serves the asyncio worker, the trio supervisor and tests. A frame is a 4-byte
big-endian length followed by one msgpack map.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import Any

import msgpack

#: Largest control frame either side accepts; a bigger one is a protocol error.
MAX_FRAME = 1 << 20
_HEADER = struct.Struct(">I")


class FrameError(Exception):
    """The peer broke the framing; the connection cannot be trusted further."""


def encode_frame(message: dict[str, Any]) -> bytes:
    body: bytes = msgpack.packb(message, use_bin_type=True)
    if len(body) > MAX_FRAME:
        raise FrameError(f"frame of {len(body)} bytes exceeds {MAX_FRAME}")
    return _HEADER.pack(len(body)) + body


class FrameDecoder:
    """Accumulates received bytes and yields complete messages."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def receive_data(self, data: bytes) -> None:
        self._buffer += data
        # A frame announcing more than the limit is refused before it is buffered.
        if self._pending_length() > MAX_FRAME:
            raise FrameError("oversize frame")

    def _pending_length(self) -> int:
        if len(self._buffer) < _HEADER.size:
            return 0
        return int(_HEADER.unpack_from(self._buffer)[0])

    def messages(self) -> Iterator[dict[str, Any]]:
        while len(self._buffer) >= _HEADER.size:
            length = self._pending_length()
            if length > MAX_FRAME:
                raise FrameError(f"frame of {length} bytes exceeds {MAX_FRAME}")
            end = _HEADER.size + length
            if len(self._buffer) < end:
                return
            body = bytes(self._buffer[_HEADER.size : end])
            del self._buffer[:end]
            try:
                message = msgpack.unpackb(body, raw=False)
            except (ValueError, msgpack.UnpackException) as exc:
                raise FrameError(f"undecodable frame: {exc}") from exc
            if not isinstance(message, dict):
                raise FrameError("frame is not a map")
            yield message
