"""One WebSocket client from `hello` to goodbye.

Every bad input becomes a message with a code and a sentence. Errors that leave the
connection usable (a malformed frame, a refused pose, a flood) are answered and the
session goes on; errors that make it meaningless (a bad token, an unknown room, a
client that keeps flooding) end in `bye` and a close. Nothing here can hurt the room:
the room only ever sees validated messages.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, Final

import trio

from netcode.codec import PROTOCOL_VERSION, Hello, ProtocolError, encode, parse_client_message
from rooms.actions import IntentRefused
from server.client_socket import ClientSocket, MessageTooLarge, TextFrame
from server.review import ReviewStream
from server.room_host import Link, RoomHost
from server.tokens import TokenError, is_review_token, verify, verify_review

if TYPE_CHECKING:
    from server.app import Server

log = logging.getLogger(__name__)
HELLO_TIMEOUT_SECONDS: Final = 10.0
MAX_ERRORS_PER_SECOND: Final = 5
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


class Session:
    def __init__(self, server: Server, sock: ClientSocket) -> None:
        self.server = server
        self.sock = sock
        self.host: RoomHost | None = None
        self.link: Link | None = None
        self.review: ReviewStream | None = None
        self._strikes = 0
        self._errors_sent = 0
        self._error_window = 0.0

    def error(self, code: str, message: str) -> None:
        """Send a non-fatal error, at most a few a second (a flood must not echo a flood)."""
        now = trio.current_time()
        if now - self._error_window >= 1.0:
            self._error_window = now
            self._errors_sent = 0
        self.server.metrics.errors.labels(code).inc()
        if self._errors_sent < MAX_ERRORS_PER_SECOND:
            self._errors_sent += 1
            self.sock.send(encode({"t": "error", "code": code, "msg": message}))

    async def fatal(self, code: str, message: str) -> None:
        self.server.metrics.clients_dropped.labels(code).inc()
        self.sock.send(encode({"t": "bye", "code": code, "msg": message}))
        await self.sock.aclose(message[:100], code=1008)

    async def run(self) -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self.sock.run_writer)
            try:
                await self._converse()
            finally:
                if self.host is not None and self.link is not None:
                    self.host.detach(self.link)
                with trio.CancelScope(shield=True):
                    await self.sock.aclose(self.sock.close_reason or "bye")
                nursery.cancel_scope.cancel()

    async def _converse(self) -> None:
        messages = self.sock.messages()
        try:
            with trio.fail_after(HELLO_TIMEOUT_SECONDS):
                first = await anext(messages, None)
        except trio.TooSlowError:
            await self.fatal("hello_timeout", "send hello with a token first")
            return
        except (MessageTooLarge, TextFrame) as exc:
            await self.fatal("bad_frame", str(exc))
            return
        if first is None:
            return
        if not await self._hello(first):
            return
        limited = self._within_rate(messages)
        try:
            if self.review is not None:
                await self.review.run(limited)
                return
            async for data in limited:
                if self.host is None or self.link is None or self.sock.closed:
                    return
                if (message := self._parse(data)) is not None:
                    self._dispatch(message)
                if self._strikes > MAX_STRIKES:
                    await self.fatal("too_many_errors", "too many rejected messages")
                    return
        except trio.TooSlowError:
            await self.fatal("timeout", "no message from the client for too long")
        except MessageTooLarge as exc:
            await self.fatal("too_large", str(exc))
        except TextFrame as exc:
            await self.fatal("bad_frame", str(exc))

    async def _within_rate(self, messages: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        """The client's messages up to its rate; past it each one is a strike, and too
        many strikes end the connection."""
        limiter = RateLimiter(self.server.settings.rate_per_second, self.server.settings.rate_burst)
        async for data in messages:
            if limiter.allow():
                yield data
                continue
            self._strike("rate_limited", "too many messages; slow down")
            if self._strikes > MAX_STRIKES:
                await self.fatal("too_many_errors", "too many rejected messages")
                return

    def _strike(self, code: str, message: str) -> None:
        self._strikes += 1
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

    def _dispatch(self, message: Any) -> None:
        assert self.host is not None and self.link is not None
        try:
            self.host.handle(self.link, message)
        except IntentRefused as refused:
            self._strike(refused.code, refused.message)

    async def _open_review(self, token: str) -> bool:
        try:
            grant = verify_review(self.server.settings.secret, token)
        except TokenError as exc:
            await self.fatal(exc.code, exc.message)
            return False
        review = ReviewStream(self.server, self.sock, grant)
        if not await review.open():
            await self.sock.aclose("session unavailable", code=1008)
            return False
        self.review = review
        return True

    async def _hello(self, data: bytes) -> bool:
        try:
            message = parse_client_message(data)
        except ProtocolError as exc:
            await self.fatal(exc.code, exc.message)
            return False
        if not isinstance(message, Hello):
            await self.fatal("hello_required", "the first message must be hello")
            return False
        if message.v != PROTOCOL_VERSION:
            await self.fatal(
                "version_mismatch", f"this server speaks protocol version {PROTOCOL_VERSION}"
            )
            return False
        if is_review_token(message.token):
            return await self._open_review(message.token)
        try:
            grant = verify(self.server.settings.secret, message.token)
        except TokenError as exc:
            await self.fatal(exc.code, exc.message)
            return False
        if message.room is not None and message.room != grant.room:
            await self.fatal("wrong_room", "this token is for a different room")
            return False
        host = self.server.rooms.get(grant.room)
        if host is None:
            await self.fatal("unknown_room", f"there is no room {grant.room!r} on this server")
            return False
        if host.ended:
            await self.fatal("room_ended", "this room has ended")
            return False
        try:
            self.link = host.attach(self.sock, grant, message.resume)
        except IntentRefused as refused:
            await self.fatal(refused.code, refused.message)
            return False
        self.host = host
        return True
