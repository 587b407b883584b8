"""Media bench: RTP forwarding worker vs aiortc's MediaRelay, same job, same run.

One publisher sends 3 Mbit/s side-by-side stereo VP8 (2560x720, pre-encoded
once, so the publisher costs no encoding); it is forwarded to 1, 4 and 16
subscribers, first by the media worker (``media.worker``), then by a process
using aiortc's ``MediaRelay`` (decode once, encode per subscriber). For each
we report the forwarding process's CPU (percent of one core) and the frame
latency through it: publisher's send to subscriber's arrival of a frame's last
packet, on loopback. A first row measures a direct publisher-to-subscriber
connection; what a forwarder adds is roughly its figure minus that one.
Subscribers here do not decode (they only time packets) so they do not steal
the two cores from the process being measured; the last column is the CPU of
this process (publisher and all subscribers), which on a loaded 2-core machine
can itself become the bottleneck at 16 subscribers.

Frames are matched across the relay's re-encoding by their RTP timestamps:
the publisher's frame intervals vary pseudo-randomly, aiortc keeps intervals,
so the one constant offset between input and output timestamps is the most
common difference.

    python bench/media_bench.py [--subscribers 1,4,16] [--seconds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import fractions
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import av
import numpy as np
import psutil
from aiortc import MediaStreamTrack, RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.contrib.media import MediaRelay
from aiortc.rtp import RtpPacket, is_rtcp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from media.aiortc_internals import use_host_addresses  # noqa: E402
from media.control import FrameDecoder, encode_frame  # noqa: E402

WIDTH, HEIGHT, BITRATE, GOP = 2560, 720, 3_000_000, 30
#: Grain added so the encoder spends about BITRATE on the clip.
NOISE = 6
VIDEO_CLOCK = 90000


def encode_clip(frames: int) -> list[tuple[bytes, bool, int]]:
    """(data, keyframe, pts increment) for a looping clip, encoded once."""
    enc = av.CodecContext.create("libvpx", "w")
    enc.width, enc.height, enc.pix_fmt = WIDTH, HEIGHT, "yuv420p"
    enc.time_base = fractions.Fraction(1, VIDEO_CLOCK)
    enc.bit_rate = BITRATE
    enc.gop_size = GOP
    enc.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0"}
    rng = np.random.default_rng(1)
    y, x = np.mgrid[0:HEIGHT, 0:WIDTH]
    base = ((x // 4 + y // 3) % 256).astype(np.uint8)
    out: list[tuple[bytes, bool, int]] = []
    pts = 0
    for i in range(frames):
        img = np.stack([np.roll(base, i * 6, axis=1), base, np.roll(base, -i * 6, axis=1)], axis=-1)
        noise = rng.integers(0, NOISE, img.shape, dtype=np.uint8)
        frame = av.VideoFrame.from_ndarray(img + noise, format="rgb24").reformat(format="yuv420p")
        frame.pts, frame.time_base = pts, enc.time_base
        step = VIDEO_CLOCK // 30
        pts += step
        out += [(bytes(p), bool(p.is_keyframe), step) for p in enc.encode(frame)]
    return out


class ClipTrack(MediaStreamTrack):
    """Sends pre-encoded VP8 packets in real time; aiortc only packetizes them."""

    kind = "video"

    def __init__(self, clip: list[tuple[bytes, bool, int]]) -> None:
        super().__init__()
        self._clip = clip
        self._i = 0
        self._pts = 0
        self._start: float | None = None
        self._jitter = random.Random(2)

    async def recv(self) -> av.Packet:
        if self._start is None:
            self._start = time.monotonic()
        await asyncio.sleep(max(self._start + self._pts / VIDEO_CLOCK - time.monotonic(), 0))
        data, _, step = self._clip[self._i % len(self._clip)]
        packet = av.Packet(data)
        packet.pts, packet.time_base = self._pts, fractions.Fraction(1, VIDEO_CLOCK)
        self._i += 1
        # Jittered, never-repeating intervals make every stretch of timestamps unique.
        self._pts += step + self._jitter.randrange(-300, 301)
        return packet


def new_pc() -> RTCPeerConnection:
    return RTCPeerConnection(RTCConfiguration(iceServers=[]))


class FrameClock:
    """Wall time of each frame's last packet, by RTP timestamp."""

    def __init__(self) -> None:
        self.last: dict[int, float] = {}

    def note(self, packet: RtpPacket) -> None:
        if packet.marker:
            self.last[packet.timestamp] = time.perf_counter()


