"""A client that stops reading is skipped, then dropped; nobody else notices."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from pathlib import Path

import msgpack
import pytest
import trio
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, BytesMessage, Request

from clients.python import connect
from netcode.views import Role
from server.app import Server
from tests.conftest import running, settings_for


@pytest.fixture
async def tight_server(tmp_path: Path) -> AsyncIterator[Server]:
    """Small kernel send buffers, so a stalled reader fills them in a moment."""
    settings = settings_for(tmp_path, slow_drop_seconds=1.0, socket_send_buffer=4096)
    async with running(settings, "demo") as instance:
        yield instance


async def test_a_client_that_stops_reading_is_dropped_and_the_room_is_unaffected(
    tight_server: Server,
) -> None:
    server = tight_server
    sock = trio.socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)
    await sock.connect(("127.0.0.1", server.port))
    stream = trio.SocketStream(sock)
    ws = WSConnection(ConnectionType.CLIENT)
    await stream.send_all(ws.send(Request(host="127.0.0.1", target="/ws")))
    with trio.fail_after(5):
        while not any(isinstance(e, AcceptConnection) for e in ws.events()):
            ws.receive_data(await stream.receive_some(4096))
    token = server.issue_token("demo", Role.SPECTATOR, "stalled")
    await stream.send_all(
        ws.send(BytesMessage(msgpack.packb({"t": "hello", "v": 1, "token": token})))
    )
    resync = ws.send(BytesMessage(msgpack.packb({"t": "resync"})))
    host = server.rooms["demo"]

    async with connect(
        f"ws://127.0.0.1:{server.port}/ws", server.issue_token("demo", Role.SPECTATOR, "fine")
    ) as bystander:
        await bystander.wait_for(lambda m: m.find("monitor"))
        skipped = server.metrics.sends_skipped._value.get()
        # Never read; ask for snapshots (about 3 KB each) so the buffers fill quickly.
        with trio.fail_after(20):
            while len(host.links) == 2:
                await stream.send_all(resync)
                await trio.sleep(0.05)
        assert server.metrics.sends_skipped._value.get() > skipped
        dropped = server.metrics.clients_dropped.labels("too_slow")._value.get()
        assert dropped == 1
        # The well-behaved spectator kept receiving every tick, in order, without repair.
        tick = bystander.mirror.tick
        assert tick is not None
        await bystander.wait_for(lambda m: (m.tick or 0) > tick + 5)
        assert bystander.resyncs == 0 and bystander.bye is None
    await stream.aclose()
