"""A TCP proxy between one node and Valkey that a test can cut: a network partition.

While cut, the proxy forwards nothing in either direction and accepts no new
connection's traffic, but keeps every connection open, as a partition (not a crash)
looks to both ends: requests time out rather than fail at once.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial

import trio


class Partition:
    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = 0
        self._open = trio.Event()
        self._open.set()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    def cut(self) -> None:
        self._open = trio.Event()

    def heal(self) -> None:
        self._open.set()

    async def _pump(self, source: trio.SocketStream, sink: trio.SocketStream) -> None:
        try:
            while data := await source.receive_some(65536):
                await self._open.wait()
                await sink.send_all(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass

    async def serve(self, client: trio.SocketStream) -> None:
        async with client:
            try:
                upstream = await trio.open_tcp_stream("127.0.0.1", self.target_port)
            except OSError:
                return
            async with upstream, trio.open_nursery() as nursery:
                nursery.start_soon(self._pump, client, upstream)
                await self._pump(upstream, client)
                nursery.cancel_scope.cancel()


@asynccontextmanager
async def partition_proxy(target_port: int) -> AsyncIterator[Partition]:
    proxy = Partition(target_port)
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(partial(trio.serve_tcp, proxy.serve, 0, host="127.0.0.1"))
        proxy.port = listeners[0].socket.getsockname()[1]
        yield proxy
        nursery.cancel_scope.cancel()
