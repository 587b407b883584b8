"""Reviewing a recorded session over the same WebSocket protocol as a live room.

A reviewer's hello carries a review token (a session, a view). The server answers
`welcome` (with `review` details), then state frames built by `replay.playback`, and
`playback` messages saying where the play head is. The reviewer steers with intents:
`play`, `pause`, `seek {seconds}`, `speed {x}`, whose arguments are validated by the
models below (finite numbers only; a refusal is `bad_args` naming the field). Each
reviewer has their own play head.

Two tasks and one process per stream. The reader task parses the reviewer's messages
and queues steering requests on a bounded channel; the driver task takes them one at a
time, together with the play clock, and hands the work to the stream's
`ReviewWorker`, the process that alone owns the recording. So seek and play are
serialised, and no recording work runs in the server's interpreter.
"""

from __future__ import annotations

import contextlib
import logging
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import trio
from pydantic import BaseModel, ConfigDict, Field, ValidationError

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
from replay.playback import CHECKSUM_EVERY, Damage
from replay.reader import MAX_SECONDS
from server.client_socket import ClientSocket, binary_frame
from server.review_worker import (
    AdvanceTo,
    Command,
    Failure,
    Frame,
    Open,
    Outcome,
    ReviewWorker,
    Rewind,
    Seek,
    TooManyWorkers,
)
from server.tokens import ReviewGrant

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from server.app import Server

log = logging.getLogger(__name__)
MIN_SPEED: Final = 0.25
MAX_SPEED: Final = 16.0
STATUS_EVERY_SECONDS: Final = 1.0
REQUEST_LIMIT: Final = 8
"""Steering requests waiting for the driver; more are refused with `busy`."""
_ARGS = ConfigDict(extra="forbid", strict=True)


class PlayArgs(BaseModel):
    model_config = _ARGS


class PauseArgs(BaseModel):
    model_config = _ARGS


class SeekArgs(BaseModel):
    model_config = _ARGS
    seconds: float = Field(allow_inf_nan=False, ge=-MAX_SECONDS, le=MAX_SECONDS)
    """Seconds since the room started (clamped to the session)."""


class SpeedArgs(BaseModel):
    model_config = _ARGS
    x: float = Field(allow_inf_nan=False, ge=MIN_SPEED, le=MAX_SPEED)


STEERING: Final[dict[str, type[BaseModel]]] = {
    "play": PlayArgs,
    "pause": PauseArgs,
    "seek": SeekArgs,
    "speed": SpeedArgs,
}


@dataclass(frozen=True, slots=True)
class Steer:
    """A validated steering intent, waiting for the driver."""

    intent_id: int
    args: BaseModel


@dataclass(frozen=True, slots=True)
class Resend:
    """The reviewer asked for a snapshot (its checksum disagreed)."""


Request = Steer | Resend


def steering_args(intent: Intent) -> BaseModel:
    """The intent's arguments as its model; `ProtocolError` naming the field if bad."""
    model = STEERING.get(intent.do)
    if model is None:
        raise ProtocolError(
            "forbidden",
            "a replay is steered with play, pause, seek and speed; it cannot be changed",
        )
    try:
        return model.model_validate(intent.args)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "args"
        raise ProtocolError("bad_args", f"{intent.do}: {where}: {first['msg']}") from None


