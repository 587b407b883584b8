"""A session of a real case (the case engine's septic shock scenario) verifies by
re-simulation through the CLI, and its debrief export shows the case's score."""

from __future__ import annotations

from pathlib import Path

import pytest

from replay.reader import Session
from replay.synthetic import Bots
from replay.writer import SessionWriter
from replay.xapi import statements, validate
from rooms.room import Room, RoomConfig
from server.replay_cli import main as cli
from server.scenarios import make_scenario


def test_a_case_session_verifies_and_debriefs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with SessionWriter(tmp_path, "case", fsync=False) as writer:
        room = Room(
            "ed-1",
            make_scenario("septic_shock_ed", 3),
            seed=3,
            recorder=writer,
            config=RoomConfig(tick_hz=10, keyframe_seconds=2, checksum_every=5),
        )
        Bots(room, participants=3, seed=3).run(15)
    d = ["--data-dir", str(tmp_path)]
    assert cli(["verify", "case", *d]) == 0, capsys.readouterr().out
    out = tmp_path / "debrief.html"
    assert cli(["export", "case", *d, "--format", "html", "-o", str(out)]) == 0
    html = out.read_text()
    assert "Critical actions" in html and "<polyline" in html
    batch = statements(Session.open(tmp_path, "case"))
    completed = [s for s in batch if s["verb"]["id"].endswith("/completed")]
    assert completed and all("score" in s["result"] for s in completed)
    assert all(validate(s) == [] for s in batch)
