"""Reading a session: metadata, records in order, time ranges and `state_at`.

A `Session` is a snapshot of the folder when opened (a session still being written
can be opened; records written later are not seen). Sealed segments are located
through `index.json`; unsealed ones are scanned at open. Damage is never silent:
a torn tail (the writer died mid-append) ends iteration and is listed in
`Session.problems`; a corrupt record anywhere raises `ReplayError("corrupt-record")`
naming the segment, byte offset, record index and tick. Not thread-safe: use one
`Session` per thread (they are cheap to open).
"""

from __future__ import annotations

import bisect
import math
import os
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import zstandard

from netcode.views import View
from replay import format as fmt
from replay import layout
from replay.errors import ReplayError
from replay.index import IndexFile, SegmentInfo, scan_segment
from replay.keyframes import Reconstruction, ReplayState
from replay.manifest import Manifest
from rooms.records import Record

MAX_SECONDS = 1e9
"""Beyond any session (31 years): larger times are refused rather than overflowing."""
STATE_KINDS = frozenset({"op", "poses", "keyframe", "tick"})
"""What rebuilding a state reads (ticks bound the scan in a session where nothing moves)."""


@dataclass(frozen=True, slots=True)
class KeyframeAt:
    """A keyframe's tick, where its frame is (segment position, byte offset), its index."""

    tick: int
    position: tuple[int, int]
    index: int


@dataclass(frozen=True, slots=True)
class Problem:
    """Something wrong with the log, located."""

    code: str
    segment: int
    offset: int
    """Byte offset in the uncompressed segment (0 for a whole-segment problem)."""
    record_index: int
    """Index of the first record lost or affected (the record after the last good one)."""
    tick: int | None
    """Tick of the last good record before the problem."""
    detail: str

    def describe(self, tick_hz: int) -> str:
        where = f"segment {self.segment} byte {self.offset}, record {self.record_index}"
        when = "" if self.tick is None else f", after t={self.tick / (tick_hz or 1):.3f}s"
        return f"{self.code} at {where}{when}: {self.detail}"


def decompress(path: Path) -> tuple[bytes, str | None]:
    """A sealed segment's bytes; on damage, the prefix that decoded and why it stopped."""
    data = path.read_bytes()
    dobj = zstandard.ZstdDecompressor().decompressobj()
    out: list[bytes] = []
    step = 1 << 16
    try:
        for pos in range(0, len(data), step):
            out.append(dobj.decompress(data[pos : pos + step]))
    except zstandard.ZstdError as exc:
        return b"".join(out), f"compressed segment damaged: {exc}"
    if not dobj.eof:
        return b"".join(out), "compressed segment is truncated"
    return b"".join(out), None


@dataclass(slots=True)
class _Segment:
    number: int
    path: Path
    sealed: bool
    info: SegmentInfo
    damage: Problem | None = None
    missing_before: Problem | None = None


