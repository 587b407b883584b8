"""A recording process killed with SIGKILL: repair seals it, verify accepts it, and at
most the last second is missing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from replay.errors import ReplayError
from replay.reader import Session
from server.replay_cli import main as cli

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_sigkill_mid_session_loses_at_most_the_last_second(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.replay.crash_writer", str(tmp_path)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    seen: list[tuple[float, int]] = []
    try:
        for line in proc.stdout:
            seen.append((time.monotonic(), int(line)))
            if seen[-1][1] >= 75:
                break
    finally:
        killed_at = time.monotonic()
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    assert seen and seen[-1][1] >= 75, "the recording process did not run"
    must_have = max((tick for at, tick in seen if at <= killed_at - 1.0), default=0)

    assert cli(["verify", "crash", "--data-dir", str(tmp_path)]) == 1  # not sealed yet
    assert cli(["repair", "crash", "--data-dir", str(tmp_path)]) == 0
    assert cli(["verify", "crash", "--data-dir", str(tmp_path)]) == 0

    session = Session.open(tmp_path, "crash")
    assert session.manifest.status == "repaired"
    last_tick = session.tick_range()[1]
    assert must_have > 0 and last_tick >= must_have


@pytest.mark.slow
def test_a_real_server_killed_mid_session_repairs_and_verifies(tmp_path: Path) -> None:
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "server.cli",
            "serve",
            "--demo",
            "--port",
            "0",
            "--data-dir",
            str(tmp_path),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    bots = None
    try:
        assert server.stdout is not None
        url = next(
            line.split("serving on ")[1].strip() for line in server.stdout if "serving on" in line
        )
        bots = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "server.cli",
                "bots",
                "--server",
                url,
                "--data-dir",
                str(tmp_path),
                "--participants",
                "3",
                "--seconds",
                "30",
            ],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while not _joined(tmp_path) and time.monotonic() < deadline:
            time.sleep(0.5)  # the bots join within a second or two on an idle machine
        time.sleep(1)
    finally:
        os.kill(server.pid, signal.SIGKILL)
        server.wait()
        if bots is not None:
            bots.kill()
            bots.wait()
    (session_id,) = [p.name for p in (tmp_path / "sessions").iterdir()]
    d = ["--data-dir", str(tmp_path)]
    assert cli(["verify", session_id, *d]) == 1
    assert cli(["repair", session_id, *d]) == 0
    assert cli(["verify", session_id, *d]) == 0
    session = Session.open(tmp_path, session_id)
    assert any(r.kind == "join" for r in session.records())
    assert session.tick_range()[1] > 30


def _joined(data_dir: Path) -> bool:
    """A bot's join has been flushed into the live session's log."""
    sessions = list((data_dir / "sessions").glob("*/manifest.json"))
    if len(sessions) != 1:
        return False
    try:
        session = Session.open(data_dir, sessions[0].parent.name)
        return any(r.kind == "join" for r in session.records(kinds=frozenset({"join"})))
    except ReplayError:
        return False
