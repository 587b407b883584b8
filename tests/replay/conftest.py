"""Shared fixtures: a recorded synthetic session and the live states it went through."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from netcode.state import CaseState
from netcode.views import ALL_VIEWS, View
from replay.synthetic import SyntheticSession
from replay.writer import SessionWriter
from rooms.records import Record


@dataclass
class Recorded:
    data_dir: Path
    session_id: str
    records: list[Record]
    live: dict[int, dict[View, Any]]
    poses: dict[int, dict[int, list[int]]]


class Tee:
    def __init__(self, writer: SessionWriter) -> None:
        self.writer = writer
        self.records: list[Record] = []

    def record(self, record: Record) -> None:
        self.records.append(record)
        self.writer.write(record)


def record_session(
    data_dir: Path, session_id: str = "s1", seconds: float = 20, close: bool = True, **kw: Any
) -> Recorded:
    writer = SessionWriter(data_dir, session_id, fsync=False, segment_bytes=60_000)
    tee = Tee(writer)
    live: dict[int, dict[View, Any]] = {}
    poses: dict[int, dict[int, list[int]]] = {}

    def on_tick(tick: int, world: CaseState, table: dict[int, list[int]]) -> None:
        live[tick] = {v: world.view_state(v) for v in ALL_VIEWS}
        poses[tick] = {k: list(p) for k, p in table.items()}

    SyntheticSession(tick_hz=10, keyframe_every_s=2, participants=3, objects=4, **kw).run(
        tee, seconds, on_tick
    )
    writer.flush()
    if close:
        writer.close()
    return Recorded(data_dir, session_id, tee.records, live, poses)


@pytest.fixture(scope="session")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Recorded:
    return record_session(tmp_path_factory.mktemp("rec"))
