"""Just enough VP8 RTP payload parsing (RFC 7741) to forward without decoding.

The forwarder must know where keyframes start (a late subscriber can only begin
there) and the recorder must know the picture size for the container header.
Both are read from headers; no pixel is ever decoded.
"""

from __future__ import annotations


def descriptor_length(payload: bytes) -> int:
    """Length of the VP8 payload descriptor (RFC 7741 section 4.2), or -1."""
    if not payload:
        return -1
    pos = 1
    if payload[0] & 0x80:  # X: extension byte present
        if len(payload) < 2:
            return -1
        ext = payload[1]
        pos = 2
        if ext & 0x80:  # I: PictureID, one or two bytes (M bit)
            if len(payload) <= pos:
                return -1
            pos += 2 if payload[pos] & 0x80 else 1
        if ext & 0x40:  # L: TL0PICIDX
            pos += 1
        if ext & 0x30:  # T or K: TID/KEYIDX byte
            pos += 1
    return pos if pos <= len(payload) else -1


def is_keyframe_start(payload: bytes) -> bool:
    """True for the first packet of a VP8 keyframe (S=1, PID=0, P bit clear)."""
    if not payload or not payload[0] & 0x10 or payload[0] & 0x07:
        return False
    pos = descriptor_length(payload)
    return 0 <= pos < len(payload) and not payload[pos] & 0x01


def keyframe_size(frame: bytes) -> tuple[int, int] | None:
    """Width and height from a depayloaded VP8 keyframe (RFC 6386 section 9.1)."""
    if len(frame) < 10 or frame[0] & 0x01 or frame[3:6] != b"\x9d\x01\x2a":
        return None
    width = int.from_bytes(frame[6:8], "little") & 0x3FFF
    height = int.from_bytes(frame[8:10], "little") & 0x3FFF
    return width, height
