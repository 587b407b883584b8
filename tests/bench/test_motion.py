"""The motion model port sends exactly the anchor's poses (WORKLOAD.md, anchor 6.1)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.motion import Participant, carried_object_pose, mulberry32

ANCHOR_FRAMES = Path(__file__).with_name("anchor_motion_frames.json")


def test_the_jitter_generator_is_the_anchors_mulberry32() -> None:
    """Values printed by the anchor's own mulberry32 for participants 0 and 29."""
    first = mulberry32(0x9E3779B9 ^ 1)
    assert [first(), first(), first()] == [
        0.18967728852294385,
        0.31778763560578227,
        0.7830808095168322,
    ]
    last = mulberry32(0x9E3779B9 ^ 30)
    assert [last(), last()] == [0.2656534134875983, 0.5557624131906778]


def test_an_active_and_a_still_participant_match_frames_the_anchor_computed() -> None:
    active = Participant(0, 8, active=True).pose(17)
    assert active == pytest.approx(
        [1.5, 1.6, -0.016335515099752635, 0, 0.7209805097926248, 0, 0.6929553409125055,
         1.2844990827832097, 1.1077504586083953, 0.17465027516503706, 0, 0.7071067811865475,
         0, 0.7071067811865476, 1.1155009172167902, 1.192249541391605, -0.22534972483496296,
         0, 0.7071067811865475, 0, 0.7071067811865476],
        rel=0, abs=1e-15,
    )  # fmt: skip
    still = Participant(3, 8, active=False)
    still.pose(0)  # the jitter is a stream: frame 1 is the second draw
    assert still.pose(1) == pytest.approx(
        [-1.0457877464422443, 1.6, 1.0755325971173983, 0, -0.3957190367534222, 0,
         0.9183716262771535, -0.989509813674602, 1.1501264597319534, 0.707485389936727, 0,
         -0.3826834323650898, 0, 0.9238795325112867, -0.7068088310023419, 1.1495235634569545,
         0.9901338124895632, 0, -0.3826834323650898, 0, 0.9238795325112867],
        rel=0, abs=1e-15,
    )  # fmt: skip


def test_a_carried_object_rides_5_cm_above_the_right_hand() -> None:
    pose = Participant(1, 8, active=True).pose(40)
    assert carried_object_pose(pose) == [
        pose[14], pose[15] + 0.05, pose[16], *pose[17:21]
    ]  # fmt: skip


def test_hundreds_of_frames_agree_with_the_anchors_motion_cjs() -> None:
    """Frames the anchor's motion.cjs computed (recorded by record_anchor_motion.py)."""
    recorded = json.loads(ANCHOR_FRAMES.read_text())
    for (i, n, active), frames in zip(recorded["shapes"], recorded["frames"], strict=True):
        ours = Participant(i, n, active)
        poses = [ours.pose(k) for k in range(recorded["steps"])][:: recorded["keep_every"]]
        assert len(poses) == len(frames)
        for k, (mine, theirs) in enumerate(zip(poses, frames, strict=True)):
            # Math.sin and libm may differ in the last bit; float32 on the wire hides it
            assert mine == pytest.approx(theirs, rel=0, abs=1e-15), (i, k)
