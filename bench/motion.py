"""The participants' motion model of WORKLOAD.md, ported as is from the anchor's `motion.cjs`.

Pure functions of (participant index, frame index), so that both load generators send the
same poses: heads sway 5 cm peak-to-peak at 0.2 Hz with a 3 degree yaw oscillation,
participants 0 and 1 ("active") move both hands 20 cm at 0.5 Hz, the others hold theirs
still with 0.5 mm uniform jitter from a mulberry32 generator seeded as the anchor seeds it.
Arithmetic follows the JavaScript operation by operation, so the poses agree to the last
bits (tests/bench/test_motion.py runs both).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

FPS: Final = 30
CIRCLE_R: Final = 1.5
EYE_H: Final = 1.6
HEAD_SWAY_PP: Final = 0.05
HEAD_F: Final = 0.2
HEAD_YAW_AMP: Final = 3 * math.pi / 180
HAND_PP: Final = 0.20
HAND_F: Final = 0.5
JITTER: Final = 0.0005
_UINT32: Final = 0xFFFFFFFF

Pose21 = list[float]
"""head, left hand, right hand: (x, y, z, qx, qy, qz, qw) each, metres"""


def mulberry32(seed: int) -> Callable[[], float]:
    """The anchor's PRNG: uniform floats in [0, 1), every operation on uint32."""
    state = seed & _UINT32

    def next_value() -> float:
        nonlocal state
        state = (state + 0x6D2B79F5) & _UINT32
        t = state
        t = ((t ^ (t >> 15)) * (t | 1)) & _UINT32
        t = (t ^ ((t + (((t ^ (t >> 7)) * (t | 61)) & _UINT32)) & _UINT32)) & _UINT32
        return ((t ^ (t >> 14)) & _UINT32) / 4294967296

    return next_value


@dataclass(frozen=True, slots=True)
class _Placement:
    px: float
    pz: float
    yaw: float
    fwd: tuple[float, float, float]
    right: tuple[float, float, float]
    phase: float


def _placement(i: int, n: int) -> _Placement:
    """On a circle of 1.5 m, facing its centre."""
    alpha = 2 * math.pi * i / n
    yaw = math.pi / 2 - alpha
    return _Placement(
        px=CIRCLE_R * math.cos(alpha),
        pz=CIRCLE_R * math.sin(alpha),
        yaw=yaw,
        fwd=(-math.sin(yaw), 0.0, -math.cos(yaw)),
        right=(math.cos(yaw), 0.0, -math.sin(yaw)),
        phase=0.7 * i,
    )


def _normalize(v: tuple[float, float, float]) -> tuple[float, float, float]:
    length = math.hypot(*v)
    return (v[0] / length, v[1] / length, v[2] / length)


_LEFT_BASE: Final = (-0.20, -0.45, 0.30)
_RIGHT_BASE: Final = (0.20, -0.45, 0.30)
_LEFT_DIR: Final = _normalize((-0.3, 0.5, 1.0))
_RIGHT_DIR: Final = _normalize((0.3, 0.5, 1.0))


def _body_to_world(f: _Placement, b: tuple[float, float, float], out: Pose21, o: int) -> None:
    out[o] += f.right[0] * b[0] + f.fwd[0] * b[2]
    out[o + 1] += b[1]
    out[o + 2] += f.right[2] * b[0] + f.fwd[2] * b[2]


class Participant:
    """The pose generator of participant `i` of `n`; `active` hands move, others jitter."""

    def __init__(self, i: int, n: int, active: bool) -> None:
        self._f = _placement(i, n)
        self._active = active
        self._random = mulberry32(0x9E3779B9 ^ (i + 1))
        self._hand_q = (0.0, math.sin(self._f.yaw / 2), 0.0, math.cos(self._f.yaw / 2))

    def pose(self, frame: int) -> Pose21:
        """The 21 numbers of frame `frame` (call with increasing frames: jitter is a stream)."""
        f = self._f
        t = frame / FPS
        hs = math.sin(2 * math.pi * HEAD_F * t + f.phase)
        hc = math.sin(2 * math.pi * HEAD_F * t + f.phase + math.pi / 2)
        sway = (HEAD_SWAY_PP / 2) * hs
        pose = [0.0] * 21
        pose[0] = f.px + f.right[0] * sway
        pose[1] = EYE_H
        pose[2] = f.pz + f.right[2] * sway
        yaw = f.yaw + HEAD_YAW_AMP * hc
        pose[3], pose[4], pose[5], pose[6] = 0.0, math.sin(yaw / 2), 0.0, math.cos(yaw / 2)
        for hand in range(2):
            o = 7 + 7 * hand
            pose[o], pose[o + 1], pose[o + 2] = f.px, EYE_H, f.pz
            _body_to_world(f, _LEFT_BASE if hand == 0 else _RIGHT_BASE, pose, o)
            if self._active:
                s = (HAND_PP / 2) * math.sin(
                    2 * math.pi * HAND_F * t + f.phase + (math.pi if hand == 0 else 0)
                )
                d = _LEFT_DIR if hand == 0 else _RIGHT_DIR
                _body_to_world(f, (d[0] * s, d[1] * s, d[2] * s), pose, o)
            else:
                pose[o] += (self._random() * 2 - 1) * JITTER
                pose[o + 1] += (self._random() * 2 - 1) * JITTER
                pose[o + 2] += (self._random() * 2 - 1) * JITTER
            pose[o + 3 : o + 7] = self._hand_q
        return pose


def carried_object_pose(pose: Pose21) -> list[float]:
    """A carried object: 5 cm above the carrying right hand, same orientation."""
    return [pose[14], pose[15] + 0.05, pose[16], pose[17], pose[18], pose[19], pose[20]]
