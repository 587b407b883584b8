"""A real server process with an honest participant and spectator, for fault tests.

`live_server(data_dir)` starts `python -m server.cli serve --demo` on a free port,
connects a participant who moves and a spectator who watches, and yields while the
test does its worst. Afterwards it asserts what every fault test must hold: the process
still answers `/healthz`, both honest clients kept receiving frames whose checksums
matched (no resync, no bye), and the live room's recording, once ended, verifies with
`grandrounds replay verify` (signatures, checksums and re-simulation).

The transport engineer's shared harness (`tests/faults/`) asserts the same things;
these review tests move onto it once it is on main.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import trio

from clients.python import RoomClient, connect, still_pose
from netcode.views import Role
from server import tokens

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class LiveServer:
    process: trio.Process
    base: str
    data_dir: Path
    admin_key: str
    secret: str
    participant: RoomClient | None = None
    spectator: RoomClient | None = None

    @property
    def ws(self) -> str:
        return self.base.replace("http://", "ws://") + "/ws"

    async def http(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        admin: bool = False,
        token: str | None = None,
    ) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.admin_key}"} if admin else {}
        if token is not None:
            headers = {"Authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(timeout=20) as client:
            return await client.request(method, self.base + path, json=body, headers=headers)

    def review_token(self, session_id: str, view: Role = Role.FACILITATOR) -> str:
        return tokens.issue_review(self.secret, session_id, view, "Reviewer", 3600)

    def room_token(self, role: Role, name: str) -> str:
        return tokens.issue(self.secret, "demo", role, name, 3600)

    async def healthy(self) -> bool:
        response = await self.http("GET", "/healthz")
        return response.status_code == 200 and bool(response.json()["ok"])


async def _start(data_dir: Path) -> LiveServer:
    process = await trio.lowlevel.open_process(
        [
            sys.executable,
            "-m",
            "server.cli",
            "serve",
            "--demo",
            "--port",
            "0",
            "--data-dir",
            str(data_dir),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        cwd=ROOT,
        env={**os.environ},
    )
    assert process.stdout is not None
    text = ""
    with trio.fail_after(30):
        while "Admin key" not in text:
            chunk = await process.stdout.receive_some(4096)
            assert chunk, f"the server exited early: {text}"
            text += chunk.decode()
    url = re.search(r"serving on (http://\S+)", text)
    assert url is not None, text
    stored = json.loads((data_dir / "secrets.json").read_text())
    return LiveServer(process, url.group(1), data_dir, stored["admin_key"], stored["secret"])


async def _drain(process: trio.Process, log: list[str]) -> None:
    assert process.stdout is not None
    while chunk := await process.stdout.receive_some(65536):
        log.append(chunk.decode(errors="replace"))


async def _move(participant: RoomClient) -> None:
    step = 0
    while True:
        step += 1
        await participant.send_pose(head=still_pose(0.001 * (step % 500), 1.6, 0.0))
        await trio.sleep(1 / 30)


@asynccontextmanager
async def live_server(data_dir: Path) -> AsyncIterator[LiveServer]:
    """The server, the honest clients, and the checks after the block (see module doc)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    server = await _start(data_dir)
    log: list[str] = []
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_drain, server.process, log)
            async with (
                connect(server.ws, server.room_token(Role.PARTICIPANT, "Honest P")) as part,
                connect(server.ws, server.room_token(Role.SPECTATOR, "Honest S")) as spec,
            ):
                await part.wait_for(lambda m: m.find("avatar"))
                await spec.wait_for(lambda m: m.find("monitor"))
                server.participant, server.spectator = part, spec
                nursery.start_soon(_move, part)
                before = (part.frames, spec.frames)
                yield server
                assert await server.healthy(), "the server stopped answering /healthz"
                await spec.wait_for(lambda m: m.tick is not None, timeout=5)
                for client, seen in ((part, before[0]), (spec, before[1])):
                    with trio.move_on_after(5):
                        while client.connected and client.frames <= seen + 10:
                            await client.next_frame()
                    assert client.connected and client.bye is None, client.bye
                    assert client.frames > seen + 10, "an honest client stopped receiving"
                    assert client.resyncs == 0, "an honest client's checksums disagreed"
                nursery.cancel_scope.cancel()
        await _end_and_verify(server)
    except BaseException:
        sys.stderr.write("".join(log)[-20000:])
        raise
    finally:
        if server.process.returncode is None:
            server.process.kill()
        with trio.move_on_after(10):
            await server.process.wait()


async def _end_and_verify(server: LiveServer) -> None:
    info = (await server.http("GET", "/api/rooms/demo")).json()
    assert (await server.http("DELETE", "/api/rooms/demo", admin=True)).status_code == 202
    with trio.fail_after(20):
        while (await server.http("GET", f"/api/sessions/{info['session']}", admin=True)).json()[
            "status"
        ] != "sealed":
            await trio.sleep(0.2)
    result = await trio.run_process(
        [
            sys.executable,
            "-m",
            "server.replay_cli",
            "verify",
            "--data-dir",
            str(server.data_dir),
            info["session"],
        ],
        capture_stdout=True,
        capture_stderr=True,
        check=False,
        cwd=ROOT,
    )
    out = result.stdout.decode() + result.stderr.decode()
    assert result.returncode == 0 and "INTACT" in out, out