def tap_publisher(pc: RTCPeerConnection, clock: FrameClock) -> None:
    transport = pc.getSenders()[0].transport
    send = transport._send_rtp

    async def capture(data: bytes) -> None:
        await send(data)
        if not is_rtcp(data):
            clock.note(RtpPacket.parse(data))

    transport._send_rtp = capture  # type: ignore[method-assign]


def tap_subscriber(pc: RTCPeerConnection, clock: FrameClock) -> None:
    for transceiver in pc.getTransceivers():

        async def arrive(packet: RtpPacket, arrival_time_ms: int) -> None:
            clock.note(packet)

        transceiver.receiver._handle_rtp_packet = arrive  # type: ignore[method-assign]


def frame_latencies(sent: dict[int, float], received: dict[int, float]) -> list[float]:
    offsets = collections.Counter((r - s) % (1 << 32) for r in list(received)[:60] for s in sent)
    if not offsets:
        return []
    offset = offsets.most_common(1)[0][0]
    out = []
    for ts, at in received.items():
        sent_at = sent.get((ts - offset) % (1 << 32))
        if sent_at is not None:
            out.append((at - sent_at) * 1000)
    return out


# -- the two forwarders under test -------------------------------------------


class WorkerForwarder:
    name = "rtp-forwarder"

    async def start(self) -> int:
        self._dir = tempfile.TemporaryDirectory()
        path = os.path.join(self._dir.name, "c.sock")
        connected: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._server = await asyncio.start_unix_server(
            lambda r, w: connected.set_result((r, w)), path
        )
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "media.worker",
            "--control",
            path,
            "--ice-host",
            "127.0.0.1",
            cwd=ROOT,
        )
        self._reader, self._writer = await asyncio.wait_for(connected, 20)
        self._decoder = FrameDecoder()
        self._ids = 0
        return self.proc.pid

    async def _call(self, msg: dict[str, Any], member: str, role: str) -> dict[str, Any]:
        self._ids += 1
        self._writer.write(
            encode_frame(
                {
                    "id": self._ids,
                    "cmd": "signal",
                    "room": "bench",
                    "member": member,
                    "role": role,
                    "msg": msg,
                }
            )
        )
        while True:
            for reply in self._decoder.messages():
                if reply.get("id") == self._ids:
                    return dict(reply["replies"][0])
            self._decoder.receive_data(await asyncio.wait_for(self._reader.read(65536), 20))

    async def publish(self, offer: str, mid: str) -> str:
        reply = await self._call(
            {
                "op": "publish",
                "pc": "pub",
                "sdp": offer,
                "tracks": [{"mid": mid, "kind": "video", "layout": "side-by-side"}],
            },
            "presenter",
            "presenter",
        )
        return str(reply["sdp"])

    async def subscribe(self, i: int) -> tuple[str, Any]:
        reply = await self._call({"op": "subscribe", "pc": f"s{i}"}, f"viewer{i}", "spectator")
        return str(reply["sdp"]), i

    async def answer(self, handle: Any, sdp: str) -> None:
        await self._call(
            {"op": "answer", "pc": f"s{handle}", "sdp": sdp}, f"viewer{handle}", "spectator"
        )

    async def stop(self) -> None:
        self._writer.close()
        await asyncio.wait_for(self.proc.wait(), 20)
        self._server.close()
        self._dir.cleanup()


