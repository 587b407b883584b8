"""The process that owns one review stream's recording: `python -m server.review_process`.

Its parent (`server/review_worker.py`) sends typed commands, one at a time, over its
stdin and reads one answer per command from its stdout, each a u32 little-endian
length followed by msgpack. The process alone opens the session and moves the
`Playback` (open, seek, rewind, advance, frame): seek and play are serialised by
construction, and none of the reading, decoding or encoding shares the server's
interpreter lock, so it cannot stretch a live room's tick. It runs at a lower OS
priority than the server, exits when its stdin closes, and answers a damaged
recording, a `ReplayError` or an unexpected exception as a failure of that command,
never by dying.

    open    [data_dir, session_id, view]      seek     [seconds]
    rewind  []                                advance  [tick, base or nil]
    frame   [base or nil]
    answer  {"ok": true, "tick", "seconds", "first", "last", "end", "hz", "title",
             "frame": bin or nil, "damage": [code, message, tick] or nil}
          | {"ok": false, "code", "msg"}
"""

from __future__ import annotations

import contextlib
import logging
import os
import struct
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO, Final

import msgpack

from netcode.views import View
from replay.errors import ReplayError
from replay.playback import Damage, Playback
from replay.reader import Session
from server.boundary import report_fault

LENGTH: Final = struct.Struct("<I")
MAX_MESSAGE: Final = 64 * 1024 * 1024
NICENESS: Final = 10
"""Below the server: when both want a core, a live room's tick comes first."""


def write_message(out: BinaryIO, value: Any) -> None:
    payload: bytes = msgpack.packb(value, use_bin_type=True)
    out.write(LENGTH.pack(len(payload)) + payload)
    out.flush()


def read_message(stream: BinaryIO) -> Any | None:
    """The next message, or None at the end of the stream."""
    head = stream.read(LENGTH.size)
    if len(head) < LENGTH.size:
        return None
    (size,) = LENGTH.unpack(head)
    if size > MAX_MESSAGE:
        raise ValueError(f"a message of {size} bytes")
    body = stream.read(size)
    if len(body) < size:
        return None
    return msgpack.unpackb(body, raw=False, strict_map_key=False)


class Owner:
    """One session's play head; `answer(request)` runs one command."""

    def __init__(self) -> None:
        self.playback: Playback | None = None

    def answer(self, request: Any) -> dict[str, Any]:
        try:
            return self._outcome(*self._run(request))
        except ReplayError as exc:
            return {"ok": False, "code": exc.code.replace("-", "_"), "msg": exc.message}
        except Exception as exc:  # one command failed; the stream and this process carry on
            name = request[0] if isinstance(request, list) and request else "?"
            error_id = report_fault(f"review command {str(name)[:20]!r}", exc)
            return {
                "ok": False,
                "code": "internal_error",
                "msg": f"the review server failed on this request (error {error_id})",
            }

    def _run(self, request: Any) -> tuple[Playback, bytes | None, Damage | None]:
        kind, args = request[0], request[1:]
        if kind == "open":
            data_dir, session_id, view = args
            opened = Playback(Session.open(Path(data_dir), str(session_id)), View(int(view)))
            self.playback = opened
            return opened, opened.frame(None), opened.damage
        playback = self.playback
        if playback is None:
            raise ReplayError("not-open", "no session is open on this review stream")
        steps: dict[str, Callable[[], tuple[bytes | None, Damage | None]]] = {
            "seek": lambda: self._seek(playback, playback.session.tick_of(float(args[0]))),
            "rewind": lambda: self._seek(playback, playback.first_tick),
            "advance": lambda: self._advance(playback, int(args[0]), args[1]),
            "frame": lambda: (playback.frame(args[0]), None),
        }
        step = steps.get(kind)
        if step is None:
            raise ReplayError("bad-command", f"unknown command {kind!r}")
        return (playback, *step())

    @staticmethod
    def _seek(playback: Playback, tick: int) -> tuple[bytes | None, Damage | None]:
        damage = playback.seek(tick)
        return playback.frame(None), damage

    @staticmethod
    def _advance(playback: Playback, tick: int, base: Any) -> tuple[bytes | None, Damage | None]:
        before = playback.tick
        damage = playback.advance_to(tick)
        return (playback.frame(base) if playback.tick != before else None), damage

    @staticmethod
    def _outcome(playback: Playback, frame: bytes | None, damage: Damage | None) -> dict[str, Any]:
        session = playback.session
        return {
            "ok": True,
            "tick": playback.tick,
            "seconds": playback.seconds,
            "first": playback.first_tick,
            "last": playback.last_tick,
            "end": playback.at_end,
            "hz": session.tick_hz,
            "title": str(session.manifest.case.get("title", "")),
            "frame": frame,
            "damage": None if damage is None else [damage.code, damage.message, damage.tick],
        }


def main() -> None:
    logging.basicConfig(  # into the server's log (its stderr), as the server writes it
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    with contextlib.suppress(OSError):  # not allowed here: run at the server's priority
        os.nice(NICENESS)
    owner = Owner()
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    while (request := read_message(stdin)) is not None:
        write_message(stdout, owner.answer(request))


if __name__ == "__main__":
    main()
