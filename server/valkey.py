"""The cluster's shared facts in Valkey (or Redis), reached through coredis.

Every call is bounded: a Valkey that is down, partitioned away or slow becomes
`ValkeyUnavailable` within `timeout` seconds, never a hang. Callers decide what waits
(joins through other nodes, relays) and what carries on (live rooms). Keys are named
here, in one place, under the `gr:` prefix.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from typing import Final, TypeVar

import coredis
import coredis.exceptions
import trio
from coredis.retry import ConstantRetryPolicy

T = TypeVar("T")
DEFAULT_TIMEOUT_SECONDS: Final = 2.0


class ValkeyUnavailable(Exception):
    """Valkey did not answer in time (down, partitioned, overloaded)."""


def text(value: bytes | str) -> str:
    """A stream id or a string value as text (the client answers bytes)."""
    return value.decode() if isinstance(value, bytes) else value


class Valkey:
    def __init__(self, client: coredis.Redis[bytes], timeout: float) -> None:
        self.client = client
        self.timeout = timeout

    async def call(self, request: Awaitable[T]) -> T:
        """Await one request within the timeout; `ValkeyUnavailable` if it cannot answer."""
        try:
            with trio.fail_after(self.timeout):
                return await request
        except (
            trio.TooSlowError,
            TimeoutError,
            coredis.exceptions.ConnectionError,
            OSError,
        ) as exc:
            raise ValkeyUnavailable(f"Valkey did not answer: {exc or type(exc).__name__}") from None


@asynccontextmanager
async def open_valkey(url: str, timeout: float = DEFAULT_TIMEOUT_SECONDS) -> AsyncIterator[Valkey]:
    """A client for `url` for the block; connections are made (and remade) on demand."""
    client: coredis.Redis[bytes] = coredis.Redis.from_url(
        url,
        decode_responses=False,
        connect_timeout=timeout,
        stream_timeout=timeout,
        retry_policy=ConstantRetryPolicy(
            (coredis.exceptions.ConnectionError,), retries=1, delay=0.05
        ),
        verify_version=False,
    )
    async with client:
        yield Valkey(client, timeout)


class Keys:
    """Every key the cluster uses, so the schema reads in one place (docs/operations.md)."""

    PREFIX: Final = "gr:"
    SECRETS: Final = "gr:secrets"
    """hash: admin_key, secret; shared by every node so any node's tokens work anywhere."""

    @staticmethod
    def node(node_id: str) -> str:
        """string (JSON, with a TTL: the lease): what a node or relay says about itself."""
        return f"gr:node:{node_id}"

    @staticmethod
    def kind_set(kind: str) -> str:
        """set of the node (or relay) ids registered; one lives only while its lease does."""
        return f"gr:{kind}s"

    @staticmethod
    def control(node_id: str) -> str:
        """stream (capped): nudges to one node (open a room placed on it, end a room)."""
        return f"gr:control:{node_id}"

    ROOMS: Final = "gr:rooms"
    """set of the ids of rooms in the directory (running, placing or moving)."""

    @staticmethod
    def room(room_id: str) -> str:
        """hash: a room's directory entry (title, case, seed, owner, epoch, status...)."""
        return f"gr:room:{room_id}"

    @staticmethod
    def room_lease(room_id: str) -> str:
        """string `node|epoch` with a TTL: who owns the room right now."""
        return f"gr:room:{room_id}:lease"

    @staticmethod
    def room_epoch(room_id: str) -> str:
        """counter: the room's fencing epoch, raised by every claim."""
        return f"gr:room:{room_id}:epoch"

    @staticmethod
    def room_records(room_id: str) -> str:
        """stream: the room's records since its latest keyframe (what a successor restores)."""
        return f"gr:room:{room_id}:records"

    @staticmethod
    def room_sessions(room_id: str) -> str:
        """hash: client session -> member id, so a client resumes on a successor."""
        return f"gr:room:{room_id}:sessions"

    @staticmethod
    def spectator_feed(room_id: str) -> str:
        """stream: the room's spectator view, one entry a tick (relays read it)."""
        return f"gr:room:{room_id}:spectators"

    @staticmethod
    def room_questions(room_id: str) -> str:
        """stream: questions (`ask`) from spectators on relays, for the room's owner."""
        return f"gr:room:{room_id}:questions"

    @staticmethod
    def relay_replies(relay_id: str) -> str:
        """stream: owners' replies to the questions a relay forwarded."""
        return f"gr:relay:{relay_id}:replies"

    @staticmethod
    def creation(request_id: str) -> str:
        """string: the room a creation request made (idempotent creation)."""
        return f"gr:create:{request_id}"
