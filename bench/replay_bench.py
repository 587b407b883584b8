"""Replay bench: recording cost, bytes per hour, seek and export time; MCAP compared.

    python bench/replay_bench.py [--minutes 60] [--overhead-minutes 5] [--out DIR]

GR-S load: a real `Room` with the demo scenario (7 vitals each second, an event every
5 s, 20 shared objects), 8 members sending head+hands poses every tick at 30 Hz, a
spectator, an intent every 5 s. Figures are printed as one JSON object.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import msgpack
from mcap.reader import NonSeekingReader, make_reader
from mcap.writer import CompressionType, Writer

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from netcode.views import ALL_VIEWS
from replay.annotations import Annotations
from replay.debrief import render
from replay.export_jsonl import write_jsonl
from replay.keyframes import Reconstruction
from replay.reader import Session
from replay.synthetic import run_session
from replay.writer import SessionWriter
from replay.xapi import statements
from rooms.records import NullRecorder, Record

HZ = 30


class Flushing:
    """The writer plus a flush every second of session time, as the server's worker does."""

    def __init__(self, writer: SessionWriter, extra: Any = None) -> None:
        self.writer, self.extra, self.records = writer, extra, 0

    def record(self, record: Record) -> None:
        self.records += 1
        self.writer.write(record)
        if self.extra is not None:
            self.extra.record(record)
        if record.kind == "tick" and record.tick % HZ == 0:
            self.writer.flush()


class McapTee:
    """The same records into an MCAP file: one channel per kind, msgpack payloads."""

    def __init__(self, path: Path, chunk_size: int = 1 << 20) -> None:
        self.file = open(path, "wb")  # noqa: SIM115
        self.writer = Writer(self.file, chunk_size=chunk_size, compression=CompressionType.ZSTD)
        self.writer.start(profile="grandrounds", library="bench")
        self.schema = self.writer.register_schema("record", "msgpack", b"")
        self.channels: dict[str, int] = {}
        self.index = 0

    def record(self, record: Record) -> None:
        channel = self.channels.get(record.kind)
        if channel is None:
            channel = self.writer.register_channel(record.kind, "msgpack", self.schema)
            self.channels[record.kind] = channel
        t = record.tick * 1_000_000_000 // HZ
        self.writer.add_message(channel, t, msgpack.packb(record.data), t, self.index)
        self.index += 1

    def close(self) -> None:
        self.writer.finish()
        self.file.close()


def dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def overhead(minutes: float, work: Path) -> dict[str, Any]:
    """Room CPU with and without recording (writer + 1 s flushes + sealing)."""
    t = time.process_time()
    run_session(NullRecorder(), minutes * 60, tick_hz=HZ)
    bare = time.process_time() - t
    writer = SessionWriter(work, "overhead")
    tee = Flushing(writer)
    t = time.process_time()
    run_session(tee, minutes * 60, tick_hz=HZ)
    writer.close()
    recorded = time.process_time() - t
    # the room-thread part alone: write() of representative records into a big buffer
    sample = Session.open(work, "overhead")
    records = [r for _, r in zip(range(200_000), sample.records(), strict=False)]
    quiet = SessionWriter(work, "write-only", fsync=False, max_buffer_bytes=1 << 30)
    gc.collect()
    gc.freeze()  # the bench's own sample list is not the room's garbage to trace
    t = time.perf_counter()
    for r in records:
        quiet.write(r)
    write_us = (time.perf_counter() - t) / len(records) * 1e6
    gc.unfreeze()
    quiet.close()
    return {
        "session_minutes": minutes,
        "room_cpu_s": round(bare, 2),
        "room_plus_recording_cpu_s": round(recorded, 2),
        "recording_share_of_room_cpu": round((recorded - bare) / bare, 3),
        "records": tee.records,
        "writer_cpu_us_per_record_amortized": round((recorded - bare) / tee.records * 1e6, 2),
        "write_call_us_per_record_room_thread": round(write_us, 2),
    }


def seek_native(session_dir: Path, data_dir: Path, sid: str, points: list[float]) -> list[float]:
    times = []
    for i, t in enumerate(points):
        session = Session.open(data_dir, sid)  # cold: a fresh reader for each seek
        start = time.perf_counter()
        session.state_at(t, ALL_VIEWS[i % 3])
        times.append((time.perf_counter() - start) * 1000)
    return times


def seek_mcap(path: Path, points: list[float], kf_s: float) -> list[float]:
    times = []
    for i, t in enumerate(points):
        with open(path, "rb") as f:
            start = time.perf_counter()
            reader = make_reader(f)
            end_ns = int(t * 1e9) + 1
            kfs = list(
                reader.iter_messages(
                    topics=["keyframe"],
                    starting_at=max(0, end_ns - int((kf_s + 1) * 1e9)),
                    ending_before=end_ns,
                )
            )
            _, _, kf = kfs[-1]
            recon = Reconstruction.from_keyframe(
                Record("keyframe", 0, msgpack.unpackb(kf.data, strict_map_key=False))
            )
            for _, channel, msg in reader.iter_messages(
                starting_at=kf.log_time, ending_before=end_ns
            ):
                if msg.sequence > kf.sequence:
                    recon.apply(
                        Record(channel.topic, 0, msgpack.unpackb(msg.data, strict_map_key=False))
                    )
            recon.state(ALL_VIEWS[i % 3], int(t * HZ), HZ)
            times.append((time.perf_counter() - start) * 1000)
    return times


