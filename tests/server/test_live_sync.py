"""What people in one room see of each other, through a real server on loopback."""

from __future__ import annotations

import itertools

import trio

from clients.python import connect, still_pose
from netcode.state import HIDDEN
from netcode.views import Role
from server.app import Server
from tests.conftest import ws_url


async def test_participants_see_each_others_poses_and_events_within_a_tick(server: Server) -> None:
    url = ws_url(server)
    async with (
        connect(url, server.issue_token("demo", Role.PARTICIPANT, "Ana")) as ana,
        connect(url, server.issue_token("demo", Role.PARTICIPANT, "Ben")) as ben,
    ):
        ana_avatar = await ben.wait_for(
            lambda m: next((e for e, f in m.find("avatar").items() if f["name"] == "Ana"), None)
        )
        await ana.wait_for(lambda m: m.find("avatar"))
        head = next(
            e
            for e, f in ben.mirror.find("part").items()
            if f["avatar"] == ana_avatar and f["part"] == "head"
        )
        await ana.send_pose(head=still_pose(0.25, 1.6, -0.5))
        # Ben's mirror shows Ana's head where she put it (that it is in the very next
        # tick's frame is checked without a clock in tests/netcode/test_within_a_tick.py).
        pose = await ben.wait_for(
            lambda m: m.poses[head] if m.poses.get(head, [])[:3] == [250, 1600, -500] else None
        )
        assert pose[:3] == [250, 1600, -500]

        reply = await ana.intent("chat", text="Starting fluids")
        assert reply.ok
        entry = await ben.wait_for(
            lambda m: [c for c in m.logs.get("chat", []) if c["text"] == "Starting fluids"]
        )
        assert entry[0]["from"] == "Ana"


async def test_each_role_sees_exactly_its_view(server: Server) -> None:
    url = ws_url(server)
    async with (
        connect(url, server.issue_token("demo", Role.SPECTATOR, "Student")) as spectator,
        connect(url, server.issue_token("demo", Role.PARTICIPANT, "Ana")) as participant,
        connect(url, server.issue_token("demo", Role.FACILITATOR, "Dr F")) as facilitator,
    ):
        for client in (spectator, participant, facilitator):
            await client.wait_for(lambda m: m.find("monitor"))

        [key_s] = spectator.mirror.find("answer_key").values()
        [key_p] = participant.mirror.find("answer_key").values()
        [key_f] = facilitator.mirror.find("answer_key").values()
        assert key_s["diagnosis"] is HIDDEN and key_p["diagnosis"] is HIDDEN
        assert key_f["diagnosis"] == "Community-acquired pneumonia"
        [team_s] = spectator.mirror.find("team").values()
        [team_p] = participant.mirror.find("team").values()
        assert team_s["note"] is HIDDEN and team_p["note"] == ""

        # Public fields reach everyone: the monitor shows the same vitals to all three.
        await participant.intent("note", text="SECRET-TEAM-NOTE")
        await facilitator.wait_for(
            lambda m: m.field(next(iter(m.find("team"))), "note") == "SECRET-TEAM-NOTE"
        )
        assert spectator.mirror.find("monitor").keys() == participant.mirror.find("monitor").keys()

        # Spectator questions go to the facilitator only.
        assert (await spectator.intent("ask", text="Why not a CT?")).ok
        await facilitator.wait_for(lambda m: m.logs.get("questions"))
        target = (facilitator.mirror.tick or 0) + 2
        await participant.wait_for(lambda m: m.tick and m.tick > target)
        assert "questions" not in participant.mirror.logs
        assert "questions" not in spectator.mirror.logs
        assert spectator.mirror.field(next(iter(spectator.mirror.find("team"))), "note") is HIDDEN


async def test_two_clients_grabbing_one_object_get_one_lease(server: Server) -> None:
    url = ws_url(server)
    async with (
        connect(url, server.issue_token("demo", Role.PARTICIPANT, "Ana")) as ana,
        connect(url, server.issue_token("demo", Role.PARTICIPANT, "Ben")) as ben,
    ):
        await ana.wait_for(lambda m: m.find("avatar"))
        await ben.wait_for(lambda m: len(m.find("avatar")) == 2)
        obj = min(ana.mirror.find("object"))
        first, second = await ana.intent("grab", obj=obj), await ben.intent("grab", obj=obj)
        assert first.ok
        assert not second.ok and second.code == "lease_refused" and "Ana" in second.message
        ana_avatar = next(e for e, f in ana.mirror.find("avatar").items() if f["name"] == "Ana")
        await ben.wait_for(lambda m: m.field(obj, "holder") == ana_avatar)

        # The holder moves it; the other cannot.
        await ana.send_pose(objects={obj: still_pose(1.0, 1.0, 1.0)})
        await ben.wait_for(lambda m: m.poses.get(obj, [0])[0] == 1000)
        await ben.send_pose(objects={obj: still_pose(2.0, 1.0, 1.0)})
        await ben.wait_for(lambda m: any(code == "not_holder" for code, _ in ben.errors))

        assert (await ana.intent("release", obj=obj)).ok
        assert (await ben.intent("grab", obj=obj)).ok


async def test_a_low_bandwidth_client_gets_state_at_the_rate_it_asks_for(server: Server) -> None:
    url = ws_url(server)
    seen: list[int] = []
    async with connect(url, server.issue_token("demo", Role.SPECTATOR, "Slow link")) as client:
        await client.wait_for(lambda m: m.find("monitor"))
        await client.send({"t": "prefs", "rate": 5})
        await trio.sleep(0.5)
        client.on_frame = lambda frame, _: seen.append(frame["k"])
        await client.wait_for(lambda m: len(seen) >= 4)
        # Only every sixth tick at 30 Hz, each a delta from the last one sent (a busy
        # machine may skip one, which makes a step of 12, never one of 1).
        assert all(k % 6 == 0 for k in seen)
        assert all(b - a >= 6 for a, b in itertools.pairwise(seen))
        assert client.resyncs == 0

        # The rate belongs to the session: a resumed connection keeps it from its first frame.
        seen.clear()
        await client.reconnect()
        assert client.welcome["resumed"] is True
        await client.wait_for(lambda m: len(seen) >= 4)
        assert all(k % 6 == 0 for k in seen)
        assert client.resyncs == 0
