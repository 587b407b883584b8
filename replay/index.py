"""The seek index: per segment, its record and tick range and where its keyframes are.

`index.json` covers sealed segments only and is rewritten atomically at each seal;
anything it lacks (the segment being written, or a lost index) is rebuilt by scanning,
so the index is a cache of the log, never a second source of truth.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from replay import format as fmt
from replay import layout

INDEX_VERSION = 1


@dataclass(slots=True)
class SegmentInfo:
    number: int
    raw_bytes: int
    """Size of the uncompressed segment, header included."""
    records: int = 0
    first_record: int = -1
    first_tick: int = -1
    last_tick: int = -1
    keyframes: list[list[int]] = field(default_factory=list)
    """[tick, byte offset in the uncompressed segment, record index] per keyframe."""
    sealed: bool = False
    mac: str | None = None
    """HMAC-SHA256 of the sealed segment, chained (replay.signing); None if unsigned."""

    def to_json(self) -> dict[str, Any]:
        out = {
            "number": self.number,
            "raw_bytes": self.raw_bytes,
            "records": self.records,
            "first_record": self.first_record,
            "first_tick": self.first_tick,
            "last_tick": self.last_tick,
            "keyframes": self.keyframes,
            "sealed": self.sealed,
        }
        if self.mac is not None:
            out["mac"] = self.mac
        return out

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> SegmentInfo:
        info = cls(
            **{
                k: obj[k]
                for k in (
                    "number",
                    "raw_bytes",
                    "records",
                    "first_record",
                    "first_tick",
                    "last_tick",
                    "keyframes",
                    "sealed",
                )
            }
        )
        mac = obj.get("mac")
        info.mac = mac if isinstance(mac, str) else None
        return info


@dataclass(slots=True)
class IndexFile:
    segments: list[SegmentInfo]

    def to_json(self) -> dict[str, Any]:
        return {"version": INDEX_VERSION, "segments": [s.to_json() for s in self.segments]}

    def save(self, session: Path, durable: bool = True) -> None:
        layout.write_json_atomic(session / "index.json", self.to_json(), durable=durable)

    @classmethod
    def load(cls, session: Path) -> IndexFile:
        """The saved index, or an empty one when it is missing or unreadable."""
        try:
            obj = layout.read_json(session / "index.json")
            return cls([SegmentInfo.from_json(s) for s in obj["segments"]])
        except Exception:
            return cls([])


def scan_segment(number: int, buf: bytes, sealed: bool) -> tuple[SegmentInfo, fmt.Damage | None]:
    """Index one segment's bytes; the damage, if any, where reading stopped."""
    info = SegmentInfo(number, fmt.HEADER.size, sealed=sealed)
    if len(buf) < fmt.HEADER.size:
        return info, fmt.Damage(0, "torn-tail", "incomplete segment header")
    if fmt.decode_header(buf) != number:
        return info, fmt.Damage(0, "bad-header", "missing or damaged segment header")
    for item in fmt.iter_frames(buf):
        if isinstance(item, fmt.Damage):
            return info, item
        if info.records == 0:
            info.first_record, info.first_tick = item.index, item.record.tick
        info.records += 1
        info.last_tick = item.record.tick
        if item.record.kind == "keyframe":
            info.keyframes.append([item.record.tick, item.offset, item.index])
        info.raw_bytes = item.end
    return info, None