class Session:
    """An opened session: `Session.open(data_dir, session_id)`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.session_id = path.name
        self.manifest = Manifest.from_json(layout.read_json(path / "manifest.json"))
        self.tick_hz = int(self.manifest.tick_hz or 0)
        self.problems: list[Problem] = []
        self._cache: OrderedDict[int, bytes] = OrderedDict()
        self._broken: dict[int, str] = {}
        indexed = {s.number: s for s in IndexFile.load(path).segments}
        self._segments: list[_Segment] = []
        next_record = 0
        for number, file, sealed in layout.segment_files(path):
            info = indexed.get(number)
            problem = None
            if info is None or not sealed or info.first_record not in (next_record, -1):
                buf = self._load(number, file, sealed)
                info, damage = scan_segment(number, buf, sealed)
                if damage is not None:
                    problem = Problem(
                        "corrupt-segment" if sealed else damage.code,
                        number,
                        damage.offset,
                        next_record + info.records,
                        info.last_tick if info.records else None,
                        damage.detail,
                    )
                    self.problems.append(problem)
            missing = None
            if info.records and info.first_record != next_record:
                missing = Problem(
                    "missing-records",
                    number,
                    fmt.HEADER.size,
                    next_record,
                    None,
                    f"segment starts at record {info.first_record}, expected {next_record}",
                )
                self.problems.append(missing)
            self._segments.append(_Segment(number, file, sealed, info, problem, missing))
            next_record = info.first_record + info.records if info.records else next_record
        self.record_count = next_record
        self._keyframes: list[tuple[int, int, int, int]] = [
            (tick, i, offset, index)
            for i, seg in enumerate(self._segments)
            for tick, offset, index in seg.info.keyframes
        ]
        self._keyframe_ticks = [k[0] for k in self._keyframes]

    @classmethod
    def open(cls, data_dir: str | os.PathLike[str], session_id: str) -> Session:
        return cls(layout.session_dir(data_dir, session_id))

    # -- metadata ----------------------------------------------------------------
    @property
    def sealed(self) -> bool:
        return self.manifest.status in ("sealed", "repaired") and all(
            s.sealed for s in self._segments
        )

    def tick_range(self) -> tuple[int, int]:
        """First and last tick recorded ((0, 0) for an empty log)."""
        ticks = [s.info for s in self._segments if s.info.records]
        return (ticks[0].first_tick, ticks[-1].last_tick) if ticks else (0, 0)

    def time_range(self) -> tuple[float, float]:
        """Seconds since the room started, first and last record."""
        first, last = self.tick_range()
        return self.seconds(first), self.seconds(last)

    def seconds(self, tick: int) -> float:
        return tick / (self.tick_hz or 1)

    def tick_of(self, seconds: float) -> int:
        """The tick at `seconds` (a finite number; `bad-time` otherwise)."""
        if not math.isfinite(seconds) or abs(seconds) > MAX_SECONDS:
            raise ReplayError(
                "bad-time", f"{seconds!r} is not a time in a session (finite seconds expected)"
            )
        return int(seconds * (self.tick_hz or 1) + 1e-9)

    def keyframe_ticks(self) -> list[int]:
        return list(self._keyframe_ticks)

    # -- records -------------------------------------------------------------------
    def _load(self, number: int, file: Path, sealed: bool) -> bytes:
        if number in self._cache:
            self._cache.move_to_end(number)
            return self._cache[number]
        if sealed:
            buf, error = decompress(file)
            if error is not None:
                self._broken[number] = error
        else:
            buf = file.read_bytes()
        self._cache[number] = buf
        while len(self._cache) > 2:
            self._cache.popitem(last=False)
        return buf

    def frames(
        self,
        start: tuple[int, int] | None = None,
        kinds: frozenset[str] | None = None,
    ) -> Iterator[tuple[int, fmt.Frame]]:
        """(segment number, frame) from (segment position, byte offset), to the end;
        with `kinds`, only frames of those kinds (the others are still checked)."""
        first_seg, offset = start or (0, fmt.HEADER.size)
        last = self._segments[-1] if self._segments else None
        for seg in self._segments[first_seg:]:
            if seg.missing_before is not None:
                raise ReplayError("missing-records", seg.missing_before.describe(self.tick_hz))
            buf = self._load(seg.number, seg.path, seg.sealed)
            next_index, last_tick = -1, None
            for item in fmt.iter_frames(buf, offset, kinds):
                if item.offset >= seg.info.raw_bytes:
                    break  # past what this snapshot indexed (a live segment grows)
                if isinstance(item, fmt.Damage):
                    code = "corrupt-segment" if seg.sealed else item.code
                    problem = Problem(
                        code, seg.number, item.offset, next_index, last_tick, item.detail
                    )
                    raise ReplayError(code, problem.describe(self.tick_hz))
                next_index, last_tick = item.index + 1, item.record.tick
                yield seg.number, item
            if seg.number in self._broken or (seg.sealed and len(buf) < seg.info.raw_bytes):
                problem = Problem(
                    "corrupt-segment",
                    seg.number,
                    len(buf),
                    next_index,
                    last_tick,
                    self._broken.get(seg.number, "segment is shorter than its index says"),
                )
                if problem not in self.problems:
                    self.problems.append(problem)
                raise ReplayError(problem.code, problem.describe(self.tick_hz))
            damage = seg.damage
            if damage is not None and not (damage.code == "torn-tail" and seg is last):
                raise ReplayError(damage.code, damage.describe(self.tick_hz))
            offset = fmt.HEADER.size

    def records(
        self,
        from_tick: int | None = None,
        to_tick: int | None = None,
        kinds: frozenset[str] | None = None,
    ) -> Iterator[Record]:
        """Records in order, of ticks `from_tick`..`to_tick` (reached through the keyframe
        index), optionally only those of `kinds` (the others are skipped undecoded)."""
        start = None
        if from_tick is not None:
            k = self._keyframe_at(from_tick)
            if k is not None:
                start = (k[1], k[2])
        for _, frame in self.frames(start, kinds):
            if to_tick is not None and frame.record.tick > to_tick:
                return
            if from_tick is None or frame.record.tick >= from_tick:
                yield frame.record

    def _keyframe_at(self, tick: int) -> tuple[int, int, int, int] | None:
        i = bisect.bisect_right(self._keyframe_ticks, tick)
        return self._keyframes[i - 1] if i else None

    def keyframe_before(self, tick: int) -> KeyframeAt | None:
        """The last keyframe at or before `tick` (where a seek to `tick` starts reading)."""
        k = self._keyframe_at(tick)
        return None if k is None else KeyframeAt(k[0], (k[1], k[2]), k[3])

    # -- state ---------------------------------------------------------------------
    def state_at_tick(self, tick: int, view: View = View.FACILITATOR) -> ReplayState:
        """The state after every record of ticks <= `tick`: nearest keyframe + deltas."""
        return self.reconstruct(tick).state(view, tick, self.tick_hz)

    def reconstruct(self, tick: int) -> Reconstruction:
        """The full state after `tick` (all views), to read or to roll on from."""
        k = self._keyframe_at(tick)
        recon = Reconstruction()
        for _, frame in self.frames((k[1], k[2]) if k else None, STATE_KINDS):
            record = frame.record
            if record.tick > tick:
                break
            if record.kind == "keyframe" and k is not None and frame.index == k[3]:
                recon = Reconstruction.from_keyframe(record)
            else:
                recon.apply(record)
        return recon

    def state_at(self, seconds: float, view: View = View.FACILITATOR) -> ReplayState:
        return self.state_at_tick(self.tick_of(seconds), view)

    def play(
        self,
        from_seconds: float = 0.0,
        speed: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> Iterator[Record]:
        """Records from `from_seconds` paced at `speed` x real time (for a streamer).

        A streamer seeks with `state_at(t)` first, then sends these records; records
        before `from_seconds` (back to the keyframe) are skipped.
        """
        start_tick = self.tick_of(from_seconds)
        t0 = clock()
        for record in self.records(from_tick=start_tick):
            due = t0 + (self.seconds(record.tick) - from_seconds) / speed
            delay = due - clock()
            if delay > 0:
                sleep(delay)
            yield record
