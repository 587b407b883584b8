"""Remux a recorded ``.frames`` file into a standard container, never re-encoding.

VP8 goes into WebM, Opus into Ogg. PyAV muxes the recorded encoded frames as
packets; the codec context it attaches to the output stream is never given a
frame. This runs as its own short process (``python -m media.remux FILE...``,
started by the supervisor) so the forwarding worker never holds a codec.
"""

from __future__ import annotations

import argparse
import fractions
import json
import struct
import sys
from pathlib import Path
from typing import Any

import av
import msgpack

from media.vp8 import keyframe_size

#: Opus pre-skip at 48 kHz commonly used by encoders (RFC 7845 section 4.2).
OPUS_PRE_SKIP = 312


def opus_head(channels: int) -> bytes:
    return b"OpusHead" + struct.pack("<BBHIhB", 1, channels, OPUS_PRE_SKIP, 48000, 0, 0)


def read_frames(path: Path) -> tuple[dict[str, Any], list[list[Any]]]:
    with path.open("rb") as f:
        unpacker = msgpack.Unpacker(f, raw=False, max_buffer_size=64 << 20)
        header = next(unpacker)
        frames = [record for record in unpacker]
    return header, frames


def _unwrap(timestamps: list[int]) -> list[int]:
    out, base, last = [], 0, None
    for ts in timestamps:
        if last is not None and ts < last and last - ts > 1 << 31:
            base += 1 << 32
        last = ts
        out.append(ts + base)
    return out


def remux(path: Path) -> dict[str, Any] | None:
    """Write the container next to ``path``; return its manifest entry.

    None for a track that never carried a decodable frame: there is nothing to play,
    so no file is written and no entry is listed.
    """
    header, frames = read_frames(path)
    video = header["kind"] == "video"
    if video:
        # A decoder can only start at a keyframe.
        first_key = next((i for i, f in enumerate(frames) if f[2]), len(frames))
        frames = frames[first_key:]
    clock = int(header["clock_rate"])
    ticks = _unwrap([f[1] for f in frames])
    order = sorted(range(len(frames)), key=lambda i: ticks[i])
    out_path = path.with_suffix(".webm" if video else ".ogg")
    if not frames:
        return None
    entry: dict[str, Any] = {
        "track": header["track"],
        "member": header["member"],
        "kind": header["kind"],
        "layout": header.get("layout", "mono"),
        "file": out_path.name,
        "frames": len(frames),
        "offset_ms": frames[0][0],
        "duration_ms": 0,
    }
    time_base = fractions.Fraction(1, clock)
    container = av.open(str(out_path), "w", format="webm" if video else "ogg")
    try:
        if video:
            size = keyframe_size(frames[order[0]][3]) or (0, 0)
            video_stream = container.add_stream("libvpx")
            video_stream.width, video_stream.height = size
            video_stream.pix_fmt = "yuv420p"
            stream: av.stream.Stream = video_stream
        else:
            stream = container.add_stream("libopus", rate=48000)
            stream.codec_context.extradata = opus_head(int(header.get("channels", 2)))
        stream.time_base = time_base
        origin = ticks[order[0]]
        for i in order:
            _, _, key, data = frames[i]
            packet = av.Packet(data)
            packet.stream = stream
            packet.time_base = time_base
            packet.pts = packet.dts = ticks[i] - origin
            packet.is_keyframe = bool(key)
            container.mux(packet)
    finally:
        container.close()
    span = ticks[order[-1]] - origin
    frame_ticks = span // (len(frames) - 1) if len(frames) > 1 else (3000 if video else 960)
    entry["duration_ms"] = round((span + frame_ticks) * 1000 / clock)
    return entry


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("files", nargs="+", type=Path)
    args = parser.parse_args(argv)
    entries = (remux(p) for p in args.files)
    json.dump([e for e in entries if e is not None], sys.stdout)


if __name__ == "__main__":
    main()
