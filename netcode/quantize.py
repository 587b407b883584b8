"""Pose quantization: positions to whole millimetres, rotations to 32-bit "smallest three".

A unit quaternion's largest component is implied by the other three, each of which lies
in [-1/sqrt(2), 1/sqrt(2)]; 10 bits each (about 0.16 degrees) plus 2 bits naming the
dropped component fit one uint32, which msgpack writes in 5 bytes.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from typing import Final

QuantizedPose = tuple[int, int, int, int]
"""(x_mm, y_mm, z_mm, packed quaternion)"""

RawPose = tuple[float, float, float, float, float, float, float]
"""(x, y, z) in metres, then the rotation quaternion (qx, qy, qz, qw)"""

_BITS: Final = 10
_MAX: Final = (1 << _BITS) - 1
_RANGE: Final = 1.0 / math.sqrt(2.0)
POSITION_LIMIT_M: Final = 1000.0
_FLOAT32x7: Final = struct.Struct("<7f")


class PoseError(ValueError):
    """A pose that is not seven finite numbers with a usable rotation."""


def as_raw_pose(values: Sequence[float]) -> RawPose:
    """Validate and round a wire pose to float32, the precision it is recorded with.

    Rounding first makes the server's decisions (deadband, leases) replayable exactly
    from the 28-byte recorded form.
    """
    if len(values) != 7:
        raise PoseError("a pose is 7 numbers: x, y, z, qx, qy, qz, qw")
    try:
        x, y, z, qx, qy, qz, qw = map(float, values)
    except (TypeError, ValueError):
        raise PoseError("pose values must be numbers") from None
    if not math.isfinite(x + y + z + qx + qy + qz + qw) and not all(
        map(math.isfinite, (x, y, z, qx, qy, qz, qw))  # the sum overflows: look closer
    ):
        raise PoseError("pose values must be finite")
    if abs(x) > POSITION_LIMIT_M or abs(y) > POSITION_LIMIT_M or abs(z) > POSITION_LIMIT_M:
        raise PoseError(f"pose positions must be within {POSITION_LIMIT_M:g} m of the origin")
    norm = math.sqrt(qx * qx + qy * qy + qz * qz + qw * qw)
    if not math.isfinite(norm) or norm < 1e-6:
        raise PoseError("pose rotation must be a non-zero quaternion")
    return _FLOAT32x7.unpack(_FLOAT32x7.pack(x, y, z, qx / norm, qy / norm, qz / norm, qw / norm))


def pack_raw(pose: RawPose) -> bytes:
    return _FLOAT32x7.pack(*pose)


def unpack_raw(data: bytes) -> RawPose:
    return _FLOAT32x7.unpack(data)


def quantize_quaternion(qx: float, qy: float, qz: float, qw: float) -> int:
    q = (qx, qy, qz, qw)
    sizes = (abs(qx), abs(qy), abs(qz), abs(qw))
    largest = sizes.index(max(sizes))  # the first of equals, as ever
    sign = -1.0 if q[largest] < 0 else 1.0
    packed = largest
    for i in range(4):
        if i == largest:
            continue
        c = max(-_RANGE, min(_RANGE, q[i] * sign))
        packed = (packed << _BITS) | round((c / _RANGE + 1.0) * 0.5 * _MAX)
    return packed


def dequantize_quaternion(packed: int) -> tuple[float, float, float, float]:
    largest = (packed >> (3 * _BITS)) & 0b11
    others = [((packed >> shift) & _MAX) / _MAX * 2.0 * _RANGE - _RANGE for shift in (20, 10, 0)]
    implied = math.sqrt(max(0.0, 1.0 - sum(c * c for c in others)))
    q = [*others[:largest], implied, *others[largest:]]
    return q[0], q[1], q[2], q[3]


def quantize(pose: RawPose) -> QuantizedPose:
    x, y, z, qx, qy, qz, qw = pose
    return round(x * 1000), round(y * 1000), round(z * 1000), quantize_quaternion(qx, qy, qz, qw)


def dequantize(pose: Sequence[int]) -> RawPose:
    x, y, z, q = pose
    return (x / 1000, y / 1000, z / 1000, *dequantize_quaternion(q))


def rotation_angle(a: RawPose, b: RawPose) -> float:
    """Angle in radians between the rotations of two poses."""
    dot = abs(a[3] * b[3] + a[4] * b[4] + a[5] * b[5] + a[6] * b[6])
    return 2.0 * math.acos(min(1.0, dot))
