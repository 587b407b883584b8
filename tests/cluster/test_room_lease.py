"""Room leases against a real Valkey/Redis: one owner, fenced by epochs."""

from __future__ import annotations

import pytest
import trio

from server.room_lease import LeaseMissing, RoomLease, Superseded
from server.valkey import Keys, ValkeyUnavailable, open_valkey
from tests.cluster.valkey_process import ValkeyProcess


async def test_one_owner_at_a_time_and_a_superseded_owner_cannot_publish(
    valkey: ValkeyProcess,
) -> None:
    async with open_valkey(valkey.url) as v:
        first = await RoomLease.claim(v, "r1", "node-a")
        assert first is not None and first.epoch == 1
        assert await RoomLease.claim(v, "r1", "node-b") is None
        await first.renew()
        stream = Keys.room_records("r1")

        async def held() -> list[bytes]:
            return [bytes(e.field_values[b"d"]) for e in await v.call(v.client.xrange(stream))]

        # A stream keeps what follows its previous starting point (a keyframe).
        for payload, starting in ((b"k1", True), (b"a", False), (b"k2", True), (b"b", False)):
            await first.append(stream, payload, 100, starting_point=starting)
        assert await held() == [b"k1", b"a", b"k2", b"b"]
        await first.append(stream, b"k3", 100, starting_point=True)
        assert await held() == [b"k2", b"b", b"k3"]

        await v.call(v.client.delete([Keys.room_lease("r1")]))  # the lease expired
        second = await RoomLease.claim(v, "r1", "node-b")
        assert second is not None and second.epoch == 2
        with pytest.raises(Superseded):
            await first.renew()
        with pytest.raises(Superseded):
            await first.append(stream, b"late", 100, starting_point=False)
        assert await held() == [b"k2", b"b", b"k3"]
        assert (await v.call(v.client.hgetall(Keys.room("r1"))))[b"owner"] == b"node-b"


async def test_an_owner_takes_its_lease_back_after_valkey_restarts_empty(
    valkey: ValkeyProcess,
) -> None:
    async with open_valkey(valkey.url, timeout=0.5) as v:
        lease = await RoomLease.claim(v, "r1", "node-a")
        assert lease is not None
        valkey.kill()
        with pytest.raises(ValkeyUnavailable):
            await lease.renew()
        valkey.start()
        for _ in range(10):  # an append before the renewal is lost, not superseded
            try:
                await lease.append(Keys.room_records("r1"), b"k", 100, starting_point=True)
            except LeaseMissing:
                break
            except ValkeyUnavailable:
                await trio.sleep(0.2)
        else:
            raise AssertionError("an append without a lease in Valkey was not LeaseMissing")
        assert not await v.call(v.client.exists([Keys.room_records("r1")]))
        for _ in range(10):  # as the room's keeper does, every second, until Valkey answers
            try:
                await lease.renew()  # nobody claimed a higher epoch: the owner keeps the room
                break
            except ValkeyUnavailable:
                await trio.sleep(0.2)
        assert await v.call(v.client.get(Keys.room_lease("r1"))) == b"node-a|1"
        assert await RoomLease.claim(v, "r1", "node-b") is None
