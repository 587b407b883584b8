"""The writer never blocks the room for long and never loses a record silently."""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

import pytest

from replay.reader import Session
from replay.synthetic import run_session
from replay.verify import verify
from replay.writer import SessionWriter
from rooms.records import Record


def test_a_full_buffer_is_reported_and_leaves_a_gap(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    writer = SessionWriter(tmp_path, "full", fsync=False, max_buffer_bytes=2000, max_block_s=0)
    with caplog.at_level(logging.ERROR, "grandrounds.replay"):
        run_session(writer, 2, participants=2, tick_hz=10)  # nobody flushes: the buffer fills
        writer.flush()
        writer.write(Record("tick", 999, {}))
        writer.close()
    stats = writer.stats()
    assert stats["dropped"] > 0 and stats["gaps"] >= 1
    assert "dropping records" in caplog.text
    session = Session.open(tmp_path, "full")
    gaps = [r for r in session.records() if r.kind == "gap"]
    assert len(gaps) == stats["gaps"]
    assert sum(g.data["count"] for g in gaps) == stats["dropped"]
    assert session.manifest.writer["dropped"] == stats["dropped"]
    report = verify(session, resim=False)
    assert not report.intact and any("dropped" in p for p in report.problems)


def test_a_flusher_thread_keeps_up_without_loss(tmp_path: Path) -> None:
    writer = SessionWriter(tmp_path, "threads", fsync=False, segment_bytes=20_000)
    writer.start_flusher(0.005)
    room = run_session(writer, 15, participants=4, tick_hz=10)
    writer.close()
    assert writer.stats()["dropped"] == 0
    session = Session.open(tmp_path, "threads")
    assert session.record_count == writer.stats()["records"]
    assert verify(session).intact
    assert session.tick_range()[1] == room.tick_no


def test_media_tracks_can_be_added_from_another_thread(tmp_path: Path) -> None:
    writer = SessionWriter(tmp_path, "media", fsync=False)
    worker = threading.Thread(
        target=writer.add_media_track,
        args=("mic-1", "audio"),
        kwargs={"member": 2, "uri": "media/mic-1.ogg", "clock_offset_ms": -12.5},
    )
    worker.start()
    worker.join()
    writer.add_media_track("cam-1", "video", member=3, clock_offset_ms=40)
    writer.add_media_track("mic-1", "audio", member=2, clock_offset_ms=-10)
    writer.close()
    tracks = Session.open(tmp_path, "media").manifest.media_tracks
    assert [(t["id"], t["clock_offset_ms"]) for t in tracks] == [("cam-1", 40), ("mic-1", -10)]


def test_play_paces_records_from_a_moment(tmp_path: Path) -> None:
    writer = SessionWriter(tmp_path, "play", fsync=False)
    run_session(writer, 6, participants=2, tick_hz=10, keyframe_seconds=2)
    writer.close()
    session = Session.open(tmp_path, "play")
    now = [100.0]
    waits: list[float] = []

    def sleep(dt: float) -> None:
        waits.append(dt)
        now[0] += dt

    played = list(session.play(3.0, speed=2.0, clock=lambda: now[0], sleep=sleep))
    assert played[0].tick == 30 and played[-1].tick == session.tick_range()[1]
    assert now[0] - 100.0 == pytest.approx((played[-1].tick / 10 - 3.0) / 2.0)


class _FullDisk:
    """A segment file whose next write fails like a full disk, once."""

    def __init__(self, real: Any) -> None:
        self.real, self.failed = real, False

    def write(self, data: bytes) -> int:
        if not self.failed:
            self.failed = True
            self.real.write(data[: len(data) // 2])  # a partial append, as ENOSPC leaves
            raise OSError(28, "No space left on device")
        written: int = self.real.write(data)
        return written

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


def test_a_failed_flush_keeps_the_records_for_the_next(tmp_path: Path) -> None:
    writer = SessionWriter(tmp_path, "enospc", fsync=False)
    run_session(writer, 3, participants=2, tick_hz=10)
    writer._file = _FullDisk(writer._file)  # type: ignore[assignment]
    with pytest.raises(OSError):
        writer.flush()
    assert writer.stats()["write_errors"] == 1 and writer.stats()["buffered"] > 0
    writer.flush()
    writer.close()
    session = Session.open(tmp_path, "enospc")
    assert session.problems == [] and verify(session).intact


def test_stats_say_which_records_a_crash_could_still_lose(tmp_path: Path) -> None:
    writer = SessionWriter(tmp_path, "durable", fsync=False)
    for tick in range(5):
        writer.write(Record("tick", tick, {}))
    assert (writer.stats()["handed"], writer.stats()["durable"]) == (5, 0)
    writer.flush()
    assert (writer.stats()["handed"], writer.stats()["durable"]) == (5, 5)
    writer.write(Record("tick", 5, {}))
    assert (writer.stats()["handed"], writer.stats()["durable"]) == (6, 5)
    writer.close()


def test_malformed_start_join_and_end_records_still_leave_a_sealed_session(
    tmp_path: Path,
) -> None:
    """The manifest takes only well-typed values from the records it folds in (mixed-type
    keys and bytes once stopped its JSON, and with it the session's seal)."""
    with SessionWriter(tmp_path, "odd", fsync=False) as writer:
        writer.write(
            Record(
                "start",
                0,
                {
                    "room": b"bytes",
                    "scenario": "demo",
                    "seed": b"\x00",
                    "tick_hz": "30",
                    "config": ["not", "a", "map"],
                    "versions": {1: "one", "server": b"0.1", "case": "demo-1"},
                },
            )
        )
        writer.write(Record("join", 1, {"member": {"nested": 1}, "role": b"participant"}))
        writer.write(Record("ended", 2, {"reason": float("nan")}))
    manifest = Session.open(tmp_path, "odd").manifest
    assert manifest.status == "sealed"
    assert manifest.room_id == "" and manifest.tick_hz == 0 and manifest.seed is None
    assert manifest.versions == {"case": "demo-1"}
    assert manifest.case["name"] == "demo" and manifest.case["end_reason"] is None
    assert [p["role"] for p in manifest.participants.values()] == [None]
