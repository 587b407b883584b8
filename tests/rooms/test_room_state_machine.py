"""A room of every shipped case, driven by random members sending anything at all.

Hypothesis plays joins, drops, resumes, leaves, poses and intents from every role with
arbitrary argument values (wrong types, nested lists, huge numbers, unknown keys, ids
the case does know), interleaved with ticks. Whatever is sent, no exception but a
refusal escapes the room, every intent the room took gets exactly one reply, a refused
one carries a code and a sentence, and the recording re-simulates to the same outputs.
"""

from __future__ import annotations

import os
from typing import Any

import hypothesis
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    MultipleResults,
    RuleBasedStateMachine,
    consumes,
    initialize,
    multiple,
    precondition,
    rule,
)

from netcode.codec import Intent as IntentMessage
from netcode.codec import ProtocolError, encode, parse_client_message
from netcode.views import Role, View
from replay.resim import resimulate, room_factory
from rooms.actions import IntentRefused
from rooms.events import Replied
from rooms.records import MemoryRecorder
from rooms.room import Room, RoomConfig, RoomStatus
from server.scenarios import available_cases, make_scenario

CONFIG = RoomConfig(
    tick_hz=10, grace_seconds=1.0, lease_seconds=1.0, checksum_every=5, keyframe_seconds=3.0
)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats()
    | st.text(max_size=12)
    | st.binary(max_size=8)
)
ANYTHING = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.text(max_size=6) | st.integers(-5, 5), inner, max_size=3)
    ),
    max_leaves=6,
)


def strings_in(value: Any) -> set[str]:
    found: set[str] = set()
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str) and len(item) <= 40:
            found.add(item)
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
    return found


