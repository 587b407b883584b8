"""One published track fanned out to its subscribers at RTP level.

A :class:`TrackSource` receives the publisher's packets (through a
``ReceiverTap``) and hands each to every :class:`TrackOutput`, which rewrites
the header for its subscriber and sends it through a ``SenderTap``. Feedback
flows back: keyframe requests are merged and throttled into one PLI to the
publisher, and subscribers' bandwidth estimates are combined (the minimum, so
the weakest link is served) into one REMB.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from aiortc import RTCRtpCodecParameters, RTCRtpTransceiver

from media.aiortc_internals import ReceiverTap, RtpPacket, SenderTap
from media.rewriter import RtpRewriter
from media.speaking import SpeakingDetector
from media.vp8 import is_keyframe_start

log = logging.getLogger(__name__)

#: At most one keyframe request to a publisher per this many seconds.
PLI_INTERVAL_S = 0.3
#: At most one combined REMB to a publisher per this many seconds.
REMB_INTERVAL_S = 1.0
#: A subscriber's estimate older than this no longer constrains the publisher.
REMB_MAX_AGE_S = 5.0

PacketHook = Callable[[RtpPacket, RTCRtpCodecParameters, float], None]


class TrackSource:
    def __init__(
        self,
        track_id: str,
        member_id: str,
        kind: str,
        layout: str,
        on_speaking: Callable[[TrackSource, bool], None],
    ) -> None:
        self.id = track_id
        self.member_id = member_id
        self.kind = kind
        self.layout = layout
        self.muted = False
        self.outputs: dict[int, TrackOutput] = {}
        self.tap: ReceiverTap | None = None
        self.media_ssrc: int | None = None
        self.packets = 0
        self.recorder: PacketHook | None = None
        self._on_speaking = on_speaking
        self._speaking = SpeakingDetector() if kind == "audio" else None
        self._sender_report: tuple[int, int] | None = None
        self._clock_rate = 90000 if kind == "video" else 48000
        self._last_pli = -1e9
        self._pli_pending = False
        self._rembs: dict[int, tuple[float, int]] = {}
        self._last_remb = -1e9
        self._tasks: set[asyncio.Task[None]] = set()

    def describe(self) -> dict[str, Any]:
        return {
            "track": self.id,
            "member": self.member_id,
            "kind": self.kind,
            "layout": self.layout,
            "muted": self.muted,
        }

    def on_sender_report(self, ssrc: int, ntp_timestamp: int, rtp_timestamp: int) -> None:
        self._sender_report = (ntp_timestamp, rtp_timestamp)

    def ntp_for(self, timestamp: int) -> int | None:
        """NTP time of a publisher RTP timestamp, from its last sender report.

        Forwarded sender reports carry this, so a subscriber's audio and video
        stay in sync exactly as the publisher stamped them.
        """
        if self._sender_report is None:
            return None
        ntp, rtp = self._sender_report
        delta = (timestamp - rtp) % (1 << 32)
        if delta >= 1 << 31:
            delta -= 1 << 32
        return (ntp + (delta << 32) // self._clock_rate) % (1 << 64)

    async def on_rtp(
        self, packet: RtpPacket, codec: RTCRtpCodecParameters, arrival_ms: int
    ) -> None:
        self.media_ssrc = packet.ssrc
        self._clock_rate = codec.clockRate
        self.packets += 1
        now = time.monotonic()
        if self.muted:
            return
        if self._speaking is not None:
            level = packet.extensions.audio_level
            changed = self._speaking.update(
                now, None if level is None else level[1], len(packet.payload)
            )
            if changed is not None:
                self._on_speaking(self, changed)
        if self.recorder is not None:
            try:
                self.recorder(packet, codec, time.time())
            except Exception:  # the recording is lost, never the forwarding
                log.exception("recording of track %s failed; it records no further", self.id)
                self.recorder = None
        keyframe = self.kind == "video" and is_keyframe_start(packet.payload)
        ntp = self.ntp_for(packet.timestamp)
        for output in list(self.outputs.values()):
            # Each copy is a fault boundary: this runs inside the publisher's receive
            # loop, which one broken subscriber must never end for everyone.
            try:
                await output.forward(packet, keyframe, ntp)
            except Exception:
                output.failed += 1
                if output.failed == 1:
                    log.exception("forwarding track %s to output %d failed", self.id, output.key)

    def set_muted(self, muted: bool) -> None:
        self.muted = muted
        for output in self.outputs.values():
            output.pause()
        if muted:
            self.stop_speaking()

    def check_silence(self, now: float) -> None:
        """Called every second: speaking ends after the hangover even if packets stop."""
        if self._speaking is not None and self._speaking.silence(now) is False:
            self._on_speaking(self, False)

    def stop_speaking(self) -> None:
        """The track went quiet for good (muted, closed): say so if it was speaking."""
        if self._speaking is not None and self._speaking.speaking:
            self._speaking.speaking = False
            self._on_speaking(self, False)

    def request_keyframe(self) -> None:
        """Ask the publisher for a keyframe, merging requests within the interval."""
        if self.kind != "video" or self._pli_pending:
            return
        wait = self._last_pli + PLI_INTERVAL_S - time.monotonic()
        self._pli_pending = True
        self._spawn(self._send_pli(max(wait, 0.0)))

    async def _send_pli(self, delay: float) -> None:
        if delay:
            await asyncio.sleep(delay)
        self._pli_pending = False
        self._last_pli = time.monotonic()
        if self.tap is not None and self.media_ssrc is not None:
            await self.tap.request_keyframe(self.media_ssrc)

    def on_remb(self, output_key: int, bitrate: int) -> None:
        now = time.monotonic()
        self._rembs[output_key] = (now, bitrate)
        if now - self._last_remb < REMB_INTERVAL_S or self.tap is None or self.media_ssrc is None:
            return
        fresh = [b for (t, b) in self._rembs.values() if now - t < REMB_MAX_AGE_S]
        if fresh:
            self._last_remb = now
            self._spawn(self.tap.send_remb(min(fresh), [self.media_ssrc]))

    def remove_output(self, key: int) -> None:
        self.outputs.pop(key, None)
        self._rembs.pop(key, None)

    def _spawn(self, coro: Any) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        self.outputs.clear()


class TrackOutput:
    """One subscriber's copy of one track."""

    def __init__(
        self, source: TrackSource, tap: SenderTap, key: int, transceiver: RTCRtpTransceiver
    ) -> None:
        self.source = source
        self.tap = tap
        self.key = key
        self.transceiver = transceiver
        self.forwarded = 0
        self.failed = 0
        self._rewriter: RtpRewriter | None = None
        self._waiting_keyframe = source.kind == "video"

    def pause(self) -> None:
        """Forwarding resumes with continuous numbering (and, for video, a keyframe)."""
        if self._rewriter is not None:
            self._rewriter.rebase()
        self._waiting_keyframe = self.source.kind == "video"

    @property
    def attached(self) -> bool:
        """Still fed by its track (false once the track is gone)."""
        return self.source.outputs.get(self.key) is self

    @property
    def live(self) -> bool:
        """Whether packets of the track should be going out now."""
        return self.tap.sending and not self.source.muted

    def restart(self) -> None:
        """Start again as a new subscriber would: fresh base, and a keyframe for video."""
        self.pause()
        self.source.request_keyframe()

    async def forward(self, packet: RtpPacket, keyframe_start: bool, ntp: int | None) -> None:
        codec = self.tap.codec
        if not self.tap.ready.is_set() or codec is None or codec.payloadType is None:
            return
        if self._waiting_keyframe:
            if not keyframe_start:
                self.source.request_keyframe()
                return
            self._waiting_keyframe = False
            if self._rewriter is not None:
                self._rewriter.rebase()
        if self._rewriter is None:
            self._rewriter = RtpRewriter(self.tap.ssrc, codec.payloadType)
        header = self._rewriter.rewrite(packet.sequence_number, packet.timestamp)
        if header is None:
            return
        out = RtpPacket(
            payload_type=header.payload_type,
            marker=packet.marker,
            sequence_number=header.sequence_number,
            timestamp=header.timestamp,
            ssrc=header.ssrc,
            payload=packet.payload,
        )
        out.extensions.audio_level = packet.extensions.audio_level
        if await self.tap.send(out, ntp):
            self.forwarded += 1
