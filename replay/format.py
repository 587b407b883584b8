"""The on-disk framing of a session log: segment headers and checksummed records.

Kept free of any I/O framework so that a reader in another language can follow
docs/replay-format.md line by line. All integers are little-endian.

    segment  = header frame*
    header   = "GRRS" u16 version u16 flags(0) u32 segment_no u32 crc32(previous 12 bytes)
    frame    = u32 length  u32 crc32(length bytes + payload)  payload[length]
    payload  = msgpack [record_index, kind, tick, data]
"""

from __future__ import annotations

import math
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Final

import msgpack

from rooms.records import Record

MAGIC: Final = b"GRRS"
VERSION: Final = 1
HEADER = struct.Struct("<4sHHII")
FRAME = struct.Struct("<II")
MAX_PAYLOAD: Final = 64 * 1024 * 1024
"""A length above this cannot be a real record: treat it as damage, not allocate it."""


def encode_header(segment_no: int) -> bytes:
    head = struct.pack("<4sHHI", MAGIC, VERSION, 0, segment_no)
    return head + struct.pack("<I", zlib.crc32(head))


def decode_header(buf: bytes) -> int | None:
    """The segment number, or None when the header is short or damaged."""
    if len(buf) < HEADER.size:
        return None
    magic, version, _flags, segment_no, crc = HEADER.unpack_from(buf, 0)
    if magic != MAGIC or version != VERSION or zlib.crc32(buf[:12]) != crc:
        return None
    return int(segment_no)


def pack_payload(index: int, record: Record) -> bytes:
    payload: bytes = msgpack.packb([index, record.kind, record.tick, record.data])
    return payload


def encode_frame(payload: bytes) -> bytes:
    length = struct.pack("<I", len(payload))
    return length + struct.pack("<I", zlib.crc32(payload, zlib.crc32(length))) + payload


def unpack_payload(payload: bytes) -> tuple[int, Record]:
    index, kind, tick, data = msgpack.unpackb(payload, raw=False, strict_map_key=False)
    return int(index), Record(str(kind), int(tick), data)


@dataclass(frozen=True, slots=True)
class Frame:
    offset: int
    """Byte offset of the frame's length field within the (uncompressed) segment."""
    index: int
    record: Record
    end: int


@dataclass(frozen=True, slots=True)
class Damage:
    """Where reading a segment stopped and why."""

    offset: int
    code: str
    """torn-tail (an incomplete frame, nothing valid after it) | corrupt-record (a complete
    frame with a bad checksum, or valid frames follow the damage)"""
    detail: str


def _frame_ok(view: memoryview, pos: int) -> bool:
    size = len(view)
    if size - pos < FRAME.size:
        return False
    length, crc = FRAME.unpack_from(view, pos)
    end = pos + FRAME.size + length
    return bool(
        0 < length <= MAX_PAYLOAD
        and end <= size
        and zlib.crc32(view[pos + FRAME.size : end], zlib.crc32(view[pos : pos + 4])) == crc
    )


def damage_kind(buf: bytes | memoryview, pos: int) -> str:
    """torn-tail when no valid frame starts anywhere after `pos`, else corrupt-record.

    A writer that dies mid-append leaves nothing valid after its last partial frame;
    a flipped byte (in a length or a payload) leaves valid frames after the damage.
    """
    view = memoryview(buf)
    return (
        "corrupt-record"
        if any(_frame_ok(view, p) for p in range(pos + 1, len(view) - FRAME.size))
        else "torn-tail"
    )


_UINT_WIDTH: Final = {0xCC: 2, 0xCD: 3, 0xCE: 5, 0xCF: 9}


def peek_kind(payload: memoryview) -> str | None:
    """The record kind without decoding the payload (None: decode to find out)."""
    if len(payload) < 4 or payload[0] != 0x94:
        return None
    first = payload[1]
    pos = 2 if first < 0x80 else 1 + _UINT_WIDTH.get(first, 99)
    if pos >= len(payload) or not 0xA0 <= payload[pos] <= 0xBF:
        return None
    n = payload[pos] - 0xA0
    return bytes(payload[pos + 1 : pos + 1 + n]).decode("utf-8", "replace")


def iter_frames(
    buf: bytes | memoryview,
    start: int = HEADER.size,
    kinds: frozenset[str] | None = None,
) -> Iterator[Frame | Damage]:
    """Yield frames from `start`; a final `Damage` if the segment does not end cleanly.

    Damage is a torn tail when the frame is incomplete and nothing valid follows it (see
    `damage_kind`): what a writer killed mid-append leaves. A complete frame whose
    checksum fails is corruption, even at the end, and so is damage with valid frames
    after it; either way it is located by the byte offset of the damaged frame. With
    `kinds`, frames of other kinds are checked but neither decoded nor yielded.
    """
    view = memoryview(buf)
    size = len(view)
    pos = start
    crc32, unpack = zlib.crc32, FRAME.unpack_from
    while pos < size:
        if size - pos >= FRAME.size:  # the hot path, inlined: most frames are fine
            length, crc = unpack(view, pos)
            end = pos + FRAME.size + length
            if (
                0 < length <= MAX_PAYLOAD
                and end <= size
                and crc == crc32(view[pos + FRAME.size : end], crc32(view[pos : pos + 4]))
            ):
                payload = view[pos + FRAME.size : end]
                if kinds is not None:
                    kind = peek_kind(payload)
                    if kind is not None and kind not in kinds:
                        pos = end
                        continue
                try:
                    index, record = unpack_payload(bytes(payload))
                except (ValueError, TypeError, msgpack.UnpackException) as exc:
                    yield Damage(pos, "corrupt-record", f"undecodable record: {exc}")
                    return
                yield Frame(pos, index, record, end)
                pos = end
                continue
        yield _damage(view, pos)
        return


def _damage(view: memoryview, pos: int) -> Damage:
    size = len(view)
    length = FRAME.unpack_from(view, pos)[0] if size - pos >= FRAME.size else None
    if length is None:
        detail = f"{size - pos} bytes of a frame header"
    elif length > MAX_PAYLOAD or length == 0:
        detail = f"impossible record length {length}"
    elif pos + FRAME.size + length > size:
        detail = f"record of {length} bytes, {size - pos - FRAME.size} present"
    else:  # a complete record with a bad checksum: damage, whatever follows it
        return Damage(pos, "corrupt-record", "checksum mismatch of a complete record")
    return Damage(pos, damage_kind(view, pos), detail)


def data_equal(a: Any, b: Any) -> bool:
    """Equality after a msgpack round trip (tuples read back as lists), where NaN equals
    NaN: a recorded NaN made again is the same record. False when either side cannot be
    packed at all (it could not have been recorded)."""
    try:
        left = msgpack.unpackb(msgpack.packb(a), strict_map_key=False)
        right = msgpack.unpackb(msgpack.packb(b), strict_map_key=False)
    except (TypeError, ValueError, OverflowError, msgpack.PackException):
        return False
    return _same(left, right)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(v, b[k]) for k, v in a.items())
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)
