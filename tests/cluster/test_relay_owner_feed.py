"""The owner's side of the spectator feed against a real Valkey: fenced, and never in the
way of the room.

The owner here is an in-process server whose room is tied to a lease the test claims
itself, so the test can supersede it and freeze Valkey under it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import trio

from netcode.spectator_feed import FeedEntry, RoomCopy, Step, decode_entry
from server.room_host import RoomHost
from server.room_lease import RoomLease, Superseded
from server.spectator_feed import SpectatorFeed, attach_spectator_feed
from server.valkey import Keys, Valkey, ValkeyUnavailable, open_valkey
from tests.cluster.valkey_process import ValkeyProcess
from tests.conftest import running, settings_for

ROOM = "r1"


@asynccontextmanager
async def owned_room(
    valkey: Valkey, tmp_path: Path
) -> AsyncIterator[tuple[RoomHost, RoomLease, SpectatorFeed]]:
    async with running(settings_for(tmp_path)) as server:
        host = await server.prepare_room("Feed test", "demo", 7, ROOM)
        lease = await RoomLease.claim(valkey, ROOM, "node-a")
        assert lease is not None
        feed = attach_spectator_feed(host, lease)
        server.launch(host)
        yield host, lease, feed


async def renew_forever(lease: RoomLease) -> None:
    """What the owner's node does: renew every second, through Valkey outages."""
    while True:
        try:
            await lease.renew()
        except ValkeyUnavailable:
            pass
        except Superseded:
            return
        await trio.sleep(1.0)


async def feed_entries(valkey: Valkey) -> list[FeedEntry]:
    items = await valkey.call(valkey.client.xrange(Keys.spectator_feed(ROOM)))
    return [decode_entry(item.field_values[b"d"]) for item in items]


async def wait_for_entries(valkey: Valkey, count: int) -> None:
    with trio.fail_after(10):
        while await valkey.call(valkey.client.xlen(Keys.spectator_feed(ROOM))) < count:
            await trio.sleep(0.05)


async def test_a_superseded_owner_can_no_longer_feed_relays(
    valkey: ValkeyProcess, tmp_path: Path
) -> None:
    async with open_valkey(valkey.url) as v, owned_room(v, tmp_path) as (host, _, feed):
        await wait_for_entries(v, 10)
        await v.call(v.client.delete([Keys.room_lease(ROOM)]))  # its lease ran out (a partition)
        successor = await RoomLease.claim(v, ROOM, "node-b")
        assert successor is not None and successor.epoch == 2
        with trio.fail_after(5):
            await feed.superseded.wait()
        held = await feed_entries(v)
        ticks = host.room.tick_no
        await trio.sleep(0.5)
        assert host.room.tick_no > ticks  # the feed's end is not the room's
        assert await feed_entries(v) == held  # nothing of epoch 1 after epoch 2's claim
        assert {entry.epoch for entry in held} == {1}


async def test_while_valkey_is_frozen_the_room_ticks_and_then_its_feed_goes_on(
    valkey: ValkeyProcess, tmp_path: Path
) -> None:
    async with (
        open_valkey(valkey.url, timeout=0.5) as v,
        owned_room(v, tmp_path) as (host, lease, feed),
        trio.open_nursery() as nursery,
    ):
        nursery.start_soon(renew_forever, lease)
        await wait_for_entries(v, 10)
        valkey.pause()
        ticks = host.room.tick_no
        await trio.sleep(2.5)
        assert host.room.tick_no - ticks > 50  # the room did not wait for Valkey
        valkey.resume()
        await trio.sleep(1.5)
        assert feed.dropped > 0 and not feed.superseded.is_set()

        copy = RoomCopy()
        steps = [copy.apply(entry) for entry in await feed_entries(v)]
        assert steps[0] is Step.RESET
        rebuilt = [i for i, step in enumerate(steps) if step is Step.RESET]
        assert len(rebuilt) <= 2, steps  # the start, and at most a snapshot queued meanwhile
        assert Step.WAITING not in steps  # every entry kept chains onto the one before
        assert steps[-1] is Step.CONTINUED and copy.tick is not None
        assert copy.tick >= host.room.tick_no - 30
        nursery.cancel_scope.cancel()


async def test_relays_are_told_when_the_room_ends(valkey: ValkeyProcess, tmp_path: Path) -> None:
    async with open_valkey(valkey.url) as v, owned_room(v, tmp_path) as (host, lease, _):
        await wait_for_entries(v, 5)
        host.request_end("the case is over")
        await host.wait_stopped()
        last = (await feed_entries(v))[-1]
        assert last.end == ("room_ended", "the case is over")
        assert last.epoch == lease.epoch
