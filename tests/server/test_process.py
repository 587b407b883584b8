"""The real `grandrounds serve` process: demo links, clean SIGTERM, secrets that persist."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
from pathlib import Path

import psutil
import pytest
import trio

from clients.python import connect
from netcode.views import Role
from server import tokens


async def start(data_dir: Path) -> tuple[trio.Process, str, dict[str, str]]:
    """Start a server process; returns it, its base URL and the printed join links."""
    process = await trio.lowlevel.open_process(
        [
            sys.executable,
            "-m",
            "server.cli",
            "serve",
            "--demo",
            "--demo-case",
            "demo",
            "--port",
            "0",
            "--data-dir",
            str(data_dir),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    assert process.stdout is not None
    text = ""
    links: dict[str, str] = {}
    with trio.fail_after(20):
        while "Admin key" not in text:
            chunk = await process.stdout.receive_some(4096)
            assert chunk, f"server exited early: {text}"
            text += chunk.decode()
    url = re.search(r"serving on (http://\S+)", text)
    assert url is not None
    for role, link in re.findall(r"^\s+(facilitator|participant|spectator)\s+(\S+)$", text, re.M):
        links[role] = link
    return process, url.group(1), links


@pytest.mark.slow
async def test_serve_demo_prints_links_and_sigterm_shuts_down_cleanly(tmp_path: Path) -> None:
    process, url, links = await start(tmp_path)
    try:
        assert set(links) == {"facilitator", "participant", "spectator"}
        token = links["participant"].split("token=")[1]
        ws = url.replace("http", "ws") + "/ws"
        children: list[psutil.Process] = []
        with trio.fail_after(20):  # the media worker is a supervised child process
            while not children:
                children = psutil.Process(process.pid).children(recursive=True)
                await trio.sleep(0.1)
        async with connect(ws, token) as client:
            await client.wait_for(lambda m: m.find("monitor"))
            process.send_signal(signal.SIGTERM)
            await client.wait_closed()
            assert client.bye is not None
            assert client.bye[0] == "room_ended" and "shutting down" in client.bye[1]
        with trio.fail_after(10):
            code = await process.wait()
        assert code == 0
        _, alive = psutil.wait_procs(children, timeout=5)
        assert not alive, f"orphaned processes: {alive}"
    finally:
        if process.returncode is None:
            process.kill()


@pytest.mark.slow
async def test_a_restart_keeps_tokens_valid(tmp_path: Path) -> None:
    secrets = tmp_path / "secrets.json"
    process, url, links = await start(tmp_path)
    process.send_signal(signal.SIGINT)
    with trio.fail_after(10):
        assert await process.wait() == 0
    stored = json.loads(secrets.read_text())
    assert stored["admin_key"] and stored["secret"]
    token = tokens.issue(stored["secret"], "demo", Role.SPECTATOR, "kept", 3600)

    process, url, _ = await start(tmp_path)
    try:
        assert json.loads(secrets.read_text()) == stored
        async with connect(url.replace("http", "ws") + "/ws", token) as client:
            assert client.welcome["name"] == "kept"
            old = links["spectator"].split("token=")[1]
        async with connect(url.replace("http", "ws") + "/ws", old) as client:
            assert client.welcome["role"] == "spectator"
    finally:
        process.send_signal(signal.SIGTERM)
        with trio.fail_after(10):
            await process.wait()
