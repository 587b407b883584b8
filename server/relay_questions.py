"""Questions from a relay's spectators, carried to the room's owner and answered back.

A spectator's `ask` on a relay goes, as a `Question`, onto the room's bounded
questions stream; the owner (`server/spectator_feed.py`, `QuestionDesk`) submits it in
the room as a member it joins for that spectator, and puts the room's reply, as an
`Answer`, on the relay's bounded replies stream; the relay hands it to the spectator.
Every `ask` gets exactly one reply: the room's, or, if none comes within
`ANSWER_SECONDS` (the owner is moving, Valkey is away), `room_busy`.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Final

import trio
from coredis.tokens import PureToken
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from netcode.codec import Intent, encode
from server.valkey import Keys, Valkey, ValkeyUnavailable, text

if TYPE_CHECKING:
    from server.relay import Relay
    from server.relay_room import RelayRoom, Spectator

log = logging.getLogger(__name__)
QUESTIONS_KEPT: Final = 1000
"""Cap of a room's questions stream and of a relay's replies stream."""
PENDING_PER_SPECTATOR: Final = 4
PENDING_PER_RELAY: Final = 1000
ANSWER_SECONDS: Final = 10.0
READ_BLOCK_MS: Final = 500
RETRY_SECONDS: Final = 1.0


class Question(BaseModel):
    """A spectator's `ask`, on its way from a relay to the room's owner."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    relay: str = Field(max_length=256)
    spectator: int
    """The spectator's member id on its relay."""
    name: str = Field(max_length=64)
    id: int
    text: str = Field(max_length=8192)


class Answer(BaseModel):
    """The room's reply to a `Question`, on its way back to the relay."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    spectator: int
    id: int
    ok: bool
    code: str = ""
    msg: str = ""


async def post(valkey: Valkey, key: str, message: BaseModel) -> None:
    """Add a message to a stream kept to about `QUESTIONS_KEPT` entries."""
    await valkey.call(
        valkey.client.xadd(
            key,
            {"d": message.model_dump_json()},
            trim_strategy=PureToken.MAXLEN,
            threshold=QUESTIONS_KEPT,
            trim_operator=PureToken.APPROXIMATELY,
        )
    )


class RelayQuestions:
    """A relay's questions in flight: sent to owners, answered, or timed out."""

    def __init__(self, relay: Relay) -> None:
        self.relay = relay
        self._send, self._receive = trio.open_memory_channel[tuple[str, Question]](64)
        self._pending: dict[tuple[int, int], tuple[str, float]] = {}
        """(spectator, id) -> (room, deadline)"""

    def ask(self, room: RelayRoom, spectator: Spectator, intent: Intent) -> None:
        """Send a spectator's `ask` on, or answer it at once when it cannot go."""
        asked = intent.args.get("text")
        if set(intent.args) != {"text"} or not isinstance(asked, str):
            self._answer(spectator, intent.id, "bad_args", "ask takes one argument: text")
            return
        mine = sum(1 for member, _ in self._pending if member == spectator.member)
        if mine >= PENDING_PER_SPECTATOR or (spectator.member, intent.id) in self._pending:
            self._answer(spectator, intent.id, "rate_limited", "wait for your questions' replies")
            return
        if len(self._pending) >= PENDING_PER_RELAY:
            self._answer(spectator, intent.id, "room_busy", "too many questions in flight")
            return
        question = Question(
            relay=self.relay.node_id,
            spectator=spectator.member,
            name=spectator.name,
            id=intent.id,
            text=asked,
        )
        try:
            self._send.send_nowait((room.id, question))
        except trio.WouldBlock:
            self._answer(spectator, intent.id, "room_busy", "too many questions in flight")
            return
        deadline = trio.current_time() + ANSWER_SECONDS
        self._pending[spectator.member, intent.id] = (room.id, deadline)

    def _answer(self, spectator: Spectator, reply_id: int, code: str, message: str) -> None:
        self.relay.metrics.errors.labels(code).inc()
        reply = {"t": "reply", "id": reply_id, "ok": False, "code": code, "msg": message}
        spectator.sock.send(encode(reply))

    def _deliver(self, answer: Answer) -> None:
        pending = self._pending.pop((answer.spectator, answer.id), None)
        if pending is None:
            return  # timed out already (it got `room_busy`)
        room = self.relay.rooms.get(pending[0])
        spectator = None if room is None else room.spectators.get(answer.spectator)
        if spectator is None:
            return  # gone meanwhile
        reply: dict[str, object] = {"t": "reply", "id": answer.id, "ok": answer.ok}
        if not answer.ok:
            reply.update(code=answer.code, msg=answer.msg)
            self.relay.metrics.errors.labels(answer.code).inc()
        spectator.sock.send(encode(reply))

    async def run(self) -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._forward)
            nursery.start_soon(self._collect)
            nursery.start_soon(self._expire)

    async def _forward(self) -> None:
        valkey = self.relay.valkey
        async for room_id, question in self._receive:
            try:
                await post(valkey, Keys.room_questions(room_id), question)
            except ValkeyUnavailable as exc:
                log.warning("relay: a question for room %s was not sent (%s)", room_id, exc)
                self._fail(question.spectator, question.id)

    def _fail(self, member: int, reply_id: int) -> None:
        pending = self._pending.pop((member, reply_id), None)
        room = None if pending is None else self.relay.rooms.get(pending[0])
        spectator = None if room is None else room.spectators.get(member)
        if spectator is not None:
            self._answer(spectator, reply_id, "room_busy", "the room could not be reached")

    async def _collect(self) -> None:
        """Read the owners' answers to this relay's questions."""
        valkey = self.relay.valkey
        key = Keys.relay_replies(self.relay.node_id)
        last = "0-0"  # answers from before a restart match no question and are ignored
        while True:
            try:
                reply = await valkey.call(
                    valkey.client.xread({key: last}, count=256, block=READ_BLOCK_MS)
                )
            except ValkeyUnavailable:
                await trio.sleep(RETRY_SECONDS)
                continue
            for item in (reply or {}).get(key.encode(), ()):
                last = text(item.identifier)
                try:
                    answer = Answer.model_validate_json(item.field_values[b"d"])
                except (ValidationError, KeyError):
                    log.warning("relay: ignoring an unreadable answer %s", last)
                    continue
                self._deliver(answer)

    async def _expire(self) -> None:
        """Questions nobody answered in time get `room_busy` (each `ask` one reply)."""
        while True:
            await trio.sleep(1.0)
            now = trio.current_time()
            for (member, reply_id), (_, deadline) in list(self._pending.items()):
                if deadline <= now:
                    self._fail(member, reply_id)
