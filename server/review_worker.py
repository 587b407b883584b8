"""The one owner of a review stream's recording: a process of its own, fed one command
at a time.

A `Session` and its `Playback` are not thread-safe, and their work (decompressing a
segment, decoding records, encoding a snapshot) is too long for the event loop, where
it would stretch every live room's tick. So each review stream gets one `ReviewWorker`,
which starts `python -m server.review_process`: that process alone opens, seeks, plays
and encodes, running the typed commands below in the order they are sent (the stream's
driver awaits each answer before it sends the next, through a bounded channel of
requests). Seek and play are serialised by construction.

Why a process and not a thread. In a thread the work would still share the server's
interpreter lock: even cut into half-millisecond slices, a slice that the OS preempts
while holding the lock stops the event loop until the thread runs again: with a reviewer
scrubbing, a live room's longest frame gap measured 198 ms against 46-48 ms without
(`bench/review_live_bench.py`, load average 3.5 on the 2 shared cores). A process
shares nothing with the server but a pipe, runs at a lower OS priority, and the
server's side of a command is a few microseconds of pipe I/O.

Faults stay here: a damaged recording is an `Outcome` with its `Damage`; a
`ReplayError` is a `Failure` with its code; an unexpected exception in the process is
reported there through the fault boundary (`server/boundary.py`, into the server's log)
and is a `Failure` naming the error id; a process that dies, hangs past
`COMMAND_TIMEOUT_S` or talks nonsense is reported the same way on this side, killed,
and fails its stream's commands (`internal_error` with the id). Nothing reaches the
live rooms.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Final

import msgpack
import trio

from netcode.views import View
from replay.playback import Damage
from server.boundary import report_fault
from server.review_process import LENGTH, MAX_MESSAGE

COMMAND_TIMEOUT_S: Final = 30.0
"""Longer than any seek (tens of milliseconds in an hour-long session): a hung worker."""
START_TIMEOUT_S: Final = 30.0
MAX_WORKERS: Final = 32
"""Review streams (each a process of some 40 MB) one server runs at once."""
_PACKAGE_ROOT: Final = str(Path(__file__).resolve().parents[1])


@dataclass(frozen=True, slots=True)
class Open:
    data_dir: Path
    session_id: str
    view: View


@dataclass(frozen=True, slots=True)
class Seek:
    """Jump to `seconds` (clamped to the session); the outcome's frame is a snapshot."""

    seconds: float


@dataclass(frozen=True, slots=True)
class Rewind:
    """Back to the session's first tick (playing from the end starts again)."""


@dataclass(frozen=True, slots=True)
class AdvanceTo:
    """Play forward to `tick`; the outcome's frame is a delta from `base`."""

    tick: int
    base: int | None


@dataclass(frozen=True, slots=True)
class Frame:
    """The current state again for a client holding `base` (None: a snapshot)."""

    base: int | None


Command = Open | Seek | Rewind | AdvanceTo | Frame


@dataclass(frozen=True, slots=True)
class Outcome:
    """Where the play head is after a command, and the frame to send (if any)."""

    tick: int
    seconds: float
    first_tick: int
    last_tick: int
    at_end: bool
    tick_hz: int
    title: str
    frame: bytes | None
    """The state frame's payload (the caller frames it for its transport)."""
    damage: Damage | None
    """Damage met by this command: the play head stopped before it."""


@dataclass(frozen=True, slots=True)
class Failure:
    code: str
    message: str


def _request(command: Command) -> list[Any]:
    match command:
        case Open(data_dir=data_dir, session_id=session_id, view=view):
            return ["open", str(data_dir), session_id, int(view)]
        case Seek(seconds=seconds):
            return ["seek", seconds]
        case Rewind():
            return ["rewind"]
        case AdvanceTo(tick=tick, base=base):
            return ["advance", tick, base]
        case Frame(base=base):
            return ["frame", base]


