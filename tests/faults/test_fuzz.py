"""Black-box fuzz: random and mutated HTTP requests, WebSocket handshakes and frames, and
client messages of every type, sent to a real server process by a few workers at once.

Bounded in count and time (`FUZZ_SECONDS`, default 30; `FUZZ_ROUNDS` per worker). The
seed is printed; `FUZZ_SEED=<seed>` draws the same inputs again. Afterwards `/healthz`
answers, the honest participant and spectator were unaffected, the recording verifies,
and the log has no traceback outside a fault boundary's report. The fuzz also fails if
any answer was a 5xx or an `internal_error`: that is a bug a boundary caught.
"""

from __future__ import annotations

import contextlib
import os
import random
import time
from dataclasses import dataclass, field
from pathlib import Path

import msgpack
import pytest
import trio
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, BytesMessage, CloseConnection, Request

from tests.faults import fuzz_inputs as gen
from tests.faults.harness import HonestRoom, ServerProcess, honest_room

pytestmark = pytest.mark.slow
WORKERS = 4
SECONDS = float(os.environ.get("FUZZ_SECONDS", "30"))
ROUNDS = int(os.environ.get("FUZZ_ROUNDS", "400"))
READ_SECONDS = 0.3
ROUND_SECONDS = 20.0
"""Each round's exchanges have their own timeouts; a round that takes this long means
the server stopped answering."""
ROLES = ("participant", "spectator", "facilitator")


@dataclass
class Findings:
    sent: dict[str, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)

    def count(self, kind: str) -> None:
        self.sent[kind] = self.sent.get(kind, 0) + 1


async def _exchange(port: int, data: bytes, *, read_seconds: float = 2.0) -> bytes:
    """Send `data` on a fresh connection; what comes back before the server closes or
    `read_seconds` pass."""
    received = b""
    with contextlib.suppress(OSError, trio.BrokenResourceError, trio.ClosedResourceError):
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        async with stream:
            await stream.send_all(data)
            with trio.move_on_after(read_seconds):
                while chunk := await stream.receive_some(65536):
                    received += chunk
    return received


def _status(answer: bytes) -> int | None:
    parts = answer.split(b" ", 2)
    if len(parts) >= 2 and parts[0].startswith(b"HTTP/1.1") and parts[1].isdigit():
        return int(parts[1])
    return None


async def _fuzz_http(rng: random.Random, h: HonestRoom, session: str, found: Findings) -> None:
    if rng.random() < 0.7:
        data, kind = gen.http_request(rng, h.server.admin_key, session), "http"
    else:
        data, kind = gen.handshake(rng), "handshake"
    found.count(kind)
    answer = await _exchange(h.server.port, data)
    status = _status(answer)
    if status is not None and status >= 500 and b"too_many_connections" not in answer:
        found.failures.append(f"{kind} {data[:120]!r} -> {answer[:300]!r}")


async def _fuzz_websocket(
    rng: random.Random, server: ServerProcess, tokens: dict[str, str], found: Findings
) -> None:
    """A WebSocket session: hello (or not), a burst of odd messages and frames, an ending."""
    found.count("websocket")
    token = tokens[rng.choice(ROLES)]
    ws = WSConnection(ConnectionType.CLIENT)
    with contextlib.suppress(OSError, trio.BrokenResourceError, trio.ClosedResourceError):
        stream = await trio.open_tcp_stream("127.0.0.1", server.port)
        async with stream:
            await stream.send_all(ws.send(Request(host="127.0.0.1", target="/ws")))
            with trio.move_on_after(5):
                while not any(isinstance(e, AcceptConnection) for e in ws.events()):
                    ws.receive_data(await stream.receive_some(65536))
            if rng.random() < 0.8:
                hello = {"t": "hello", "v": 1, "token": token}
                await stream.send_all(ws.send(BytesMessage(msgpack.packb(hello))))
            for _ in range(rng.randint(1, 25)):
                if rng.random() < 0.75:
                    data = ws.send(BytesMessage(gen.message_bytes(rng, token)))
                else:
                    data = gen.odd_frames(rng, token)
                found.count("message")
                await stream.send_all(data)
            await _read_replies(stream, found)
            ending = rng.randrange(3)
            if ending == 0:
                await stream.send_all(ws.send(CloseConnection(rng.choice([1000, 1001]))))
            elif ending == 1:
                await stream.send_eof()


async def _read_replies(stream: trio.SocketStream, found: Findings) -> None:
    """Read for a moment; any `internal_error` the server sends is a finding."""
    data = b""
    with trio.move_on_after(READ_SECONDS):
        while chunk := await stream.receive_some(65536):
            data += chunk
    if b"internal_error" in data:
        found.failures.append(f"internal_error from a WebSocket session: {data[-300:]!r}")


async def _worker(
    seed: int, h: HonestRoom, tokens: dict[str, str], session: str, found: Findings
) -> None:
    rng = random.Random(seed)
    deadline = time.monotonic() + SECONDS
    for round_no in range(ROUNDS):
        if time.monotonic() > deadline:
            return
        try:
            with trio.fail_after(ROUND_SECONDS):
                if rng.random() < 0.5:
                    await _fuzz_http(rng, h, session, found)
                else:
                    await _fuzz_websocket(rng, h.server, tokens, found)
        except trio.TooSlowError:
            found.failures.append(f"worker {seed}, round {round_no}: no answer in time")
            return


async def test_fuzzing_the_server_from_outside_harms_nobody(tmp_path: Path) -> None:
    seed = int(os.environ.get("FUZZ_SEED", random.randrange(2**32)))
    print(f"fuzz seed: {seed} (replay with FUZZ_SEED={seed})")
    found = Findings()
    async with honest_room(tmp_path, args=()) as h:  # the septic shock case: every action
        tokens = {}
        for role in ROLES:
            answer = await h.server.http(
                "POST", "/api/rooms/demo/tokens", {"role": role, "seats": 5000}, admin=True
            )
            tokens[role] = answer.json()["token"]
        session = (await h.server.http("GET", "/api/rooms/demo")).json()["session"]
        async with trio.open_nursery() as nursery:
            for worker in range(WORKERS):
                nursery.start_soon(_worker, seed + worker, h, tokens, session, found)
        print(f"fuzz sent: {found.sent}")
        assert not found.failures, f"seed {seed}: {found.failures[:5]}"
        assert not h.log.boundary_reports(), f"seed {seed}: a fault boundary caught a bug"
        await h.check()
