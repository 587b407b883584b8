"""Pose quantization: about a millimetre and a fraction of a degree, and strict input."""

from __future__ import annotations

import math
from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netcode.quantize import (
    POSITION_LIMIT_M,
    PoseError,
    RawPose,
    as_raw_pose,
    dequantize,
    dequantize_quaternion,
    pack_raw,
    quantize,
    quantize_quaternion,
    rotation_angle,
    unpack_raw,
)
from tests.netcode.sync_helpers import SLOW_OK

MAX_ANGLE = math.radians(0.3)
COMPONENT = st.floats(-1.0, 1.0, allow_nan=False)


@st.composite
def unit_quaternions(draw: st.DrawFn) -> tuple[float, float, float, float]:
    q = draw(
        st.tuples(COMPONENT, COMPONENT, COMPONENT, COMPONENT).filter(
            lambda q: sum(c * c for c in q) > 1e-3
        )
    )
    if draw(st.booleans()):  # make a negative component the largest one
        i = draw(st.integers(0, 3))
        q = tuple(-2.0 if j == i else c for j, c in enumerate(q))  # type: ignore[assignment]
    norm = math.sqrt(sum(c * c for c in q))
    return q[0] / norm, q[1] / norm, q[2] / norm, q[3] / norm


POSITIONS = st.floats(-POSITION_LIMIT_M, POSITION_LIMIT_M, allow_nan=False)


def pose_of(position: Sequence[float], q: Sequence[float]) -> RawPose:
    return (position[0], position[1], position[2], q[0], q[1], q[2], q[3])


@settings(max_examples=300, deadline=None, suppress_health_check=SLOW_OK)
@given(st.tuples(POSITIONS, POSITIONS, POSITIONS), unit_quaternions())
def test_quantized_pose_is_within_half_a_millimetre_and_a_third_of_a_degree(
    position: tuple[float, float, float], q: tuple[float, float, float, float]
) -> None:
    raw = pose_of(position, q)
    quantized = quantize(raw)
    assert all(isinstance(v, int) for v in quantized)
    assert 0 <= quantized[3] < 2**32
    back = dequantize(quantized)
    for axis in range(3):
        assert abs(back[axis] - raw[axis]) <= 0.0005 + 1e-9
    assert rotation_angle(raw, back) < MAX_ANGLE
    assert abs(sum(c * c for c in back[3:]) - 1.0) < 1e-3


@pytest.mark.parametrize(
    "q",
    [
        (0.0, 0.0, 0.0, -1.0),
        (-1.0, 0.0, 0.0, 0.0),
        (0.0, -0.8, 0.6, 0.0),
        (-0.5, -0.5, -0.5, -0.5),
        (0.5, -0.5, 0.5, -0.5),
        (-0.7071068, 0.7071068, 0.0, 0.0),
        (0.0, 0.0, 0.7071068, -0.7071068),
    ],
)
def test_negative_largest_and_tied_components(q: tuple[float, float, float, float]) -> None:
    packed = quantize_quaternion(*q)
    back = dequantize_quaternion(packed)
    assert rotation_angle(pose_of((0, 0, 0), q), pose_of((0, 0, 0), back)) < MAX_ANGLE


def test_packing_matches_the_documented_layout() -> None:
    # identity: largest is qw (index 3), the other three are 0 -> round(511.5) = 512
    assert quantize_quaternion(0.0, 0.0, 0.0, 1.0) == 3 << 30 | 512 << 20 | 512 << 10 | 512
    assert quantize_quaternion(0.0, 0.0, 0.0, -1.0) == quantize_quaternion(0.0, 0.0, 0.0, 1.0)
    assert quantize((1.2344, -0.0006, 0.5, 0, 0, 0, 1))[:3] == (1234, -1, 500)


@settings(max_examples=100, deadline=None, suppress_health_check=SLOW_OK)
@given(st.tuples(POSITIONS, POSITIONS, POSITIONS), unit_quaternions())
def test_raw_poses_are_unit_float32_and_survive_their_28_bytes(
    position: tuple[float, float, float], q: tuple[float, float, float, float]
) -> None:
    raw = as_raw_pose(pose_of(position, q))
    data = pack_raw(raw)
    assert len(data) == 28
    assert unpack_raw(data) == raw
    assert abs(sum(c * c for c in raw[3:]) - 1.0) < 1e-5


@pytest.mark.parametrize(
    "values",
    [
        [],
        [0.0] * 6,
        [0.0] * 8,
        (0, 0, 0, 0, 0, 1),
    ],
)
def test_as_raw_pose_refuses_the_wrong_length(values: Sequence[float]) -> None:
    with pytest.raises(PoseError, match="7 numbers"):
        as_raw_pose(values)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
@pytest.mark.parametrize("index", range(7))
def test_as_raw_pose_refuses_nan_and_infinity(bad: float, index: int) -> None:
    values = [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0]
    values[index] = bad
    with pytest.raises(PoseError, match="finite"):
        as_raw_pose(values)


@pytest.mark.parametrize("q", [(0, 0, 0, 0), (0.0, 0.0, 1e-9, 0.0), (-0.0, 0, 0, 0)])
def test_as_raw_pose_refuses_a_zero_quaternion(q: tuple[float, ...]) -> None:
    with pytest.raises(PoseError, match="non-zero"):
        as_raw_pose([0, 0, 0, *q])


@pytest.mark.parametrize(
    "position",
    [
        (1000.001, 0, 0),
        (0, -1000.5, 0),
        (0, 0, 1e9),
        (-1e300, 0, 0),
    ],
)
def test_as_raw_pose_refuses_positions_beyond_a_kilometre(position: tuple[float, ...]) -> None:
    with pytest.raises(PoseError, match="within"):
        as_raw_pose([*position, 0, 0, 0, 1])


@pytest.mark.parametrize("values", [["a", 0, 0, 0, 0, 0, 1], [None, 0, 0, 0, 0, 0, 1]])
def test_as_raw_pose_refuses_non_numbers(values: list[object]) -> None:
    with pytest.raises(PoseError, match="numbers"):
        as_raw_pose(values)  # type: ignore[arg-type]


@pytest.mark.parametrize("q", [(1e200, 0, 0, 0), (0, 0, 1e300, 1e300)])
def test_as_raw_pose_gives_a_unit_quaternion_or_refuses(q: tuple[float, ...]) -> None:
    """A huge component once overflowed the norm to inf: (0, 0, 0, 0) (fixed in f42d980)."""
    try:
        raw = as_raw_pose([0, 0, 0, *q])
    except PoseError:
        return
    assert abs(sum(c * c for c in raw[3:]) - 1.0) < 1e-5
