"""Room determinism: a fresh room fed a session's recorded inputs makes the same outputs."""

from __future__ import annotations

import contextlib

from hypothesis import event, given, settings
from hypothesis import strategies as st

from netcode.poses import ROTATION_DEADBAND_RAD
from netcode.quantize import as_raw_pose, quantize, rotation_angle
from netcode.views import Role
from rooms.actions import IntentRefused
from rooms.demo import DemoScenario
from rooms.events import INPUT_KINDS
from rooms.records import MemoryRecorder, Record
from rooms.room import Room, RoomStatus
from tests.netcode.room_helpers import CONFIG, POSE, make_room
from tests.netcode.sync_helpers import SLOW_OK

INPUTS = INPUT_KINDS
OUTPUTS = frozenset({"op", "reply", "poses", "checksum", "keyframe", "expire", "ended"})
ROLES = st.sampled_from([Role.PARTICIPANT, Role.FACILITATOR, Role.SPECTATOR])


def play(data: st.DataObject, room: Room) -> None:
    """A random session: joins, poses, carried objects, intents, drops, resumes, leaves."""
    reply_id = 0
    for _ in range(data.draw(st.integers(5, 40), label="ticks")):
        if room.status is RoomStatus.ENDED:
            return  # the host stops ticking an ended room
        for _ in range(data.draw(st.integers(0, 4))):
            members = sorted(room.members)
            choice = data.draw(
                st.sampled_from(
                    ["join", "pose", "pose", "intent", "intent", "drop", "back", "leave", "end"]
                )
            )
            if choice == "join" or not members:
                room.join(data.draw(ROLES), data.draw(st.text(max_size=6)))
                continue
            member = data.draw(st.sampled_from(members))
            if choice == "pose":
                held = [o for o in room.world.find("object") if room.leases.holder(o) == member]
                objects = {o: data.draw(POSE) for o in held[:1]}
                with contextlib.suppress(IntentRefused):  # spectators, no avatar yet
                    room.pose(member, {"head": data.draw(POSE), "left": data.draw(POSE)}, objects)
            elif choice == "intent":
                reply_id += 1
                action = data.draw(
                    st.sampled_from(
                        [
                            "chat",
                            "ask",
                            "note",
                            "grab",
                            "release",
                            "pause",
                            "resume",
                            "end",
                            "bogus",
                        ]
                    )
                )
                args = {
                    "text": data.draw(st.text(max_size=8)),
                    "obj": data.draw(st.sampled_from(room.world.find("object"))),
                }
                room.submit(member, reply_id, action, args)
            elif choice == "drop":
                room.disconnect(member)
            elif choice == "back":
                room.reconnect(member)
            elif choice == "leave":
                room.leave(member)
            elif data.draw(st.integers(0, 5)) == 0:
                room.request_end("test over")
        room.tick()


def outputs(records: list[Record]) -> list[Record]:
    return [r for r in records if r.kind in OUTPUTS]


@settings(max_examples=30, deadline=None, suppress_health_check=SLOW_OK)
@given(st.data(), st.integers(0, 2**16))
def test_replaying_recorded_inputs_makes_identical_outputs(data: st.DataObject, seed: int) -> None:
    recorder = MemoryRecorder()
    play(data, make_room(seed, recorder=recorder))
    records = recorder.records
    kinds = {r.kind for r in records}
    assert kinds <= INPUTS | OUTPUTS
    for kind in sorted(kinds):
        event(f"recorded: {kind}")
    event(f"refusals: {sum(1 for r in records if r.kind == 'reply' and not r.data['ok']) > 0}")

    again = MemoryRecorder()
    fresh = Room("r1", DemoScenario(seed, objects=4), seed=seed, config=CONFIG, recorder=again)
    fresh.replay_inputs([r for r in records if r.kind in INPUTS])
    assert outputs(again.records) == outputs(records)
    assert again.records == records  # inputs re-recorded in the same places too


def test_a_replay_with_another_seed_differs() -> None:
    """The comparison above can fail: the demo's vitals depend on the seed."""
    recorder = MemoryRecorder()
    room = make_room(1, recorder=recorder)
    for _ in range(40):
        room.tick()
    again = MemoryRecorder()
    other = Room("r1", DemoScenario(2, objects=4), seed=2, config=CONFIG, recorder=again)
    other.replay_inputs([r for r in recorder.records if r.kind in INPUTS])
    assert outputs(again.records) != outputs(recorder.records)


# A head turned 0.0046 rad (past the 0.004 rad deadband) that quantizes to the same pose.
Q1 = [-0.5769325494766235, 0.42294830083847046, -0.5157687664031982, 0.4714299142360687]
Q2 = [-0.5758467316627502, 0.4217609167098999, -0.5167402029037476, 0.4727556109428406]


def test_a_turn_that_quantizes_to_the_same_pose_replays_identically() -> None:
    """A taken pose that quantizes to the published one is recorded (fixed in f42d980)."""
    p1 = as_raw_pose([0.0004, 1.0, 0.0, *Q1])
    p2 = as_raw_pose([0.0004, 1.0, 0.0, *Q2])
    assert rotation_angle(p1, p2) >= ROTATION_DEADBAND_RAD and quantize(p1) == quantize(p2)
    recorder = MemoryRecorder()
    room = make_room(1, recorder=recorder)
    ana = room.join(Role.PARTICIPANT, "Ana").id
    room.tick()
    room.pose(ana, {"head": [0.0004, 1.0, 0.0, *Q1]})
    room.pose(ana, {"head": [0.0004, 1.0, 0.0, *Q2]})  # moved, nothing published: unrecorded
    room.pose(ana, {"head": [0.0009, 1.0, 0.0, *Q1]})  # 0.5 mm from the first pose
    room.tick()
    again = MemoryRecorder()
    fresh = Room("r1", DemoScenario(1, objects=4), seed=1, config=CONFIG, recorder=again)
    fresh.replay_inputs([r for r in recorder.records if r.kind in INPUTS])
    assert fresh.poses.published == room.poses.published
    assert outputs(again.records) == outputs(recorder.records)


@settings(max_examples=30, deadline=None, suppress_health_check=SLOW_OK)
@given(st.data(), st.integers(0, 2**16))
def test_a_room_restored_from_any_keyframe_carries_on_as_the_original_did(
    data: st.DataObject, seed: int
) -> None:
    """Failover: a fresh room restored from a keyframe and fed the inputs recorded after
    it makes exactly the records the original made after it."""
    recorder = MemoryRecorder()
    play(data, make_room(seed, recorder=recorder))
    records = recorder.records
    keyframes = [i for i, r in enumerate(records) if r.kind == "keyframe"]
    event(f"keyframes: {min(len(keyframes), 5)}")
    for index in keyframes:
        again = MemoryRecorder()
        restored = Room(
            "r1", DemoScenario(seed, objects=4), seed=seed, config=CONFIG, recorder=again
        )
        restored.restore(records[index])
        restored.replay_inputs([r for r in records[index + 1 :] if r.kind in INPUTS])
        assert again.records == records[index + 1 :]
        assert restored.export() == make_room_state(records, index, seed)


def make_room_state(records: list[Record], keyframe: int, seed: int) -> dict[str, object]:
    """The original room's state at the end of the recording (re-simulated from tick 0)."""
    room = Room("r1", DemoScenario(seed, objects=4), seed=seed, config=CONFIG)
    room.replay_inputs([r for r in records if r.kind in INPUTS])
    return room.export()
