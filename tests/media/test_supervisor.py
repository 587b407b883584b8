"""The trio supervisor: real worker processes, restarts, renegotiation, shutdown."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import trio

from server.media_supervisor import MediaConfig, MediaSupervisor
from tests.media.harness import offer_sdp, process_alive

pytestmark = pytest.mark.slow


async def test_killed_worker_is_restarted_and_rooms_renegotiate(tmp_path: Path) -> None:
    events: list[tuple[str, str | None, dict[str, Any]]] = []
    renegotiate = trio.Event()

    async def on_event(room: str, member: str | None, message: dict[str, Any]) -> None:
        events.append((room, member, message))
        if message.get("op") == "renegotiate":
            renegotiate.set()

    config = MediaConfig(
        data_dir=tmp_path, workers=2, ice_host_addresses=["127.0.0.1"], backoff_initial_s=0.05
    )
    supervisor = MediaSupervisor(config, on_event)
    sdp, tracks = await trio.to_thread.run_sync(asyncio.run, offer_sdp())
    async with trio.open_nursery() as nursery:
        await nursery.start(supervisor.run)
        pids = supervisor.worker_pids()
        assert all(pids) and len(set(pids)) == 2

        publish = {"op": "publish", "pc": "p1", "sdp": sdp, "tracks": tracks}
        (answer,) = await supervisor.signal("room-a", "alice", "participant", publish)
        assert answer["op"] == "answer", answer
        (other,) = await supervisor.signal("room-b", "bob", "participant", publish)
        assert other["op"] == "answer"
        with trio.fail_after(10):  # events arrive on their own task
            while {e[0] for e in events if e[2]["op"] == "tracks"} != {"room-a", "room-b"}:
                await trio.sleep(0.02)

        # Kill room-a's worker outright.
        victim = supervisor._assigned["room-a"]
        old_pid = pids[victim]
        assert old_pid is not None
        os.kill(old_pid, signal.SIGKILL)
        with trio.fail_after(20):
            await renegotiate.wait()
        reneg = [e for e in events if e[2]["op"] == "renegotiate"]
        assert reneg == [("room-a", None, {"op": "renegotiate", "reason": "worker_restarted"})]
        new_pid = supervisor.worker_pids()[victim]
        assert new_pid is not None and new_pid != old_pid

        # Signalling works again (state was lost, so the same pc id is new again),
        # and the other room's worker never noticed.
        (again,) = await supervisor.signal("room-a", "alice", "participant", publish)
        assert again["op"] == "answer", again
        stats = await supervisor.stats()
        assert [s["tracks"] for s in stats if "tracks" in s] and all(
            s.get("ok", True) for s in stats
        )
        # Oversize and malformed messages are answered by the supervisor itself.
        (big,) = await supervisor.signal(
            "room-a", "alice", "participant", {"op": "publish", "sdp": "x" * 70_000}
        )
        assert big["code"] == "too_large"
        nursery.cancel_scope.cancel()

    # Clean shutdown: no worker process survives the supervisor.
    for pid in [p for p in [*pids, new_pid] if p]:
        with trio.fail_after(10):
            while process_alive(pid):
                await trio.sleep(0.05)


async def test_recording_through_the_supervisor(tmp_path: Path) -> None:
    async def on_event(room: str, member: str | None, message: dict[str, Any]) -> None:
        pass

    config = MediaConfig(data_dir=tmp_path / "run", ice_host_addresses=["127.0.0.1"])
    supervisor = MediaSupervisor(config, on_event)
    async with trio.open_nursery() as nursery:
        await nursery.start(supervisor.run)
        await supervisor.start_recording("r", tmp_path / "session" / "media", 0.0)
        # No media published: stopping yields an empty manifest, not an error.
        assert await supervisor.stop_recording("r") == []
        nursery.cancel_scope.cancel()


class _Bridge:
    """Lets the asyncio test clients call the trio supervisor, like the room server."""

    def __init__(self, supervisor: MediaSupervisor, token: trio.lowlevel.TrioToken) -> None:
        self._supervisor = supervisor
        self._token = token

    async def signal(
        self, room: str, member: str, role: str, msg: dict[str, Any]
    ) -> list[dict[str, Any]]:
        call = partial(
            trio.from_thread.run,
            self._supervisor.signal,
            room,
            member,
            role,
            msg,
            trio_token=self._token,
        )
        return await asyncio.get_running_loop().run_in_executor(None, call)


async def test_clients_renegotiate_after_a_worker_restart_and_media_flows_again(
    tmp_path: Path,
) -> None:
    events: list[dict[str, Any]] = []

    async def on_event(room: str, member: str | None, message: dict[str, Any]) -> None:
        events.append(message)

    config = MediaConfig(data_dir=tmp_path, ice_host_addresses=["127.0.0.1"])
    supervisor = MediaSupervisor(config, on_event)

    async def clients(bridge: _Bridge) -> None:
        from tests.media.harness import publish, subscribe, wait_for

        pub = await publish(bridge, "r", "alice", "participant", video=False)
        sub = await subscribe(bridge, "r", "bob", role="participant")
        audio = pub.tracks["audio"]
        await wait_for(lambda: len(sub.received[audio].packets) > 20)

        pid = supervisor.worker_pids()[0]
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        await wait_for(lambda: any(e["op"] == "renegotiate" for e in events))
        await pub.pc.close()
        await sub.pc.close()

        # What a client does on "renegotiate": publish and subscribe afresh.
        pub = await publish(bridge, "r", "alice", "participant", video=False)
        sub = await subscribe(bridge, "r", "bob", role="participant")
        await wait_for(lambda: len(sub.received[pub.tracks["audio"]].packets) > 20)
        await pub.pc.close()
        await sub.pc.close()

    async with trio.open_nursery() as nursery:
        await nursery.start(supervisor.run)
        recording = tmp_path / "session" / "media"
        await supervisor.start_recording("r", recording, time.time())
        bridge = _Bridge(supervisor, trio.lowlevel.current_trio_token())
        await trio.to_thread.run_sync(asyncio.run, clients(bridge))
        entries = await supervisor.stop_recording("r")
        nursery.cancel_scope.cancel()

    # The recording survived the restart: one segment per worker, both remuxed.
    audio = [e for e in entries if e["kind"] == "audio"]
    assert len(audio) == 2, entries
    for entry in audio:
        assert entry["frames"] > 10 and entry["offset_ms"] >= 0
        assert (recording / entry["file"]).stat().st_size > 0
    assert audio[0]["offset_ms"] != audio[1]["offset_ms"]
    assert json.loads((recording / "tracks.json").read_text()) == entries
