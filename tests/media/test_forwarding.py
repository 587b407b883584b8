"""Audio and side-by-side stereo video forwarded byte-identical to N subscribers."""

from __future__ import annotations

import asyncio

import pytest
from aiortc.rtp import RTCP_PSFB_APP, RTCP_PSFB_PLI, RtcpPsfbPacket, RtcpSrPacket, unpack_remb_fci

from tests.media.harness import (
    WorkerProcess,
    frame_hashes,
    publish,
    resubscribe,
    subscribe,
    wait_for,
)

pytestmark = pytest.mark.slow


def test_audio_and_stereo_video_reach_subscribers_byte_identical() -> None:
    async def scenario() -> None:
        async with WorkerProcess() as worker:
            publisher = await publish(worker, "r1", "alice", "presenter")
            subscribers = [
                await subscribe(worker, "r1", f"s{i}", pc_id=f"sub{i}") for i in range(3)
            ]
            for sub in subscribers:
                for track_id in publisher.tracks.values():
                    await wait_for(lambda s=sub, t=track_id: len(s.received[t].packets) > 60)
            # Let in-flight packets land before comparing.
            await asyncio.sleep(0.3)
            sent = {k: set(frame_hashes(v, k)) for k, v in publisher.sent.items()}
            for sub in subscribers:
                for kind, track_id in publisher.tracks.items():
                    got = frame_hashes(sub.received[track_id].packets, kind)
                    assert len(got) > 10, (kind, len(got))
                    assert set(got) <= sent[kind], kind
            speaking = await worker.room_events("speaking")
            assert speaking["room"] == "r1" and speaking["member"] is None
            assert speaking["msg"]["member"] == "alice" and speaking["msg"]["speaking"] is True
            stats = await worker.request("stats")
            assert stats["encoders"] == 0 and stats["decoders"] == 0, stats
            assert stats["outputs"] == 6
            # Feedback reached the publisher: keyframe requests (new subscribers)
            # and one combined bandwidth estimate for its video.
            video_ssrc = next(s._ssrc for s in publisher.pc.getSenders() if s.kind == "video")
            await wait_for(lambda: _remb_for(publisher.feedback, video_ssrc), timeout=15)
            assert any(
                isinstance(p, RtcpPsfbPacket) and p.fmt == RTCP_PSFB_PLI for p in publisher.feedback
            )
            # Sender reports a subscriber gets describe the stream it gets.
            sub = subscribers[0]
            video_received = sub.received[publisher.tracks["video"]]
            await wait_for(lambda: any(isinstance(p, RtcpSrPacket) for p in video_received.rtcp))
            report = next(p for p in video_received.rtcp if isinstance(p, RtcpSrPacket))
            stamps = [ts for _, ts, _, _ in video_received.packets]
            assert min(stamps) - 90000 <= report.sender_info.rtp_timestamp <= max(stamps) + 90000
            # The subscribers' aiortc stacks decode what they got: it is real VP8.
            video = subscribers[0].tracks[publisher.tracks["video"]]
            frame = await asyncio.wait_for(video.recv(), 10)
            assert (frame.width, frame.height) == (320, 120)
            for sub in subscribers:
                await sub.pc.close()
            await publisher.pc.close()

    asyncio.run(scenario())


def _remb_for(feedback: list[object], ssrc: int) -> bool:
    for packet in feedback:
        if isinstance(packet, RtcpPsfbPacket) and packet.fmt == RTCP_PSFB_APP:
            bitrate, ssrcs = unpack_remb_fci(packet.fci)
            if ssrc in ssrcs and bitrate > 0:
                return True
    return False


def test_new_tracks_join_an_existing_subscription() -> None:
    async def scenario() -> None:
        async with WorkerProcess() as worker:
            alice = await publish(worker, "r1", "alice", "participant", video=False)
            sub = await subscribe(worker, "r1", "sam")
            await wait_for(lambda: len(sub.received[alice.tracks["audio"]].packets) > 10)
            bob = await publish(worker, "r1", "bob", "participant", video=False, pc_id="p")
            added = await resubscribe(worker, sub, "r1", "sam")
            assert added == [bob.tracks["audio"]]
            await wait_for(lambda: len(sub.received[bob.tracks["audio"]].packets) > 10)
            # The first track kept flowing through the renegotiation.
            count = len(sub.received[alice.tracks["audio"]].packets)
            await wait_for(lambda: len(sub.received[alice.tracks["audio"]].packets) > count + 10)
            # Nothing new to add is a coded error, and changes nothing.
            (error,) = await worker.signal(
                "r1", "sam", "spectator", {"op": "subscribe", "pc": "sub"}
            )
            assert error["code"] == "unknown_track"
            assert (await worker.request("stats"))["outputs"] == 2
            for pc in (sub.pc, alice.pc, bob.pc):
                await pc.close()

    asyncio.run(scenario())
