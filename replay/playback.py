"""A recorded session played back as the live protocol's state frames, for one viewer.

The recorded ops are made again on a `CaseState` and published by the same
`Publisher` a live room uses, so a browser or the Python client reviews a session
with exactly the code it uses in a live room: snapshots, deltas, checksums. Seeking
rebuilds the state from the nearest keyframe; the viewer then gets a snapshot.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Final

from netcode.publisher import Publisher
from netcode.quantize import QuantizedPose
from netcode.views import View
from replay.keyframes import Reconstruction, apply_op
from replay.reader import Session
from rooms.records import Record

CHECKSUM_EVERY: Final = 30


class Playback:
    def __init__(
        self, session: Session, view: View, framer: Callable[[bytes], bytes] | None = None
    ) -> None:
        self.session = session
        self.view = view
        self._framer = framer
        self.first_tick, self.last_tick = session.tick_range()
        self.tick = self.first_tick
        self._recon = Reconstruction()
        self._records: Iterator[Record] = iter(())
        self._next: Record | None = None
        self.publisher = Publisher(self._recon.world)
        self.seek(self.first_tick)

    @property
    def seconds(self) -> float:
        return self.session.seconds(self.tick)

    @property
    def at_end(self) -> bool:
        return self.tick >= self.last_tick

    def seek(self, tick: int) -> None:
        """Jump to `tick` (clamped to the session); the next frame is a snapshot."""
        tick = max(self.first_tick, min(self.last_tick, tick))
        self._recon = self.session.reconstruct(tick)
        self._recon.world.drain()
        self._records = self.session.records(from_tick=tick + 1)
        self._next = next(self._records, None)
        self.tick = tick
        self.publisher = Publisher(
            self._recon.world, checksum_every=CHECKSUM_EVERY, framer=self._framer
        )
        self.publisher.publish(tick, [], self._poses())

    def advance(self, ticks: int) -> None:
        """Play `ticks` ticks of the recording forward (at most to its end)."""
        target = min(self.last_tick, self.tick + max(0, ticks))
        while self._next is not None and self._next.tick <= target:
            record = self._next
            if record.kind == "op":
                apply_op(self._recon.world, record.data["op"])
            elif record.kind == "poses":
                self._recon.apply(record)
            self._next = next(self._records, None)
        if target > self.tick:
            self.tick = target
            self.publisher.publish(target, self._recon.world.drain(), self._poses())

    def frame(self, base: int | None) -> bytes:
        return self.publisher.frame(self.view, base)

    def _poses(self) -> dict[int, QuantizedPose]:
        return {eid: (p[0], p[1], p[2], p[3]) for eid, p in self._recon.poses.items()}
