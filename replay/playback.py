"""A recorded session played back as the live protocol's state frames, for one viewer.

The recorded ops are made again on a `CaseState` and published by the same
`Publisher` a live room uses, so a browser or the Python client reviews a session
with exactly the code it uses in a live room: snapshots, deltas, checksums, and the
per-view projection of every op. Seeking rebuilds the state from the nearest keyframe
and reads on from there with one pass over the records; the viewer then gets a snapshot.

One owner. A `Playback` (and the `Session` under it) is not thread-safe: the server
gives each review stream a process of its own that alone calls it
(`server/review_process.py`).

Damage never escapes. A seek or an advance that reads into a damaged span stops at the
last record that could be read and returns the `Damage`; the play head and the state
are those of the readable timeline up to it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Final

from netcode.publisher import Publisher
from netcode.quantize import QuantizedPose
from netcode.views import View
from replay import format as fmt
from replay.errors import ReplayError
from replay.keyframes import Reconstruction
from replay.reader import STATE_KINDS, Session

CHECKSUM_EVERY: Final = 30


@dataclass(frozen=True, slots=True)
class Damage:
    """Where the readable timeline stops: the reader's code and sentence, and the tick
    of the last record that could be read (the play head stays there)."""

    code: str
    message: str
    tick: int


class Playback:
    def __init__(
        self,
        session: Session,
        view: View,
        framer: Callable[[bytes], bytes] | None = None,
    ) -> None:
        self.session = session
        self.view = view
        self._framer = framer
        self.first_tick, self.last_tick = session.tick_range()
        self.tick = self.first_tick
        self.damage: Damage | None = None
        """The last damage met (kept until a seek reads cleanly)."""
        self._recon = Reconstruction()
        self._frames: Iterator[tuple[int, fmt.Frame]] = iter(())
        self._next: fmt.Frame | None = None
        self._ahead: ReplayError | None = None
        self._read_tick = self.first_tick
        self.publisher = Publisher(self._recon.world)
        self.seek(self.first_tick)

    @property
    def seconds(self) -> float:
        return self.session.seconds(self.tick)

    @property
    def at_end(self) -> bool:
        return self.tick >= self.last_tick or (self._next is None and self._ahead is not None)

    def seek(self, tick: int) -> Damage | None:
        """Jump to `tick` (clamped to the session); the next frame is a snapshot.

        Returns the damage when the records up to `tick` cannot all be read: the play
        head is then at the last tick that could be.
        """
        target = max(self.first_tick, min(self.last_tick, tick))
        keyframe = self.session.keyframe_before(target)
        self._recon = Reconstruction()
        self._frames = self.session.frames(
            None if keyframe is None else keyframe.position, STATE_KINDS
        )
        self._next, self._ahead = None, None
        self._read_tick = self.first_tick if keyframe is None else keyframe.tick
        self._pull()
        damage = None
        while self._next is not None and self._next.record.tick <= target:
            frame = self._next
            if keyframe is not None and frame.index == keyframe.index:
                self._recon = Reconstruction.from_keyframe(frame.record)
            elif not self._apply(frame, playing=False):
                break
            self._pull()
        if self._next is None and self._ahead is not None and self._read_tick < target:
            damage = self._damage()
            target = self._read_tick
        self.damage = damage
        self._recon.world.drain()
        self.tick = target
        self.publisher = Publisher(
            self._recon.world, checksum_every=CHECKSUM_EVERY, framer=self._framer
        )
        self.publisher.publish(target, [], self._poses())
        return damage

    def advance_to(self, tick: int) -> Damage | None:
        """Play the recording forward to `tick` (at most to its end); returns the damage
        when the records on the way cannot be read (the play head stops before it)."""
        target = min(self.last_tick, tick)
        if target <= self.tick:
            return None
        damage = None
        while self._next is not None and self._next.record.tick <= target:
            if not self._apply(self._next, playing=True):
                break
            self._pull()
        if self._next is None and self._ahead is not None:
            damage = self.damage = self._damage()
            target = max(self.tick, min(target, self._read_tick))
        if target > self.tick:
            self.tick = target
            self.publisher.publish(target, self._recon.world.drain(), self._poses())
        return damage

    def advance(self, ticks: int) -> Damage | None:
        """Play `ticks` ticks forward (at most to the end)."""
        return self.advance_to(self.tick + max(0, ticks))

    def frame(self, base: int | None) -> bytes:
        return self.publisher.frame(self.view, base)

    # -- reading ---------------------------------------------------------------------
    def _pull(self) -> None:
        """The next record into `_next`; on damage, None and the error in `_ahead`."""
        try:
            item = next(self._frames, None)
        except ReplayError as exc:
            self._next, self._ahead = None, exc
            return
        self._next = None if item is None else item[1]

    def _apply(self, frame: fmt.Frame, *, playing: bool) -> bool:
        """Roll the state forward by one record; False (and the error kept) if it cannot.
        While playing, ops stay pending for the publisher (see `Reconstruction.apply`)."""
        try:
            self._recon.apply(frame.record, playing=playing)
        except ReplayError as exc:
            self._next, self._ahead = None, exc
            return False
        self._read_tick = frame.record.tick
        return True

    def _damage(self) -> Damage:
        assert self._ahead is not None
        return Damage(self._ahead.code, self._ahead.message, self._read_tick)

    def _poses(self) -> dict[int, QuantizedPose]:
        return {eid: (p[0], p[1], p[2], p[3]) for eid, p in self._recon.poses.items()}
