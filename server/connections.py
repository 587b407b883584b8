"""Accepting connections: a cap on how many are open at once, and no death by EMFILE.

Every connection costs a descriptor, and a process may hold only so many
(RLIMIT_NOFILE). The cap leaves a reserve for what rooms, recordings, reviews and the
media worker open: at start the server raises its soft limit toward the hard one as
far as the cap needs, and lowers the cap (saying so) where the limit does not allow it.
Past the cap a connection is answered `503 {"error": "too_many_connections"}` and
closed (at once, past a few such answers in flight). Should accept still fail for want
of descriptors or memory, the listener logs one line and tries again a moment later.
Each connection is served inside a fault boundary: whatever it raises ends it alone.
"""

from __future__ import annotations

import errno
import json
import logging
import math
import resource
from typing import Final

import trio

from server.boundary import report_fault
from server.http import Service, handle_connection

log = logging.getLogger(__name__)
FILE_RESERVE_MIN: Final = 64
FILE_RESERVE_SHARE: Final = 0.25
"""Descriptors kept from connections: a quarter of the limit, at least 64."""
MAX_REFUSALS_IN_FLIGHT: Final = 32
REFUSAL_SECONDS: Final = 2.0
ACCEPT_RETRY_SECONDS: Final = 0.1
CAPACITY_LOG_SECONDS: Final = 10.0
ACCEPT_CAPACITY_ERRNOS: Final = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOBUFS})
_BUSY_BODY: Final = json.dumps(
    {
        "error": "too_many_connections",
        "message": "the server has as many connections as it can take; try again shortly",
    }
).encode()
BUSY_RESPONSE: Final = (
    b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n"
    b"content-length: %d\r\nretry-after: 5\r\ncache-control: no-store\r\n"
    b"connection: close\r\n\r\n%s" % (len(_BUSY_BODY), _BUSY_BODY)
)


def _reserve(limit: int) -> int:
    return max(FILE_RESERVE_MIN, int(limit * FILE_RESERVE_SHARE))


def connection_budget(wanted: int) -> int:
    """The connection cap the descriptor limit allows, raising the soft limit first if
    the cap needs it and the hard limit permits."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft - _reserve(soft) < wanted:
        needed = max(wanted + FILE_RESERVE_MIN, math.ceil(wanted / (1 - FILE_RESERVE_SHARE)))
        raised = needed if hard == resource.RLIM_INFINITY else min(hard, needed)
        if raised > soft:
            resource.setrlimit(resource.RLIMIT_NOFILE, (raised, hard))
            soft = raised
    if soft == resource.RLIM_INFINITY:
        return wanted
    allowed = max(1, soft - _reserve(soft))
    if allowed < wanted:
        log.warning(
            "at most %d connections (not %d): this process may open %d files (ulimit -n)",
            allowed,
            wanted,
            soft,
        )
    return min(wanted, allowed)


def peer_name(stream: trio.SocketStream) -> str:
    try:
        host, port = stream.socket.getpeername()[:2]
    except OSError:  # already gone
        return "a client"
    return f"{host}:{port}"


class Connections:
    """The server's open connections: admitted up to the cap, each in its boundary."""

    def __init__(self, server: Service) -> None:
        self.server = server
        self.cap = connection_budget(server.settings.max_connections)
        self.open = 0
        self._refusing = 0
        self._capacity_logged = -math.inf

    async def serve(self, listeners: list[trio.SocketListener], nursery: trio.Nursery) -> None:
        """Accept on every listener until cancelled; connections run in `nursery`."""
        async with trio.open_nursery() as accepting:
            for listener in listeners:
                accepting.start_soon(self._accept_forever, listener, nursery)

    async def _accept_forever(self, listener: trio.SocketListener, nursery: trio.Nursery) -> None:
        async with listener:
            while True:
                try:
                    stream = await listener.accept()
                except OSError as exc:
                    if exc.errno not in ACCEPT_CAPACITY_ERRNOS:
                        raise
                    self._note_capacity(exc)
                    await trio.sleep(ACCEPT_RETRY_SECONDS)
                    continue
                if self.open < self.cap:
                    self.open += 1
                    self.server.metrics.connections.set(self.open)
                    nursery.start_soon(self._serve, stream)
                elif self._refusing < MAX_REFUSALS_IN_FLIGHT:
                    self._refusing += 1
                    nursery.start_soon(self._refuse, stream)
                else:
                    self.server.metrics.connections_refused.inc()
                    await trio.aclose_forcefully(stream)

    def _note_capacity(self, exc: OSError) -> None:
        """One line now and then, not a traceback per failed accept."""
        now = trio.current_time()
        if now - self._capacity_logged >= CAPACITY_LOG_SECONDS:
            self._capacity_logged = now
            log.warning(
                "cannot accept connections for now: %s (%d open, cap %d); retrying",
                exc.strerror,
                self.open,
                self.cap,
            )

    async def _serve(self, stream: trio.SocketStream) -> None:
        peer = peer_name(stream)
        try:
            await handle_connection(self.server, stream, peer)
        except Exception as exc:  # the last line: handle_connection has its own boundary
            self.server.metrics.connection_faults.inc()
            report_fault(f"connection from {peer}", exc)
        finally:
            self.open -= 1
            self.server.metrics.connections.set(self.open)
            await trio.aclose_forcefully(stream)

    async def _refuse(self, stream: trio.SocketStream) -> None:
        """Answer 503 and close; read what the client sent meanwhile, so that closing
        does not reset the connection before it has read the answer."""
        self.server.metrics.connections_refused.inc()
        try:
            with trio.move_on_after(REFUSAL_SECONDS):
                await stream.send_all(BUSY_RESPONSE)
                await stream.send_eof()
                while await stream.receive_some(16384):
                    pass
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        finally:
            self._refusing -= 1
            await trio.aclose_forcefully(stream)