class RelayForwarder(WorkerForwarder):
    """The same job done by aiortc's MediaRelay in its own process."""

    name = "aiortc-MediaRelay"

    async def start(self) -> int:
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            str(Path(__file__).resolve()),
            "--relay-server",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            cwd=ROOT,
        )
        return self.proc.pid

    async def _ask(self, **msg: Any) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(msg).encode() + b"\n")
        line = await asyncio.wait_for(self.proc.stdout.readline(), 30)
        return dict(json.loads(line))

    async def publish(self, offer: str, mid: str) -> str:
        return str((await self._ask(op="publish", sdp=offer))["sdp"])

    async def subscribe(self, i: int) -> tuple[str, Any]:
        return str((await self._ask(op="subscribe", id=i))["sdp"]), i

    async def answer(self, handle: Any, sdp: str) -> None:
        await self._ask(op="answer", id=handle, sdp=sdp)

    async def stop(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        await asyncio.wait_for(self.proc.wait(), 20)


async def relay_server() -> None:
    """Child process: publish/subscribe over JSON lines, forwarding via MediaRelay."""
    use_host_addresses(["127.0.0.1"])
    relay = MediaRelay()
    source: asyncio.Future[MediaStreamTrack] = asyncio.get_running_loop().create_future()
    pcs: dict[int, RTCPeerConnection] = {}
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    publisher = new_pc()
    publisher.on("track", lambda track: source.set_result(track))
    while line := await reader.readline():
        msg = json.loads(line)
        reply: dict[str, Any] = {}
        if msg["op"] == "publish":
            await publisher.setRemoteDescription(RTCSessionDescription(msg["sdp"], "offer"))
            await publisher.setLocalDescription(await publisher.createAnswer())
            reply = {"sdp": publisher.localDescription.sdp}
        elif msg["op"] == "subscribe":
            pc = pcs[msg["id"]] = new_pc()
            pc.addTrack(relay.subscribe(await source, buffered=False))
            await pc.setLocalDescription(await pc.createOffer())
            reply = {"sdp": pc.localDescription.sdp}
        elif msg["op"] == "answer":
            await pcs[msg["id"]].setRemoteDescription(RTCSessionDescription(msg["sdp"], "answer"))
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()
    for pc in [publisher, *pcs.values()]:
        await pc.close()


# -- one measurement -----------------------------------------------------------


async def measure(
    forwarder: WorkerForwarder,
    clip: list[tuple[bytes, bool, int]],
    subscribers: int,
    warmup: float,
    seconds: float,
) -> dict[str, Any]:
    pid = await forwarder.start()
    pub = new_pc()
    pub.addTransceiver(ClipTrack(clip), direction="sendonly")
    await pub.setLocalDescription(await pub.createOffer())
    sent = FrameClock()
    tap_publisher(pub, sent)
    answer = await forwarder.publish(pub.localDescription.sdp, pub.getTransceivers()[0].mid)
    await pub.setRemoteDescription(RTCSessionDescription(answer, "answer"))
    await asyncio.sleep(0.5)
    subs = []
    for i in range(subscribers):
        offer, handle = await forwarder.subscribe(i)
        pc = new_pc()
        await pc.setRemoteDescription(RTCSessionDescription(offer, "offer"))
        clock = FrameClock()
        tap_subscriber(pc, clock)
        await pc.setLocalDescription(await pc.createAnswer())
        await forwarder.answer(handle, pc.localDescription.sdp)
        subs.append((pc, clock))
    await asyncio.sleep(warmup)
    proc, me = psutil.Process(pid), psutil.Process()
    cpu0, me0, t0 = proc.cpu_times(), me.cpu_times(), time.perf_counter()
    for _, clock in subs:
        clock.last.clear()
    window_start = time.perf_counter()
    await asyncio.sleep(seconds)
    cpu1, me1, t1 = proc.cpu_times(), me.cpu_times(), time.perf_counter()
    latencies: list[float] = []
    delivered = 0
    for _, clock in subs:
        got = {ts: at for ts, at in clock.last.items() if at >= window_start}
        delivered += len(got)
        latencies += frame_latencies(sent.last, got)
    for pc, _ in subs:
        await pc.close()
    await pub.close()
    await forwarder.stop()
    busy = (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system)
    clients = (me1.user - me0.user) + (me1.system - me0.system)
    latencies.sort()
    return {
        "forwarder": forwarder.name,
        "subscribers": subscribers,
        "cpu_pct": 100 * busy / (t1 - t0),
        "clients_cpu_pct": 100 * clients / (t1 - t0),
        "fps_per_sub": delivered / subscribers / seconds,
        "p50_ms": statistics.median(latencies) if latencies else float("nan"),
        "p95_ms": latencies[int(0.95 * (len(latencies) - 1))] if latencies else float("nan"),
    }


async def measure_direct(
    clip: list[tuple[bytes, bool, int]], warmup: float, seconds: float
) -> tuple[float, float]:
    """Latency of one direct publisher-to-subscriber hop: the floor both forwarders
    pay twice (publisher to forwarder, forwarder to subscriber)."""
    pub, sub = new_pc(), new_pc()
    pub.addTransceiver(ClipTrack(clip), direction="sendonly")
    await pub.setLocalDescription(await pub.createOffer())
    sent, got = FrameClock(), FrameClock()
    tap_publisher(pub, sent)
    await sub.setRemoteDescription(pub.localDescription)
    tap_subscriber(sub, got)
    await sub.setLocalDescription(await sub.createAnswer())
    await pub.setRemoteDescription(sub.localDescription)
    await asyncio.sleep(warmup)
    got.last.clear()
    await asyncio.sleep(seconds)
    latencies = sorted(frame_latencies(sent.last, dict(got.last)))
    await sub.close()
    await pub.close()
    return statistics.median(latencies), latencies[int(0.95 * (len(latencies) - 1))]


async def bench(args: argparse.Namespace) -> None:
    use_host_addresses(["127.0.0.1"])
    clip = encode_clip(GOP * 3)
    seconds_of_clip = sum(step for _, _, step in clip) / VIDEO_CLOCK
    mbps = sum(len(d) for d, _, _ in clip) * 8 / seconds_of_clip / 1e6
    print(
        f"publisher: {WIDTH}x{HEIGHT} side-by-side VP8, {mbps:.2f} Mbit/s, "
        f"{len(clip) / seconds_of_clip:.1f} fps, keyframe every {GOP} frames"
    )
    print(
        f"{'forwarder':<18} {'subs':>4} {'CPU %core':>10} {'fps/sub':>8} "
        f"{'p50 ms':>8} {'p95 ms':>8} {'clients %core':>14}"
    )
    p50, p95 = await measure_direct(clip, args.warmup, args.seconds)
    print(f"{'direct, no hop':<18} {1:>4} {'-':>10} {'-':>8} {p50:>8.1f} {p95:>8.1f}")
    for n in args.subscribers:
        for forwarder in (WorkerForwarder(), RelayForwarder()):
            r = await measure(forwarder, clip, n, args.warmup, args.seconds)
            print(
                f"{r['forwarder']:<18} {n:>4} {r['cpu_pct']:>10.1f} {r['fps_per_sub']:>8.1f} "
                f"{r['p50_ms']:>8.1f} {r['p95_ms']:>8.1f} {r['clients_cpu_pct']:>14.1f}",
                flush=True,
            )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument(
        "--subscribers", default="1,4,16", type=lambda s: [int(x) for x in s.split(",")]
    )
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--relay-server", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    asyncio.run(relay_server() if args.relay_server else bench(args))


if __name__ == "__main__":
    main()