class RoomUnderFire(RuleBasedStateMachine):
    members = Bundle("members")

    def __init__(self) -> None:
        super().__init__()
        self.recorder = MemoryRecorder()
        self.room: Room | None = None
        self.waiting: dict[tuple[int, int], str] = {}
        """Intents the room took, by (member, reply id), until their reply comes."""
        self.next_id = 0
        self.words: list[str] = []
        self.fields: list[str] = []

    @initialize(target=members, case=st.sampled_from(available_cases()), seed=st.integers(0, 2**16))
    def open_room(self, case: str, seed: int) -> MultipleResults[int]:
        """A room with one member of each role, in their avatars after the first tick."""
        self.room = Room(
            "r", make_scenario(case, seed), seed=seed, config=CONFIG, recorder=self.recorder
        )
        self.room.start()
        facilitator_view = self.room.world.view_state(View.FACILITATOR)
        self.words = sorted(strings_in(facilitator_view))
        self.fields = sorted(
            {name for spec in self.room.action_specs().values() for name in spec.args.model_fields}
        )
        ids = [self.room.join(role, role.value).id for role in Role]
        self.room.tick()
        return multiple(*ids)

    @property
    def live(self) -> Room:
        assert self.room is not None
        return self.room

    def running(self) -> bool:
        return self.room is not None and self.room.status is not RoomStatus.ENDED

    @precondition(running)
    @rule(target=members, role=st.sampled_from(list(Role)), name=st.text(max_size=70))
    def join(self, role: Role, name: str) -> int:
        return self.live.join(role, name).id

    @precondition(running)
    @rule(member=members)
    def drop(self, member: int) -> None:
        self.live.disconnect(member)

    @precondition(running)
    @rule(member=members)
    def come_back(self, member: int) -> None:
        self.live.reconnect(member)

    @precondition(running)
    @rule(member=consumes(members))
    def leave(self, member: int) -> None:
        self.live.leave(member)

    @precondition(running)
    @rule(member=members, speaking=st.booleans())
    def speak(self, member: int, speaking: bool) -> None:
        self.live.set_speaking(member, speaking)

    @precondition(running)
    @rule(member=members, values=st.lists(st.floats(-3, 3) | SCALARS, min_size=6, max_size=8))
    def pose(self, member: int, values: list[Any]) -> None:
        try:
            self.live.pose(member, {"head": values})
        except IntentRefused as refused:
            assert refused.code and refused.message

    @precondition(running)
    @rule(members=st.lists(members, min_size=1, max_size=6), data=st.data())
    def intents(self, members: list[int], data: st.DataObject) -> None:
        """A burst of intents from some members, before the next tick."""
        for member in members:
            self.intent(member, data)

    def intent(self, member: int, data: st.DataObject) -> None:
        room = self.live
        specs = room.action_specs()
        action = data.draw(st.sampled_from([*specs, "fly", ""]), label="action")
        word = st.sampled_from(self.words) if self.words else st.text(max_size=4)
        value = word | ANYTHING | st.integers(-3, 3) | st.floats(0, 100)
        keys = st.sampled_from(self.fields) | st.text(max_size=5) if self.fields else st.text()
        anything = st.dictionaries(keys, value, max_size=4) | ANYTHING
        plausible = (
            st.fixed_dictionaries(
                {},
                optional={
                    name: self.plausible_value(field.annotation, word)
                    for name, field in specs[action].args.model_fields.items()
                },
            )
            if action in specs
            else anything
        )
        args = data.draw(st.one_of(plausible, plausible, anything), label="args")
        self.next_id += 1
        try:
            message = parse_client_message(
                encode({"t": "intent", "id": self.next_id, "do": action, "args": args})
            )
        except ProtocolError as refused:  # the codec stops it before the room sees it
            assert refused.code and refused.message
            hypothesis.event(f"codec: {refused.code}")
            return
        assert isinstance(message, IntentMessage)
        try:
            room.submit(member, message.id, message.do, message.args)
        except IntentRefused as refused:
            assert refused.code and refused.message
            hypothesis.event(f"at once: {refused.code}")
            return
        self.waiting[(member, message.id)] = message.do

    @staticmethod
    def plausible_value(annotation: Any, word: st.SearchStrategy[str]) -> st.SearchStrategy[Any]:
        """Values of the type a field declares: known ids and words, small numbers."""
        if annotation is bool:
            return st.booleans()
        if annotation is int:
            return st.integers(0, 40)
        if annotation is float:
            return st.floats(0, 100) | st.integers(0, 100)
        return word | st.text(max_size=8)

    @precondition(running)
    @rule()
    def tick(self) -> None:
        for event in self.live.tick():
            if isinstance(event, Replied):
                action = self.waiting.pop((event.member, event.reply_id))
                hypothesis.event(f"{action}: {event.code or 'ok'}")
                if not event.ok:
                    assert event.code and event.message, (action, event)
        unanswered = [key for key in self.waiting if key[0] in self.live.members]
        assert not unanswered, "every intent a member still in the room sent is answered"
        self.waiting.clear()  # members who left before the tick are answered nowhere

    @precondition(running)
    @rule(reason=st.text(max_size=300), chance=st.integers(0, 9))
    def end(self, reason: str, chance: int) -> None:
        if chance == 0:  # rarely: an ended room has little left to try
            self.live.request_end(reason)

    @precondition(lambda self: self.room is not None and not self.running())
    @rule(member=st.integers(0, 20), args=ANYTHING)
    def intent_after_the_end(self, member: int, args: Any) -> None:
        try:
            self.live.submit(member, 1, "chat", {"text": args})
        except IntentRefused as refused:
            assert refused.code == "room_ended"
        else:
            raise AssertionError("an ended room took an intent")

    def teardown(self) -> None:
        if self.room is None:
            return
        divergence = resimulate(self.recorder.records, room_factory(make_scenario))
        assert divergence is None, divergence.describe()


RoomUnderFire.TestCase.settings = settings(
    max_examples=int(os.environ.get("GR_ROOM_EXAMPLES", "60")),
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
    ],
)
test_a_room_takes_anything_from_anyone = pytest.mark.slow(RoomUnderFire.TestCase)
