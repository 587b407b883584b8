"""One owner per room, fenced: a lease in Valkey carrying the owner and an epoch.

A node claims a room atomically (a Lua script: only when nobody holds it), which raises
the room's epoch; it renews the lease every second while the room's loop is alive;
everything it publishes about the room goes through a script that checks the lease
still names it with its epoch. A successor's claim raises the epoch, so an owner that
was cut off (a partition, not a death) finds on its next renewal or publication that it
has been superseded, and nothing it writes after that is accepted.

When Valkey itself lost the lease (a restart without persistence) the owner may take
it back with its own epoch, as long as nobody claimed the room with a higher one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from server.valkey import Keys, Valkey, ValkeyUnavailable, text

LEASE_SECONDS: Final = 3.0
RENEW_SECONDS: Final = 1.0

_CLAIM: Final = """
if redis.call('GET', KEYS[1]) then
  return 0
end
local epoch = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], ARGV[1] .. '|' .. epoch, 'PX', ARGV[2])
redis.call('HSET', KEYS[3], 'owner', ARGV[1], 'epoch', epoch)
return epoch
"""
"""KEYS: lease, epoch, room hash. ARGV: node id, ttl ms. The new epoch, or 0 if held."""

_RENEW: Final = """
local token = ARGV[1] .. '|' .. ARGV[2]
local current = redis.call('GET', KEYS[1])
if current == token then
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
  return 1
end
if not current and tonumber(redis.call('GET', KEYS[2]) or '0') <= tonumber(ARGV[2]) then
  redis.call('SET', KEYS[2], ARGV[2])
  redis.call('SET', KEYS[1], token, 'PX', ARGV[3])
  redis.call('HSET', KEYS[3], 'owner', ARGV[1], 'epoch', ARGV[2])
  return 1
end
return 0
"""
"""KEYS: lease, epoch, room hash. ARGV: node id, epoch, ttl ms. 1 still ours, 0 superseded."""

FENCE: Final = """
local lease = redis.call('GET', KEYS[1])
if not lease then
  return -1
end
if lease ~= ARGV[1] then
  return false
end
"""
"""The start of every fenced write script: KEYS[1] the lease, ARGV[1] the owner's token.
-1 when Valkey holds no lease (`LeaseMissing`), nil when another owner holds it
(`Superseded`)."""

_APPEND: Final = (
    FENCE
    + """
local id = redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', 'd', ARGV[3])
if ARGV[4] == '1' then
  local previous = redis.call('GET', KEYS[3])
  redis.call('SET', KEYS[3], id)
  if previous then
    redis.call('XTRIM', KEYS[2], 'MINID', previous)
  end
end
return id
"""
)
"""KEYS: lease, stream, the stream's mark. ARGV: token, max entries, payload, '1' for an
entry a reader can start from (a keyframe): the stream then keeps only what follows the
previous such entry. The new entry's id, nil when the lease is another owner's, -1 when
Valkey holds no lease for the room."""

_RELEASE: Final = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


class Superseded(Exception):
    """Another node owns this room now (a higher epoch); this copy must stop."""


class LeaseMissing(ValkeyUnavailable):
    """Valkey holds no lease for the room (it restarted empty, or the lease ran out and
    nobody has claimed the room yet). Not a successor: the write is lost like one Valkey
    did not answer, and the owner's next renewal takes the lease back or finds it was
    superseded."""


@dataclass(slots=True)
class RoomLease:
    """This node's claim on one room: (node, epoch), renewed and checked on every write."""

    valkey: Valkey
    room_id: str
    node_id: str
    epoch: int

    @property
    def token(self) -> str:
        return f"{self.node_id}|{self.epoch}"

    @classmethod
    async def claim(cls, valkey: Valkey, room_id: str, node_id: str) -> RoomLease | None:
        """Take the room if nobody holds it; None if somebody does."""
        epoch = await valkey.call(
            valkey.client.eval(
                _CLAIM,
                keys=[Keys.room_lease(room_id), Keys.room_epoch(room_id), Keys.room(room_id)],
                args=[node_id, int(LEASE_SECONDS * 1000)],
            )
        )
        return cls(valkey, room_id, node_id, int(epoch)) if epoch else None  # type: ignore[arg-type]

    async def renew(self) -> None:
        """Extend the lease; `Superseded` if another node claimed the room meanwhile."""
        ours = await self.valkey.call(
            self.valkey.client.eval(
                _RENEW,
                keys=[
                    Keys.room_lease(self.room_id),
                    Keys.room_epoch(self.room_id),
                    Keys.room(self.room_id),
                ],
                args=[self.node_id, self.epoch, int(LEASE_SECONDS * 1000)],
            )
        )
        if not ours:
            raise Superseded(f"room {self.room_id} is owned by a newer epoch than {self.epoch}")

    async def append(
        self, stream: str, payload: bytes, max_entries: int, *, starting_point: bool
    ) -> str:
        """Add one entry to one of the room's streams, fenced.

        A `starting_point` (a keyframe, a full snapshot) trims the stream to what follows
        the previous starting point, so a reader always finds one, and a successor also
        finds the records its recording may still lack.
        """
        entry = await self.valkey.call(
            self.valkey.client.eval(
                _APPEND,
                keys=[Keys.room_lease(self.room_id), stream, f"{stream}:mark"],
                args=[self.token, max_entries, payload, "1" if starting_point else "0"],
            )
        )
        if entry == -1:
            raise LeaseMissing(f"room {self.room_id}: Valkey holds no lease for it")
        if entry is None:
            raise Superseded(f"room {self.room_id}: epoch {self.epoch} may no longer publish")
        return text(entry)  # type: ignore[arg-type]

    async def release(self) -> None:
        """Give the room up now (draining), so a successor need not wait for the TTL."""
        await self.valkey.call(
            self.valkey.client.eval(
                _RELEASE, keys=[Keys.room_lease(self.room_id)], args=[self.token]
            )
        )
