"""Recording of encoded media per track, with arrival times on the session clock.

A track's RTP is reassembled into encoded frames (VP8 payload descriptors are
stripped, Opus packets are frames already) and appended to a ``.frames`` file:
a msgpack stream of one header map followed by ``[arrival_ms, rtp_timestamp,
keyframe, data]`` records. Nothing is decoded. :mod:`media.remux` turns the
file into WebM or Ogg afterwards.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, BinaryIO

import msgpack
from aiortc import RTCRtpCodecParameters

from media.aiortc_internals import RtpPacket, depayload
from media.vp8 import is_keyframe_start

#: Incomplete video frames kept waiting for late packets before being dropped.
MAX_PENDING_FRAMES = 32


class _PendingFrame:
    __slots__ = ("arrival", "first", "key", "last", "packets")

    def __init__(self, arrival: float) -> None:
        self.arrival = arrival
        self.packets: dict[int, bytes] = {}
        self.first: int | None = None
        self.last: int | None = None
        self.key = False

    def complete(self) -> bool:
        if self.first is None or self.last is None:
            return False
        count = (self.last - self.first) % (1 << 16) + 1
        return len(self.packets) == count


class TrackRecorder:
    def __init__(self, path: Path, header: dict[str, Any], session_start: float) -> None:
        self.path = path
        self.frames = 0
        self.dropped = 0
        self.first_arrival_ms: int | None = None
        self._session_start = session_start
        # Unbuffered: one write per frame, so a killed worker loses at most the
        # frame being written (the reader stops at a truncated last record).
        self._file: BinaryIO = path.open("wb", buffering=0)
        self._file.write(msgpack.packb(header, use_bin_type=True))
        self._pending: dict[int, _PendingFrame] = {}
        self._written: set[int] = set()

    def on_packet(self, packet: RtpPacket, codec: RTCRtpCodecParameters, arrival: float) -> None:
        if codec.name == "VP8":
            self._on_video(packet, codec, arrival)
        else:
            self._write(arrival, packet.timestamp, True, packet.payload)

    def _on_video(self, packet: RtpPacket, codec: RTCRtpCodecParameters, arrival: float) -> None:
        ts = packet.timestamp
        if ts in self._written:
            return
        frame = self._pending.get(ts)
        if frame is None:
            frame = self._pending[ts] = _PendingFrame(arrival)
        try:
            frame.packets[packet.sequence_number] = depayload(codec, packet.payload)
        except ValueError:
            return
        if packet.payload and packet.payload[0] & 0x10 and not packet.payload[0] & 0x07:
            frame.first = packet.sequence_number
            frame.key = is_keyframe_start(packet.payload)
        if packet.marker:
            frame.last = packet.sequence_number
        frame.arrival = max(frame.arrival, arrival)
        if frame.complete():
            assert frame.first is not None
            data = b"".join(
                frame.packets[(frame.first + i) % (1 << 16)] for i in range(len(frame.packets))
            )
            del self._pending[ts]
            self._written.add(ts)
            if len(self._written) > 4 * MAX_PENDING_FRAMES:
                self._written = set(sorted(self._written)[-MAX_PENDING_FRAMES:])
            self._write(frame.arrival, ts, frame.key, data)
        while len(self._pending) > MAX_PENDING_FRAMES:
            oldest = min(self._pending, key=lambda t: self._pending[t].arrival)
            del self._pending[oldest]
            self.dropped += 1

    def _write(self, arrival: float, timestamp: int, key: bool, data: bytes) -> None:
        arrival_ms = round((arrival - self._session_start) * 1000)
        if self.first_arrival_ms is None:
            self.first_arrival_ms = arrival_ms
        self._file.write(msgpack.packb([arrival_ms, timestamp, key, data], use_bin_type=True))
        self.frames += 1

    def close(self) -> None:
        self._file.close()
