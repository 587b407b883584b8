"""A relay's bounds, with the owner and the relay in this test's process (a real Valkey, real
sockets): a spectator that stops reading is skipped then dropped while the others go on,
a relay serves at most its cap of spectators, and a session resumes only in its room."""

from __future__ import annotations

import socket
from pathlib import Path

import msgpack
import pytest
import trio
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, BytesMessage, Request

from clients.python import connect
from clients.python.client import ServerRefused
from netcode.views import Role
from server.relay import RelaySettings
from server.relay_state import RelaySessions
from server.valkey import open_valkey
from tests.cluster.relay_harness import owned_room, running_relay
from tests.cluster.valkey_process import ValkeyProcess


def relay_settings(tmp_path: Path, redis_url: str, **overrides: object) -> RelaySettings:
    defaults: dict[str, object] = {
        "host": "127.0.0.1",
        "port": 0,
        "data_dir": tmp_path / "relay",
        "redis_url": redis_url,
        "slow_drop_seconds": 1.0,
        "socket_send_buffer": 4096,
    }
    return RelaySettings(**{**defaults, **overrides})


async def test_a_stalled_spectator_is_dropped_and_the_others_go_on(
    valkey: ValkeyProcess, tmp_path: Path
) -> None:
    async with (
        open_valkey(valkey.url) as v,
        owned_room(v, tmp_path) as (server, _, _, _),
        running_relay(relay_settings(tmp_path, valkey.url)) as relay,
    ):
        sock = trio.socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)
        await sock.connect(("127.0.0.1", relay.port))
        stream = trio.SocketStream(sock)
        ws = WSConnection(ConnectionType.CLIENT)
        await stream.send_all(ws.send(Request(host="127.0.0.1", target="/ws")))
        with trio.fail_after(5):
            while not any(isinstance(e, AcceptConnection) for e in ws.events()):
                ws.receive_data(await stream.receive_some(4096))
        token = server.issue_token("r1", Role.SPECTATOR, "stalled")
        hello = {"t": "hello", "v": 1, "token": token}
        await stream.send_all(ws.send(BytesMessage(msgpack.packb(hello))))
        resync = ws.send(BytesMessage(msgpack.packb({"t": "resync"})))
        ws_url = f"ws://127.0.0.1:{relay.port}/ws"
        async with connect(ws_url, server.issue_token("r1", Role.SPECTATOR, "fine")) as bystander:
            await bystander.wait_for(lambda m: m.find("monitor"))
            with trio.fail_after(20):  # never read; snapshots (resync) fill the buffers fast
                while relay.metrics.clients_dropped.labels("too_slow")._value.get() == 0:
                    await stream.send_all(resync)
                    await trio.sleep(0.05)
            assert relay.metrics.sends_skipped._value.get() > 0
            tick = bystander.mirror.tick
            assert tick is not None
            await bystander.wait_for(lambda m: (m.tick or 0) > tick + 5)
            assert bystander.resyncs == 0 and bystander.bye is None
        await stream.aclose()


async def test_a_relay_serves_at_most_its_cap_and_sessions_resume_only_in_their_room(
    valkey: ValkeyProcess, tmp_path: Path
) -> None:
    settings = relay_settings(tmp_path, valkey.url, max_spectators=2)
    async with (
        open_valkey(valkey.url) as v,
        owned_room(v, tmp_path) as (server, _, _, _),
        running_relay(settings) as relay,
    ):
        url = f"ws://127.0.0.1:{relay.port}/ws"
        token = server.issue_token("r1", Role.SPECTATOR)
        async with connect(url, token) as first, connect(url, token):
            with pytest.raises(ServerRefused, match="room_full"):
                async with connect(url, token):
                    pass
            session = first.welcome["session"]
        sessions = RelaySessions(server.settings.secret)
        member = sessions.member("r1", session)
        assert member == first.member
        assert sessions.member("r2", session) is None  # signed for its room only
        head, _, mac = session.partition(".")
        assert sessions.member("r1", f"{int(head, 16) + 1:x}.{mac}") is None
        assert RelaySessions("another cluster").member("r1", session) is None
