"""Real cluster processes for tests: `grandrounds serve --redis URL` nodes on loopback.

Every node of a test shares one data directory (as nodes of a real deployment share
their sessions' storage, docs/operations.md) and one Valkey process.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import trio

REPO = Path(__file__).resolve().parents[2]
START_SECONDS = 30.0


@dataclass
class Node:
    name: str
    process: trio.Process
    log_path: Path
    port: int
    data_dir: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    @property
    def admin_key(self) -> str:
        return str(json.loads((self.data_dir / "secrets.json").read_text())["admin_key"])

    async def api(self, method: str, path: str, body: Any = None, *, admin: bool = True) -> Any:
        headers = {"Authorization": f"Bearer {self.admin_key}"} if admin else {}
        async with httpx.AsyncClient(base_url=self.base, timeout=20) as http:
            response = await http.request(method, path, json=body, headers=headers)
        return response

    def kill(self) -> None:
        """kill -9: no goodbye, no lease released, nothing flushed."""
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGKILL)

    async def stop(self) -> int:
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
            with trio.move_on_after(20):
                return await self.process.wait()
            self.process.kill()
        return await self.process.wait()


@asynccontextmanager
async def cluster_node(
    tmp_path: Path, name: str, redis_url: str, *, args: Sequence[str] = ()
) -> AsyncIterator[Node]:
    """One node, started and (at the end of the block) stopped."""
    data_dir = tmp_path / "shared-data"
    log_path = tmp_path / f"node-{name}.log"
    command = [
        sys.executable,
        "-m",
        "server.cli",
        "serve",
        "--port",
        "0",
        "--data-dir",
        str(data_dir),
        "--redis",
        redis_url,
        "--node-id",
        name,
        *args,
    ]
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "PYTHONUNBUFFERED": "1",
        "GRANDROUNDS_MEDIA_WORKERS": "0",
        "GRANDROUNDS_GRACE_SECONDS": "20",
    }
    with log_path.open("wb") as sink:
        process = await trio.lowlevel.open_process(
            command, stdout=sink, stderr=subprocess.STDOUT, env=env, cwd=REPO
        )
    try:
        with trio.fail_after(START_SECONDS):
            while True:
                found = re.search(r"serving on http://[^:\s]+:(\d+)", log_path.read_text())
                if found:
                    break
                if process.poll() is not None:
                    raise RuntimeError(f"node {name} exited:\n{log_path.read_text()}")
                await trio.sleep(0.1)
        yield Node(name, process, log_path, int(found.group(1)), data_dir)
    finally:
        with trio.CancelScope(shield=True):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                with trio.move_on_after(20):
                    await process.wait()
                if process.poll() is None:
                    process.kill()
                    await process.wait()
