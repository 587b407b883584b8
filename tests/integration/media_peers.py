"""Real aiortc peers driven from trio tests, signalling through the room's WebSocket.

The room server and its clients run on trio; aiortc needs asyncio. `AsyncioThread`
runs one asyncio loop in a thread of its own: trio code hands it coroutines with
`await peers.run(coro)`, and the aiortc peers (made by tests/media/harness.py) signal
through `WsSignaller`, which calls back into trio to send `{"t": "rtc", ...}` over the
member's WebSocket and wait for the reply. `RtcClient` is the room client that keeps
the rtc messages the plain client ignores.
"""

from __future__ import annotations

import array
import asyncio
import contextlib
import math
import threading
from collections.abc import AsyncIterator, Coroutine
from functools import partial
from typing import Any, Final, TypeVar

import av
import trio
from aiortc import RTCPeerConnection
from trio_websocket import WebSocketConnection

from clients.python.client import RoomClient, ServerRefused
from tests.media.harness import ToneTrack

T = TypeVar("T")
RTC_TIMEOUT: Final = 30.0
REPLY_OPS: Final = frozenset({"answer", "offer", "ack", "error"})
"""rtc ops that answer the client's own message; the others are room events."""


class RtcClient(RoomClient):
    """A room client that also keeps rtc replies and events (the plain one drops them)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.rtc_events: list[dict[str, Any]] = []
        self._rtc_send, self._rtc_replies = trio.open_memory_channel[dict[str, Any]](math.inf)
        self._rtc_lock = trio.Lock()

    async def _handle(self, ws: WebSocketConnection, message: dict[str, Any]) -> None:
        if message.get("t") != "rtc":
            await super()._handle(ws, message)
            return
        if message.get("op") in REPLY_OPS:
            self._rtc_send.send_nowait(message)
        else:
            self.rtc_events.append(message)
        self._wake()

    async def rtc(self, message: dict[str, Any], timeout: float = RTC_TIMEOUT) -> dict[str, Any]:
        """Send one rtc message and return its reply (one at a time, so replies pair up)."""
        async with self._rtc_lock:
            await self.send({"t": "rtc", **message})
            with trio.fail_after(timeout):
                return await self._rtc_replies.receive()

    async def wait_rtc_event(self, op: str, timeout: float = RTC_TIMEOUT) -> dict[str, Any]:
        """The first rtc event of this op received so far, waiting for one if need be."""
        with trio.fail_after(timeout):
            while True:
                for event in self.rtc_events:
                    if event.get("op") == op:
                        return event
                if self._closed.is_set():
                    raise ConnectionError(f"connection closed: {self.bye}")
                await self._changed.wait()


@contextlib.asynccontextmanager
async def connect_rtc(url: str, token: str) -> AsyncIterator[RtcClient]:
    """`clients.python.connect`, with an `RtcClient`."""
    async with trio.open_nursery() as nursery:
        client = RtcClient(url, token, nursery)
        try:
            await client.open()
        except (ServerRefused, OSError, trio.TooSlowError):
            nursery.cancel_scope.cancel()
            raise
        try:
            yield client
        finally:
            with trio.CancelScope(shield=True):
                await client.close()
            nursery.cancel_scope.cancel()


class WsSignaller:
    """The harness's `Signaller`, for peers on the asyncio thread: relays through the
    member's WebSocket. The room, member and role arguments are ignored: the server
    knows who the connection is and what role it has."""

    def __init__(self, client: RtcClient, trio_token: trio.lowlevel.TrioToken) -> None:
        self._client = client
        self._token = trio_token

    async def signal(
        self, room: str, member: str, role: str, msg: dict[str, Any]
    ) -> list[dict[str, Any]]:
        call = partial(trio.from_thread.run, self._client.rtc, msg, trio_token=self._token)
        return [await asyncio.get_running_loop().run_in_executor(None, call)]


class AsyncioThread:
    """One asyncio loop in one thread, for aiortc; closes every peer it was told of."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.pcs: list[RTCPeerConnection] = []
        self._thread = threading.Thread(target=self._main, name="aiortc", daemon=True)

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def __enter__(self) -> AsyncioThread:
        self._thread.start()
        return self

    async def run(self, coro: Coroutine[Any, Any, T], timeout: float = 60.0) -> T:
        """Run a coroutine on the asyncio loop; trio waits in a worker thread."""
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return await trio.to_thread.run_sync(partial(future.result, timeout))
        finally:
            future.cancel()

    def track(self, pc: RTCPeerConnection) -> RTCPeerConnection:
        self.pcs.append(pc)
        return pc

    async def _shutdown(self) -> None:
        for pc in self.pcs:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(pc.close(), 10)
        current = asyncio.current_task()
        tasks = [t for t in asyncio.all_tasks() if t is not current]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.loop.shutdown_asyncgens()
        await self.loop.shutdown_default_executor()

    def close(self) -> None:
        """Close the peers, stop the loop, join the thread (blocking: call it off trio)."""
        if self._thread.is_alive():
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(self._shutdown(), self.loop).result(30)
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(30)
        assert not self._thread.is_alive(), "the aiortc thread did not stop"
        self.loop.close()

    def __exit__(self, *exc: object) -> None:
        self.close()


@contextlib.asynccontextmanager
async def aiortc_thread() -> AsyncIterator[AsyncioThread]:
    peers = AsyncioThread()
    peers.__enter__()
    try:
        yield peers
    finally:
        with trio.CancelScope(shield=True):
            await trio.to_thread.run_sync(peers.close)


class SwitchableToneTrack(ToneTrack):
    """The harness's tone, which can be silenced: zero samples, level 127 dBov."""

    def __init__(self) -> None:
        super().__init__()
        self.silent = False

    async def recv(self) -> av.AudioFrame:
        frame = await super().recv()
        if self.silent:
            frame.planes[0].update(array.array("h", [0] * 1920).tobytes())
        return frame
