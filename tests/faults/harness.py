"""A real server process watched by an honest participant and an honest spectator.

Fault tests attack the server from outside and then ask whether anyone else noticed:

    async with honest_room(tmp_path) as h:
        ...attack 127.0.0.1:h.server.port...
        await h.check()

`check()` asserts that `/healthz` answers; that both honest clients stayed connected and
kept receiving state frames whose checksums matched; that the participant's poses still
reach the spectator; that the room, ended through the admin API, leaves a recording that
`replay verify` finds intact; and that the server log holds no traceback outside the
fault boundaries' own reports. The server is `python -m server.cli serve --demo` in a
process of its own (this checkout's code), its stdout and stderr in `server.log`.
"""

from __future__ import annotations

import json
import math
import os
import re
import resource
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trio
from trio_websocket import ConnectionClosed

from clients.python import RoomClient, ServerRefused, still_pose
from tests.faults.server_log import ServerLog

REPO = Path(__file__).resolve().parents[2]
START_TIMEOUT_SECONDS = 30.0
STOP_TIMEOUT_SECONDS = 15.0
POSE_PERIOD_SECONDS = 0.1
MAX_FRAME_GAP_SECONDS = 5.0
"""A gap this long between two state frames means the room stalled for this client (the
server itself drops a client that cannot keep up for 5 s)."""


@dataclass(frozen=True, slots=True)
class HttpAnswer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def parse_http_answer(data: bytes) -> HttpAnswer:
    """The status, headers and body of a raw HTTP/1.1 response."""
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return HttpAnswer(int(lines[0].split()[1]), headers, body)


class ServerProcess:
    """`grandrounds serve --demo` in its own process, on a port the OS picked."""

    def __init__(self, process: trio.Process, data_dir: Path, log: ServerLog, port: int) -> None:
        self.process = process
        self.data_dir = data_dir
        self.log = log
        self.port = port
        self.admin_key = json.loads((data_dir / "secrets.json").read_text())["admin_key"]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    async def raw(self, request: bytes, timeout: float = 10.0) -> bytes:
        """Send raw bytes on a fresh connection; everything the server says until it closes."""
        stream = await trio.open_tcp_stream("127.0.0.1", self.port)
        async with stream:
            await stream.send_all(request)
            data = b""
            with trio.fail_after(timeout):
                while chunk := await stream.receive_some(65536):
                    data += chunk
        return data

    async def http(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        admin: bool = False,
        headers: Mapping[str, str] | None = None,
    ) -> HttpAnswer:
        payload = b"" if body is None else json.dumps(body).encode()
        lines = [
            f"{method} {path} HTTP/1.1",
            "Host: 127.0.0.1",
            "Connection: close",
            f"Content-Length: {len(payload)}",
            *(f"{k}: {v}" for k, v in (headers or {}).items()),
        ]
        if admin:
            lines.append(f"Authorization: Bearer {self.admin_key}")
        return parse_http_answer(
            await self.raw(("\r\n".join(lines) + "\r\n\r\n").encode() + payload)
        )

    async def token(self, role: str, name: str, room: str = "demo") -> str:
        answer = await self.http(
            "POST", f"/api/rooms/{room}/tokens", {"role": role, "name": name}, admin=True
        )
        assert answer.status == 201, answer
        return str(answer.json()["token"])

    async def stop(self) -> int:
        """SIGTERM, then SIGKILL if it does not exit in time; its exit status."""
        if self.alive:
            self.process.send_signal(signal.SIGTERM)
            with trio.move_on_after(STOP_TIMEOUT_SECONDS):
                return await self.process.wait()
            self.process.kill()
        return await self.process.wait()


