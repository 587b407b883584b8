"""Repair a session whose writer died: cut the torn tail, seal, rebuild index and manifest.

Only a torn tail is cut (an incomplete or unchecksummed last frame of the segment
being written: what a crash leaves). Damage with valid data after it is corruption,
which repair refuses to paper over. The manifest is rebuilt from the records, so it
holds everything flushed, with a `repair` entry saying what was cut.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from replay import format as fmt
from replay import layout
from replay.errors import ReplayError
from replay.index import IndexFile, SegmentInfo, scan_segment
from replay.manifest import Manifest, utc_iso
from replay.reader import Session, decompress
from replay.writer import seal_segment


@dataclass(frozen=True, slots=True)
class RepairResult:
    session_id: str
    already_sealed: bool
    records: int
    cut_bytes: int
    cut_at: str | None
    """Where the torn tail began (segment and byte offset), None when nothing was cut."""

    def describe(self) -> str:
        if self.already_sealed:
            return f"session {self.session_id} is already sealed; nothing to repair"
        cut = f"cut {self.cut_bytes} bytes of torn tail at {self.cut_at}" if self.cut_at \
            else "no torn tail"
        return f"session {self.session_id} sealed with {self.records} records; {cut}"


def repair(path: Path) -> RepairResult:
    manifest = Manifest.from_json(layout.read_json(path / "manifest.json"))
    for leftover in path.glob("*.tmp"):
        leftover.unlink()
    for raw in path.glob(f"seg-*{layout.RAW_SUFFIX}"):
        if raw.with_name(raw.name + ".zst").exists():
            raw.unlink()  # died between sealing and removing the raw copy
    if manifest.status in ("sealed", "repaired") and all(
        sealed for _, _, sealed in layout.segment_files(path)
    ):
        return RepairResult(path.name, True, manifest.records, 0, None)
    segments: list[SegmentInfo] = []
    cut_bytes, cut_at = 0, None
    next_record = 0
    for number, file, sealed in layout.segment_files(path):
        if sealed:
            buf, error = decompress(file)
            if error is not None:
                raise ReplayError("corrupt-segment", f"sealed segment {number}: {error}")
        else:
            buf = file.read_bytes()
        info, damage = scan_segment(number, buf, sealed)
        if damage is not None:
            if damage.code != "torn-tail" or sealed:
                raise ReplayError(
                    damage.code,
                    f"segment {number} byte {damage.offset}: {damage.detail}; repair only "
                    "cuts a torn tail",
                )
            cut_bytes += len(buf) - damage.offset
            cut_at = f"segment {number} byte {damage.offset}"
            if damage.offset < fmt.HEADER.size:
                with open(file, "wb") as f:
                    f.write(fmt.encode_header(number))
            else:
                os.truncate(file, damage.offset)
        if info.records and info.first_record != next_record:
            raise ReplayError(
                "missing-records",
                f"segment {number} starts at record {info.first_record}, expected {next_record}",
            )
        next_record += info.records
        if not sealed:
            with open(file, "rb+") as f:
                os.fsync(f.fileno())
            seal_segment(file)
            info.sealed = True
        segments.append(info)
    IndexFile(segments).save(path)
    _rebuild_manifest(path, manifest, next_record, cut_bytes, cut_at)
    return RepairResult(path.name, False, next_record, cut_bytes, cut_at)


def _rebuild_manifest(
    path: Path, old: Manifest, records: int, cut_bytes: int, cut_at: str | None
) -> None:
    fresh = Manifest(
        session_id=old.session_id, started_at=old.started_at, server_version=old.server_version,
        keyframe_interval_s=old.keyframe_interval_s, media_tracks=old.media_tracks,
        writer=old.writer,
    )
    session = Session(path)
    last_tick = 0
    for record in session.records():
        fresh.observe(record)
        last_tick = record.tick
    fresh.records = records
    fresh.status = "repaired"
    fresh.end_tick = fresh.end_tick if fresh.end_tick is not None else last_tick
    hz = fresh.tick_hz or 1
    started = datetime.fromisoformat(old.started_at.replace("Z", "+00:00")).timestamp()
    fresh.ended_at = old.ended_at or utc_iso(started + last_tick / hz)
    fresh.repair = {
        "repaired_at": utc_iso(time.time()), "cut_bytes": cut_bytes, "cut_at": cut_at,
        "last_tick": last_tick,
    }
    layout.write_json_atomic(path / "manifest.json", fresh.to_json())
