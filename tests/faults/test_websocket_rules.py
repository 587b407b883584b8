"""WebSocket rules against a real server process: frames refused at their header, RFC
6455 close codes after a `bye` with a code, every reply counted against the send limit.
The honest room's check ends each test: nobody else noticed."""

from __future__ import annotations

import struct
from pathlib import Path

import msgpack
import psutil
import pytest
import trio
from wsproto.events import CloseConnection

from tests.faults.harness import honest_room
from tests.faults.raw_ws import client_frame, raw_websocket

pytestmark = pytest.mark.slow
TEXT, BINARY, CONTINUATION, PING = 0x1, 0x2, 0x0, 0x9


def header_only(opcode: int, length: int) -> bytes:
    """The header (with its mask) of a frame whose payload will never come."""
    return client_frame(opcode, b"", length=length)


VIOLATIONS = [
    # (what is sent, the bye code, the close code)
    (client_frame(TEXT, b'{"t":"ping"}'), "bad_frame", 1003),
    (header_only(TEXT, 3_000_000_000), "bad_frame", 1003),  # refused at its header
    (header_only(BINARY, 2**40), "too_large", 1009),
    (
        client_frame(BINARY, b"x" * 40_000, fin=False) + client_frame(CONTINUATION, b"x" * 40_000),
        "too_large",
        1009,
    ),
    (bytes((0x82, 5)) + b"hello", "bad_frame", 1002),  # unmasked
    (client_frame(0x3, b"x"), "bad_frame", 1002),  # a reserved opcode
    (client_frame(0x8, struct.pack("!H", 999)), "bad_frame", 1002),  # an invalid close code
    (client_frame(0x8, struct.pack("!H", 1000) + b"\xff\xfe"), "bad_frame", 1007),  # not UTF-8
    (client_frame(CONTINUATION, b"x"), "bad_frame", 1002),  # nothing to continue
]


async def test_protocol_violations_get_a_bye_with_a_code_then_the_rfc_close_code(
    tmp_path: Path,
) -> None:
    """Before hello, after it as a spectator (read when it sends) and after it as a
    participant (read by the room at each tick): the same bye, the same close code."""
    async with honest_room(tmp_path) as h:
        tokens = {role: await h.server.token(role, "Rude") for role in ("spectator", "participant")}
        ways = (("spectator", True), ("spectator", False), ("participant", False))
        for role, before_hello in ways:
            for frame, code, close_code in VIOLATIONS:
                async with raw_websocket(h.server.port) as ws:
                    if not before_hello:
                        await ws.hello(tokens[role])
                    await ws.send_raw(frame)
                    bye = await ws.receive("bye")
                    assert bye["code"] == code and bye["msg"], (role, frame[:16], bye)
                    await ws.until_closed()
                    assert ws.close_code == close_code, (role, frame[:16], ws.close_code)
        await h.check()


async def test_an_oversized_first_message_is_too_large(tmp_path: Path) -> None:
    """Issue 13: the errors table says `too_large`, and so does the server (not bad_frame)."""
    async with honest_room(tmp_path) as h, raw_websocket(h.server.port) as ws:
        hello = {"t": "hello", "v": 1, "token": "x", "pad": "y" * 70_000}
        await ws.send_raw(client_frame(BINARY, msgpack.packb(hello)))
        bye = await ws.receive("bye")
        assert bye["code"] == "too_large" and "65536" in bye["msg"]
        await ws.until_closed()
        assert ws.close_code == 1009
        await h.check()


async def test_pings_and_pongs_count_against_the_send_limit(tmp_path: Path) -> None:
    """Eight sockets pinging before hello and never reading: the server answers the
    latest ping of each read (RFC 6455 5.5.3) and its memory does not follow the flood."""
    async with honest_room(tmp_path) as h:
        server = psutil.Process(h.server.process.pid)
        before = server.memory_info().rss
        pings = client_frame(PING, b"p" * 125) * 16_000  # 2 MB of pings
        async with trio.open_nursery() as nursery:
            for _ in range(8):

                async def flood() -> None:
                    async with raw_websocket(h.server.port) as ws:
                        with trio.move_on_after(30):
                            for _ in range(4):
                                await ws.send_raw(pings)

                nursery.start_soon(flood)
        growth = server.memory_info().rss - before
        assert growth < 20 * 2**20, f"the server grew by {growth / 2**20:.0f} MB"
        await h.check()


async def test_a_participant_read_by_the_room_is_answered_and_closes_cleanly(
    tmp_path: Path,
) -> None:
    """A participant's connection is read by the room at each tick: its ping is answered
    and its close is answered in turn, as on a connection read as it sends."""
    async with honest_room(tmp_path) as h, raw_websocket(h.server.port) as ws:
        await ws.hello(await h.server.token("participant", "Pinger"))
        for ping_id in (7, 8):
            await ws.send_message({"t": "ping", "id": ping_id})
            assert (await ws.receive("pong"))["id"] == ping_id
        await ws.send(CloseConnection(1000))
        await ws.until_closed()
        assert ws.close_code == 1000
        await h.check()
