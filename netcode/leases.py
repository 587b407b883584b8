"""Server-granted leases on shared objects: one holder at a time, renewed by use.

Last-writer-wins makes two people carrying one object fight; a lease makes the second
grab a clear refusal instead. Time is in room ticks, so leases replay exactly.
"""

from __future__ import annotations

from dataclasses import dataclass


class LeaseRefused(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(slots=True)
class Lease:
    holder: int
    expires: int


class Leases:
    def __init__(self, timeout_ticks: int) -> None:
        self.timeout_ticks = timeout_ticks
        self._leases: dict[int, Lease] = {}

    def holder(self, obj: int) -> int | None:
        lease = self._leases.get(obj)
        return None if lease is None else lease.holder

    def grab(self, obj: int, member: int, tick: int, holder_name: str = "someone") -> None:
        """Grant `obj` to `member` or raise `LeaseRefused` saying who holds it."""
        lease = self._leases.get(obj)
        if lease is not None and lease.holder != member and lease.expires > tick:
            raise LeaseRefused(f"object {obj} is held by {holder_name}")
        self._leases[obj] = Lease(member, tick + self.timeout_ticks)

    def renew(self, obj: int, member: int, tick: int) -> bool:
        """Extend the lease because its holder used the object; False if not the holder."""
        lease = self._leases.get(obj)
        if lease is None or lease.holder != member:
            return False
        lease.expires = tick + self.timeout_ticks
        return True

    def release(self, obj: int, member: int) -> bool:
        lease = self._leases.get(obj)
        if lease is None or lease.holder != member:
            return False
        del self._leases[obj]
        return True

    def release_all(self, member: int) -> list[int]:
        mine = [obj for obj, lease in self._leases.items() if lease.holder == member]
        for obj in mine:
            del self._leases[obj]
        return mine

    def expire(self, tick: int) -> list[int]:
        """Release every lease not renewed in time; returns the objects freed."""
        stale = [obj for obj, lease in self._leases.items() if lease.expires <= tick]
        for obj in stale:
            del self._leases[obj]
        return stale

    def export(self) -> list[list[int]]:
        return [[obj, lease.holder, lease.expires] for obj, lease in self._leases.items()]

    def restore(self, data: list[list[int]]) -> None:
        self._leases = {obj: Lease(holder, expires) for obj, holder, expires in data}
