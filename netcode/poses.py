"""The pose table: the quantized pose of every tracked entity, with a deadband.

A pose is published again only when it moved at least `POSITION_DEADBAND_M` on an axis
or turned at least `ROTATION_DEADBAND_RAD` since it was last published, so a still
hand's sub-millimetre jitter costs no bandwidth at all.
"""

from __future__ import annotations

from typing import Final

from netcode.quantize import QuantizedPose, RawPose, quantize, rotation_angle

POSITION_DEADBAND_M: Final = 0.001
ROTATION_DEADBAND_RAD: Final = 0.004  # about a quarter of a degree


class PoseTable:
    def __init__(self) -> None:
        self.published: dict[int, QuantizedPose] = {}
        self._reference: dict[int, RawPose] = {}

    def update(self, eid: int, pose: RawPose) -> bool:
        """Offer a new raw pose; True when it was taken (it moved past the deadband).

        A taken pose becomes the deadband's new reference even when it quantizes to
        what is already published, so it shapes later decisions: the room records
        every taken pose, which keeps a replay exact.
        """
        reference = self._reference.get(eid)
        if reference is not None and not _moved(reference, pose):
            return False
        self._reference[eid] = pose
        self.published[eid] = quantize(pose)
        return True

    def remove(self, eid: int) -> None:
        self.published.pop(eid, None)
        self._reference.pop(eid, None)

    def export(self) -> dict[int, list[float]]:
        return {eid: list(raw) for eid, raw in self._reference.items()}

    @classmethod
    def restore(cls, data: dict[int, list[float]]) -> PoseTable:
        table = cls()
        for eid, raw in data.items():
            table.update(int(eid), tuple(raw))  # type: ignore[arg-type]
        return table


def _moved(a: RawPose, b: RawPose) -> bool:
    return (
        abs(a[0] - b[0]) >= POSITION_DEADBAND_M
        or abs(a[1] - b[1]) >= POSITION_DEADBAND_M
        or abs(a[2] - b[2]) >= POSITION_DEADBAND_M
        or rotation_angle(a, b) >= ROTATION_DEADBAND_RAD
    )
