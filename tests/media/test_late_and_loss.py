"""A late subscriber gets a keyframe promptly; NACKs recover packets lost on the way."""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.media.harness import WorkerProcess, publish, subscribe, wait_for

pytestmark = pytest.mark.slow


def test_late_subscriber_decodes_a_frame_promptly() -> None:
    async def scenario() -> None:
        async with WorkerProcess() as worker:
            publisher = await publish(worker, "r1", "alice", "presenter", audio=False)
            early = await subscribe(worker, "r1", "early", pc_id="early")
            video_id = publisher.tracks["video"]
            await wait_for(lambda: len(early.received[video_id].packets) > 30)
            await asyncio.sleep(2.0)  # the stream is well past its first keyframe
            late = await subscribe(worker, "r1", "late", pc_id="late")
            await wait_for(lambda: video_id in late.tracks)
            frame = await asyncio.wait_for(late.tracks[video_id].recv(), 10)
            assert frame.width == 320
            # No timing assertion (generous timeouts only); the figure is reported.
            first = late.received[video_id].first_packet_at
            assert first is not None
            print(f"late subscriber: first frame {time.monotonic() - late.subscribed_at:.3f}s")
            for pc in (late.pc, early.pc, publisher.pc):
                await pc.close()

    asyncio.run(scenario())


def test_nack_retransmission_recovers_five_percent_loss() -> None:
    async def scenario() -> None:
        async with WorkerProcess() as worker:
            publisher = await publish(worker, "r1", "alice", "presenter", audio=False)
            video_id = publisher.tracks["video"]
            lossy = await subscribe(worker, "r1", "bob", loss=0.05, seed=7)
            received = lossy.received[video_id]
            await wait_for(lambda: len(received.dropped) >= 15)
            await asyncio.sleep(1.0)  # NACKs for the latest losses get answered
            dropped = set(received.dropped)
            assert dropped, "loss was injected"
            recovered = dropped & received.recovered
            assert len(recovered) >= 0.9 * len(dropped), (len(recovered), len(dropped))
            stats = await worker.request("stats")
            assert stats["retransmitted"] >= len(recovered)
            await lossy.pc.close()
            await publisher.pc.close()

    asyncio.run(scenario())
