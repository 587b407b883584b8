"""A newcomer's first run, through the real `grandrounds` command (issue 13): an admin key
from the environment is the one in use, a port in use is one line, the demo room says
how long it lasts, ended rooms leave /healthz, a facilitator makes links with their own
token, and the bots run against the shipped demo case and tell the truth."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import trio

from clients.python.bots import run_bots
from tests.server.test_process import start

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]


def serve(data_dir: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "server.cli", "serve", "--data-dir", str(data_dir), *args]


async def test_an_admin_key_from_the_environment_is_the_one_that_works(tmp_path: Path) -> None:
    env = {**os.environ, "GRANDROUNDS_ADMIN_KEY": "from-the-operator", "PYTHONPATH": str(REPO)}
    process = await trio.lowlevel.open_process(
        serve(tmp_path, "--demo", "--demo-case", "demo", "--port", "0"),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
    )
    assert process.stdout is not None
    text = ""
    try:
        with trio.fail_after(30):
            while "Admin key" not in text:
                text += (await process.stdout.receive_some(4096)).decode()
        assert "Admin key: from GRANDROUNDS_ADMIN_KEY" in text
        base = re.search(r"serving on (http://\S+)", text)
        assert base is not None
        async with httpx.AsyncClient(base_url=base.group(1), timeout=10) as http:
            ok = await http.post(
                "/api/rooms/demo/tokens",
                json={"role": "spectator"},
                headers={"Authorization": "Bearer from-the-operator"},
            )
            assert ok.status_code == 201
        stored = json.loads((tmp_path / "secrets.json").read_text())
        assert stored.get("admin_key") in (None, "from-the-operator")  # never a different one
    finally:
        process.send_signal(signal.SIGTERM)
        with trio.fail_after(15):
            await process.wait()


async def test_a_port_in_use_is_one_line_and_exit_1(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = await trio.run_process(
            serve(tmp_path, "--port", str(port)),
            capture_stdout=True,
            capture_stderr=True,
            check=False,
            env={**os.environ, "PYTHONPATH": str(REPO)},
        )
    err = result.stderr.decode().strip()
    assert result.returncode == 1
    assert err.count("\n") == 0 and f"cannot serve on 127.0.0.1:{port}" in err, err
    assert "Traceback" not in err


async def test_the_demo_says_when_it_ends_and_ended_rooms_leave_healthz(tmp_path: Path) -> None:
    process, base, links = await start(tmp_path)
    try:
        key = json.loads((tmp_path / "secrets.json").read_text())["admin_key"]
        admin = {"Authorization": f"Bearer {key}"}
        async with httpx.AsyncClient(base_url=base, timeout=10) as http:
            assert (await http.get("/healthz")).json()["rooms"] == 1
            made = await http.post("/api/rooms", json={"case": "demo"}, headers=admin)
            room = made.json()["id"]
            assert (await http.get("/healthz")).json()["rooms"] == 2
            assert (await http.delete(f"/api/rooms/{room}", headers=admin)).status_code == 202
            with trio.fail_after(15):
                while (await http.get("/healthz")).json()["rooms"] != 1:
                    await trio.sleep(0.1)
            # A facilitator makes join links with their own token, for their own room only.
            facilitator = links["facilitator"].split("token=")[1]
            mine = await http.post(
                "/api/rooms/demo/tokens",
                json={"role": "participant", "name": "Ana"},
                headers={"Authorization": f"Bearer {facilitator}"},
            )
            assert mine.status_code == 201 and mine.json()["link"].startswith(base)
            participant = links["participant"].split("token=")[1]
            refused = await http.post(
                "/api/rooms/demo/tokens",
                json={"role": "facilitator"},
                headers={"Authorization": f"Bearer {participant}"},
            )
            assert refused.status_code == 401
    finally:
        process.send_signal(signal.SIGTERM)
        with trio.fail_after(15):
            await process.wait()


async def test_bots_run_against_the_shipped_demo_case_and_report_a_dying_server(
    tmp_path: Path,
) -> None:
    process = await trio.lowlevel.open_process(
        serve(tmp_path, "--demo", "--port", "0"),  # the default: septic shock, no objects
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONPATH": str(REPO), "GRANDROUNDS_MEDIA_WORKERS": "0"},
    )
    assert process.stdout is not None
    text = ""
    with trio.fail_after(30):
        while "Admin key" not in text:
            text += (await process.stdout.receive_some(4096)).decode()
    assert "ends after" in text  # the demo room says how long it lasts with nobody in it
    base = re.search(r"serving on (http://\S+)", text)
    assert base is not None
    key = json.loads((tmp_path / "secrets.json").read_text())["admin_key"]
    tally = await run_bots(
        base.group(1),
        key,
        "demo",
        participants=2,
        spectators=2,
        seconds=4.0,
        moving=1,
        full_every=1,
        resumes=0,
    )
    assert not tally.errors, tally.errors
    assert all(b > 0 for b in tally.spectator_bytes)

    async with trio.open_nursery() as nursery:

        async def kill_soon() -> None:
            await trio.sleep(2.0)
            process.kill()

        nursery.start_soon(kill_soon)
        dying = await run_bots(
            base.group(1),
            key,
            "demo",
            participants=1,
            spectators=1,
            seconds=5.0,
            moving=1,
            full_every=1,
            resumes=0,
        )
    assert dying.errors, "the bots said nothing while the server died under them"
    await process.wait()
