"""The pose deadband: sub-millimetre jitter is never published, real moves always are."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from netcode.poses import PoseTable
from netcode.quantize import RawPose, as_raw_pose, quantize, rotation_angle
from tests.netcode.sync_helpers import SLOW_OK

JITTER = st.floats(-0.0009, 0.0009, allow_nan=False)
POSITION = st.floats(-50.0, 50.0, allow_nan=False)


def rotated(pose: RawPose, axis: int, angle: float) -> RawPose:
    """`pose` turned by `angle` radians about x, y or z (right-multiplied)."""
    half = angle / 2
    r = [0.0, 0.0, 0.0, math.cos(half)]
    r[axis] = math.sin(half)
    x1, y1, z1, w1 = pose[3:]
    x2, y2, z2, w2 = r
    q = (
        w1 * x2 + x1 * w2 + y1 * z2 - z1 * y2,
        w1 * y2 - x1 * z2 + y1 * w2 + z1 * x2,
        w1 * z2 + x1 * y2 - y1 * x2 + z1 * w2,
        w1 * w2 - x1 * x2 - y1 * y2 - z1 * z2,
    )
    return as_raw_pose([*pose[:3], *q])


START_Q = st.tuples(*[st.floats(-1, 1, allow_nan=False)] * 3, st.sampled_from([-1.0, 0.4, 1.0]))


@settings(max_examples=100, deadline=None, suppress_health_check=SLOW_OK)
@given(
    st.tuples(POSITION, POSITION, POSITION),
    START_Q,
    st.lists(
        st.tuples(
            JITTER, JITTER, JITTER, st.integers(0, 2), st.floats(-0.003, 0.003, allow_nan=False)
        ),
        min_size=1,
        max_size=30,
    ),
)
def test_jitter_below_a_millimetre_and_tiny_turns_never_change_what_is_published(
    position: tuple[float, float, float],
    q: tuple[float, ...],
    jitter: list[tuple[float, float, float, int, float]],
) -> None:
    table = PoseTable()
    start = as_raw_pose([*position, *q])
    assert table.update(7, start) is True
    published = dict(table.published)
    assert published == {7: quantize(start)}
    for dx, dy, dz, axis, angle in jitter:
        moved = as_raw_pose([start[0] + dx, start[1] + dy, start[2] + dz, *start[3:]])
        moved = rotated(moved, axis, angle)
        if rotation_angle(start, moved) >= 0.0039:  # float32 rounding of the turn
            continue
        assert table.update(7, moved) is False
        assert table.published == published


@settings(max_examples=150, deadline=None, suppress_health_check=SLOW_OK)
@given(
    st.tuples(POSITION, POSITION, POSITION),
    START_Q,
    st.integers(0, 2),
    st.floats(0.00101, 0.5) | st.floats(-0.5, -0.00101),
    st.lists(JITTER, max_size=5),
)
def test_a_move_of_more_than_a_millimetre_is_published(
    position: tuple[float, float, float],
    q: tuple[float, ...],
    axis: int,
    step: float,
    jitter: list[float],
) -> None:
    table = PoseTable()
    start = as_raw_pose([*position, *q])
    table.update(1, start)
    for dx in jitter:  # jitter first: the reference stays the published pose
        table.update(1, as_raw_pose([start[0] + dx, *start[1:]]))
    target = list(start)
    target[axis] += step
    moved = as_raw_pose(target)
    assert table.update(1, moved) is True
    assert table.published[1] == quantize(moved)
    assert table.published[1] != quantize(start)


@settings(max_examples=60, deadline=None, suppress_health_check=SLOW_OK)
@given(START_Q, st.integers(0, 2), st.floats(0.02, 3.0) | st.floats(-3.0, -0.02))
def test_a_real_turn_is_published(q: tuple[float, ...], axis: int, angle: float) -> None:
    table = PoseTable()
    start = as_raw_pose([0.1, 1.5, -0.2, *q])
    table.update(3, start)
    turned = rotated(start, axis, angle)
    assert table.update(3, turned) is True
    assert table.published[3] == quantize(turned)


def test_a_slow_drift_is_published_once_it_adds_up_to_a_millimetre() -> None:
    table = PoseTable()
    start = as_raw_pose([0.0, 1.0, 0.0, 0, 0, 0, 1])
    table.update(2, start)
    published_x = []
    for i in range(1, 40):  # 0.1 mm per step
        table.update(2, as_raw_pose([0.0001 * i, 1.0, 0.0, 0, 0, 0, 1]))
        published_x.append(table.published[2][0])
    assert published_x[:8] == [0] * 8  # nothing moves before a millimetre
    assert published_x[-1] >= 3  # 3.9 mm of drift is not lost


def test_removed_poses_are_published_again_on_return() -> None:
    table = PoseTable()
    pose = as_raw_pose([0.0, 1.0, 0.0, 0, 0, 0, 1])
    table.update(4, pose)
    table.remove(4)
    assert 4 not in table.published
    assert table.update(4, pose) is True
    assert table.published[4] == quantize(pose)


def test_export_and_restore_keep_what_is_published() -> None:
    table = PoseTable()
    table.update(1, as_raw_pose([0.25, 1.0, 0.5, 0, 0.3, 0, 1]))
    table.update(2, as_raw_pose([-0.25, 1.2, 0.0, 0, 0, 0, 1]))
    restored = PoseTable.restore(table.export())
    assert restored.published == table.published
