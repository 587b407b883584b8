"""The cluster's room directory: where each room lives, and creating rooms idempotently.

A room's entry is a Valkey hash (`Keys.room`). Creation is keyed by a request id the
caller may give: the first request claims the id (SET NX) and places the room on the
least-loaded live node; a repeat, or a concurrent duplicate, finds the same room.
There is no "create it here if the directory is slow": a slow or unreachable directory
is an error the caller sees, never a second copy of a room.
"""

from __future__ import annotations

import secrets
import time
from enum import StrEnum
from typing import Final

import trio
from coredis.tokens import PureToken
from pydantic import BaseModel, ConfigDict, ValidationError

from server.refusals import RoomRefused
from server.valkey import Keys, Valkey

PLACEMENT_SECONDS: Final = 10.0
"""How long a creation waits for the chosen node to open the room."""
REQUEST_ID_DAYS: Final = 1


class RoomStatus(StrEnum):
    PLACING = "placing"
    """Created in the directory; the chosen node has not opened it yet."""
    RUNNING = "running"
    ENDED = "ended"


class RoomEntry(BaseModel):
    """A room as the directory knows it (the fields of its hash)."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    id: str
    title: str
    case: str
    seed: int
    status: RoomStatus
    node: str
    """Where it was placed, or the node that owns it now."""
    owner: str = ""
    epoch: int = 0
    session: str = ""
    request_id: str = ""
    created_at: float = 0.0
    end_reason: str = ""
    end_requested: str = ""
    """Set when any node was asked to end it: its owner ends it."""
    start: str = ""
    """The room's `start` record (JSON): what a successor rebuilds it from."""

    @classmethod
    def from_hash(cls, fields: dict[bytes, bytes]) -> RoomEntry:
        return cls.model_validate({k.decode(): v.decode() for k, v in fields.items()})

    def to_hash(self) -> dict[str, str]:
        return {k: str(v) for k, v in self.model_dump().items()}


def new_room_id() -> str:
    return secrets.token_urlsafe(6).replace("-", "x").replace("_", "y")


class RoomDirectory:
    def __init__(self, valkey: Valkey) -> None:
        self.valkey = valkey

    async def get(self, room_id: str) -> RoomEntry | None:
        fields = await self.valkey.call(self.valkey.client.hgetall(Keys.room(room_id)))
        if not fields:
            return None
        try:
            return RoomEntry.from_hash(fields)
        except ValidationError:
            return None

    async def all(self) -> list[RoomEntry]:
        client = self.valkey.client
        ids = sorted(i.decode() for i in await self.valkey.call(client.smembers(Keys.ROOMS)))
        entries = [await self.get(room_id) for room_id in ids]
        return [e for e in entries if e is not None]

    async def put(self, entry: RoomEntry) -> None:
        client = self.valkey.client
        await self.valkey.call(client.hset(Keys.room(entry.id), entry.to_hash()))
        await self.valkey.call(client.sadd(Keys.ROOMS, [entry.id]))

    async def update(self, room_id: str, **fields: str | int | float) -> None:
        await self.valkey.call(
            self.valkey.client.hset(Keys.room(room_id), {k: str(v) for k, v in fields.items()})
        )

    async def forget(self, room_id: str) -> None:
        """An ended room leaves the directory (its recording stays where it was written)."""
        client = self.valkey.client
        await self.valkey.call(client.srem(Keys.ROOMS, [room_id]))

    async def reserve(
        self,
        request_id: str,
        *,
        title: str,
        case: str,
        seed: int,
        node: str,
        room_id: str | None = None,
    ) -> tuple[RoomEntry, bool]:
        """The room a creation request made, and whether this call made it.

        The request id is claimed atomically; whoever loses the race gets the winner's
        room (possibly still being placed).
        """
        client = self.valkey.client
        chosen_id = room_id or new_room_id()
        won = await self.valkey.call(
            client.set(
                Keys.creation(request_id),
                chosen_id,
                condition=PureToken.NX,
                ex=REQUEST_ID_DAYS * 86400,
            )
        )
        if not won:
            existing = await self.valkey.call(client.get(Keys.creation(request_id)))
            if existing is None:
                raise RoomRefused("try_again", "a concurrent creation is settling; try again")
            with trio.move_on_after(PLACEMENT_SECONDS):
                while (entry := await self.get(existing.decode())) is None:
                    await trio.sleep(0.05)  # the winner writes its entry right after its claim
                return entry, False
            raise RoomRefused("try_again", "a concurrent creation is settling; try again")
        taken = await self.get(chosen_id) if room_id is not None else None
        if taken is not None and taken.status is not RoomStatus.ENDED:
            raise RoomRefused("room_exists", f"there is already a room {room_id!r}")
        entry = RoomEntry(
            id=chosen_id,
            title=title,
            case=case,
            seed=seed,
            status=RoomStatus.PLACING,
            node=node,
            request_id=request_id,
            created_at=time.time(),
        )
        await self.put(entry)
        return entry, True

    async def wait_running(self, room_id: str, timeout: float = PLACEMENT_SECONDS) -> RoomEntry:
        """The entry once its node has opened the room; `RoomRefused` if it does not in time."""
        with trio.move_on_after(timeout):
            while True:
                entry = await self.get(room_id)
                if entry is not None and entry.status is not RoomStatus.PLACING:
                    return entry
                await trio.sleep(0.05)
        raise RoomRefused(
            "placement_timeout",
            "the node chosen for this room did not open it in time; retry with the same "
            "request id to get the same room",
        )