class ReviewStream:
    def __init__(self, server: Server, sock: ClientSocket, grant: ReviewGrant) -> None:
        self.server = server
        self.sock = sock
        self.grant = grant
        self.worker: ReviewWorker | None = None
        self.playing = False
        self.speed = 1.0
        self._base: int | None = None
        self._at: Outcome | None = None
        self._anchor = (0, 0.0)
        """(tick, clock) the play head was at when play, speed or a seek last set it."""
        self._frame_due = math.inf
        self._status_due = 0.0

    async def open(self) -> bool:
        """Open the recording and send welcome + the first snapshot; False if it cannot."""
        try:
            worker = await ReviewWorker.start()
        except TooManyWorkers:
            self._bye(
                "too_many_reviewers",
                "as many reviews are open as this server runs; try again when one closes",
            )
            return False
        except OSError as exc:
            log.error("cannot start a review worker: %s", exc)
            self._bye("internal_error", "the server cannot open a review now; try again later")
            return False
        self.worker = worker
        result = await worker.call(
            Open(self.server.settings.data_dir, self.grant.session, VIEW_OF_ROLE[self.grant.view])
        )
        if isinstance(result, Failure):
            await worker.aclose()
            if result.code == "internal_error":  # reported by the boundary, with its id
                self._bye(result.code, result.message)
                return False
            unknown = result.code in ("unknown_session", "bad_session_id")
            code = "unknown_session" if unknown else "bad_session"
            self._bye(code, f"this session cannot be reviewed: {result.message}")
            return False
        review: dict[str, Any] = {
            "first_tick": result.first_tick,
            "last_tick": result.last_tick,
            "duration_s": (result.last_tick - result.first_tick) / (result.tick_hz or 1),
        }
        if result.damage is not None:
            review["damaged"] = _damage_info(result.damage, result.tick_hz)
        self.sock.send(
            encode(
                {
                    "t": "welcome",
                    "v": PROTOCOL_VERSION,
                    "room": self.grant.session,
                    "title": result.title,
                    "role": "reviewer",
                    "view": self.grant.view.value,
                    "name": self.grant.name,
                    "member": 0,
                    "session": "",
                    "resumed": False,
                    "tick_hz": result.tick_hz,
                    "checksum_every": CHECKSUM_EVERY,
                    "grace_seconds": 0,
                    "review": review,
                }
            )
        )
        self._moved(result)
        self._status()
        return True

    async def run(self, messages: AsyncIterator[bytes]) -> None:
        send, receive = trio.open_memory_channel[Request](REQUEST_LIMIT)
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._drive, receive)
                try:
                    async for data in messages:
                        self._read(data, send)
                finally:
                    nursery.cancel_scope.cancel()
        finally:
            if self.worker is not None:
                await self.worker.aclose()

    # -- the reader task ----------------------------------------------------------
    def _read(self, data: bytes, requests: trio.MemorySendChannel[Request]) -> None:
        try:
            message = parse_client_message(data)
        except ProtocolError as exc:
            self._error(exc.code, exc.message)
            return
        match message:
            case Intent():
                try:
                    args = steering_args(message)
                    requests.send_nowait(Steer(message.id, args))
                except ProtocolError as exc:
                    self._reply(message.id, exc.code, exc.message)
                except trio.WouldBlock:
                    self._reply(
                        message.id,
                        "busy",
                        "too many steering requests are waiting; wait for their replies",
                    )
            case Resync():
                with contextlib.suppress(trio.WouldBlock):  # queued requests send frames too
                    requests.send_nowait(Resend())
            case Ping():
                tick = self._at.tick if self._at is not None else 0
                self.sock.send(encode({"t": "pong", "id": message.id, "tick": tick}))
            case Ack() | Prefs():
                pass  # a replay paces itself; low-bandwidth rates apply to live rooms
            case _:
                self._error("forbidden", "a replay can only be watched and steered")

    # -- the driver task ----------------------------------------------------------
    async def _drive(self, requests: trio.MemoryReceiveChannel[Request]) -> None:
        while True:
            wake = min(self._status_due, self._frame_due if self.playing else math.inf)
            request: Request | None = None
            with trio.move_on_at(wake):
                request = await requests.receive()
            if request is not None:
                await self._serve(request)
            now = trio.current_time()
            if self.playing and now >= self._frame_due:
                await self._advance(now)
            if now >= self._status_due:
                self._status()

    async def _serve(self, request: Request) -> None:
        if isinstance(request, Resend):
            self._base = None
            result = await self._call(Frame(None))
            if isinstance(result, Outcome):
                self._moved(result)
            return
        args, intent_id = request.args, request.intent_id
        if isinstance(args, PlayArgs):
            rewind = self._at is not None and self._at.at_end
            if rewind and not await self._went(intent_id, Rewind()):
                return
            self.playing = True
            self._anchor_here()
        elif isinstance(args, PauseArgs):
            self.playing = False
        elif isinstance(args, SeekArgs):
            if not await self._went(intent_id, Seek(args.seconds)):
                return
            self._anchor_here()
        elif isinstance(args, SpeedArgs):
            self.speed = args.x
            self._anchor_here()
        self._reply(intent_id)
        self._status()

    async def _went(self, intent_id: int, command: Seek | Rewind) -> bool:
        """Move the play head; on failure or damage, reply with why and stop playing."""
        self._base = None
        result = await self._call(command)
        if isinstance(result, Failure):
            self._reply(intent_id, result.code, result.message)
            return False
        self._moved(result)
        if result.damage is not None:
            self.playing = False
            self._reply(intent_id, "damaged_recording", _damage_sentence(result))
            self._status()
            return False
        return True

    async def _advance(self, now: float) -> None:
        """Move the play head to where the clock says it is: it never drifts from the
        wall clock however long a step takes (a slow step makes the next one longer)."""
        assert self._at is not None
        hz = self._at.tick_hz or 1
        self._frame_due = now + 1.0 / hz
        tick, since = self._anchor
        target = tick + int((now - since) * self.speed * hz + 1e-9)
        if target <= self._at.tick:
            return
        result = await self._call(AdvanceTo(target, self._base))
        if isinstance(result, Failure):
            self.playing = False
            self._error(result.code, result.message)
            self._status()
            return
        self._moved(result)
        if result.damage is not None:
            self.playing = False
            self._error("damaged_recording", _damage_sentence(result))
            self._status()
        elif result.at_end:
            self.playing = False
            self._status()

    async def _call(self, command: Command) -> Outcome | Failure:
        assert self.worker is not None
        return await self.worker.call(command)

    # -- sending ------------------------------------------------------------------------
    def _moved(self, result: Outcome) -> None:
        """The play head is at `result`: offer its frame (the baseline moves if taken)."""
        self._at = result
        if result.frame is not None and self.sock.offer(binary_frame(result.frame)):
            self._base = result.tick

    def _anchor_here(self) -> None:
        now = trio.current_time()
        self._anchor = (self._at.tick if self._at is not None else 0, now)
        self._frame_due = now

    def _status(self) -> None:
        self._status_due = trio.current_time() + STATUS_EVERY_SECONDS
        at = self._at
        if at is None:
            return
        status: dict[str, Any] = {
            "t": "playback",
            "tick": at.tick,
            "seconds": at.seconds,
            "playing": self.playing,
            "speed": self.speed,
            "end": at.at_end,
        }
        if at.damage is not None:
            status["damaged"] = _damage_info(at.damage, at.tick_hz)
        self.sock.send(encode(status))

    def _reply(self, intent_id: int, code: str = "", message: str = "") -> None:
        reply: dict[str, Any] = {"t": "reply", "id": intent_id, "ok": not code}
        if code:
            reply["code"] = code
            reply["msg"] = message
        self.sock.send(encode(reply))

    def _error(self, code: str, message: str) -> None:
        self.sock.send(encode({"t": "error", "code": code, "msg": message}))

    def _bye(self, code: str, message: str) -> None:
        self.sock.send(encode({"t": "bye", "code": code, "msg": message}))


def _damage_info(damage: Damage, tick_hz: int) -> dict[str, Any]:
    return {
        "code": damage.code.replace("-", "_"),
        "msg": damage.message,
        "tick": damage.tick,
        "seconds": damage.tick / (tick_hz or 1),
    }


def _damage_sentence(result: Outcome) -> str:
    assert result.damage is not None
    seconds = result.damage.tick / (result.tick_hz or 1)
    return (
        f"the recording cannot be read past {seconds:.1f} s ({result.damage.message}); "
        "showing the session as it was there"
    )