class _Stop(Exception):
    pass


class _Cut:
    """Hands records on until `stop_tick`, then 'kills the process'."""

    def __init__(self, tee: Flushing, stop_tick: int) -> None:
        self.tee, self.stop_tick = tee, stop_tick

    def record(self, record: Record) -> None:
        if record.tick >= self.stop_tick:
            raise _Stop
        self.tee.record(record)


def crash_loss(work: Path, seconds: float, rng: random.Random) -> dict[str, Any]:
    """Seconds of session lost when the process dies at a random moment (no footer)."""
    lost_native, lost_mcap = [], []
    for trial in range(3):
        stop_tick = int(rng.uniform(0.5, 1.0) * seconds * HZ)
        mcap_path = work / f"crash{trial}.mcap"
        work.mkdir(parents=True, exist_ok=True)
        mc = McapTee(mcap_path)
        writer = SessionWriter(work, f"crash{trial}", fsync=False)
        with contextlib.suppress(_Stop):
            run_session(_Cut(Flushing(writer, mc), stop_tick), seconds, tick_hz=HZ)
        mc.file.flush()  # the process dies: what the writers handed to the OS is all there is
        session = Session.open(work, f"crash{trial}")
        lost_native.append((stop_tick - session.tick_range()[1]) / HZ)
        last = 0
        with open(mcap_path, "rb") as f, contextlib.suppress(Exception):
            for _, _, message in NonSeekingReader(f).iter_messages(log_time_order=False):
                last = message.log_time
        lost_mcap.append(stop_tick / HZ - last / 1e9)
    return {
        "native_lost_s_max": round(max(lost_native), 2),
        "mcap_lost_s_max": round(max(lost_mcap), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--minutes", type=float, default=60.0)
    parser.add_argument("--overhead-minutes", type=float, default=5.0)
    parser.add_argument("--seeks", type=int, default=200)
    parser.add_argument("--out", type=Path, help="keep the session here (default: temp)")
    args = parser.parse_args()
    work = args.out or Path(tempfile.mkdtemp(prefix="replay-bench-"))
    rng = random.Random(7)
    result: dict[str, Any] = {"overhead": overhead(args.overhead_minutes, work / "o")}

    seconds = args.minutes * 60
    mcap_path = work / "session.mcap"
    mc = McapTee(mcap_path)
    writer = SessionWriter(work / "h", "hour")
    tee = Flushing(writer, mc)
    t = time.perf_counter()
    run_session(tee, seconds, tick_hz=HZ)
    writer.close()
    mc.close()
    session_dir = work / "h" / "sessions" / "hour"
    per_hour = 3600 / seconds
    result["size"] = {
        "session_minutes": args.minutes,
        "records": tee.records,
        "record_wall_s": round(time.perf_counter() - t, 1),
        "native_bytes_per_hour": int(dir_bytes(session_dir) * per_hour),
        "native_raw_bytes_per_hour": int(writer.stats()["bytes"] * per_hour),
        "mcap_zstd_bytes_per_hour": int(mcap_path.stat().st_size * per_hour),
    }
    points = [rng.uniform(0, seconds) for _ in range(args.seeks)]
    t = time.perf_counter()
    Session.open(work / "h", "hour")
    open_ms = (time.perf_counter() - t) * 1000
    native = seek_native(session_dir, work / "h", "hour", points)
    mcap_times = seek_mcap(mcap_path, points[: max(20, args.seeks // 4)], 10.0)
    result["seek_ms"] = {
        "native_open": round(open_ms, 2),
        "native_p50": round(statistics.median(native), 2),
        "native_p99": round(pct(native, 0.99), 2),
        "mcap_p50": round(statistics.median(mcap_times), 2),
        "mcap_p99": round(pct(mcap_times, 0.99), 2),
    }
    session = Session.open(work / "h", "hour")
    exports: dict[str, float] = {}
    t = time.perf_counter()
    with open(os.devnull, "w") as sink:
        write_jsonl(session, sink)
    exports["jsonl_s"] = round(time.perf_counter() - t, 2)
    t = time.perf_counter()
    statements(session)
    exports["xapi_s"] = round(time.perf_counter() - t, 2)
    t = time.perf_counter()
    render(session, Annotations(session.path).all())
    exports["html_s"] = round(time.perf_counter() - t, 2)
    result["export"] = exports
    result["crash"] = crash_loss(work / "c", 60, rng)
    print(json.dumps(result, indent=1))
    if args.out is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
