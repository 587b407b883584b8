"""Each kind of bad input gets a code and a sentence; the room and other clients carry on."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import msgpack
import pytest
import trio
from trio_websocket import ConnectionClosed, WebSocketConnection, open_websocket_url

from clients.python import ServerRefused, connect, still_pose
from netcode.views import Role
from server import tokens
from server.app import Server
from tests.conftest import ws_url


@asynccontextmanager
async def raw(server: Server) -> AsyncIterator[WebSocketConnection]:
    async with open_websocket_url(
        ws_url(server), max_message_size=2**24, message_queue_size=4096
    ) as ws:
        yield ws


async def receive(ws: WebSocketConnection, kind: str, timeout: float = 5) -> dict[str, Any]:
    with trio.fail_after(timeout):
        while True:
            message = msgpack.unpackb(await ws.get_message(), strict_map_key=False)
            if message.get("t") == kind:
                return message  # type: ignore[no-any-return]


@asynccontextmanager
async def member(
    server: Server, role: Role = Role.PARTICIPANT
) -> AsyncIterator[WebSocketConnection]:
    """A raw WebSocket that has said hello and been welcomed."""
    async with raw(server) as ws:
        await ws.send_message(
            msgpack.packb({"t": "hello", "v": 1, "token": server.issue_token("demo", role, "raw")})
        )
        await receive(ws, "welcome")
        for _ in range(3):  # the avatar exists from the next tick on
            await receive(ws, "s")
        yield ws


@asynccontextmanager
async def bystander(server: Server) -> AsyncIterator[Any]:
    """A well-behaved spectator whose experience must not change."""
    async with connect(ws_url(server), server.issue_token("demo", Role.SPECTATOR, "B")) as c:
        await c.wait_for(lambda m: m.find("monitor"))
        yield c


async def assert_room_unharmed(server: Server, client: Any) -> None:
    tick = client.mirror.tick
    await client.wait_for(lambda m: m.tick > tick + 3)
    assert client.resyncs == 0 and not client.errors and client.bye is None
    assert server.rooms["demo"].room.status.value == "running"


async def test_malformed_msgpack_is_an_error_and_the_session_goes_on(server: Server) -> None:
    async with bystander(server) as other, member(server) as ws:
        await ws.send_message(b"\xc1\xc1\xc1")
        error = await receive(ws, "error")
        assert error["code"] == "bad_frame" and error["msg"]
        await ws.send_message(msgpack.packb({"t": "ping", "id": 7}))
        assert (await receive(ws, "pong"))["id"] == 7
        await assert_room_unharmed(server, other)


async def test_wrong_types_are_refused_naming_the_field(server: Server) -> None:
    async with bystander(server) as other, member(server) as ws:
        await ws.send_message(msgpack.packb({"t": "intent", "id": "seven", "do": "chat"}))
        error = await receive(ws, "error")
        assert error["code"] == "bad_message" and "id" in error["msg"]
        await ws.send_message(msgpack.packb({"t": "pose", "head": [1, 2, 3]}))
        error = await receive(ws, "error")
        assert error["code"] == "bad_message" and "head" in error["msg"]
        await ws.send_message(msgpack.packb({"t": "pose", "head": [0, 0, 0, 0, 0, 0, 0]}))
        assert (await receive(ws, "error"))["code"] == "bad_pose"
        await assert_room_unharmed(server, other)


async def test_unknown_message_types_are_refused(server: Server) -> None:
    async with bystander(server) as other, member(server) as ws:
        await ws.send_message(msgpack.packb({"t": "teleport", "to": "mars"}))
        error = await receive(ws, "error")
        assert error["code"] == "unknown_type" and "teleport" in error["msg"]
        await assert_room_unharmed(server, other)


async def test_oversized_frames_close_the_connection_with_a_reason(server: Server) -> None:
    async with bystander(server) as other, member(server) as ws:
        await ws.send_message(msgpack.packb({"t": "ping", "id": 1, "pad": "x" * 100_000}))
        bye = await receive(ws, "bye")
        assert bye["code"] == "too_large" and "65536" in bye["msg"]
        await assert_room_unharmed(server, other)


async def test_text_frames_are_refused(server: Server) -> None:
    async with member(server) as ws:
        await ws.send_message('{"t": "ping"}')
        assert (await receive(ws, "bye"))["code"] == "bad_frame"


async def test_flooding_past_the_rate_limit_is_refused_then_cut_off(server: Server) -> None:
    async with bystander(server) as other, member(server) as ws:
        ping = msgpack.packb({"t": "ping", "id": 1})
        codes: list[str] = []
        with trio.move_on_after(10), contextlib.suppress(ConnectionClosed):
            with contextlib.suppress(ConnectionClosed):  # the server may cut us off mid-flood
                for _ in range(1200):
                    await ws.send_message(ping)
            while True:  # what the server said before it closed is still delivered
                message = msgpack.unpackb(await ws.get_message(), strict_map_key=False)
                if message["t"] in ("error", "bye"):
                    codes.append(message["code"])
                if message["t"] == "bye":
                    break
        assert "rate_limited" in codes
        assert codes[-1] == "too_many_errors"
        await assert_room_unharmed(server, other)


async def test_a_spectator_sending_an_intent_is_refused(server: Server) -> None:
    async with (
        bystander(server) as other,
        connect(ws_url(server), server.issue_token("demo", Role.SPECTATOR, "S")) as spectator,
    ):
        for action, args in (
            ("note", {"text": "x"}),
            ("pause", {}),
            ("grab", {"obj": 6}),
            ("chat", {"text": "hi"}),
        ):
            reply = await spectator.intent(action, **args)
            assert not reply.ok and reply.code == "forbidden" and reply.message
        await spectator.send_pose(head=still_pose(0, 1, 0))
        await spectator.wait_for(lambda m: spectator.errors, timeout=3)
        assert spectator.errors[0][0] == "forbidden"
        await assert_room_unharmed(server, other)


@pytest.mark.parametrize(
    ("make_token", "code"),
    [
        (
            lambda s: tokens.issue("not-the-secret-" + "x" * 32, "demo", Role.PARTICIPANT, "x", 60),
            "bad_token",
        ),
        (lambda s: "garbage.token.here", "bad_token"),
        (lambda s: s.issue_token("demo", Role.PARTICIPANT, "x", ttl_seconds=1), "token_expired"),
        (lambda s: s.issue_token("nowhere", Role.PARTICIPANT, "x"), "unknown_room"),
    ],
)
async def test_forged_expired_or_misdirected_tokens_are_refused(
    server: Server, make_token: Any, code: str
) -> None:
    token = make_token(server)
    if code == "token_expired":
        await trio.sleep(
            max(0.0, tokens.verify(server.settings.secret, token).expires - time.time() + 1.1)
        )
    async with bystander(server) as other:
        with pytest.raises(ServerRefused) as refused:
            async with connect(ws_url(server), token):
                pass
        assert refused.value.code == code and refused.value.message
        await assert_room_unharmed(server, other)


async def test_a_token_for_another_room_is_refused(server: Server) -> None:
    async with raw(server) as ws:
        await ws.send_message(
            msgpack.packb(
                {
                    "t": "hello",
                    "v": 1,
                    "room": "other",
                    "token": server.issue_token("demo", Role.PARTICIPANT, "x"),
                }
            )
        )
        bye = await receive(ws, "bye")
        assert bye["code"] == "wrong_room"
        with pytest.raises(ConnectionClosed), trio.fail_after(5):
            await ws.get_message()


async def test_the_first_message_must_be_hello(server: Server) -> None:
    async with raw(server) as ws:
        await ws.send_message(msgpack.packb({"t": "ping", "id": 1}))
        assert (await receive(ws, "bye"))["code"] == "hello_required"
    async with raw(server) as ws:
        await ws.send_message(msgpack.packb({"t": "hello", "v": 99, "token": "x"}))
        assert (await receive(ws, "bye"))["code"] == "version_mismatch"
