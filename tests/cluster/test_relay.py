"""Spectator relays against a real Valkey, with real node and relay processes on loopback.

A spectator of a relay must hold what a spectator of the room's owner holds: the same
state at the same tick (the checksums their mirrors verified are equal), the rate it
asked for, its session across a relay's kill -9 and restart, and a healed state after
the room moves to another node.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import trio

from clients.python.client import RoomClient
from netcode.views import Role
from tests.cluster.relay_harness import (
    Watch,
    cluster_token,
    demo_node,
    http_get,
    metric,
    node_and_relay,
    open_client,
    relays,
    start_relay,
)
from tests.cluster.valkey_process import ValkeyProcess

pytestmark = pytest.mark.slow
LOW_RATE = 5
"""Frames a second a low-bandwidth spectator asks for: every 6th tick at 30 Hz."""


async def move_and_talk(client: RoomClient, seconds: float) -> None:
    """A participant whose head moves at 30 Hz and who chats twice a second."""
    step = 0
    end = trio.current_time() + seconds
    while trio.current_time() < end:
        step += 1
        angle = step / 30
        await client.send_pose(head=(math.cos(angle), 1.6, math.sin(angle), 0, 0, 0, 1))
        if step % 15 == 0:
            await client.intent("chat", text=f"line {step}")
        await trio.sleep(1 / 30)


async def assert_same_state(
    owner: Watch, client: RoomClient, relayed: Watch, at_least: int, since: int = 0
) -> None:
    """At every tick both verified a checksum for, they verified the same one (waiting
    until there are `at_least` such ticks after tick `since`)."""
    with trio.fail_after(60):
        while len([k for k in owner.checksums.keys() & relayed.checksums.keys() if k > since]) < (
            at_least
        ):
            await client.next_frame(timeout=60)
    common = sorted(owner.checksums.keys() & relayed.checksums.keys())
    assert [owner.checksums[k] for k in common] == [relayed.checksums[k] for k in common]


def ticks_after(watch: Watch, index: int) -> list[int]:
    return [tick for tick, _ in watch.frames[index:]]


async def test_relay_spectators_hold_the_owners_state_at_the_rate_they_ask_for(
    valkey: ValkeyProcess, tmp_path: Path
) -> None:
    async with (
        demo_node(tmp_path, "a", valkey.url) as node,
        relays() as started,
        trio.open_nursery() as nursery,
    ):
        spectator_token = await cluster_token(valkey.url, "demo", Role.SPECTATOR)
        participant, _ = open_client(
            node.ws, await cluster_token(valkey.url, "demo", Role.PARTICIPANT), nursery
        )
        await participant.open()
        # Before any relay exists the node serves spectators itself: the reference.
        on_owner, owner_watch = open_client(node.ws, spectator_token, nursery)
        await on_owner.open()
        assert on_owner.url == node.ws
        relay = await start_relay(valkey.url, tmp_path / "relay")
        started.append(relay)
        await trio.sleep(2.5)  # the node lists relays at its next sweep
        relayed = [open_client(node.ws, spectator_token, nursery) for _ in range(3)]
        for client, _ in relayed:
            await client.open()  # through the node, which sends them on (`moved`)
            assert client.url == relay.ws
        low, low_watch = relayed[2]
        await low.send({"t": "prefs", "rate": LOW_RATE})
        await trio.sleep(1.0)  # frames already on their way when the relay took it
        low_from = len(low_watch.frames)
        await move_and_talk(participant, 4.0)

        for client, watch in relayed:
            await assert_same_state(owner_watch, client, watch, at_least=3)
            assert client.resyncs == 0 and not client.errors
        assert on_owner.resyncs == 0
        avatar = next(iter(on_owner.mirror.find("avatar")))
        assert relayed[0][0].mirror.field(avatar, "name") == "Participant"
        low_ticks = ticks_after(low_watch, low_from)
        assert len(low_ticks) >= 10
        assert all(tick % 6 == 0 for tick in low_ticks), low_ticks
        full_ticks = ticks_after(relayed[0][1], low_from)
        assert len(full_ticks) > 4 * len(low_ticks)

        text = await http_get(relay.url, "/metrics")
        assert metric(text, "grandrounds_clients", 'role="spectator"') == 3
        assert metric(text, "grandrounds_relay_feed_entries_total", 'step="continued"') > 100
        assert metric(text, "grandrounds_relay_snapshots_served_total") == 3
        nursery.cancel_scope.cancel()


async def test_spectators_resume_after_the_relay_is_killed_and_restarted(
    valkey: ValkeyProcess, tmp_path: Path
) -> None:
    async with (
        demo_node(tmp_path, "a", valkey.url) as node,
        relays() as started,
        trio.open_nursery() as nursery,
    ):
        spectator_token = await cluster_token(valkey.url, "demo", Role.SPECTATOR)
        on_owner, owner_watch = open_client(node.ws, spectator_token, nursery)
        await on_owner.open()
        relay = await start_relay(valkey.url, tmp_path / "relay")
        started.append(relay)
        watched = [open_client(relay.ws, spectator_token, nursery) for _ in range(3)]
        for client, _ in watched:
            await client.open()
        low, low_watch = watched[2]
        await low.send({"t": "prefs", "rate": LOW_RATE})
        await trio.sleep(2.0)  # the relay keeps its stream position every second

        relay.kill()
        await relay.process.wait()
        restarted = await start_relay(valkey.url, tmp_path / "relay", port=relay.port)
        started.append(restarted)
        marks = {}
        for client, watch in watched:
            marks[id(client)] = len(watch.frames)
            await client.reconnect()
            assert client.welcome["resumed"] is True

        for client, watch in watched:
            resumed_at = watch.frames[marks[id(client)] - 1][0]
            await assert_same_state(owner_watch, client, watch, at_least=2, since=resumed_at)
            kinds = [kind for _, kind in watch.frames[marks[id(client)] :]]
            assert "snapshot" not in kinds, kinds  # resumed with a delta
            assert client.resyncs == 0
        low_ticks = ticks_after(low_watch, marks[id(low)])
        assert low_ticks and all(tick % 6 == 0 for tick in low_ticks), low_ticks
        text = await http_get(restarted.url, "/metrics")
        assert metric(text, "grandrounds_relay_stream_resumes_total", 'start="position"') == 1
        nursery.cancel_scope.cancel()


async def test_a_broadcast_delay_holds_the_room_back(valkey: ValkeyProcess, tmp_path: Path) -> None:
    async with (
        demo_node(tmp_path, "a", valkey.url) as node,
        relays() as started,
        trio.open_nursery() as nursery,
    ):
        spectator_token = await cluster_token(valkey.url, "demo", Role.SPECTATOR)
        on_owner, _ = open_client(node.ws, spectator_token, nursery)
        await on_owner.open()
        relay = await start_relay(valkey.url, tmp_path / "relay", delay=1.0)
        started.append(relay)
        delayed, delayed_watch = open_client(relay.ws, spectator_token, nursery)
        await delayed.open()
        await trio.sleep(2.5)
        for _ in range(5):
            await delayed.next_frame()
            assert delayed.mirror.tick is not None and on_owner.mirror.tick is not None
            assert on_owner.mirror.tick - delayed.mirror.tick >= 24  # 1 s at 30 Hz, at least
        assert delayed.resyncs == 0 and delayed_watch.checksums
        nursery.cancel_scope.cancel()


async def test_a_relay_sends_members_to_a_node_and_refuses_forged_tokens(
    valkey: ValkeyProcess, tmp_path: Path
) -> None:
    async with node_and_relay(tmp_path, valkey.url) as (node, relay, nursery):
        await trio.sleep(2.5)  # the relay lists the nodes at its next look
        participant, _ = open_client(
            relay.ws, await cluster_token(valkey.url, "demo", Role.PARTICIPANT), nursery
        )
        await participant.open()  # moved to the node, which owns the room
        assert participant.url == node.ws
        forged, _ = open_client(relay.ws, "not.a.token", nursery)
        with pytest.raises(Exception, match="bad_token"):
            await forged.open()
        health = await http_get(relay.url, "/healthz")
        assert '"spectators": 0' in health
        assert "<html" in (await http_get(relay.url, "/")).lower()


async def test_relay_spectators_follow_the_room_to_its_next_owner(
    valkey: ValkeyProcess, tmp_path: Path
) -> None:
    async with (
        demo_node(tmp_path, "a", valkey.url) as first,
        demo_node(tmp_path, "b", valkey.url, demo=False),
        relays() as started,
        trio.open_nursery() as nursery,
    ):
        relay = await start_relay(valkey.url, tmp_path / "relay")
        started.append(relay)
        spectator_token = await cluster_token(valkey.url, "demo", Role.SPECTATOR)
        watched = [open_client(relay.ws, spectator_token, nursery) for _ in range(2)]
        for client, _ in watched:
            await client.open()
        await trio.sleep(1.0)
        marks = [len(watch.frames) for _, watch in watched]
        ticks = [client.mirror.tick for client, _ in watched]

        first.kill()  # the owner dies; another node takes the room over
        for (client, watch), mark, tick in zip(watched, marks, ticks, strict=True):
            with trio.fail_after(30):
                while not any(kind == "snapshot" for _, kind in watch.frames[mark:]):
                    await client.next_frame(timeout=30)
            after = watch.frames[mark:]
            rebuilt = next(i for i, (_, kind) in enumerate(after) if kind == "snapshot")
            await client.wait_for(lambda m, t=tick: m.tick is not None and m.tick > t + 30)
            assert client.resyncs == 0 and client.connected
            assert [kind for _, kind in watch.frames[mark + rebuilt + 1 :]].count("snapshot") == 0
        text = await http_get(relay.url, "/metrics")
        assert metric(text, "grandrounds_relay_feed_entries_total", 'step="reset"') == 2
        nursery.cancel_scope.cancel()


async def test_relay_spectators_are_told_when_the_room_ends(
    valkey: ValkeyProcess, tmp_path: Path
) -> None:
    async with node_and_relay(tmp_path, valkey.url) as (node, relay, nursery):
        spectator_token = await cluster_token(valkey.url, "demo", Role.SPECTATOR)
        watching, _ = open_client(relay.ws, spectator_token, nursery)
        await watching.open()
        facilitator, _ = open_client(
            node.ws, await cluster_token(valkey.url, "demo", Role.FACILITATOR), nursery
        )
        await facilitator.open()
        assert (await facilitator.intent("end", reason="the case is over")).ok
        await watching.wait_closed()
        assert watching.bye is not None and watching.bye[0] == "room_ended"
        late, _ = open_client(relay.ws, spectator_token, nursery)
        with pytest.raises(Exception, match="room_ended"):
            await late.open()


async def test_relay_spectators_ask_and_the_room_answers(
    valkey: ValkeyProcess, tmp_path: Path
) -> None:
    async with node_and_relay(tmp_path, valkey.url) as (node, relay, nursery):
        facilitator, _ = open_client(
            node.ws, await cluster_token(valkey.url, "demo", Role.FACILITATOR), nursery
        )
        await facilitator.open()
        asking, _ = open_client(
            relay.ws, await cluster_token(valkey.url, "demo", Role.SPECTATOR), nursery
        )
        await asking.open()
        first = await asking.intent("ask", text="Why not a second fluid bolus?")
        assert first.ok, first
        await facilitator.wait_for(
            lambda m: any(
                q.get("text") == "Why not a second fluid bolus?"
                for q in m.logs.get("questions", ())
            )
        )
        assert "questions" not in asking.mirror.logs  # the facilitator's channel, not theirs
        second = await asking.intent("ask", text="And the lactate?")
        third = await asking.intent("ask", text="And now?")  # past the room's allowance
        assert second.ok and (third.ok, third.code) == (False, "rate_limited")
        chat = await asking.intent("chat", text="hello")
        assert (chat.ok, chat.code) == (False, "forbidden")


async def test_relay_spectators_carry_on_when_valkey_restarts_empty(
    valkey: ValkeyProcess, tmp_path: Path
) -> None:
    """Valkey killed, then restarted with nothing in it: the room keeps ticking, the
    relay's spectators stay connected, and once the owner's feed is back in the new
    Valkey the relay follows it again with the owner's state."""
    async with (
        demo_node(tmp_path, "a", valkey.url) as node,
        relays() as started,
        trio.open_nursery() as nursery,
    ):
        spectator_token = await cluster_token(valkey.url, "demo", Role.SPECTATOR)
        participant, _ = open_client(
            node.ws, await cluster_token(valkey.url, "demo", Role.PARTICIPANT), nursery
        )
        await participant.open()
        on_owner, owner_watch = open_client(node.ws, spectator_token, nursery)
        await on_owner.open()  # before any relay exists: the owner serves it (the reference)
        assert on_owner.url == node.ws
        relay = await start_relay(valkey.url, tmp_path / "relay")
        started.append(relay)
        relayed, relayed_watch = open_client(relay.ws, spectator_token, nursery)
        await relayed.open()
        nursery.start_soon(move_and_talk, participant, 120.0)
        await assert_same_state(owner_watch, relayed, relayed_watch, at_least=2)

        valkey.kill()
        await trio.sleep(3.0)
        valkey.start()  # empty: nothing was persisted
        back_at = max(owner_watch.checksums)
        await assert_same_state(owner_watch, relayed, relayed_watch, at_least=3, since=back_at)
        assert relayed.connected and on_owner.connected and participant.connected
        assert not relayed.errors and not on_owner.errors
        text = await http_get(relay.url, "/metrics")
        assert metric(text, "grandrounds_clients", 'role="spectator"') == 1
        nursery.cancel_scope.cancel()
