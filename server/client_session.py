"""One WebSocket client from `hello` to goodbye, inside the connection's fault boundary.

Every bad input becomes a message with a code and a sentence. After `welcome`, errors
that leave the connection usable (a malformed message, a refused pose, a flood) are
answered and the session goes on; errors that make it meaningless (a frame the
transport refuses, a client that keeps flooding) end in `bye` and a close. Before
`welcome` the client has no session yet, so every refusal ends the connection. Nothing
here can hurt the room: the room only ever sees validated messages. An unexpected
exception is reported once (`report_fault`) and ends this connection alone, with
`bye internal_error`.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, Final

import trio

from netcode.codec import PROTOCOL_VERSION, Hello, ProtocolError, encode, parse_client_message
from netcode.views import Role
from rooms.actions import IntentRefused
from server.boundary import report_fault
from server.client_socket import (
    CLOSE_INTERNAL_ERROR,
    CLOSE_NORMAL,
    CLOSE_POLICY,
    ClientSocket,
    Refusal,
)
from server.refusals import RoomRefused
from server.review import ReviewStream
from server.room_host import Link, RoomHost
from server.tokens import Grant, TokenError, is_review_token, verify, verify_review
from server.valkey import ValkeyUnavailable

if TYPE_CHECKING:
    from server.app import Server
    from server.config import Settings
    from server.metrics import Metrics

log = logging.getLogger(__name__)
HELLO_TIMEOUT_SECONDS: Final = 10.0
MAX_ERRORS_PER_SECOND: Final = 5
"""`error` messages sent a second; refusals past it are counted in the next one's
`suppressed` (a flood must not echo a flood)."""
MAX_STRIKES: Final = 500
"""Rejected messages (flood or malformed) before the server gives up on a client."""


class RateLimiter:
    """A token bucket: `rate` messages a second on average, bursts up to `burst`."""

    def __init__(self, rate: float, burst: float) -> None:
        self.rate = rate
        self.burst = burst
        self._tokens = burst
        self._last = trio.current_time()

    def allow(self) -> bool:
        now = trio.current_time()
        self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
        self._last = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False


class ClientSession:
    """The conversation every WebSocket client has, on a node or on a spectator relay:
    hello first, then messages within a rate, each refusal answered, too many ending it.
    A subclass says who is admitted (`_hello`), where their messages go (`_dispatch`) and
    what their leaving undoes (`_detach`)."""

    def __init__(self, settings: Settings, metrics: Metrics, sock: ClientSocket, peer: str) -> None:
        self.settings = settings
        self.metrics = metrics
        self.sock = sock
        self.peer = peer
        self._limiter = RateLimiter(settings.rate_per_second, settings.rate_burst)
        self._strikes = 0
        self._errors_sent = 0
        self._error_window = -1.0
        self._suppressed = 0

    def error(self, code: str, message: str) -> None:
        """Send a non-fatal error, at most `MAX_ERRORS_PER_SECOND` a second."""
        self.metrics.errors.labels(code).inc()
        now = trio.current_time()
        if now - self._error_window >= 1.0:
            self._error_window = now
            self._errors_sent = 0
        if self._errors_sent >= MAX_ERRORS_PER_SECOND:
            self._suppressed += 1
            return
        self._errors_sent += 1
        reply: dict[str, Any] = {"t": "error", "code": code, "msg": message}
        if self._suppressed:
            reply["suppressed"] = self._suppressed
            self._suppressed = 0
        self.sock.send(encode(reply))

    def refuse(self, code: str, message: str, close_code: int = CLOSE_POLICY, **extra: str) -> None:
        """Say `bye` with a code and a sentence (and `extra` fields), then close."""
        self.metrics.clients_dropped.labels(code).inc()
        self.sock.send(encode({"t": "bye", "code": code, "msg": message, **extra}))
        self.sock.close_soon(message[:100], close_code)

    async def run(self) -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self.sock.run_writer)
            nursery.start_soon(self.sock.watch_silence)
            try:
                await self._converse()
            except Refusal as refusal:
                self.refuse(refusal.code, refusal.message, refusal.close_code)
            except Exception as exc:
                self.metrics.connection_faults.inc()
                error_id = report_fault(f"WebSocket session of {self.peer}", exc)
                self.refuse(
                    "internal_error",
                    f"the server failed on this connection (error id {error_id})",
                    CLOSE_INTERNAL_ERROR,
                )
            finally:
                with trio.CancelScope(shield=True):
                    try:
                        self._detach()
                    finally:
                        await self.sock.finish()
                nursery.cancel_scope.cancel()

    async def _converse(self) -> None:
        with trio.move_on_after(HELLO_TIMEOUT_SECONDS) as hello_wait:
            first = await self.sock.receive()
        if hello_wait.cancelled_caught:
            self.refuse("hello_timeout", "send hello with a token first")
            return
        if not first or not await self._hello(first[0]):
            return
        await self._after_hello(first[1:])

    async def _after_hello(self, batch: list[bytes]) -> None:
        """Handle messages until the connection ends."""
        while True:
            self._handle(batch)
            if self.sock.closing:
                return
            batch = await self.sock.receive()
            if not batch:
                return

    def _admit(self, data: bytes) -> bool:
        """Whether the client is within its message rate; past it each message is a
        strike, and too many strikes end the connection."""
        if self._limiter.allow():
            return True
        self._strike("rate_limited", "too many messages; slow down")
        return False

    def _handle(self, batch: list[bytes]) -> None:
        for data in batch:
            if self.sock.closing:
                return
            if self._admit(data) and (message := self._parse(data)) is not None:
                self._dispatch(message)

    def _strike(self, code: str, message: str) -> None:
        self._strikes += 1
        if self._strikes > MAX_STRIKES:
            self.refuse("too_many_errors", "too many rejected messages")
        else:
            self.error(code, message)

    def _parse(self, data: bytes) -> Any:
        try:
            message = parse_client_message(data)
        except ProtocolError as exc:
            self._strike(exc.code, exc.message)
            return None
        if isinstance(message, Hello):
            self._strike("bad_message", "hello was already accepted on this connection")
            return None
        return message

    def _read_hello(self, data: bytes) -> Hello | None:
        """The client's first message as a hello of this protocol version; None (after
        `bye`) when it is not one."""
        try:
            message = parse_client_message(data)
        except ProtocolError as exc:
            self.refuse(exc.code, exc.message)
            return None
        if not isinstance(message, Hello):
            self.refuse("hello_required", "the first message must be hello")
            return None
        if message.v != PROTOCOL_VERSION:
            self.refuse(
                "version_mismatch", f"this server speaks protocol version {PROTOCOL_VERSION}"
            )
            return None
        return message

    async def _hello(self, data: bytes) -> bool:
        """Admit the client named by its hello; False (after `bye`) when it cannot be."""
        raise NotImplementedError

    def _dispatch(self, message: Any) -> None:
        """One validated message from an admitted client."""
        raise NotImplementedError

    def _detach(self) -> None:
        """The connection is over: let go of what the client held."""


class Session(ClientSession):
    """A client of a node: a room member, or a reviewer of a recorded session."""

    def __init__(self, server: Server, sock: ClientSocket, peer: str) -> None:
        super().__init__(server.settings, server.metrics, sock, peer)
        self.server = server
        self.host: RoomHost | None = None
        self.link: Link | None = None
        self.review: ReviewStream | None = None
        self._reading_failure: Exception | None = None
        """Why the room's reading of this connection stopped it (see `_read_by_the_room`)."""

    async def _after_hello(self, batch: list[bytes]) -> None:
        if self.review is not None:
            await self.review.run(self._review_messages(batch))
        elif (
            self.host is not None and self.link is not None and self.host.reads_each_tick(self.link)
        ):
            await self._read_by_the_room(self.host, self.link, batch)
        else:
            await super()._after_hello(batch)

    async def _read_by_the_room(self, host: RoomHost, link: Link, batch: list[bytes]) -> None:
        """Lend this connection's reading to the room, which reads it once per tick
        (`RoomHost.lend_reading`), and wait until the connection is over.

        A member streams its poses 30 times a second; waking this task for each one cost
        more than everything the room then did with it. Read at the start of the tick, a
        pose is applied in the same tick as when it was read on arrival. What the room's
        reading meets that ends the connection (a refused frame, an unexpected error) is
        raised here, inside the connection's boundary.
        """
        self._handle(batch)
        if self.sock.closing:
            return
        host.lend_reading(link, self._read_for_the_room)
        try:
            await self.sock.wait_over()
        finally:
            host.take_back_reading(link)
        if self._reading_failure is not None:
            raise self._reading_failure
        self._handle(self.sock.read_now())  # the last messages, or why it is over

    def _read_for_the_room(self) -> None:
        """Handle what the client sent since the last tick (called by the room's tick)."""
        if self._reading_failure is not None:
            return
        try:
            self._handle(self.sock.read_now())
        except Exception as exc:  # this connection's failure, not the room's
            self._reading_failure = exc
            self.sock.end_reading()

    async def _review_messages(self, first: list[bytes]) -> AsyncIterator[bytes]:
        """What a reviewer sends, one message at a time, within the same rate limit."""
        batch = first
        while True:
            for data in batch:
                if self.sock.closing:
                    return
                if self._admit(data):
                    yield data
            if self.sock.closing:
                return
            batch = await self.sock.receive()
            if not batch:
                return

    def _dispatch(self, message: Any) -> None:
        assert self.host is not None and self.link is not None
        try:
            self.host.handle(self.link, message)
        except IntentRefused as refused:
            self._strike(refused.code, refused.message)

    def _detach(self) -> None:
        if self.host is not None and self.link is not None:
            left = self.sock.client_close_code == CLOSE_NORMAL  # a goodbye, not a dropped link
            self.host.detach(self.link, left=left)

    async def _open_review(self, token: str) -> bool:
        try:
            grant = verify_review(self.server.settings.secret, token)
        except TokenError as exc:
            self.refuse(exc.code, exc.message)
            return False
        self.sock.queue_bytes = self.server.settings.send_queue_bytes
        review = ReviewStream(self.server, self.sock, grant)
        if not await review.open():
            self.sock.close_soon("session unavailable", CLOSE_POLICY)
            return False
        self.review = review
        return True

    async def _here_in_cluster(self, grant: Grant, host: RoomHost | None) -> bool:
        """Whether this node serves the client; if not, it has been told where to go.

        A room elsewhere in the cluster, or a spectator when relays exist, gets `bye`
        `moved` with the WebSocket URL to use (docs/protocol.md, "More than one node").
        """
        cluster = self.server.cluster
        assert cluster is not None
        local = host is not None and not host.stopped
        if local and grant.role is not Role.SPECTATOR:
            return True
        try:
            target = await cluster.locate(grant.room, grant.role)
        except RoomRefused as refused:
            self.refuse(refused.code, refused.message)
            return False
        except ValkeyUnavailable:
            if local:
                return True  # the directory is away; the room is here all the same
            self.refuse("directory_unavailable", "the cluster's directory is not answering")
            return False
        if target is None:
            self.refuse("unknown_room", f"there is no room {grant.room!r} in this cluster")
            return False
        if local and target == cluster.describe().ws:
            return True
        self.refuse("moved", "this room is served elsewhere; connect there", ws=target)
        return False

    async def _hello(self, data: bytes) -> bool:
        message = self._read_hello(data)
        if message is None:
            return False
        if is_review_token(message.token):
            return await self._open_review(message.token)
        try:
            grant = verify(self.server.settings.secret, message.token)
        except TokenError as exc:
            self.refuse(exc.code, exc.message)
            return False
        if message.room is not None and message.room != grant.room:
            self.refuse("wrong_room", "this token is for a different room")
            return False
        host = self.server.rooms.get(grant.room)
        if self.server.cluster is not None and not await self._here_in_cluster(grant, host):
            return False
        if host is None:
            self.refuse("unknown_room", f"there is no room {grant.room!r} on this server")
            return False
        if host.ended:
            self.refuse("room_ended", "this room has ended")
            return False
        self.sock.queue_bytes = self.server.settings.send_queue_bytes
        try:
            self.link = host.attach(self.sock, grant, message.resume)
        except IntentRefused as refused:
            self.refuse(refused.code, refused.message)
            return False
        self.host = host
        return True
