"""Nodes and relays of a cluster, each listed only while its lease in Valkey is fresh.

A process writes what it is (its URLs, its load, its rooms) under a key that expires
after `LEASE_SECONDS` and rewrites it every `HEARTBEAT_SECONDS`. Nothing is deleted on
a missed heartbeat: a listing dies when its lease expires, so a process that is slow
for a moment, or cut off from Valkey for a moment, is still listed.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from enum import StrEnum
from typing import Final

import trio
from pydantic import BaseModel, ConfigDict, ValidationError

from server.valkey import Keys, Valkey, ValkeyUnavailable

log = logging.getLogger(__name__)
HEARTBEAT_SECONDS: Final = 2.0
LEASE_SECONDS: Final = 6.0


class NodeKind(StrEnum):
    NODE = "node"
    """Owns rooms and serves every client role."""
    RELAY = "relay"
    """Serves spectators from rooms' spectator feeds."""


class NodeInfo(BaseModel):
    """What a node or relay says about itself (JSON in Valkey; listed by `/api/nodes`)."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    id: str
    kind: NodeKind
    url: str
    """Base URL of its HTTP API and web app, e.g. http://10.0.0.5:8765."""
    rooms: list[str] = []
    clients: int = 0
    cpu: float = 0.0
    """CPU seconds per second over the last heartbeat (1.0: one core busy)."""
    draining: bool = False
    updated: float = 0.0

    @property
    def ws(self) -> str:
        return self.url.replace("http", "ws", 1) + "/ws"

    @property
    def load(self) -> tuple[bool, int, float]:
        """Sort key for placement: not draining first, then fewer clients, then less CPU."""
        return (self.draining, self.clients + 25 * len(self.rooms), self.cpu)


class CpuMeter:
    """This process's CPU seconds per wall second since the last reading."""

    def __init__(self) -> None:
        self._cpu = self._now_cpu()
        self._wall = time.monotonic()

    @staticmethod
    def _now_cpu() -> float:
        times = os.times()
        return times.user + times.system

    def read(self) -> float:
        cpu, wall = self._now_cpu(), time.monotonic()
        rate = (cpu - self._cpu) / max(1e-6, wall - self._wall)
        self._cpu, self._wall = cpu, wall
        return round(rate, 3)


class NodeRegistry:
    def __init__(self, valkey: Valkey, describe: Callable[[], NodeInfo]) -> None:
        self.valkey = valkey
        self._describe = describe
        self.registered = trio.Event()
        self._reachable = True

    async def announce(self) -> None:
        """Write this process's listing (and its lease) now."""
        me = self._describe().model_copy(update={"updated": time.time()})
        client = self.valkey.client
        await self.valkey.call(
            client.set(Keys.node(me.id), me.model_dump_json(), px=int(LEASE_SECONDS * 1000))
        )
        await self.valkey.call(client.sadd(Keys.kind_set(me.kind.value), [me.id]))

    async def heartbeat_forever(self) -> None:
        """Renew the listing every couple of seconds, through Valkey outages."""
        while True:
            try:
                await self.announce()
            except ValkeyUnavailable as exc:
                if self._reachable:
                    log.warning("cluster: cannot renew this node's lease (%s); retrying", exc)
                self._reachable = False
            else:
                if not self._reachable:
                    log.info("cluster: Valkey is back; this node is listed again")
                self._reachable = True
                self.registered.set()
            await trio.sleep(HEARTBEAT_SECONDS)

    async def withdraw(self) -> None:
        """Leave the listing at once (a clean shutdown), rather than when the lease expires."""
        me = self._describe()
        await self.valkey.call(self.valkey.client.delete([Keys.node(me.id)]))

    async def live(self, kind: NodeKind) -> list[NodeInfo]:
        """Every process of `kind` whose lease is fresh (the others have died or left)."""
        client = self.valkey.client
        ids = sorted(
            i.decode() for i in await self.valkey.call(client.smembers(Keys.kind_set(kind.value)))
        )
        if not ids:
            return []
        values = await self.valkey.call(client.mget([Keys.node(i) for i in ids]))
        found: list[NodeInfo] = []
        gone: list[str] = []
        for node_id, value in zip(ids, values, strict=True):
            if value is None:
                gone.append(node_id)
                continue
            try:
                found.append(NodeInfo.model_validate_json(value))
            except ValidationError:
                log.warning("cluster: ignoring an unreadable listing for %s", node_id)
        if gone:  # their leases expired: forget them (another node may do it first)
            await self.valkey.call(client.srem(Keys.kind_set(kind.value), gone))
        return found
