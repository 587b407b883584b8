"""Test harness: a real media worker process and real aiortc peers over loopback.

The test process plays the supervisor's part on the control socket (asyncio
here; the trio supervisor has its own tests) and the clients' part with aiortc
peer connections whose RTP is observed at the packet level, so payloads can be
compared byte for byte. Client-side observation reads aiortc receiver/sender
hooks; that is test instrumentation, not part of the worker.
"""

from __future__ import annotations

import array
import asyncio
import fractions
import hashlib
import itertools
import math
import os
import random
import resource
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import av
import psutil
from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.rtp import RtpPacket, is_rtcp
from aiortc.sdp import SessionDescription

from media.aiortc_internals import use_host_addresses
from media.control import FrameDecoder, encode_frame

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 20.0

use_host_addresses(["127.0.0.1"])


class Signaller(Protocol):
    """Whatever relays a client's rtc messages: the worker here, the supervisor."""

    async def signal(
        self, room: str, member: str, role: str, msg: dict[str, Any]
    ) -> list[dict[str, Any]]: ...


class WorkerProcess:
    """Spawns ``python -m media.worker`` and speaks its control protocol."""

    def __init__(self, *args: str, open_files: int | None = None) -> None:
        """`args` are extra command-line arguments of the worker; `open_files` caps the
        descriptors it may hold (RLIMIT_NOFILE, soft and hard)."""
        self._args = args
        self._open_files = open_files
        self.log: list[str] = []
        """What the worker wrote to stderr (also passed on to ours)."""
        self._dir = tempfile.TemporaryDirectory(prefix="grmedia")
        self.path = os.path.join(self._dir.name, "w.sock")
        self.events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.proc: asyncio.subprocess.Process | None = None

    async def __aenter__(self) -> WorkerProcess:
        connected: asyncio.Future[tuple[asyncio.StreamReader, asyncio.StreamWriter]]
        connected = asyncio.get_running_loop().create_future()

        async def on_connect(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            connected.set_result((r, w))

        self._server = await asyncio.start_unix_server(on_connect, self.path)
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        limit = self._open_files

        def cap_files() -> None:
            if limit is not None:
                resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))

        self.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "media.worker",
            "--control",
            self.path,
            "--ice-host",
            "127.0.0.1",
            *self._args,
            env=env,
            stderr=asyncio.subprocess.PIPE,
            preexec_fn=cap_files,
        )
        self._log_task = asyncio.ensure_future(self._read_log())
        self.reader, self.writer = await asyncio.wait_for(connected, TIMEOUT)
        self._read_task = asyncio.ensure_future(self._read())
        hello = await asyncio.wait_for(self.events.get(), TIMEOUT)
        assert hello["ev"] == "hello"
        return self

    async def _read(self) -> None:
        decoder = FrameDecoder()
        while data := await self.reader.read(65536):
            decoder.receive_data(data)
            for message in decoder.messages():
                if "id" in message and message["id"] in self._pending:
                    self._pending.pop(message["id"]).set_result(message)
                else:
                    await self.events.put(message)

    async def _read_log(self) -> None:
        assert self.proc is not None and self.proc.stderr is not None
        while line := await self.proc.stderr.readline():
            text = line.decode(errors="replace")
            self.log.append(text)
            sys.stderr.write(text)

    def udp_sockets(self) -> int:
        """UDP sockets the worker holds now (each pc's ICE sockets)."""
        assert self.proc is not None
        return len(psutil.Process(self.proc.pid).net_connections(kind="udp"))

    async def request(self, cmd: str, **fields: Any) -> dict[str, Any]:
        request_id = next(self._ids)
        future = self._pending[request_id] = asyncio.get_running_loop().create_future()
        self.writer.write(encode_frame({"id": request_id, "cmd": cmd, **fields}))
        await self.writer.drain()
        return await asyncio.wait_for(future, TIMEOUT)

    async def signal(
        self, room: str, member: str, role: str, msg: dict[str, Any]
    ) -> list[dict[str, Any]]:
        reply = await self.request("signal", room=room, member=member, role=role, msg=msg)
        assert reply["ok"], reply
        return list(reply["replies"])

    async def room_events(self, op: str, timeout: float = TIMEOUT) -> dict[str, Any]:
        """Next event of a given rtc op, skipping others."""
        deadline = time.monotonic() + timeout
        while True:
            event = await asyncio.wait_for(
                self.events.get(), max(deadline - time.monotonic(), 0.01)
            )
            if event.get("msg", {}).get("op") == op:
                return event

    async def __aexit__(self, *exc: object) -> None:
        self.writer.close()
        assert self.proc is not None
        try:
            # Closing the control socket is all it takes for the worker to exit.
            await asyncio.wait_for(self.proc.wait(), 10)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()
            raise AssertionError("worker did not exit when its control socket closed") from None
        self._read_task.cancel()
        await self._log_task
        self._server.close()
        self._dir.cleanup()


