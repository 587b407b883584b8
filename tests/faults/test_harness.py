"""The fault harness itself: it passes an unharmed room and fails a harmed one."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from server.boundary import BOUNDARY_MARK
from tests.faults.harness import honest_room
from tests.faults.server_log import parse

BOUNDARY_REPORT = f"""\
2025-01-01 10:00:00,000 INFO server.app: room demo created
2025-01-01 10:00:01,000 ERROR server.boundary: {BOUNDARY_MARK} connection 127.0.0.1:4 failed \
with ValueError (error id 0a1b2c3d)
Traceback (most recent call last):
  File "x.py", line 1, in f
KeyError: 1

During handling of the above exception, another exception occurred:

Traceback (most recent call last):
  File "x.py", line 2, in f
ValueError: bad
2025-01-01 10:00:01,500 ERROR server.boundary: {BOUNDARY_MARK} room demo failed \
with ExceptionGroup (error id 1a2b3c4d)
  + Exception Group Traceback (most recent call last):
  |   File "x.py", line 3, in g
  | ExceptionGroup: Exceptions from Trio nursery (1 sub-exception)
  +-+---------------- 1 ----------------
    | Traceback (most recent call last):
    |   File "x.py", line 4, in h
    | OSError: disk full
    +------------------------------------
2025-01-01 10:00:02,000 INFO server.app: still here
"""


def test_a_boundary_report_is_not_a_stray_traceback() -> None:
    records = parse(BOUNDARY_REPORT)
    assert [r.from_boundary for r in records] == [False, True, True, False]
    assert all(not r.stray_tracebacks() for r in records)


@pytest.mark.parametrize(
    "escape",
    [
        "2025-01-01 10:00:01,000 ERROR server.http: error while serving GET /\n"
        "Traceback (most recent call last):\n  File ...\nValueError: x\n",
        "Exception ignored in: <function f>\nTraceback (most recent call last):\nOSError: x\n",
        # An escape printed right after a boundary's report is still an escape.
        BOUNDARY_REPORT.splitlines()[1] + "\nTraceback (most recent call last):\nValueError\n"
        "Traceback (most recent call last):\n  File ...\nSystemExit\n",
    ],
)
def test_tracebacks_outside_a_boundary_are_found(escape: str) -> None:
    assert any(r.stray_tracebacks() for r in parse(escape))


@pytest.mark.slow
async def test_an_unharmed_room_passes_the_check(tmp_path: Path) -> None:
    async with honest_room(tmp_path) as h:
        await h.check()


@pytest.mark.slow
async def test_the_check_fails_when_the_server_dies(tmp_path: Path) -> None:
    async with honest_room(tmp_path) as h:
        h.server.process.send_signal(signal.SIGKILL)
        await h.server.process.wait()
        with pytest.raises(AssertionError):
            await h.check()
