"""Intents and poses the room refuses, each with its documented code."""

from __future__ import annotations

from typing import Any

import pytest

from netcode.views import Role
from rooms.actions import IntentRefused
from rooms.room import MAX_CHAT_CHARS, Room, RoomStatus, RoomUsageError
from tests.netcode.room_helpers import intent, make_room, pose_values, replies_of


def members(room: Room) -> dict[Role, int]:
    ids = {role: room.join(role, role.value).id for role in Role}
    room.tick()
    return ids


@pytest.mark.parametrize(
    ("action", "args"),
    [
        ("chat", {"text": "hi"}),
        ("note", {"text": "x"}),
        ("grab", {"obj": 1}),
        ("release", {"obj": 1}),
        ("pause", {}),
        ("end", {}),
    ],
)
def test_spectators_may_not_act(action: str, args: dict[str, Any]) -> None:
    room = make_room()
    spectator = members(room)[Role.SPECTATOR]
    reply = intent(room, spectator, 1, action, **args)
    assert (reply.ok, reply.code) == (False, "forbidden")
    assert room.status is RoomStatus.RUNNING
    assert room.world.log_tail("chat") == []
    assert room.world.get(room.world.find("team")[0], "note") == ""
    assert room.leases.holder(1) is None


def test_spectators_may_ask_and_only_the_facilitator_reads_questions() -> None:
    room = make_room()
    spectator = members(room)[Role.SPECTATOR]
    assert intent(room, spectator, 1, "ask", text="why?").ok
    assert room.world.log_tail("questions")[-1]["text"] == "why?"


def test_spectators_have_no_poses() -> None:
    room = make_room()
    spectator = members(room)[Role.SPECTATOR]
    with pytest.raises(IntentRefused) as refused:
        room.pose(spectator, {"head": pose_values()})
    assert refused.value.code == "forbidden"


def test_an_unknown_action_is_refused() -> None:
    room = make_room()
    participant = members(room)[Role.PARTICIPANT]
    reply = intent(room, participant, 1, "teleport", to="x")
    assert (reply.ok, reply.code) == (False, "unknown_action")
    assert "teleport" in reply.message


@pytest.mark.parametrize(
    "args",
    [
        {},
        {"text": ""},
        {"text": "   "},
        {"text": 5},
        {"text": None},
        {"text": ["hi"]},
        {"text": "x" * (MAX_CHAT_CHARS + 1)},
    ],
)
def test_chat_needs_a_non_empty_bounded_text(args: dict[str, Any]) -> None:
    room = make_room()
    participant = members(room)[Role.PARTICIPANT]
    reply = intent(room, participant, 1, "chat", **args)
    assert (reply.ok, reply.code) == (False, "bad_args")
    assert room.world.log_tail("chat") == []
    assert intent(room, participant, 2, "chat", text="x" * MAX_CHAT_CHARS).ok


@pytest.mark.parametrize("action", ["pause", "resume", "end"])
def test_facilitator_only_actions_are_forbidden_to_participants(action: str) -> None:
    room = make_room()
    participant = members(room)[Role.PARTICIPANT]
    reply = intent(room, participant, 1, action)
    assert (reply.ok, reply.code) == (False, "forbidden")
    assert room.status is RoomStatus.RUNNING


def test_pause_and_resume_only_from_the_right_state() -> None:
    room = make_room()
    facilitator = members(room)[Role.FACILITATOR]
    assert intent(room, facilitator, 1, "resume").code == "bad_state"
    assert intent(room, facilitator, 2, "pause").ok
    assert room.status is RoomStatus.PAUSED
    assert intent(room, facilitator, 3, "pause").code == "bad_state"
    assert intent(room, facilitator, 4, "resume").ok
    assert room.world.get(1, "status") == "running"


def test_moving_an_object_without_a_lease_is_refused_and_changes_nothing() -> None:
    room = make_room()
    participant = members(room)[Role.PARTICIPANT]
    obj = room.world.find("object")[0]
    before = dict(room.poses.published)
    with pytest.raises(IntentRefused) as refused:
        room.pose(participant, {"head": pose_values(0.3)}, {obj: pose_values(1.0)})
    assert refused.value.code == "not_holder"
    assert room.poses.published == before  # the head did not move either


@pytest.mark.parametrize(
    "values",
    [
        [0.0] * 6,
        [float("nan"), 0, 0, 0, 0, 0, 1],
        [2000.0, 0, 0, 0, 0, 0, 1],
        [0, 0, 0, 0, 0, 0, 0],
    ],
)
def test_bad_poses_are_refused(values: list[float]) -> None:
    room = make_room()
    participant = members(room)[Role.PARTICIPANT]
    with pytest.raises(IntentRefused) as refused:
        room.pose(participant, {"head": values})
    assert refused.value.code == "bad_pose"


def test_an_ended_room_refuses_intents() -> None:
    room = make_room()
    ids = members(room)
    assert intent(room, ids[Role.FACILITATOR], 1, "end", reason="done").ok
    assert room.status is RoomStatus.ENDED
    with pytest.raises(IntentRefused) as refused:
        room.submit(ids[Role.PARTICIPANT], 2, "chat", {"text": "hello?"})
    assert refused.value.code == "room_ended"
    with pytest.raises(RoomUsageError):
        room.tick()


def test_intents_queued_behind_the_end_are_refused_as_room_ended() -> None:
    room = make_room()
    ids = members(room)
    room.submit(ids[Role.FACILITATOR], 1, "end", {"reason": "done"})
    room.submit(ids[Role.PARTICIPANT], 2, "chat", {"text": "hello?"})
    replies = replies_of(room.tick())
    assert replies[1].ok
    assert (replies[2].ok, replies[2].code) == (False, "room_ended")


@pytest.mark.parametrize("args", [{}, {"text": 3}, {"text": "x" * 2001}])
def test_the_scenarios_own_action_checks_its_args(args: dict[str, Any]) -> None:
    room = make_room()
    participant = members(room)[Role.PARTICIPANT]
    reply = intent(room, participant, 1, "note", **args)
    assert (reply.ok, reply.code) == (False, "bad_args")
    assert intent(room, participant, 2, "note", text="ok").ok
    assert room.world.get(room.world.find("team")[0], "note") == "ok"


def test_a_pose_sent_before_the_avatar_exists_is_applied_when_it_appears() -> None:
    room = make_room()
    member = room.join(Role.PARTICIPANT, "early").id
    room.pose(member, {"head": pose_values(0.5)})
    room.tick()
    head = room.members[member].parts["head"]
    assert room.poses.published[head][:2] == (500, 1600)
