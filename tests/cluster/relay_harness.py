"""Real relay processes on loopback (nodes: `tests/cluster/nodes.py`), and spectators
that note what they applied.

A relay runs `python -m server.cli relay` with this tree on PYTHONPATH, logs to a file
in its data directory, and is killed (SIGKILL) at the end of the block if still alive.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trio

from clients.python.client import RoomClient
from netcode.views import Role
from server import tokens
from server.app import Server
from server.relay import Relay as InProcessRelay
from server.relay import RelaySettings
from server.room_host import RoomHost
from server.room_lease import RoomLease, Superseded
from server.spectator_feed import SpectatorFeed, attach_spectator_feed
from server.valkey import Keys, Valkey, ValkeyUnavailable, open_valkey
from tests.cluster.nodes import REPO, START_SECONDS, Node, cluster_node
from tests.conftest import running, settings_for


@dataclass
class Relay:
    process: trio.Process
    url: str
    log: Path

    @property
    def ws(self) -> str:
        return self.url.replace("http", "ws", 1) + "/ws"

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    def kill(self) -> None:
        """kill -9: no goodbye, no last write."""
        if self.process.returncode is None:
            self.process.kill()

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


async def start_relay(
    valkey_url: str, data_dir: Path, *, port: int = 0, delay: float | None = None
) -> Relay:
    args = ["relay", "--redis", valkey_url, "--port", str(port), "--data-dir", str(data_dir)]
    if delay is not None:
        args += ["--broadcast-delay", str(delay)]
    data_dir.mkdir(parents=True, exist_ok=True)
    log = data_dir / "relay.log"
    env = {**os.environ, "PYTHONPATH": str(REPO), "GRANDROUNDS_GRACE_SECONDS": "10"}
    with log.open("ab") as stderr:
        process = await trio.lowlevel.open_process(
            [sys.executable, "-m", "server.cli", *args],
            stdout=subprocess.PIPE,
            stderr=stderr,
            env=env,
        )
    assert process.stdout is not None
    text = ""
    with trio.fail_after(START_SECONDS):
        while (found := re.search(r"serving spectators on (http://\S+)", text)) is None:
            chunk = await process.stdout.receive_some(4096)
            if not chunk:
                raise RuntimeError(f"the relay exited early:\n{log.read_text()}")
            text += chunk.decode()
    return Relay(process, found.group(1), log)


@asynccontextmanager
async def demo_node(
    tmp_path: Path, name: str, valkey_url: str, *, demo: bool = True
) -> AsyncIterator[Node]:
    """A cluster node; with `demo` the cluster gets the room 'demo' (the GR-S room), and
    the block starts once its owner feeds relays."""
    args = ["--demo", "--demo-case", "demo"] if demo else []
    async with cluster_node(tmp_path, name, valkey_url, args=args) as node:
        if demo:
            await wait_for_feed(valkey_url, "demo")
        yield node


@asynccontextmanager
async def node_and_relay(
    tmp_path: Path, valkey_url: str
) -> AsyncIterator[tuple[Node, Relay, trio.Nursery]]:
    """A node owning the room 'demo', a relay, and a nursery for clients."""
    async with (
        demo_node(tmp_path, "a", valkey_url) as node,
        relays() as started,
        trio.open_nursery() as nursery,
    ):
        relay = await start_relay(valkey_url, tmp_path / "relay")
        started.append(relay)
        yield node, relay, nursery
        nursery.cancel_scope.cancel()


@asynccontextmanager
async def relays() -> AsyncIterator[list[Relay]]:
    """Every relay appended to the list is killed when the block ends."""
    started: list[Relay] = []
    try:
        yield started
    finally:
        for process in started:
            process.kill()
        with trio.move_on_after(10):
            for process in started:
                await process.process.wait()


async def wait_for_feed(valkey_url: str, room: str) -> None:
    """Until the room's owner has started its spectator feed."""
    async with open_valkey(valkey_url) as valkey:
        with trio.fail_after(START_SECONDS):
            while not await valkey.call(valkey.client.xlen(Keys.spectator_feed(room))):
                await trio.sleep(0.1)


