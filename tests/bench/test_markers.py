"""Latency markers survive a real room's publisher and are found in raw and decoded frames."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from bench.markers import MAX_SEQ, find_marker, marker_seq, marker_x, state_frame_tick
from bench.motion import Participant
from netcode.codec import decode_server_message, encode
from netcode.views import Role, View
from tests.netcode.room_helpers import make_room
from tests.netcode.sync_helpers import SLOW_OK


@settings(max_examples=60, deadline=None, suppress_health_check=SLOW_OK)
@given(st.integers(1, MAX_SEQ), st.integers(0, 200))
def test_a_marker_head_is_found_in_the_raw_frame_and_in_the_decoded_state(
    seq: int, frame_no: int
) -> None:
    room = make_room()
    members = [room.join(Role.PARTICIPANT, f"p{i}") for i in range(3)]
    room.tick()
    before = room.tick_no
    pose = Participant(0, 3, active=True).pose(frame_no)
    pose[0] = marker_x(seq)
    for i, member in enumerate(members):
        other = Participant(i, 3, active=False).pose(frame_no)
        parts = pose if i == 0 else other
        room.pose(member.id, {"head": parts[0:7], "left": parts[7:14], "right": parts[14:21]})
    room.tick()
    frame = room.publisher.frame(View.SPECTATOR, before)
    assert find_marker(frame, -1) == seq
    assert find_marker(frame, seq) == -1  # not new any more
    decoded = decode_server_message(frame)
    heads = [marker_seq(p[0]) for p in decoded["p"].values()]
    assert heads.count(seq) == 1 and heads.count(None) == len(heads) - 1
    assert state_frame_tick(frame) == decoded["k"]


@settings(max_examples=30, deadline=None, suppress_health_check=SLOW_OK)
@given(st.integers(0, 400))
def test_ordinary_motion_never_looks_like_a_marker(frame_no: int) -> None:
    room = make_room(objects=20)
    members = [room.join(Role.PARTICIPANT, f"p{i}") for i in range(8)]
    room.tick()
    before = room.tick_no
    for i, member in enumerate(members):
        pose = Participant(i, 8, active=i < 2).pose(frame_no)
        room.pose(member.id, {"head": pose[0:7], "left": pose[7:14], "right": pose[14:21]})
    room.tick()
    delta = room.publisher.frame(View.SPECTATOR, before)
    for frame in (delta, room.publisher.snapshot(View.SPECTATOR)):
        assert find_marker(frame, -1) == -1
        assert state_frame_tick(frame) == room.tick_no


@settings(deadline=None)
@given(st.integers(0, 2**40))
def test_the_tick_is_read_from_the_first_bytes_of_any_state_frame(tick: int) -> None:
    assert state_frame_tick(encode({"t": "s", "k": tick, "o": 3, "b": 1})) == tick
    assert state_frame_tick(encode({"t": "welcome", "k": tick})) is None
