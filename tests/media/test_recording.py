"""A recording remuxes into files PyAV opens, with the frames and duration sent."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import av
import pytest

from tests.media.harness import ROOT, WorkerProcess, publish

pytestmark = pytest.mark.slow


def test_recording_remuxes_to_webm_and_ogg() -> None:
    async def scenario(directory: Path) -> list[str]:
        async with WorkerProcess() as worker:
            await worker.request(
                "record_start", room="r1", dir=str(directory), session_start=time.time()
            )
            publisher = await publish(worker, "r1", "alice", "presenter")
            assert publisher.video is not None
            await asyncio.sleep(2.0)
            reply = await worker.request("record_stop", room="r1")
            sent_video = publisher.video.frames
            sent_audio = len(publisher.sent["audio"])
            await publisher.pc.close()
            return [*reply["files"], str(sent_video), str(sent_audio)]

    with tempfile.TemporaryDirectory() as tmp:
        *files, sent_video_s, sent_audio_s = asyncio.run(scenario(Path(tmp)))
        out = subprocess.run(
            [sys.executable, "-m", "media.remux", *files],
            cwd=ROOT,
            check=True,
            capture_output=True,
            text=True,
        )
        import json

        entries = {e["kind"]: e for e in json.loads(out.stdout)}
        for kind, sent in (("video", int(sent_video_s)), ("audio", int(sent_audio_s))):
            entry = entries[kind]
            # Frames still in flight when recording stopped may be missing.
            assert sent - 10 <= entry["frames"] <= sent, (kind, entry, sent)
            with av.open(str(Path(tmp) / entry["file"])) as container:
                stream = getattr(container.streams, kind)[0]
                demuxed = [p for p in container.demux(stream) if p.size]
                assert len(demuxed) == entry["frames"]
                duration = float(container.duration or 0) / av.time_base
                assert abs(duration * 1000 - entry["duration_ms"]) < 100, (duration, entry)
                if kind == "video":
                    assert (stream.codec_context.width, stream.codec_context.height) == (320, 120)
                    assert entry["layout"] == "side-by-side"
            assert entry["offset_ms"] is not None and entry["offset_ms"] >= 0
            # Duration is what was sent: frames at 30 fps (video) or 20 ms (audio).
            frame_ms = 1000 / 30 if kind == "video" else 20
            assert abs(entry["duration_ms"] - entry["frames"] * frame_ms) <= 2 * frame_ms, entry
