"""How many peer connections a media worker holds: per member, per room, per worker.

Every pc holds UDP sockets (one per ICE host address, one more with a TURN server)
from the moment it gathers candidates, an offer nobody answers included. Unbounded,
spectators asking for subscriptions used up a worker's descriptors until a participant
could no longer publish (issue 9). So:

- a member holds at most `publish_per_member` publishing and `subscribe_per_member`
  subscribing pcs (a mic, a stereo video, one being replaced);
- a room holds at most `publish_per_room` publishing and `subscribe_per_room`
  subscribing pcs, counted apart: a room's spectators never take its speakers' share;
- a worker holds at most `per_worker` pcs, and subscriptions never take the last
  `publish_reserve` of them, so no room's spectators can starve anyone's publishing;
- an offer left unanswered `offer_timeout_s`, and a pc not connected
  `connect_timeout_s` after its negotiation, are closed (their member is told).

A pc counts from the moment it is admitted, before anything is awaited, until it is
closed, so concurrent requests from several rooms cannot overshoot a limit.
"""

from __future__ import annotations

import logging
import resource
from collections import Counter
from dataclasses import dataclass, field
from typing import Final, Literal, NoReturn

from pydantic import BaseModel, ConfigDict, Field

from media import errors
from media.errors import SignalError

log = logging.getLogger(__name__)

Direction = Literal["publish", "subscribe"]
FILE_RESERVE_MIN: Final = 64
FILE_RESERVE_SHARE: Final = 0.25
"""Descriptors kept from pcs for the control socket, recordings and the like."""


class PeerLimits(BaseModel):
    """The limits (settings: `media_peer_limits`; docs/media.md lists them)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    publish_per_member: int = Field(default=3, ge=1)
    subscribe_per_member: int = Field(default=3, ge=1)
    publish_per_room: int = Field(default=64, ge=1)
    subscribe_per_room: int = Field(default=1024, ge=1)
    per_worker: int = Field(default=2048, ge=2)
    publish_reserve: int = Field(default=128, ge=1)
    """Of `per_worker`, the pcs only publishing may take."""
    offer_timeout_s: float = Field(default=20.0, gt=0, allow_inf_nan=False)
    connect_timeout_s: float = Field(default=30.0, gt=0, allow_inf_nan=False)

    def fitted(self, sockets_per_pc: int) -> PeerLimits:
        """These limits within what the process may open (RLIMIT_NOFILE): the soft
        limit is raised toward the hard one as far as `per_worker` needs, and
        `per_worker` lowered (with a warning) where the limit does not allow it."""
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        wanted = self.per_worker * sockets_per_pc
        if soft != resource.RLIM_INFINITY and soft - _file_reserve(soft) < wanted:
            needed = max(wanted + FILE_RESERVE_MIN, int(wanted / (1 - FILE_RESERVE_SHARE)) + 1)
            raised = needed if hard == resource.RLIM_INFINITY else min(hard, needed)
            if raised > soft:
                resource.setrlimit(resource.RLIMIT_NOFILE, (raised, hard))
                soft = raised
        if soft == resource.RLIM_INFINITY:
            return self
        allowed = max(2, (soft - _file_reserve(soft)) // sockets_per_pc)
        if allowed >= self.per_worker:
            return self
        log.warning(
            "at most %d peer connections (not %d): this process may open %d files (ulimit -n)"
            " and each pc takes %d",
            allowed,
            self.per_worker,
            soft,
            sockets_per_pc,
        )
        reserve = min(self.publish_reserve, max(1, allowed // 4))
        return self.model_copy(update={"per_worker": allowed, "publish_reserve": reserve})


def _file_reserve(limit: int) -> int:
    return max(FILE_RESERVE_MIN, int(limit * FILE_RESERVE_SHARE))


@dataclass(eq=False)
class Slot:
    """One admitted pc's place in the counts; given back once, when the pc closes."""

    keys: tuple[tuple[str, ...], ...]
    released: bool = False


@dataclass
class PeerLedger:
    """The worker's count of pcs, shared by its rooms; admits a new pc or says why not."""

    limits: PeerLimits
    counts: Counter[tuple[str, ...]] = field(default_factory=Counter)
    refused: Counter[str] = field(default_factory=Counter)
    """Refusals by code (the worker's stats)."""

    def admit(self, room: str, member: str, direction: Direction, pc: str) -> Slot:
        limits = self.limits
        member_key = ("member", room, member, direction)
        room_key = ("room", room, direction)
        worker_key = ("worker",)
        publishing = direction == "publish"
        per_member = limits.publish_per_member if publishing else limits.subscribe_per_member
        per_room = limits.publish_per_room if publishing else limits.subscribe_per_room
        per_worker = limits.per_worker if publishing else limits.per_worker - limits.publish_reserve
        noun = "publishing" if publishing else "subscribing"
        if self.counts[member_key] >= per_member:
            self._refuse(
                errors.MEMBER_LIMIT,
                f"you hold the most {noun} pcs one member may ({per_member});"
                f" close one ({'unpublish' if publishing else 'unsubscribe'}) first",
                pc,
            )
        if self.counts[room_key] >= per_room:
            self._refuse(
                errors.ROOM_LIMIT,
                f"this room holds the most {noun} pcs it may ({per_room});"
                " try again when someone leaves",
                pc,
            )
        if self.counts[worker_key] >= per_worker:
            self._refuse(
                errors.WORKER_LIMIT,
                "the media server holds as many peer connections as it can"
                + ("" if publishing else " (the rest are kept for people who speak)")
                + "; try again shortly",
                pc,
            )
        slot = Slot((member_key, room_key, worker_key, ("direction", direction)))
        self.counts.update(slot.keys)
        return slot

    def release(self, slot: Slot) -> None:
        if slot.released:
            return
        slot.released = True
        self.counts.subtract(slot.keys)
        for key in slot.keys:
            if self.counts[key] <= 0:
                del self.counts[key]

    def held(self, direction: Direction) -> int:
        return self.counts[("direction", direction)]

    def _refuse(self, code: str, message: str, pc: str) -> NoReturn:
        self.refused[code] += 1
        raise SignalError(code, message, pc)
