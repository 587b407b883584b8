"""Repair a session whose writer died: cut the torn tail, seal, rebuild index and manifest.

Only a genuinely incomplete tail is cut: the last frame of the segment being written
is incomplete (its header or its payload runs past the end of the file), nothing valid
follows it, and it lies after the bytes the server proved with its last checkpoint
(replay.signing). A complete record with a bad checksum is damage, wherever it is; so
is anything the server had flushed and proven. Repair refuses to paper over either.

With the server's key, repair signs what it seals: each segment it seals is chained to
the one before, and the rebuilt manifest is signed. It never signs over what it cannot
prove was the server's: a segment whose checkpoint does not match its bytes is refused
(`forged`), and a sealed segment the index gives no MAC for stays unsigned. What it
seals past the last checkpoint (complete records written just before the crash) is
counted as `vouched_bytes` in the manifest's `repair` entry.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from replay import format as fmt
from replay import layout, signing
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
    vouched_bytes: int = 0
    signed: bool = False

    def describe(self) -> str:
        if self.already_sealed:
            return f"session {self.session_id} is already sealed; nothing to repair"
        cut = (
            f"cut {self.cut_bytes} bytes of torn tail at {self.cut_at}"
            if self.cut_at
            else "no torn tail"
        )
        signed = "signed" if self.signed else "not signed (no key)"
        return f"session {self.session_id} sealed with {self.records} records; {cut}; {signed}"


@dataclass(slots=True)
class _Repair:
    key: bytes | None
    session_id: str
    macs: dict[int, str]
    cut_bytes: int = 0
    cut_at: str | None = None
    vouched: int = 0


def repair(path: Path, key: bytes | None = None) -> RepairResult:
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
    old = {s.number: s.mac for s in IndexFile.load(path).segments if s.mac is not None}
    job = _Repair(key, manifest.session_id, old)
    segments: list[SegmentInfo] = []
    next_record = 0
    for number, file, sealed in layout.segment_files(path):
        info = _segment(job, number, file, sealed)
        if info.records and info.first_record != next_record:
            raise ReplayError(
                "missing-records",
                f"segment {number} starts at record {info.first_record}, expected {next_record}",
            )
        next_record += info.records
        segments.append(info)
    IndexFile(segments).save(path)
    _rebuild_manifest(path, manifest, next_record, job, IndexFile(segments))
    for leftover in path.glob(f"seg-*{signing.CHECKPOINT_SUFFIX}"):
        leftover.unlink()
    return RepairResult(
        path.name, False, next_record, job.cut_bytes, job.cut_at, job.vouched, key is not None
    )


def _segment(job: _Repair, number: int, file: Path, sealed: bool) -> SegmentInfo:
    """Check, cut (a torn tail only), seal and sign one segment; its index entry."""
    if sealed:
        buf, error = decompress(file)
        if error is not None:
            raise ReplayError("corrupt-segment", f"sealed segment {number}: {error}")
    else:
        buf = file.read_bytes()
    raw_name = file.with_suffix("") if sealed else file  # seg-N.grs.zst -> seg-N.grs
    checkpoints = signing.read_checkpoints(signing.checkpoint_path(raw_name))
    proven = checkpoints[-1].length if checkpoints else 0
    info, damage = scan_segment(number, buf, sealed)
    if damage is not None:
        if sealed or damage.code != "torn-tail" or damage.offset < proven:
            why = (
                "; the server had flushed and proven these bytes"
                if not sealed and damage.code == "torn-tail"
                else ""
            )
            raise ReplayError(
                "corrupt-record" if damage.code == "torn-tail" else damage.code,
                f"segment {number} byte {damage.offset}: {damage.detail}{why}; repair only "
                "cuts a tail left incomplete by a crash",
            )
        job.cut_bytes += len(buf) - damage.offset
        job.cut_at = f"segment {number} byte {damage.offset}"
        if damage.offset < fmt.HEADER.size:
            buf = fmt.encode_header(number)
            with open(file, "wb") as f:
                f.write(buf)
        else:
            buf = buf[: damage.offset]
            os.truncate(file, damage.offset)
    mac = _mac(job, number, buf, checkpoints, sealed)
    if not sealed:
        with open(file, "rb+") as f:
            os.fsync(f.fileno())
        seal_segment(file)
        info.sealed = True
    info.mac = mac
    if mac is not None:
        job.macs[number] = mac
    return info


def _mac(
    job: _Repair, number: int, buf: bytes, checkpoints: list[signing.Checkpoint], sealed: bool
) -> str | None:
    """The segment's MAC, if its bytes can be shown to be the server's (see module doc)."""
    if sealed and number in job.macs:
        return job.macs[number]
    if job.key is None:
        return None
    if number == 0:
        previous = signing.NO_MAC
    elif number - 1 in job.macs:
        previous = bytes.fromhex(job.macs[number - 1])
    else:
        return None  # the chain is broken before it: nothing to sign onto
    last = checkpoints[-1] if checkpoints else None
    if last is not None:
        proven = signing.segment_mac(job.key, job.session_id, number, previous, buf[: last.length])
        if len(buf) < last.length or not signing.same_mac(proven, last.mac):
            raise ReplayError(
                "forged",
                f"segment {number} does not hold the bytes the server proved at its last "
                "flush; repair will not sign it",
            )
    if sealed and (last is None or last.length != len(buf)):
        return None  # sealed before a crash, but not proven whole: leave it unsigned
    job.vouched += len(buf) - (last.length if last is not None else fmt.HEADER.size)
    return signing.segment_mac(job.key, job.session_id, number, previous, buf).hex()


def _rebuild_manifest(
    path: Path, old: Manifest, records: int, job: _Repair, index: IndexFile
) -> None:
    fresh = Manifest(
        session_id=old.session_id,
        started_at=old.started_at,
        server_version=old.server_version,
        keyframe_interval_s=old.keyframe_interval_s,
        media_tracks=old.media_tracks,
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
        "repaired_at": utc_iso(time.time()),
        "cut_bytes": job.cut_bytes,
        "cut_at": job.cut_at,
        "last_tick": last_tick,
        "vouched_bytes": job.vouched,
    }
    body = fresh.to_json()
    if job.key is not None:
        last = index.segments[-1].mac if index.segments else None
        chain = bytes.fromhex(last) if last else None
        body = signing.sign_manifest(job.key, body, index.to_json(), chain)
    layout.write_json_atomic(path / "manifest.json", body)