def _answer(message: Any) -> Outcome | Failure:
    if not isinstance(message, dict):
        raise ValueError("not an answer")
    if not message.get("ok"):
        return Failure(str(message["code"]), str(message["msg"]))
    damage = message["damage"]
    frame = message["frame"]
    return Outcome(
        int(message["tick"]),
        float(message["seconds"]),
        int(message["first"]),
        int(message["last"]),
        bool(message["end"]),
        int(message["hz"]),
        str(message["title"]),
        bytes(frame) if frame is not None else None,
        None if damage is None else Damage(str(damage[0]), str(damage[1]), int(damage[2])),
    )


class TooManyWorkers(Exception):
    """As many review streams are open as the server runs at once (`MAX_WORKERS`)."""


class ReviewWorker:
    """A review process; `await call(command)` from the stream's driver, one at a time."""

    running: ClassVar[set[int]] = set()
    """Process ids of the review workers alive in this server."""

    def __init__(self, process: trio.Process) -> None:
        self._process = process
        self._lock = trio.Lock()
        self._buffer = bytearray()
        self._broken = False
        ReviewWorker.running.add(process.pid)
        weakref.finalize(self, _kill, process)  # never outlives its stream

    @classmethod
    async def start(cls) -> ReviewWorker:
        """A new worker; `TooManyWorkers` when `MAX_WORKERS` are running."""
        if len(cls.running) >= MAX_WORKERS:
            raise TooManyWorkers
        env = {**os.environ}
        env["PYTHONPATH"] = os.pathsep.join(p for p in (_PACKAGE_ROOT, env.get("PYTHONPATH")) if p)
        process = await trio.lowlevel.open_process(
            [sys.executable, "-m", "server.review_process"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
        )
        return cls(process)

    async def call(self, command: Command) -> Outcome | Failure:
        """Run `command` in the process; a failure (never an exception) if it cannot."""
        if self._broken:
            return Failure("internal_error", "the review worker stopped; open the session again")
        async with self._lock:
            payload = msgpack.packb(_request(command), use_bin_type=True)
            timeout = (
                START_TIMEOUT_S + COMMAND_TIMEOUT_S
                if isinstance(command, Open)
                else COMMAND_TIMEOUT_S
            )
            try:
                with trio.fail_after(timeout):
                    assert self._process.stdin is not None
                    await self._process.stdin.send_all(LENGTH.pack(len(payload)) + payload)
                    return _answer(await self._receive())
            except (
                trio.TooSlowError,
                trio.BrokenResourceError,
                trio.ClosedResourceError,
                OSError,
                ValueError,
                KeyError,
                TypeError,
                IndexError,
                EOFError,
            ) as exc:
                self._broken = True
                _kill(self._process)
                error_id = report_fault(f"review worker {self._process.pid}", exc)
                return Failure(
                    "internal_error", f"the review worker stopped answering (error {error_id})"
                )

    async def _receive(self) -> Any:
        size = LENGTH.unpack(await self._exactly(LENGTH.size))[0]
        if size > MAX_MESSAGE:
            raise ValueError(f"an answer of {size} bytes")
        return msgpack.unpackb(await self._exactly(size), raw=False, strict_map_key=False)

    async def _exactly(self, size: int) -> bytes:
        assert self._process.stdout is not None
        while len(self._buffer) < size:
            chunk = await self._process.stdout.receive_some(max(65536, size - len(self._buffer)))
            if not chunk:
                raise EOFError("the review worker closed its output")
            self._buffer += chunk
        data = bytes(self._buffer[:size])
        del self._buffer[:size]
        return data

    async def aclose(self) -> None:
        """End the process (it exits when its input closes; killed if it does not)."""
        with trio.CancelScope(shield=True):
            if self._process.stdin is not None:
                await self._process.stdin.aclose()
            with trio.move_on_after(2):
                await self._process.wait()
            _kill(self._process)
            await self._process.wait()
            ReviewWorker.running.discard(self._process.pid)


def _kill(process: trio.Process) -> None:
    ReviewWorker.running.discard(process.pid)
    if process.returncode is None:
        with contextlib.suppress(OSError):  # it has just gone
            process.kill()
