"""Audio and side-by-side stereo video forwarded byte-identical to N subscribers."""

from __future__ import annotations

import asyncio

import pytest

from tests.media.harness import WorkerProcess, frame_hashes, publish, subscribe, wait_for

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
            # The subscribers' aiortc stacks decode what they got: it is real VP8.
            video = subscribers[0].tracks[publisher.tracks["video"]]
            frame = await asyncio.wait_for(video.recv(), 10)
            assert (frame.width, frame.height) == (320, 120)
            for sub in subscribers:
                await sub.pc.close()
            await publisher.pc.close()

    asyncio.run(scenario())