class ToneTrack(MediaStreamTrack):
    """20 ms audio frames: a tone, so the level extension says 'speaking'."""

    kind = "audio"

    def __init__(self) -> None:
        super().__init__()
        self._pts = 0
        self._start: float | None = None

    async def recv(self) -> av.AudioFrame:
        if self._start is None:
            self._start = time.monotonic()
        await asyncio.sleep(max(self._start + self._pts / 48000 - time.monotonic(), 0))
        samples = array.array("h")
        for n in range(960):
            value = int(12000 * math.sin(2 * math.pi * 440 * (n + self._pts) / 48000))
            samples.extend((value, value))
        frame = av.AudioFrame(format="s16", layout="stereo", samples=960)
        frame.planes[0].update(samples.tobytes())
        frame.sample_rate = 48000
        frame.pts = self._pts
        frame.time_base = fractions.Fraction(1, 48000)
        self._pts += 960
        return frame


class StereoTrack(MediaStreamTrack):
    """Side-by-side stereo video: left and right eyes packed in one frame."""

    kind = "video"

    def __init__(self, width: int = 320, height: int = 120, fps: int = 30) -> None:
        super().__init__()
        self.width, self.height, self.fps = width, height, fps
        self.frames = 0
        self._start: float | None = None

    async def recv(self) -> av.VideoFrame:
        if self._start is None:
            self._start = time.monotonic()
        await asyncio.sleep(max(self._start + self.frames / self.fps - time.monotonic(), 0))
        frame = av.VideoFrame(self.width, self.height, "yuv420p")
        luma, *chroma = frame.planes
        half = self.width // 2
        x = (self.frames * 4) % (half - 12)
        row = bytearray(luma.line_size)
        row[x : x + 8] = b"\xff" * 8  # a bar in the left eye...
        row[half + x + 4 : half + x + 12] = b"\xa0" * 8  # ...and, shifted, in the right
        luma.update(bytes(row) * self.height)
        for plane in chroma:
            plane.update(b"\x80" * plane.buffer_size)
        frame.pts = self.frames * (90000 // self.fps)
        frame.time_base = fractions.Fraction(1, 90000)
        self.frames += 1
        return frame


def process_alive(pid: int) -> bool:
    """Whether a process is running; a zombie, which still answers kill(0), is gone."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def new_pc() -> RTCPeerConnection:
    return RTCPeerConnection(RTCConfiguration(iceServers=[]))


async def offer_sdp(audio: bool = True, video: bool = False) -> tuple[str, list[dict[str, Any]]]:
    """A client's publish offer (sendonly m-lines, no media) and its track announcements;
    its pc is closed at once, so only what the worker makes of it counts."""
    pc = new_pc()
    try:
        if audio:
            pc.addTransceiver("audio", direction="sendonly")
        if video:
            pc.addTransceiver("video", direction="sendonly")
        await pc.setLocalDescription(await pc.createOffer())
        tracks = [
            {
                "mid": t.mid,
                "kind": t.kind,
                "layout": "side-by-side" if t.kind == "video" else "mono",
            }
            for t in pc.getTransceivers()
        ]
        return pc.localDescription.sdp, tracks
    finally:
        await pc.close()


def frame_hashes(packets: list[tuple[int, int, bool, bytes]], kind: str) -> list[str]:
    """Hash complete frames: payloads of one timestamp, in sequence order, joined."""
    if kind == "audio":
        return [hashlib.sha256(p[3]).hexdigest() for p in packets]
    by_ts: dict[int, dict[int, tuple[bool, bytes]]] = defaultdict(dict)
    for seq, ts, marker, payload in packets:
        by_ts[ts][seq] = (marker, payload)
    hashes = []
    for parts in by_ts.values():
        seqs = sorted(parts)
        first = seqs[0]
        if seqs != list(range(first, first + len(seqs))) or not parts[seqs[-1]][0]:
            continue
        if not parts[first][1][0] & 0x10:  # not the start of the frame
            continue
        hashes.append(hashlib.sha256(b"".join(parts[s][1] for s in seqs)).hexdigest())
    return hashes


@dataclass
class Publisher:
    pc: RTCPeerConnection
    tracks: dict[str, str]  # kind -> track id
    sent: dict[str, list[tuple[int, int, bool, bytes]]] = field(
        default_factory=lambda: defaultdict(list)
    )
    video: StereoTrack | None = None
    feedback: list[Any] = field(default_factory=list)  # RTCP the publisher's senders got


async def publish(
    worker: Signaller,
    room: str,
    member: str,
    role: str,
    audio: bool = True,
    video: bool = True,
    pc_id: str = "pub",
) -> Publisher:
    pc = new_pc()
    announced = []
    video_track = None
    if audio:
        pc.addTransceiver(ToneTrack(), direction="sendonly")
    if video:
        video_track = StereoTrack()
        pc.addTransceiver(video_track, direction="sendonly")
    await pc.setLocalDescription(await pc.createOffer())
    for t in pc.getTransceivers():
        layout = "side-by-side" if t.kind == "video" else "mono"
        announced.append({"mid": t.mid, "kind": t.kind, "layout": layout})
    replies = await worker.signal(
        room,
        member,
        role,
        {"op": "publish", "pc": pc_id, "sdp": pc.localDescription.sdp, "tracks": announced},
    )
    (reply,) = replies
    assert reply["op"] == "answer", reply
    publisher = Publisher(pc, {t["kind"]: t["track"] for t in reply["tracks"]}, video=video_track)
    ssrc_kind = {s._ssrc: s.kind for s in pc.getSenders()}
    transport = pc.getSenders()[0].transport
    send_rtp = transport._send_rtp

    async def capture(data: bytes) -> None:
        if not is_rtcp(data):
            packet = RtpPacket.parse(data)
            kind = ssrc_kind.get(packet.ssrc)
            if kind is not None:
                publisher.sent[kind].append(
                    (packet.sequence_number, packet.timestamp, bool(packet.marker), packet.payload)
                )
        await send_rtp(data)

    transport._send_rtp = capture  # type: ignore[method-assign]
    for sender in pc.getSenders():
        _observe_rtcp(sender, publisher.feedback)
    await pc.setRemoteDescription(RTCSessionDescription(reply["sdp"], "answer"))
    return publisher


def _observe_rtcp(endpoint: Any, into: list[Any]) -> None:
    handle = endpoint._handle_rtcp_packet

    async def observe(packet: Any) -> None:
        into.append(packet)
        await handle(packet)

    endpoint._handle_rtcp_packet = observe


@dataclass
class Received:
    kind: str
    packets: list[tuple[int, int, bool, bytes]] = field(default_factory=list)
    rtcp: list[Any] = field(default_factory=list)
    dropped: set[int] = field(default_factory=set)
    recovered: set[int] = field(default_factory=set)
    first_packet_at: float | None = None


@dataclass
class Subscriber:
    pc: RTCPeerConnection
    received: dict[str, Received]  # track id -> observations
    tracks: dict[str, MediaStreamTrack] = field(default_factory=dict)  # track id -> remote track
    subscribed_at: float = 0.0
    mid_track: dict[str, str] = field(default_factory=dict)


async def subscribe(
    worker: Signaller,
    room: str,
    member: str,
    role: str = "spectator",
    tracks: list[str] | None = None,
    loss: float = 0.0,
    pc_id: str = "sub",
    seed: int = 1,
) -> Subscriber:
    msg: dict[str, Any] = {"op": "subscribe", "pc": pc_id}
    if tracks is not None:
        msg["tracks"] = tracks
    subscribed_at = time.monotonic()
    (offer,) = await worker.signal(room, member, role, msg)
    assert offer["op"] == "offer", offer
    pc = new_pc()
    mid_track = {t["mid"]: t["track"] for t in offer["tracks"]}
    subscriber = Subscriber(pc, {}, subscribed_at=subscribed_at, mid_track=mid_track)

    @pc.on("track")
    def on_track(track: MediaStreamTrack) -> None:
        for t in pc.getTransceivers():
            if t.receiver.track is track:
                subscriber.tracks[subscriber.mid_track[t.mid]] = track

    await pc.setRemoteDescription(RTCSessionDescription(offer["sdp"], "offer"))
    rtx_types = {
        c.payloadType
        for m in SessionDescription.parse(offer["sdp"]).media
        for c in m.rtp.codecs
        if c.mimeType.lower() == "video/rtx"
    }
    rng = random.Random(seed)
    for t in pc.getTransceivers():
        received = subscriber.received[mid_track[t.mid]] = Received(t.kind)
        _observe(t.receiver, received, rtx_types, loss, rng)
        _observe_rtcp(t.receiver, received.rtcp)
    await pc.setLocalDescription(await pc.createAnswer())
    (ack,) = await worker.signal(
        room, member, role, {"op": "answer", "pc": pc_id, "sdp": pc.localDescription.sdp}
    )
    assert ack["op"] == "ack", ack
    return subscriber


async def resubscribe(
    worker: Signaller,
    sub: Subscriber,
    room: str,
    member: str,
    role: str = "spectator",
    pc_id: str = "sub",
) -> list[str]:
    """Add the room's new tracks to an existing subscription (a worker re-offer)."""
    (offer,) = await worker.signal(room, member, role, {"op": "subscribe", "pc": pc_id})
    assert offer["op"] == "offer", offer
    mid_track = {t["mid"]: t["track"] for t in offer["tracks"]}
    sub.mid_track.update(mid_track)
    before = {t.mid for t in sub.pc.getTransceivers()}
    await sub.pc.setRemoteDescription(RTCSessionDescription(offer["sdp"], "offer"))
    rng = random.Random(0)
    added = []
    for t in sub.pc.getTransceivers():
        if t.mid not in before:
            track_id = mid_track[t.mid]
            received = sub.received[track_id] = Received(t.kind)
            _observe(t.receiver, received, set(), 0.0, rng)
            added.append(track_id)
    await sub.pc.setLocalDescription(await sub.pc.createAnswer())
    answer = {"op": "answer", "pc": pc_id, "sdp": sub.pc.localDescription.sdp}
    (ack,) = await worker.signal(room, member, role, answer)
    assert ack["op"] == "ack", ack
    return added


def _observe(
    receiver: Any, received: Received, rtx_types: set[int], loss: float, rng: random.Random
) -> None:
    handle = receiver._handle_rtp_packet

    async def observe(packet: RtpPacket, arrival_time_ms: int) -> None:
        if received.first_packet_at is None:
            received.first_packet_at = time.monotonic()
        if packet.payload_type in rtx_types:
            if len(packet.payload) >= 2:
                original = int.from_bytes(packet.payload[:2], "big")
                if original in received.dropped:
                    received.recovered.add(original)
                    received.packets.append(
                        (original, packet.timestamp, bool(packet.marker), packet.payload[2:])
                    )
        else:
            if loss and rng.random() < loss:
                received.dropped.add(packet.sequence_number)
                return
            received.packets.append(
                (packet.sequence_number, packet.timestamp, bool(packet.marker), packet.payload)
            )
        await handle(packet, arrival_time_ms)

    receiver._handle_rtp_packet = observe


async def wait_for(predicate: Any, timeout: float = TIMEOUT, interval: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(interval)
