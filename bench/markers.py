"""Latency markers in our wire format: written by participant 0, found by spectators.

A marker pose is participant 0's normal pose with head x = 100 m + seq mm. The anchor's
1000 + seq m is out of our range (positions are refused beyond 1 km), and we publish
whole millimetres, so seq mm keeps every marker distinct and exact: it arrives as
x_mm = 100000 + seq, where a normal head is within 2 m (2000 mm) of the centre.

Full spectators read it from their decoded state; light ones find it in the raw frame
(docs/protocol.md): a pose is the msgpack array [x_mm, y_mm, z_mm, q], so a marker head
is `94 ce <uint32 x_mm> cd 06 40` (fixarray 4, uint32 x, uint16 y = 1600 mm, the eye
height no head leaves). Nine fixed bytes and a range check rule out chance matches.
"""

from __future__ import annotations

import re
from typing import Final

MARKER_BASE_M: Final = 100.0
MARKER_BASE_MM: Final = 100_000
MAX_SEQ: Final = 99_999
_RAW_HEAD_MARKER: Final = re.compile(rb"\x94\xce(....)\xcd\x06\x40", re.DOTALL)
_STATE_FRAME_PREFIX: Final = b"\xa1t\xa1s\xa1k"


def marker_x(seq: int) -> float:
    """Head x (metres) of marker `seq` (1, 2, ...)."""
    return MARKER_BASE_M + seq / 1000


def marker_seq(x_mm: int) -> int | None:
    """The marker a published head x (mm) carries, or None for a normal pose."""
    seq = x_mm - MARKER_BASE_MM
    return seq if 0 < seq <= MAX_SEQ else None


def find_marker(payload: bytes, last_seq: int) -> int:
    """The newest marker after `last_seq` in a raw state frame, or -1."""
    best = -1
    for match in _RAW_HEAD_MARKER.finditer(payload):
        seq = marker_seq(int.from_bytes(match.group(1), "big"))
        if seq is not None and seq > last_seq and seq > best:
            best = seq
    return best


def state_frame_tick(payload: bytes) -> int | None:
    """The tick `k` of a raw state frame (its first keys are t="s", k), else None.

    The publisher writes `t`, `s`, `k` first in every state frame (snapshot or delta),
    so a light client can ack without decoding the rest.
    """
    if payload[1:7] != _STATE_FRAME_PREFIX or len(payload) < 8:
        return None
    kind = payload[7]
    if kind < 0x80:
        return kind
    width = {0xCC: 1, 0xCD: 2, 0xCE: 4, 0xCF: 8}.get(kind)
    if width is None or len(payload) < 8 + width:
        return None
    return int.from_bytes(payload[8 : 8 + width], "big")