async def cluster_token(valkey_url: str, room: str, role: Role, **claims: Any) -> str:
    """A join token signed with the secret the cluster's nodes share through Valkey."""
    async with open_valkey(valkey_url) as valkey:
        stored = await valkey.call(valkey.client.hgetall(Keys.SECRETS))
    secret = stored[b"secret"].decode()
    return tokens.issue(secret, room, role, role.value.title(), 3600, claims.get("seats"))


async def http_get(url: str, path: str) -> str:
    """The body of a plain HTTP GET over a real socket."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    stream = await trio.open_tcp_stream(host, int(port))
    async with stream:
        request = f"GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n"
        await stream.send_all(request.encode())
        data = b""
        with trio.fail_after(10):
            while chunk := await stream.receive_some(65536):
                data += chunk
    return data.partition(b"\r\n\r\n")[2].decode()


def metric(text: str, name: str, labels: str = "") -> float:
    """One sample of a Prometheus text exposition (0 when absent)."""
    pattern = re.escape(name + (f"{{{labels}}}" if labels else "")) + r" (\S+)"
    found = re.search(r"^" + pattern + r"$", text, re.M)
    return float(found.group(1)) if found else 0.0


@dataclass
class Watch:
    """What one client applied: per tick the checksum its frame carried (verified by its
    mirror), the kind of each frame, in order."""

    checksums: dict[int, int] = field(default_factory=dict)
    frames: list[tuple[int, str]] = field(default_factory=list)

    def __call__(self, frame: Mapping[str, Any], _now: float) -> None:
        kind = "snapshot" if "full" in frame else "delta" if "b" in frame else "resume"
        self.frames.append((frame["k"], kind))
        if "c" in frame:
            self.checksums[frame["k"]] = frame["c"]


def open_client(url: str, token: str, nursery: trio.Nursery) -> tuple[RoomClient, Watch]:
    watch = Watch()
    return RoomClient(url, token, nursery, on_frame=watch), watch


@asynccontextmanager
async def owned_room(
    valkey: Valkey, tmp_path: Path, room_id: str = "r1"
) -> AsyncIterator[tuple[Server, RoomHost, RoomLease, SpectatorFeed]]:
    """An in-process server whose room feeds relays under a lease the test holds (and
    renews), with the server's secret shared in Valkey as a cluster's nodes share it."""
    async with running(settings_for(tmp_path)) as server, trio.open_nursery() as nursery:
        settings = server.settings
        await valkey.call(
            valkey.client.hset(
                Keys.SECRETS, {"secret": settings.secret, "admin_key": settings.admin_key}
            )
        )
        host = await server.prepare_room("Feed test", "demo", 7, room_id)
        lease = await RoomLease.claim(valkey, room_id, "node-a")
        assert lease is not None
        feed = attach_spectator_feed(host, lease)
        server.launch(host)
        nursery.start_soon(renew_forever, lease)
        yield server, host, lease, feed
        nursery.cancel_scope.cancel()


async def renew_forever(lease: RoomLease) -> None:
    """What the owner's node does: renew every second, through Valkey outages."""
    while True:
        try:
            await lease.renew()
        except ValkeyUnavailable:
            pass
        except Superseded:
            return
        await trio.sleep(1.0)


@asynccontextmanager
async def running_relay(settings: RelaySettings) -> AsyncIterator[InProcessRelay]:
    """A relay in this test's trio run (port picked by the OS)."""
    relay = InProcessRelay(settings)
    async with trio.open_nursery() as nursery:
        await nursery.start(lambda task_status: relay.run(task_status=task_status))
        yield relay
        nursery.cancel_scope.cancel()
