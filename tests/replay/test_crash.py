"""A recording process killed with SIGKILL: repair seals it, verify accepts it, and at
most the last second is missing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from replay.reader import Session
from server.replay_cli import main as cli

ROOT = Path(__file__).resolve().parents[2]


def test_sigkill_mid_session_loses_at_most_the_last_second(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.replay.crash_writer", str(tmp_path)],
        cwd=ROOT, stdout=subprocess.PIPE, text=True,
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
