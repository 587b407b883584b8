"""Room leases against a real Valkey/Redis: one owner, fenced by epochs."""

from __future__ import annotations

import pytest

from server.room_lease import RoomLease, Superseded
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
        await first.append(stream, b"one", 100, restart=False)
        await first.append(stream, b"two", 100, restart=True)
        entries = await v.call(v.client.xrange(stream))
        assert [e.field_values[b"d"] for e in entries] == [b"two"]

        await v.call(v.client.delete([Keys.room_lease("r1")]))  # the lease expired
        second = await RoomLease.claim(v, "r1", "node-b")
        assert second is not None and second.epoch == 2
        with pytest.raises(Superseded):
            await first.renew()
        with pytest.raises(Superseded):
            await first.append(stream, b"late", 100, restart=False)
        assert [e.field_values[b"d"] for e in await v.call(v.client.xrange(stream))] == [b"two"]
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
        await lease.renew()  # nobody claimed a higher epoch: the owner keeps the room
        assert await v.call(v.client.get(Keys.room_lease("r1"))) == b"node-a|1"
        assert await RoomLease.claim(v, "r1", "node-b") is None
