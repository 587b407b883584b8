"""Rooms in a cluster of real nodes on a real Valkey/Redis: placement, idempotent
creation, joining through any node, and the HTTP API answering for any room."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from clients.python import connect
from tests.cluster.nodes import cluster_node
from tests.cluster.valkey_process import ValkeyProcess

pytestmark = pytest.mark.slow


async def test_a_room_created_through_one_node_lands_on_the_less_loaded_one(
    tmp_path: Path, valkey: ValkeyProcess
) -> None:
    async with (
        cluster_node(tmp_path, "a", valkey.url, args=["--demo", "--demo-case", "demo"]) as a,
        cluster_node(tmp_path, "b", valkey.url) as b,
    ):
        demo = (await a.api("GET", "/api/rooms/demo")).json()
        assert demo["status"] == "running"
        loaded = demo.get("node", "a")
        other = b if loaded == "a" else a
        with trio.fail_after(10):  # the owner lists its room as soon as the room runs
            while not any(
                "demo" in n["rooms"] for n in (await a.api("GET", "/api/nodes")).json()["nodes"]
            ):
                await trio.sleep(0.1)
        created = await a.api("POST", "/api/rooms", {"title": "Ward round", "case": "demo"})
        assert created.status_code == 201, created.text
        room = created.json()
        assert room["node"] == other.name, room  # the node without the demo room
        # Every node answers for every room.
        for node in (a, b):
            info = (await node.api("GET", f"/api/rooms/{room['id']}")).json()
            assert (info["id"], info["status"]) == (room["id"], "running")
            listed = {r["id"] for r in (await node.api("GET", "/api/rooms")).json()["rooms"]}
            assert {"demo", room["id"]} <= listed

        # A join link made by node a lands the client in the room on the other node.
        link = room["join"]["participant"]
        assert link["ws"] == a.ws
        async with connect(link["ws"], link["token"]) as client:
            await client.wait_for(lambda m: m.find("avatar"))
            assert client.url == other.ws
        # And a token issued by either node works (the cluster shares its secret).
        token = (
            await b.api("POST", f"/api/rooms/{room['id']}/tokens", {"role": "spectator"})
        ).json()["token"]
        async with connect(b.ws, token) as watcher:
            await watcher.wait_for(lambda m: m.find("monitor"))

        # Ending it through the node that does not own it ends it where it lives.
        ended = await a.api("DELETE", f"/api/rooms/{room['id']}")
        assert ended.status_code == 202
        with trio.fail_after(15):
            while (await b.api("GET", f"/api/rooms/{room['id']}")).json().get("status") != "ended":
                await trio.sleep(0.2)


async def test_concurrent_creations_with_one_request_id_make_one_room(
    tmp_path: Path, valkey: ValkeyProcess
) -> None:
    async with (
        cluster_node(tmp_path, "a", valkey.url) as a,
        cluster_node(tmp_path, "b", valkey.url) as b,
    ):
        made: list[str] = []

        async def create(node: object) -> None:
            answer = await node.api(  # type: ignore[attr-defined]
                "POST", "/api/rooms", {"case": "demo", "request_id": "grand-round-42"}
            )
            assert answer.status_code == 201, answer.text
            made.append(answer.json()["id"])

        async with trio.open_nursery() as nursery:
            for node in (a, b, a, b, a, b):
                nursery.start_soon(create, node)
        assert len(made) == 6 and len(set(made)) == 1
        rooms = (await a.api("GET", "/api/rooms")).json()["rooms"]
        assert [r["id"] for r in rooms].count(made[0]) == 1
