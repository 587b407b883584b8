"""A recorded session of every shipped case verifies by re-simulation (`replay verify`):
the case engine is deterministic through a real room, its recording and keyframes."""

from __future__ import annotations

from pathlib import Path

import pytest

from netcode.views import Role
from replay.writer import SessionWriter
from rooms.case import CaseScenario, shipped_cases
from rooms.room import Room, RoomConfig
from server.replay_cli import main as replay
from tests.case.harness import compiled

HZ = 10
SECONDS = 240


@pytest.mark.parametrize("case_id", sorted(c.id for c in shipped_cases()))
def test_a_session_of_the_case_replays_identically(
    case_id: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    case, program = compiled(case_id)
    steps = sorted(case.calibration["good"].team, key=lambda s: s.at_s)
    with SessionWriter(tmp_path, "session", fsync=False) as writer:
        room = Room(
            case_id,
            CaseScenario(case, 9, program),
            seed=9,
            recorder=writer,
            config=RoomConfig(tick_hz=HZ, keyframe_seconds=20, checksum_every=HZ),
        )
        room.start()
        members = {
            "facilitator": room.join(Role.FACILITATOR, "Lead").id,
            "participant": room.join(Role.PARTICIPANT, "Resident").id,
        }
        room.tick()
        room.submit(members["facilitator"], 1, "time_scale", {"scale": 4})
        reply = 1
        scenario = room.scenario
        assert isinstance(scenario, CaseScenario)
        for _ in range(SECONDS * HZ):
            while steps and steps[0].at_s <= scenario.run.t:
                step = steps.pop(0)
                reply += 1
                room.submit(members[step.by], reply, step.do, step.args)
            room.tick()
        room.submit(members["facilitator"], reply + 1, "end", {})
        room.tick()
    assert replay(["verify", "session", "--data-dir", str(tmp_path)]) == 0, capsys.readouterr()
