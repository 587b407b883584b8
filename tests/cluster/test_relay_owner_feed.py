"""The owner's side of the spectator feed against a real Valkey: fenced, and never in the
way of the room.

The owner here is an in-process server whose room is tied to a lease the test claims
(and renews) itself, so the test can supersede it and freeze Valkey under it.
"""

from __future__ import annotations

from pathlib import Path

import trio

from netcode.spectator_feed import FeedEntry, RoomCopy, Step, decode_entry
from server.room_lease import RoomLease
from server.valkey import Keys, Valkey, open_valkey
from tests.cluster.relay_harness import owned_room
from tests.cluster.valkey_process import ValkeyProcess

ROOM = "r1"


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
    async with open_valkey(valkey.url) as v, owned_room(v, tmp_path) as (_, host, _, feed):
        await wait_for_entries(v, 10)
        # Cut off (a partition), node-a's lease ran out and node-b claimed the room, in
        # one step here so node-a's renewal cannot slip in between.
        claimed = await v.call(
            v.client.eval(
                "redis.call('DEL', KEYS[1]) return redis.call('INCR', KEYS[2])",
                keys=[Keys.room_lease(ROOM), Keys.room_epoch(ROOM)],
                args=[],
            )
        )
        successor = await RoomLease.claim(v, ROOM, "node-b")
        assert claimed == 2 and successor is not None and successor.epoch == 3
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
        owned_room(v, tmp_path) as (_, host, _, feed),
    ):
        await wait_for_entries(v, 10)
        valkey.pause()
        ticks = host.room.tick_no
        with trio.fail_after(20):  # the room does not wait for Valkey (it fails if it hangs)
            while host.room.tick_no - ticks <= 50:
                await trio.sleep(0.1)
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


async def test_relays_are_told_when_the_room_ends(valkey: ValkeyProcess, tmp_path: Path) -> None:
    async with open_valkey(valkey.url) as v, owned_room(v, tmp_path) as (_, host, lease, _):
        await wait_for_entries(v, 5)
        host.request_end("the case is over")
        await host.wait_stopped()
        last = (await feed_entries(v))[-1]
        assert last.end == ("room_ended", "the case is over")
        assert last.epoch == lease.epoch
