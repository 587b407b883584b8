"""What docs/protocol.md promises about a connection's life: refusals before welcome end
it, errors past the cap are counted not lost, and a client can leave at once."""

from __future__ import annotations

import trio
from wsproto.events import BytesMessage

from clients.python import connect
from netcode.views import Role
from server.app import Server
from server.client_session import MAX_ERRORS_PER_SECOND
from tests.conftest import ws_url
from tests.faults.raw_ws import raw_websocket


async def test_before_welcome_every_refusal_is_a_bye(server: Server) -> None:
    for message, code in (
        ({"t": "hello", "v": 1}, "bad_message"),  # no token
        ({"t": "hello", "v": 1, "token": 7}, "bad_message"),
        ({"t": "teleport"}, "unknown_type"),
        ({"t": "ping", "id": 1}, "hello_required"),
    ):
        async with raw_websocket(server.port) as ws:
            await ws.send_message(message)
            bye = await ws.receive("bye")
            assert bye["code"] == code and bye["msg"]
            await ws.until_closed()
            assert ws.close_code == 1008
    async with raw_websocket(server.port) as ws:
        await ws.send(BytesMessage(b"\xc1"))  # not msgpack
        assert (await ws.receive("bye"))["code"] == "bad_frame"


async def test_errors_past_the_cap_are_counted_in_the_next_one(server: Server) -> None:
    async with raw_websocket(server.port) as ws:
        await ws.hello(server.issue_token("demo", Role.PARTICIPANT, "Noisy"))
        for _ in range(20):
            await ws.send_message({"t": "pose", "head": [0, 0, 0, 0, 0, 0, 0]})  # bad_pose
        errors = []
        with trio.move_on_after(0.5):
            while True:
                errors.append(await ws.receive("error"))
        assert len(errors) == MAX_ERRORS_PER_SECOND
        assert all(e["code"] == "bad_pose" and "suppressed" not in e for e in errors)
        await trio.sleep(1.0)  # the next second
        await ws.send_message({"t": "pose", "head": [0, 0, 0, 0, 0, 0, 0]})
        error = await ws.receive("error")
        assert error["suppressed"] == 20 - MAX_ERRORS_PER_SECOND


async def test_closing_with_1000_leaves_at_once_other_endings_keep_the_avatar(
    server: Server,
) -> None:
    url = ws_url(server)
    async with connect(url, server.issue_token("demo", Role.SPECTATOR, "Watcher")) as watcher:
        async with connect(url, server.issue_token("demo", Role.PARTICIPANT, "Stays")) as stays:
            avatar = await watcher.wait_for(
                lambda m: next((e for e, f in m.find("avatar").items() if f["name"] == "Stays"), 0)
            )
            await stays.drop()  # a lost connection: held for grace_seconds
            await watcher.wait_for(lambda m: m.field(avatar, "connected") is False)
        async with connect(url, server.issue_token("demo", Role.PARTICIPANT, "Goes")) as goes:
            gone = await watcher.wait_for(
                lambda m: next((e for e, f in m.find("avatar").items() if f["name"] == "Goes"), 0)
            )
            await goes.close()  # a close frame with 1000: leaving
        await watcher.wait_for(lambda m: gone not in m.entities, timeout=1.5)
        assert avatar in watcher.mirror.entities  # grace_seconds is 2 here: still held
