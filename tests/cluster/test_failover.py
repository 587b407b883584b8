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

from clients.python import RoomClient, connect, still_pose
from server.takeover import read_backlog
from server.valkey import open_valkey
from tests.cluster.nodes import REPO, Node, cluster_node
from tests.cluster.partition import partition_proxy
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


async def knows(client: RoomClient, *nodes: Node) -> None:
    """Wait until the client has heard of these nodes (welcome, then `nodes` updates): a
    client can only look for its room on nodes it has heard of."""
    with trio.fail_after(WAIT):
        while not {n.ws for n in nodes} <= set(client.welcome.get("nodes", ())):
            await trio.sleep(0.1)


async def durable_through(valkey: ValkeyProcess, tick: int) -> None:
    """Wait until the room's records up to `tick` are in Valkey. A client can see a tick
    before its records are durable, and a kill -9 loses at most the records not yet
    there (docs/operations.md: the last tick's); the test kills only once they are."""
    async with open_valkey(valkey.url) as client:
        with trio.fail_after(WAIT):
            while True:
                records = (await read_backlog(client, "demo")).plain()
                if max((r.tick for r in records), default=-1) >= tick:
                    return
                await trio.sleep(0.05)


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
        assert tick_before is not None
        await durable_through(valkey, tick_before)
        member = ana.member
        await knows(ana, a, b)
        await knows(sam, a, b)

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
        await sam.wait_for(lambda m: head_x(m, ana.member) == 321)
        await sam.wait_for(lambda m: m.tick is not None and m.tick > tick_before + 30)
        await ana.send_pose(head=still_pose(0.654, 1.6, 0.0))
        await sam.wait_for(lambda m: head_x(m, ana.member) == 654)
        assert not ana.errors and not sam.errors and sam.resyncs == 0

        report = await end_and_verify(b)
        assert "INTACT" in report
        await ana.close()
        await sam.close()


async def test_a_partitioned_owner_is_superseded_and_what_it_did_meanwhile_is_not_kept(
    tmp_path: Path, valkey: ValkeyProcess
) -> None:
    async with (
        partition_proxy(valkey.port) as link,
        cluster_node(tmp_path, "a", link.url, args=["--demo", "--demo-case", "demo"]) as a,
        cluster_node(tmp_path, "b", valkey.url) as b,
        trio.open_nursery() as nursery,
    ):
        if True:
            assert (await a.api("GET", "/api/rooms/demo")).json()["node"] == "a"
            ana = RoomClient(a.ws, await token(a, "participant", "Ana"), nursery, auto_resume=True)
            await ana.open()
            assert (await ana.intent("note", text="agreed before the partition")).ok
            await trio.sleep(1.0)  # the backlog reaches Valkey

            await knows(ana, a, b)
            link.cut()  # a can no longer reach Valkey; it does not know it was superseded
            with trio.fail_after(WAIT):
                while (await b.api("GET", "/api/rooms/demo")).json().get("node") != "b":
                    await trio.sleep(0.2)
            info = (await b.api("GET", "/api/rooms/demo")).json()
            assert info["epoch"] == 2
            # The old copy still runs for the client cut off with it; what it does there
            # is not accepted anywhere.
            assert (await ana.intent("note", text="written on the old copy")).ok

            link.heal()  # a learns it was superseded: it stops and its clients move
            with trio.fail_after(WAIT):
                while ana.resumes < 1:
                    await trio.sleep(0.1)
            assert ana.url == b.ws and ana.welcome["resumed"]
            [team] = await ana.wait_for(lambda m: list(m.find("team").values()))
            assert team["note"] == "agreed before the partition"
            assert "no longer owns it" in a.log()
            assert (await ana.intent("note", text="on the new owner")).ok

            report = await end_and_verify(b)
            assert "INTACT" in report
            await ana.close()


async def test_valkey_going_away_does_not_take_the_rooms_with_it(
    tmp_path: Path, valkey: ValkeyProcess
) -> None:
    async with (
        cluster_node(tmp_path, "a", valkey.url, args=["--demo", "--demo-case", "demo"]) as a,
        cluster_node(tmp_path, "b", valkey.url) as b,
        trio.open_nursery() as nursery,
    ):
        ana = RoomClient(a.ws, await token(a, "participant", "Ana"), nursery)
        sam = RoomClient(a.ws, await token(a, "spectator", "Sam"), nursery)
        await ana.open()
        await sam.open()
        valkey.kill()
        for x in (100, 200, 300):  # the room keeps ticking and its clients stay connected
            await ana.send_pose(head=still_pose(x / 1000, 1.6, 0.0))
            await sam.wait_for(lambda m, x=x: head_x(m, ana.member) == x)
            await trio.sleep(1.5)
        assert (await ana.intent("note", text="while Valkey was away")).ok
        assert ana.connected and sam.connected
        # Joining through another node waits for the directory, then is told why not.
        refused = await b.api("GET", "/api/rooms/demo")
        assert refused.status_code == 503 and refused.json()["error"] == "directory_unavailable"

        valkey.start()  # empty: nothing was persisted
        with trio.fail_after(WAIT):
            while True:
                nodes = await a.api("GET", "/api/nodes")
                if nodes.status_code == 200 and {n["id"] for n in nodes.json()["nodes"]} == {
                    "a",
                    "b",
                }:
                    break
                await trio.sleep(0.3)
        with trio.fail_after(WAIT):
            while (await b.api("GET", "/api/rooms/demo")).json().get("node") != "a":
                await trio.sleep(0.3)
        assert (await b.api("GET", "/api/rooms/demo")).json()["epoch"] == 1  # not taken over
        watcher_token = await token(b, "spectator", "Late")
        async with connect(b.ws, watcher_token) as late:  # joining through b works again
            await late.wait_for(lambda m: head_x(m, ana.member) == 300)
            assert late.url == a.ws
        assert not ana.errors and not sam.errors and sam.resyncs == 0

        report = await end_and_verify(a)
        assert "INTACT" in report
        await ana.close()
        await sam.close()


async def test_draining_a_node_moves_its_rooms(tmp_path: Path, valkey: ValkeyProcess) -> None:
    async with (
        cluster_node(tmp_path, "a", valkey.url, args=["--demo", "--demo-case", "demo"]) as a,
        cluster_node(tmp_path, "b", valkey.url) as b,
        trio.open_nursery() as nursery,
    ):
        ana = RoomClient(a.ws, await token(a, "participant", "Ana"), nursery, auto_resume=True)
        await ana.open()
        assert (await ana.intent("note", text="before draining")).ok
        assert await a.stop() == 0  # SIGTERM: the node hands its rooms over, then exits
        with trio.fail_after(WAIT):
            while ana.resumes < 1:
                await trio.sleep(0.1)
        assert ana.url == b.ws and ana.welcome["resumed"]
        [team] = await ana.wait_for(lambda m: list(m.find("team").values()))
        assert team["note"] == "before draining"
        assert "INTACT" in await end_and_verify(b)
        await ana.close()
