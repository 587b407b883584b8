"""Shared fixtures: a real room's session, recorded, with the live states it went through."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from netcode.views import ALL_VIEWS, View
from replay.synthetic import run_session
from replay.writer import SessionWriter
from rooms.records import Record
from rooms.room import Room


@dataclass
class Recorded:
    data_dir: Path
    session_id: str
    records: list[Record]
    live: dict[int, dict[View, Any]]
    poses: dict[int, dict[int, list[int]]]

    def __repr__(self) -> str:
        return f"Recorded({self.session_id}, {len(self.records)} records)"


class Tee:
    """Records into a writer and keeps a copy, as the room handed them over."""

    def __init__(self, writer: SessionWriter) -> None:
        self.writer = writer
        self.records: list[Record] = []

    def record(self, record: Record) -> None:
        self.records.append(record)
        self.writer.write(record)


def record_session(
    data_dir: Path,
    session_id: str = "s1",
    seconds: float = 20,
    close: bool = True,
    **kw: Any,
) -> Recorded:
    writer = SessionWriter(data_dir, session_id, fsync=False, segment_bytes=40_000)
    tee = Tee(writer)
    live: dict[int, dict[View, Any]] = {}
    poses: dict[int, dict[int, list[int]]] = {}

    def on_tick(room: Room) -> None:
        live[room.tick_no] = {v: room.world.view_state(v) for v in ALL_VIEWS}
        poses[room.tick_no] = {k: list(p) for k, p in room.poses.published.items()}

    kw.setdefault("participants", 3)
    run_session(
        tee, seconds, tick_hz=10, keyframe_seconds=2, checksum_every=5, on_tick=on_tick, **kw
    )
    writer.flush()
    if close:
        writer.close()
    return Recorded(data_dir, session_id, tee.records, live, poses)


@pytest.fixture(scope="session")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Recorded:
    return record_session(tmp_path_factory.mktemp("rec"))
