"""A worker never outlives its parent."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time

import pytest

from tests.media.harness import ROOT, process_alive

pytestmark = pytest.mark.slow


def test_worker_exits_when_its_parent_dies() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "c.sock")
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(path)
        listener.listen(1)
        listener.settimeout(20)
        # The parent starts the worker, reports its pid, then is killed outright;
        # the control socket stays open here, so only the parent watch can notice.
        parent = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "import subprocess, sys, time\n"
                "p = subprocess.Popen(\n"
                f"    [sys.executable, '-m', 'media.worker', '--control', {path!r}])\n"
                "print(p.pid, flush=True)\n"
                "time.sleep(60)\n",
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert parent.stdout is not None
            worker_pid = int(parent.stdout.readline())
            conn, _ = listener.accept()
            parent.send_signal(signal.SIGKILL)
            parent.wait()
            deadline = time.monotonic() + 15
            while process_alive(worker_pid):
                assert time.monotonic() < deadline, "worker outlived its parent"
                time.sleep(0.1)
            conn.close()
        finally:
            parent.kill()
            listener.close()
