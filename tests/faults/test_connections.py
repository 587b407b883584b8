"""Crashes 1 and 9 of issue 9, against a real server process: a bad WebSocket handshake,
slowloris, running out of descriptors. Each ends with the honest room's check."""

from __future__ import annotations

import resource
from pathlib import Path

import psutil
import pytest
import trio

from clients.python import connect
from tests.faults.harness import HttpAnswer, honest_room, parse_http_answer

pytestmark = pytest.mark.slow

BAD_HANDSHAKES = [
    # crash 1: no Sec-WebSocket-Version
    (
        b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
        400,
        "bad_handshake",
    ),
    (
        b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Version: 8\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
        426,
        "bad_handshake",
    ),
    (
        b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: keep-alive\r\n"
        b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
        400,
        "bad_handshake",
    ),
    (
        b"GET /ws HTTP/1.1\r\nHost: \xff\xfe..\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
        400,
        "bad_handshake",
    ),
    (
        b"GET /ws?\xff HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
        400,
        "bad_request",  # h11 refuses the target before any WebSocket code sees it
    ),
]


async def test_bad_websocket_handshakes_get_an_http_error_and_nobody_else_notices(
    tmp_path: Path,
) -> None:
    async with honest_room(tmp_path) as h:
        for request, status, code in BAD_HANDSHAKES:
            answer = parse_http_answer(await h.server.raw(request))
            assert answer.status == status, (request, answer)
            assert answer.json()["error"] == code and answer.json()["message"]
            if status == 426:
                assert answer.headers["sec-websocket-version"] == "13"
        await h.check()


async def _drip(port: int, results: list[HttpAnswer | None]) -> None:
    """A slowloris connection: one byte of a request header every 200 ms, forever."""
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        received = b""
        async with trio.open_nursery() as nursery:

            async def read() -> None:
                nonlocal received
                while chunk := await stream.receive_some(4096):
                    received += chunk
                nursery.cancel_scope.cancel()

            nursery.start_soon(read)
            head = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 10_000
            for byte in head:
                try:
                    await stream.send_all(bytes([byte]))
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    break
                await trio.sleep(0.2)
        results.append(parse_http_answer(received) if received else None)


async def test_slowloris_connections_are_closed_at_the_request_deadline(tmp_path: Path) -> None:
    """Crash 9: the deadline is per request, not per read; every drip connection is
    answered 408 and closed when the request's time is up, while the room goes on."""
    env = {"GRANDROUNDS_REQUEST_TIMEOUT_SECONDS": "2"}
    async with honest_room(tmp_path, env=env) as h:
        results: list[HttpAnswer | None] = []
        with trio.fail_after(20):  # each would drip for 2,000 s if nobody cut it off
            async with trio.open_nursery() as nursery:
                for _ in range(50):
                    nursery.start_soon(_drip, h.server.port, results)
        assert len(results) == 50
        for answer in results:
            assert answer is not None and answer.status == 408, answer
            assert answer.json()["error"] == "request_timeout"
        await h.check()


async def test_past_the_connection_cap_clients_are_refused_with_503(tmp_path: Path) -> None:
    """Crash 9: with 256 descriptors the server takes 192 connections (keeping 64 for
    its files) and refuses the rest, 503 `too_many_connections` (or, past a few
    refusals in flight, a plain close), instead of running out and dying."""
    env = {"GRANDROUNDS_REQUEST_TIMEOUT_SECONDS": "60"}
    async with honest_room(tmp_path, env=env, open_files=256) as h:
        assert "at most 192 connections" in h.log.text()
        streams: list[trio.SocketStream] = []
        outcomes: list[bytes | None] = []  # None: kept open, waiting for a request

        async def outcome(stream: trio.SocketStream) -> None:
            data = None
            with trio.move_on_after(1):
                data = await stream.receive_some(4096)
            outcomes.append(data)

        try:
            for _ in range(260):
                streams.append(await trio.open_tcp_stream("127.0.0.1", h.server.port))
            async with trio.open_nursery() as nursery:
                for stream in streams:
                    nursery.start_soon(outcome, stream)
            kept = outcomes.count(None)
            answers = [parse_http_answer(data) for data in outcomes if data]
            assert kept == 192 - 2, kept  # the honest participant and spectator hold two
            assert answers, "no refusal was answered"
            for answer in answers:
                assert answer.status == 503 and answer.json()["error"] == "too_many_connections"
            for honest in (h.participant, h.spectator):
                await honest.verify_more_checksums()
        finally:
            for stream in streams:
                await stream.aclose()
        with trio.fail_after(10):  # the server frees a slot once it reads that close
            while (await h.server.http("GET", "/healthz")).status == 503:
                await trio.sleep(0.1)
        await h.check()
        assert "Too many open files" not in h.log.text()


async def test_accept_failing_for_want_of_descriptors_is_survived(tmp_path: Path) -> None:
    """If accept does run out of descriptors (a cap set above what the process may open),
    the listener says so in one line and accepts again once descriptors are free."""
    async with honest_room(tmp_path) as h:
        # The honest joins are still to be written to the recording's manifest: that
        # write fails too meanwhile, and the room's flush retries it.
        server = psutil.Process(h.server.process.pid)
        _, hard = resource.prlimit(server.pid, resource.RLIMIT_NOFILE)
        limit = server.num_fds() + 16
        resource.prlimit(server.pid, resource.RLIMIT_NOFILE, (limit, hard))
        flood: list[trio.SocketStream] = []
        try:
            for _ in range(40):
                flood.append(await trio.open_tcp_stream("127.0.0.1", h.server.port))
            with trio.fail_after(10):
                while "cannot accept connections for now" not in h.log.text():
                    await trio.sleep(0.1)
            for honest in (h.participant, h.spectator):
                await honest.verify_more_checksums()
        finally:
            for stream in flood:
                await stream.aclose()
            resource.prlimit(server.pid, resource.RLIMIT_NOFILE, (hard, hard))
        await h.check()


async def test_a_websocket_client_holds_one_descriptor(tmp_path: Path) -> None:
    """Crash 9: the socket is no longer duplicated, so 30 spectators cost 30 descriptors."""
    async with honest_room(tmp_path) as h:
        server = psutil.Process(h.server.process.pid)
        token = await h.server.token("spectator", "Counted")
        before = server.num_fds()
        async with trio.open_nursery() as nursery:
            clients = []
            for _ in range(30):
                clients.append(await nursery.start(_spectate, h.server.ws_url, token))
            during = server.num_fds()
            for done in clients:
                done.set()
        assert 30 <= during - before <= 32, (before, during)
        await h.check()


async def _spectate(url: str, token: str, *, task_status: trio.TaskStatus[trio.Event]) -> None:
    done = trio.Event()
    async with connect(url, token) as client:
        await client.wait_for(lambda m: m.tick is not None)
        task_status.started(done)
        await done.wait()
