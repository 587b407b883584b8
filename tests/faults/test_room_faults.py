"""Crashes 2, 3, 4 and 7 of issue 9, against a real server process.

Each used to end the whole server: a facilitator's malformed `present`/`remove`, a full
disk under the recording, a disconnect refused by a full intent queue, a HIDDEN value
echoed back in an intent. Each now stays inside its connection or its room, and the
honest room's check (healthz, checksums, poses, a recording that verifies) holds.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import msgpack
import pytest
import trio

from clients.python import RoomClient
from tests.faults.harness import honest_room
from tests.faults.raw_ws import RawWebSocket, client_frame, raw_websocket

pytestmark = pytest.mark.slow


async def test_a_facilitators_malformed_present_and_remove_are_bad_args(tmp_path: Path) -> None:
    """Crash 2: `{"member": [1]}` raised TypeError inside the tick."""
    async with honest_room(tmp_path) as h, trio.open_nursery() as nursery:
        token = await h.server.token("facilitator", "Dr Lead")
        lead = RoomClient(h.server.ws_url, token, nursery)
        await lead.open()
        target = h.participant.client.member
        for action in ("present", "remove"):
            for member in ([1], {"id": 1}, "1", None, 2**40, -1):
                reply = await lead.intent(action, member=member)
                assert (reply.ok, reply.code) == (False, "bad_args"), (action, member, reply)
                assert "member" in reply.message
        assert (await lead.intent("present", member=target, on="yes")).code == "bad_args"
        assert (await lead.intent("present", member=target)).ok
        await lead.close()
        await h.check()


async def test_an_intent_echoing_hidden_is_refused_at_the_door(tmp_path: Path) -> None:
    """Crash 7: HIDDEN (msgpack ext 1) in `args` could not be recorded."""
    async with honest_room(tmp_path) as h:
        token = await h.server.token("spectator", "Echo")
        async with raw_websocket(h.server.port) as ws:
            await ws.hello(token)
            hidden = msgpack.ExtType(1, b"")
            for args in ({"text": hidden}, {"text": [hidden]}, {"x": {"y": hidden}}):
                await ws.send_message({"t": "intent", "id": 1, "do": "ask", "args": args})
                error = await ws.receive("error")
                assert error["code"] == "bad_message" and "extension" in error["msg"]
            await ws.send_message({"t": "intent", "id": 2, "do": "ask", "args": {"text": "ok?"}})
            assert (await ws.receive("reply"))["ok"]
        await h.check()


async def test_a_disconnect_is_never_refused_by_a_full_intent_queue(tmp_path: Path) -> None:
    """Crash 4: a crowd filled the room's 4,096-intent queue within a tick, then anyone
    dropping raised `room_busy` out of the host. Lifecycle inputs bypass the limit."""
    async with honest_room(tmp_path) as h:
        token = await h.server.token("spectator", "Crowd")
        burst = b"".join(
            client_frame(
                0x2,
                msgpack.packb(
                    {"t": "intent", "id": i, "do": "ask", "args": {"text": f"question {i}"}}
                ),
            )
            for i in range(100)
        )
        async with trio.open_nursery() as nursery, raw_websocket(h.server.port) as leaver:
            await leaver.hello(token)
            crowd = [await nursery.start(_hold, h.server.port, token) for _ in range(70)]
            for ws in [leaver, *crowd]:
                await ws.send_raw(burst)  # 100 asks each, as fast as loopback takes them
            await leaver.stream.aclose()  # and one of them drops meanwhile
            await trio.sleep(3)
            nursery.cancel_scope.cancel()
        busy = sum(
            1
            for ws in crowd
            for m in ws.messages
            if m.get("t") == "reply" and m.get("code") == "room_busy"
        )
        assert busy > 0, "the crowd never filled the room's intent queue"
        await h.check()


async def _hold(port: int, token: str, task_status: trio.TaskStatus[RawWebSocket]) -> None:
    """A spectator that reads everything the server says until the test ends."""
    async with raw_websocket(port) as ws:
        await ws.hello(token)
        task_status.started(ws)
        await ws.until_closed(timeout=3600)


@contextmanager
def small_disk(path: Path, size: str) -> Iterator[Path]:
    """A real filesystem of `size` (tmpfs) mounted at `path`, so a write can hit ENOSPC."""
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], check=True)
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def fill(disk: Path) -> Path:
    """Take every free byte of `disk`; the file that holds them."""
    filler = disk / "filler"
    with filler.open("wb") as f:
        try:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
        except OSError:
            pass
    return filler


async def recording_lag(h: object, room: str = "demo") -> float:
    answer = await h.server.http("GET", "/metrics")  # type: ignore[attr-defined]
    for line in answer.body.decode().splitlines():
        if line.startswith("grandrounds_recording_lag_seconds") and f'room="{room}"' in line:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def test_a_full_disk_is_retried_and_the_recording_catches_up(tmp_path: Path) -> None:
    """Crash 3: one ENOSPC from a recording flush ended the process. Now the flush is
    retried with backoff while the room runs, and nothing is lost once space returns."""
    with small_disk(tmp_path / "data", "8m") as disk:
        async with honest_room(tmp_path) as h:
            filler = fill(disk)
            with trio.fail_after(20):
                while await recording_lag(h) == 0.0:
                    await trio.sleep(0.2)
            await trio.sleep(2)  # several failed retries while the room runs on
            filler.unlink()
            with trio.fail_after(20):
                while await recording_lag(h) > 0.0:
                    await trio.sleep(0.2)
            assert "recording not written" in h.log.text()
            assert "recording written again" in h.log.text()
            await h.check()  # the room ends and its whole recording verifies


async def test_a_disk_that_stays_full_ends_that_room_alone(tmp_path: Path) -> None:
    """Past `recording_failure_seconds` the room ends as `recording_failed`; the server,
    and a room created once there is space again, carry on."""
    env = {"GRANDROUNDS_RECORDING_FAILURE_SECONDS": "3"}
    with small_disk(tmp_path / "data", "8m") as disk:
        async with honest_room(tmp_path, env=env) as h:
            filler = fill(disk)
            for honest in (h.participant, h.spectator):
                await honest.client.wait_closed(timeout=30)
                assert honest.client.bye is not None
                assert honest.client.bye[0] == "recording_failed", honest.client.bye
            health = await h.server.http("GET", "/healthz")
            assert health.status == 200
            refused = await h.server.http(
                "POST", "/api/rooms", {"title": "t", "case": "demo"}, admin=True
            )
            assert (refused.status, refused.json()["error"]) == (503, "storage_unavailable")
            filler.unlink()
            created = await h.server.http(
                "POST", "/api/rooms", {"title": "next", "case": "demo"}, admin=True
            )
            assert created.status == 201, created
            metrics = (await h.server.http("GET", "/metrics")).body.decode()
            assert 'grandrounds_rooms_failed_total{reason="recording_failed"} 1.0' in metrics
            h.log.assert_clean()
            assert await h.server.stop() == 0
            h.log.assert_clean()
    assert not os.path.ismount(tmp_path / "data")