@asynccontextmanager
async def server_process(
    tmp_path: Path,
    *,
    args: Sequence[str] = ("--demo-case", "demo"),
    env: Mapping[str, str] | None = None,
    open_files: int | None = None,
) -> AsyncIterator[ServerProcess]:
    """A server process for the block (`open_files` caps its descriptors, RLIMIT_NOFILE)."""
    data_dir = tmp_path / "data"
    log = ServerLog(tmp_path / "server.log")
    environment = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "PYTHONUNBUFFERED": "1",
        "GRANDROUNDS_MEDIA_WORKERS": "0",
        **(env or {}),
    }

    def limit_descriptors() -> None:
        if open_files is not None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (open_files, open_files))

    command = [sys.executable, "-m", "server.cli", "serve", "--demo", "--port", "0"]
    command += ["--data-dir", str(data_dir), *args]
    with log.path.open("wb") as sink:
        process = await trio.lowlevel.open_process(
            command,
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=environment,
            cwd=REPO,
            preexec_fn=limit_descriptors,
        )
    try:
        port = await _wait_until_serving(process, log)
        server = ServerProcess(process, data_dir, log, port)
        yield server
    finally:
        with trio.CancelScope(shield=True):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                with trio.move_on_after(STOP_TIMEOUT_SECONDS):
                    await process.wait()
                if process.poll() is None:
                    process.kill()
                    await process.wait()


async def _wait_until_serving(process: trio.Process, log: ServerLog) -> int:
    with trio.fail_after(START_TIMEOUT_SECONDS):
        while True:
            text = log.text()
            if "Admin key" in text:
                found = re.search(r"serving on http://[^:\s]+:(\d+)", text)
                assert found, text
                return int(found.group(1))
            if process.poll() is not None:
                raise AssertionError(f"the server exited while starting:\n{text}")
            await trio.sleep(0.05)


@dataclass(slots=True)
class Watch:
    """What one honest client saw: frames, verified checksums, the longest silence."""

    frames: int = 0
    checksums: int = 0
    last_frame: float = field(default_factory=time.monotonic)
    longest_gap: float = 0.0

    def on_frame(self, frame: Mapping[str, Any], _at: float) -> None:
        now = time.monotonic()
        self.longest_gap = max(self.longest_gap, now - self.last_frame)
        self.last_frame = now
        self.frames += 1
        if "c" in frame:
            self.checksums += 1  # the mirror raises Desync before this hook on a mismatch


@dataclass(slots=True)
class HonestClient:
    role: str
    client: RoomClient
    watch: Watch
    failure: str = ""

    async def verify_more_checksums(self, count: int = 2, timeout: float = 10.0) -> None:
        """Wait until the client has verified `count` more checksums (one a second by default)."""
        target = self.watch.checksums + count
        with trio.move_on_after(timeout):
            while self.watch.checksums < target and self.client.connected:
                await self.client.next_frame()
        self.assert_unharmed()
        assert self.watch.checksums >= target, f"{self.role} stopped verifying checksums"

    def assert_unharmed(self) -> None:
        c, w = self.client, self.watch
        gap_now = time.monotonic() - w.last_frame
        assert not self.failure, f"{self.role}: {self.failure}"
        assert c.connected and c.bye is None, f"{self.role} was disconnected: {c.bye}"
        assert c.resyncs == 0, f"{self.role} saw {c.resyncs} state mismatches"
        assert not c.errors, f"{self.role} got errors: {c.errors}"
        assert w.checksums > 0, f"{self.role} verified no checksum ({w.frames} frames)"
        assert max(w.longest_gap, gap_now) < MAX_FRAME_GAP_SECONDS, (
            f"{self.role} went {max(w.longest_gap, gap_now):.1f} s without a state frame"
        )


