"""A session's state and per-tick work stay bounded however many actions it holds.

The full history of actions is in the recording (every intent is a record); what the
scenario keeps, what a keyframe copies and what each second costs must not grow with
it. Measured in bytes and in Python function calls, never in wall time.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from itertools import cycle
from types import FrameType
from typing import Any

import msgpack

from netcode.views import Role
from rooms.case import CaseScenario
from rooms.records import NullRecorder
from rooms.room import Room, RoomConfig
from tests.case.harness import compiled

HZ = 30
ACTIONS: list[tuple[str, dict[str, Any]]] = [
    ("note", {"text": "reassessed, no change"}),
    ("examine", {"region": "abdomen"}),
    ("give", {"drug": "crystalloid", "dose": 1, "route": "iv"}),
    ("oxygen", {"device": "nasal_cannula"}),
    ("examine", {"region": "chest"}),
    ("give", {"drug": "paracetamol", "dose": 15, "route": "iv"}),
    ("oxygen", {"device": "simple_mask"}),
    ("note", {"text": "x" * 900}),
]


def make_room() -> tuple[Room, list[int]]:
    case, program = compiled("septic_shock_ed")
    room = Room(
        "bounded",
        CaseScenario(case, 5, program),
        seed=5,
        config=RoomConfig(tick_hz=HZ),
        recorder=NullRecorder(),
    )
    room.start()
    team = [room.join(Role.PARTICIPANT, f"Dr {n}").id for n in "ABCD"]
    room.tick()
    return room, team


def flood(room: Room, team: list[int], count: int, actions: Any, reply: list[int]) -> None:
    """Submit `count` intents, 4 x 50 a tick (under the per-member queue limit)."""
    members = cycle(team)
    for n in range(count):
        action, args = next(actions)
        reply[0] += 1
        room.submit(next(members), reply[0], action, args)
        if n % 200 == 199:
            room.tick()
    room.tick()


def calls_during(work: Callable[[], None]) -> int:
    counted = 0

    def profile(frame: FrameType, event: str, arg: Any) -> None:
        nonlocal counted
        if event == "call":
            counted += 1

    sys.setprofile(profile)
    try:
        work()
    finally:
        sys.setprofile(None)
    return counted


def one_second(room: Room) -> Callable[[], None]:
    def run() -> None:
        for _ in range(HZ):
            room.tick()

    return run


def size(data: Any) -> int:
    return len(msgpack.packb(data))


def test_state_keyframes_and_work_per_second_do_not_grow_with_actions() -> None:
    room, team = make_room()
    actions, reply = cycle(ACTIONS), [0]
    flood(room, team, 1_000, actions, reply)
    for _ in range(HZ):  # let the last tick's refusals and ops settle
        room.tick()
    early_snapshot = size(room.scenario.snapshot())
    early_keyframe = size(room.export())
    early_work = calls_during(one_second(room))

    flood(room, team, 29_000, actions, reply)
    for _ in range(HZ):
        room.tick()
    late_snapshot = size(room.scenario.snapshot())
    late_keyframe = size(room.export())
    late_work = calls_during(one_second(room))

    scenario = room.scenario
    assert isinstance(scenario, CaseScenario)
    assert scenario.run.env.count("note") >= 7_000  # the actions were applied...
    assert late_snapshot <= early_snapshot * 1.02 + 64, (early_snapshot, late_snapshot)
    assert late_keyframe <= early_keyframe * 1.02 + 256, (early_keyframe, late_keyframe)
    assert late_snapshot < 24_000 and late_keyframe < 120_000
    assert late_work <= early_work * 1.1, (early_work, late_work)  # ...and cost nothing later


def test_the_debrief_counts_actions_instead_of_listing_them() -> None:
    room, team = make_room()
    flood(room, team, 5_000, cycle(ACTIONS), [0])
    scenario = room.scenario
    assert isinstance(scenario, CaseScenario)
    debrief = scenario.debrief()
    assert debrief["action_counts"]["note:any"] >= 1_000
    assert size(debrief) < 20_000
