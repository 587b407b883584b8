"""Dropped connections resume with a delta; corrupted mirrors are caught and repaired."""

from __future__ import annotations

import trio

from clients.python import connect
from netcode.views import Role
from server.app import Server
from tests.conftest import ws_url


async def test_a_client_back_within_the_grace_period_resumes_with_a_delta(server: Server) -> None:
    url = ws_url(server)
    async with (
        connect(url, server.issue_token("demo", Role.SPECTATOR, "Watcher")) as watcher,
        connect(url, server.issue_token("demo", Role.PARTICIPANT, "Ana")) as ana,
    ):
        avatar = await watcher.wait_for(lambda m: next(iter(m.find("avatar")), None))
        member = ana.member
        await ana.drop()
        # Meanwhile the avatar stays, marked disconnected.
        await watcher.wait_for(lambda m: m.field(avatar, "connected") is False)
        assert avatar in watcher.mirror.entities

        snapshots_before = ana.snapshots_received
        await ana.reconnect()
        assert ana.welcome["resumed"] is True and ana.member == member
        await watcher.wait_for(lambda m: m.field(avatar, "connected") is True)
        await ana.wait_for(lambda m: m.tick is not None and m.tick > 0 and m.deltas > 0)
        assert ana.snapshots_received == snapshots_before, "resume must not send a snapshot"
        assert ana.resyncs == 0


async def test_after_the_grace_period_a_client_gets_a_fresh_snapshot(server: Server) -> None:
    url = ws_url(server)
    async with (
        connect(url, server.issue_token("demo", Role.SPECTATOR, "Watcher")) as watcher,
        connect(url, server.issue_token("demo", Role.PARTICIPANT, "Ana")) as ana,
    ):
        avatar = await watcher.wait_for(lambda m: next(iter(m.find("avatar")), None))
        await ana.drop()
        # grace_seconds is 2 in the test server: the avatar goes when it runs out.
        await watcher.wait_for(lambda m: avatar not in m.entities, timeout=6)
        snapshots_before = ana.snapshots_received
        await ana.reconnect()
        assert ana.welcome["resumed"] is False
        await ana.wait_for(lambda m: m.find("avatar"))
        assert ana.snapshots_received == snapshots_before + 1
        new_avatar = await watcher.wait_for(lambda m: next(iter(m.find("avatar")), None))
        assert new_avatar != avatar


async def test_a_corrupted_mirror_is_caught_by_the_checksum_and_repaired(server: Server) -> None:
    async with connect(ws_url(server), server.issue_token("demo", Role.SPECTATOR, "S")) as client:
        monitor = await client.wait_for(lambda m: next(iter(m.find("monitor")), None))
        truth = client.mirror.field(monitor, "hr")
        client.mirror.entities[monitor][1]["hr"] = -999  # silent local corruption
        client.mirror.entities[monitor][1]["bogus"] = True
        await client.wait_for(lambda m: client.resyncs >= 1, timeout=5)
        await client.wait_for(lambda m: "bogus" not in m.entities[monitor][1], timeout=5)
        assert client.mirror.field(monitor, "hr") not in (-999, None)
        assert abs(client.mirror.field(monitor, "hr") - truth) < 10
        # Repaired for good: later checksums agree.
        resyncs = client.resyncs
        await trio.sleep(1.2)
        assert client.resyncs == resyncs