class HonestRoom:
    """The server process and its two honest clients, for the duration of a fault test."""

    def __init__(
        self, server: ServerProcess, participant: HonestClient, spectator: HonestClient
    ) -> None:
        self.server = server
        self.participant = participant
        self.spectator = spectator
        self.checked = False
        self._marks = 0
        self._mover = trio.CancelScope()

    @property
    def log(self) -> ServerLog:
        return self.server.log

    async def keep_moving(self) -> None:
        """The participant keeps moving its head, as a headset would, until `check()`."""
        with self._mover:
            step = 0
            while True:
                step += 1
                x = 0.5 + 0.3 * math.sin(step / 10)
                try:
                    await self.participant.client.send_pose(head=still_pose(x, 1.6, 0.0))
                except (ConnectionError, ConnectionClosed, trio.TooSlowError) as exc:
                    self.participant.failure = f"sending a pose failed: {exc!r}"
                    return
                await trio.sleep(POSE_PERIOD_SECONDS)

    async def check(self) -> None:
        """Assert that nothing reached beyond the attack; then end the room and verify it."""
        try:
            answer = await self.server.http("GET", "/healthz")
        except (OSError, trio.TooSlowError) as exc:
            raise AssertionError(f"/healthz does not answer ({exc!r}):\n{self.log.text()}") from exc
        assert answer.status == 200 and answer.json()["ok"], answer
        for honest in (self.participant, self.spectator):
            await honest.verify_more_checksums()
        await self._pose_reaches_spectator()
        for honest in (self.participant, self.spectator):
            honest.assert_unharmed()
        self.log.assert_clean()
        await self._end_and_verify()
        self.log.assert_clean()
        self.checked = True

    async def _pose_reaches_spectator(self) -> None:
        self._marks += 1
        x_mm = 2000 + self._marks  # outside the range the participant moves in
        p, s = self.participant.client, self.spectator.client
        head = await s.wait_for(lambda m: _head_part(m, p.member))
        self._mover.cancel()  # hold still at the mark
        await p.send_pose(head=still_pose(x_mm / 1000, 1.6, 0.0))
        await s.wait_for(lambda m: m.poses.get(head, [None])[0] == x_mm, timeout=10)

    async def _end_and_verify(self) -> None:
        info = await self.server.http("GET", "/api/rooms/demo")
        session = info.json()["session"]
        answer = await self.server.http("DELETE", "/api/rooms/demo", admin=True)
        assert answer.status == 202, answer
        for honest in (self.participant, self.spectator):
            await honest.client.wait_closed(timeout=15)
            assert honest.client.bye is not None and honest.client.bye[0] == "room_ended"
        with trio.fail_after(30):
            while True:
                manifest = await self.server.http("GET", f"/api/sessions/{session}", admin=True)
                if manifest.status == 200 and manifest.json().get("status") == "sealed":
                    break
                await trio.sleep(0.2)
        verify = await trio.run_process(
            [
                sys.executable,
                "-m",
                "server.replay_cli",
                "verify",
                "--data-dir",
                str(self.server.data_dir),
                session,
            ],
            capture_stdout=True,
            stderr=subprocess.STDOUT,
            check=False,
            env={**os.environ, "PYTHONPATH": str(REPO)},
        )
        assert verify.returncode == 0, verify.stdout.decode()


def _head_part(mirror: Any, member: int) -> int | None:
    avatars = [eid for eid, f in mirror.find("avatar").items() if f.get("member") == member]
    for eid, fields in mirror.find("part").items():
        if avatars and fields.get("avatar") == avatars[0] and fields.get("part") == "head":
            return int(eid)
    return None


@asynccontextmanager
async def honest_room(
    tmp_path: Path,
    *,
    args: Sequence[str] = ("--demo-case", "demo"),
    env: Mapping[str, str] | None = None,
    open_files: int | None = None,
) -> AsyncIterator[HonestRoom]:
    """A server process with an honest participant and spectator connected and watching.

    Leaving the block stops the server; if the block called `check()` and raised
    nothing, the server must also have shut down cleanly (exit 0, clean log).
    """
    async with server_process(tmp_path, args=args, env=env, open_files=open_files) as server:
        async with trio.open_nursery() as nursery:
            participant = await _connect(nursery, server, "participant")
            spectator = await _connect(nursery, server, "spectator")
            room = HonestRoom(server, participant, spectator)
            await spectator.client.wait_for(lambda m: _head_part(m, participant.client.member))
            nursery.start_soon(room.keep_moving)
            yield room
            with trio.CancelScope(shield=True):
                for honest in (participant, spectator):
                    await honest.client.close()
            nursery.cancel_scope.cancel()
        if room.checked:
            status = await server.stop()
            assert status == 0, f"the server exited with {status}:\n{server.log.text()}"
            server.log.assert_clean()


async def _connect(nursery: trio.Nursery, server: ServerProcess, role: str) -> HonestClient:
    watch = Watch()
    token = await server.token(role, f"Honest {role}")
    client = RoomClient(server.ws_url, token, nursery, on_frame=watch.on_frame)
    try:
        await client.open()
    except ServerRefused as exc:
        raise AssertionError(f"the honest {role} was refused: {exc}") from exc
    await client.wait_for(lambda m: m.tick is not None)
    return HonestClient(role, client, watch)
