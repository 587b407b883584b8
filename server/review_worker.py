"""The one owner of a review stream's recording: a thread fed by a bounded command queue.

A `Session` and its `Playback` are not thread-safe, and their work (decompressing a
segment, decoding records, encoding a snapshot) is too long for the event loop, where
it would stretch every live room's tick. So each review stream gets one `ReviewWorker`:
a thread that alone opens, seeks, plays and encodes, running the typed commands below
one at a time, in the order they were sent. The trio side awaits each command's
`Outcome`; nothing else touches the playback, so a seek can never meet an advance.

The GIL. A thread that computes holds the interpreter, and every time the event loop
wants it back (after each socket call) it waits for the switch interval (5 ms by
default). The playback therefore calls `pause()` every few dozen records, which
sleeps briefly once half a millisecond of work has run, and lets the loop run: a
command is a series of short slices, never one long hold. `bench/review_live_bench.py`
measures a live room's frame gaps while a reviewer scrubs an hour-long session.

Faults stay here: a damaged recording is an `Outcome` with its `Damage`; a
`ReplayError` is a `Failure` with its code; anything unexpected is logged once with an
error id and answered as a `Failure("internal_error")`. The thread never dies of it.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import trio

from netcode.views import View
from replay.errors import ReplayError
from replay.playback import Damage, Playback
from replay.reader import Session

log = logging.getLogger(__name__)
QUEUE_LIMIT: Final = 4
"""Commands waiting for the worker; its one driver has at most one in flight."""
SLICE_SECONDS: Final = 0.0005
"""Longest the worker computes before it lets the event loop's thread have the GIL."""
PAUSE_SECONDS: Final = 0.0001
"""How long it then sleeps (any sleep releases the GIL to a thread waiting for it)."""


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
    damage: Damage | None
    """Damage met by this command: the play head stopped before it."""


@dataclass(frozen=True, slots=True)
class Failure:
    code: str
    message: str


class _Job:
    __slots__ = ("command", "done", "result")

    def __init__(self, command: Command) -> None:
        self.command = command
        self.done = trio.Event()
        self.result: Outcome | Failure = Failure("internal_error", "no answer")

    def complete(self, result: Outcome | Failure) -> None:
        self.result = result
        self.done.set()


class WorkerBusy(Exception):
    """The worker's queue is full (its driver sent more than it awaited)."""


class ReviewWorker:
    """One thread, one playback; `await call(command)` from the trio thread."""

    def __init__(
        self, framer: Callable[[bytes], bytes] | None = None, name: str = "review"
    ) -> None:
        self._framer = framer
        self._inbox: queue.Queue[_Job | None] = queue.Queue(maxsize=QUEUE_LIMIT)
        self._token = trio.lowlevel.current_trio_token()
        self._stop = threading.Event()
        self._playback: Playback | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    async def call(self, command: Command) -> Outcome | Failure:
        """Run `command` on the worker; raises `WorkerBusy` if too many are queued."""
        job = _Job(command)
        try:
            self._inbox.put_nowait(job)
        except queue.Full:
            raise WorkerBusy from None
        await job.done.wait()
        return job.result

    def close(self) -> None:
        """Stop after the command in hand (never blocks): the thread then ends."""
        self._stop.set()
        with contextlib.suppress(queue.Full):  # the stop flag ends the loop anyway
            self._inbox.put_nowait(None)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    # -- the worker thread ------------------------------------------------------------
    def _run(self) -> None:
        while not self._stop.is_set():
            job = self._inbox.get()
            if job is None or self._stop.is_set():
                break
            result = self._execute(job.command)
            try:
                self._token.run_sync_soon(job.complete, result)
            except trio.RunFinishedError:
                break
        self._playback = None

    def _execute(self, command: Command) -> Outcome | Failure:
        try:
            return self._outcome(*self._apply(command))
        except ReplayError as exc:
            return Failure(exc.code.replace("-", "_"), exc.message)
        except Exception:
            error_id = secrets.token_hex(4)
            log.exception(
                "review worker: %s failed (error id %s)", type(command).__name__, error_id
            )
            return Failure(
                "internal_error", f"the review server failed on this request (error {error_id})"
            )

    def _apply(self, command: Command) -> tuple[Playback, bytes | None, Damage | None]:
        if isinstance(command, Open):
            session = Session.open(command.data_dir, command.session_id)
            opened = Playback(session, command.view, self._framer, pause=_Slicer())
            self._playback = opened
            return opened, opened.frame(None), opened.damage
        playback = self._playback
        if playback is None:
            raise ReplayError("not-open", "no session is open on this review stream")
        match command:
            case Seek(seconds=seconds):
                damage = playback.seek(playback.session.tick_of(seconds))
                return playback, playback.frame(None), damage
            case Rewind():
                damage = playback.seek(playback.first_tick)
                return playback, playback.frame(None), damage
            case AdvanceTo(tick=tick, base=base):
                before = playback.tick
                damage = playback.advance_to(tick)
                frame = playback.frame(base) if playback.tick != before else None
                return playback, frame, damage
            case Frame(base=base):
                return playback, playback.frame(base), None
        raise ReplayError("bad-command", f"unknown command {command!r}")

    @staticmethod
    def _outcome(playback: Playback, frame: bytes | None, damage: Damage | None) -> Outcome:
        session = playback.session
        return Outcome(
            playback.tick,
            playback.seconds,
            playback.first_tick,
            playback.last_tick,
            playback.at_end,
            session.tick_hz,
            str(session.manifest.case.get("title", "")),
            frame,
            damage,
        )


class _Slicer:
    """The playback's `pause` hook: sleeps (letting the GIL go) once a slice of work has
    run for `SLICE_SECONDS`, so the event loop never waits on this thread for longer."""

    def __init__(self) -> None:
        self._since = time.perf_counter()

    def __call__(self) -> None:
        now = time.perf_counter()
        if now - self._since >= SLICE_SECONDS:
            time.sleep(PAUSE_SECONDS)
            self._since = time.perf_counter()
