"""Reviewing a recorded session over the same WebSocket protocol as a live room.

A reviewer's hello carries a review token (a session, a view). The server answers
`welcome` (with `review` details), then state frames built by `replay.playback`, and
`playback` messages saying where the play head is. The reviewer steers with intents:
`play`, `pause`, `seek {seconds}`, `speed {x}`. Each reviewer has their own play head.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

import trio

from netcode.codec import (
    PROTOCOL_VERSION,
    Ack,
    Intent,
    Ping,
    Prefs,
    ProtocolError,
    Resync,
    encode,
    parse_client_message,
)
from netcode.views import VIEW_OF_ROLE
from replay.errors import ReplayError
from replay.playback import CHECKSUM_EVERY, Playback
from replay.reader import Session as RecordedSession
from server.client_socket import ClientSocket, binary_frame
from server.tokens import ReviewGrant

if TYPE_CHECKING:
    from server.app import Server

MIN_SPEED: Final = 0.25
MAX_SPEED: Final = 16.0
STATUS_EVERY_SECONDS: Final = 1.0


class ReviewStream:
    def __init__(self, server: Server, sock: ClientSocket, grant: ReviewGrant) -> None:
        self.server = server
        self.sock = sock
        self.grant = grant
        self.playback: Playback | None = None
        self.playing = False
        self.speed = 1.0
        self._base: int | None = None
        self._credit = 0.0

    async def open(self) -> bool:
        """Open the recording and send welcome + the first snapshot; False if it cannot."""
        try:
            recorded = await trio.to_thread.run_sync(
                RecordedSession.open, self.server.settings.data_dir, self.grant.session
            )
            self.playback = await trio.to_thread.run_sync(
                lambda: Playback(recorded, VIEW_OF_ROLE[self.grant.view], binary_frame)
            )
        except ReplayError as exc:
            unknown = exc.code in ("unknown-session", "bad-session-id")
            code = "unknown_session" if unknown else "bad_session"
            self._bye(code, f"this session cannot be reviewed: {exc.message}")
            return False
        p = self.playback
        self.sock.send(
            encode(
                {
                    "t": "welcome",
                    "v": PROTOCOL_VERSION,
                    "room": self.grant.session,
                    "title": str(recorded.manifest.case.get("title", "")),
                    "role": "reviewer",
                    "view": self.grant.view.value,
                    "name": self.grant.name,
                    "member": 0,
                    "session": "",
                    "resumed": False,
                    "tick_hz": recorded.tick_hz,
                    "checksum_every": CHECKSUM_EVERY,
                    "grace_seconds": 0,
                    "review": {
                        "first_tick": p.first_tick,
                        "last_tick": p.last_tick,
                        "duration_s": recorded.seconds(p.last_tick - p.first_tick),
                    },
                }
            )
        )
        self._send_frame()
        self._status()
        return True

    def _bye(self, code: str, message: str) -> None:
        self.sock.send(encode({"t": "bye", "code": code, "msg": message}))

    def _send_frame(self) -> None:
        assert self.playback is not None
        if self.sock.offer(self.playback.frame(self._base)):
            self._base = self.playback.tick

    def _status(self) -> None:
        assert self.playback is not None
        p = self.playback
        self.sock.send(
            encode(
                {
                    "t": "playback",
                    "tick": p.tick,
                    "seconds": p.seconds,
                    "playing": self.playing,
                    "speed": self.speed,
                    "end": p.at_end,
                }
            )
        )

    async def run(self, messages: Any) -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._play)
            try:
                async for data in messages:
                    self._handle(data)
            finally:
                nursery.cancel_scope.cancel()

    async def _play(self) -> None:
        assert self.playback is not None
        period = 1.0 / max(1, self.playback.session.tick_hz)
        since_status = 0.0
        while True:
            await trio.sleep(period)
            since_status += period
            if self.playing:
                self._credit += self.speed
                ticks = int(self._credit)
                self._credit -= ticks
                if ticks:
                    await trio.to_thread.run_sync(self.playback.advance, ticks)
                    self._send_frame()
                if self.playback.at_end:
                    self.playing = False
                    self._status()
            if since_status >= STATUS_EVERY_SECONDS:
                since_status = 0.0
                self._status()

    def _handle(self, data: bytes) -> None:
        try:
            message = parse_client_message(data)
        except ProtocolError as exc:
            self.sock.send(encode({"t": "error", "code": exc.code, "msg": exc.message}))
            return
        match message:
            case Intent():
                self._intent(message)
            case Resync():
                self._base = None
            case Ping():
                tick = self.playback.tick if self.playback else 0
                self.sock.send(encode({"t": "pong", "id": message.id, "tick": tick}))
            case Ack() | Prefs():
                pass  # a replay paces itself; low-bandwidth rates apply to live rooms
            case _:
                self.sock.send(
                    encode(
                        {
                            "t": "error",
                            "code": "forbidden",
                            "msg": "a replay can only be watched and steered",
                        }
                    )
                )

    def _intent(self, intent: Intent) -> None:
        assert self.playback is not None
        reply: dict[str, Any] = {"t": "reply", "id": intent.id, "ok": True}
        args = intent.args
        if intent.do == "play":
            if self.playback.at_end:
                self.playback.seek(self.playback.first_tick)
                self._base = None
            self.playing = True
        elif intent.do == "pause":
            self.playing = False
        elif intent.do == "seek" and isinstance(args.get("seconds"), int | float):
            self.playback.seek(self.playback.session.tick_of(float(args["seconds"])))
            self._base = None
            self._send_frame()
        elif (
            intent.do == "speed"
            and isinstance(args.get("x"), int | float)
            and MIN_SPEED <= float(args["x"]) <= MAX_SPEED
        ):
            self.speed = float(args["x"])
        elif intent.do in ("seek", "speed"):
            reply = {
                "t": "reply",
                "id": intent.id,
                "ok": False,
                "code": "bad_args",
                "msg": "seek takes a number 'seconds'; speed takes 'x' from "
                f"{MIN_SPEED} to {MAX_SPEED}",
            }
        else:
            reply = {
                "t": "reply",
                "id": intent.id,
                "ok": False,
                "code": "forbidden",
                "msg": "a replay is steered with play, pause, seek and speed; it cannot be changed",
            }
        self.sock.send(encode(reply))
        self._status()
