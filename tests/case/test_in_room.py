"""A shipped case hosted by the real `Room`: facilitator controls reach every view,
and a recorded session re-simulates to the same outputs."""

from __future__ import annotations

from typing import Any

from netcode.state import HIDDEN
from netcode.views import Role, View
from rooms.case import CaseScenario, load_case
from rooms.events import Replied
from rooms.records import MemoryRecorder, Record
from rooms.room import Room, RoomConfig


def make_room(recorder: MemoryRecorder | None = None) -> Room:
    scenario = CaseScenario(load_case("septic_shock_ed"), seed=11)
    room = Room("r1", scenario, seed=11, config=RoomConfig(tick_hz=30), recorder=recorder)
    room.start()
    return room


def ticks(room: Room, n: int) -> list[Any]:
    return [out for _ in range(n) for out in room.tick() if isinstance(out, Replied)]


def seen(room: Room, view: View, kind: str) -> list[dict[str, Any]]:
    return [f for k, f in room.world.view_state(view)["e"].values() if k == kind]


def test_pause_stops_case_time_for_everyone() -> None:
    room = make_room()
    lead = room.join(Role.FACILITATOR, "Lead")
    ticks(room, 30 * 5)
    room.submit(lead.id, 1, "pause", {})
    ticks(room, 1)
    paused_at = seen(room, View.SPECTATOR, "case")[0]["time_s"]
    ticks(room, 30 * 10)
    assert seen(room, View.SPECTATOR, "case")[0]["time_s"] == paused_at
    room.submit(lead.id, 2, "resume", {})
    ticks(room, 30 * 3)
    assert seen(room, View.SPECTATOR, "case")[0]["time_s"] >= paused_at + 2


def test_override_and_reveal_reach_participants_and_spectators() -> None:
    room = make_room()
    lead = room.join(Role.FACILITATOR, "Lead")
    team = room.join(Role.PARTICIPANT, "Resident")
    room.submit(lead.id, 1, "override", {"signal": "hr", "value": 165})
    room.submit(lead.id, 2, "reveal", {"test": "lactate"})
    room.submit(team.id, 3, "give", {"drug": "crystalloid", "dose": 500, "route": "iv"})
    replies = ticks(room, 2)
    assert [(r.ok, r.code) for r in replies] == [(True, ""), (True, ""), (False, "bad_dose")]
    for view in (View.SPECTATOR, View.PARTICIPANT):
        [monitor] = seen(room, view, "monitor")
        assert monitor["hr"] == 165 and monitor["overridden"] is HIDDEN
        [result] = seen(room, view, "result")
        assert result["test"] == "lactate"
    [monitor] = seen(room, View.FACILITATOR, "monitor")
    assert monitor["overridden"] == ["hr"]


def test_end_publishes_the_debrief_to_the_facilitator() -> None:
    room = make_room()
    lead = room.join(Role.FACILITATOR, "Lead")
    team = room.join(Role.PARTICIPANT, "Resident")
    room.submit(team.id, 1, "give", {"drug": "piperacillin_tazobactam", "dose": 4.5,
                                     "route": "iv"})  # fmt: skip
    ticks(room, 30 * 3)
    room.submit(lead.id, 2, "end", {})
    ticks(room, 1)
    [room_fields] = seen(room, View.FACILITATOR, "room")
    debrief = room_fields["debrief"]
    assert [h["id"] for h in debrief["harmful"]] == ["penicillin"]


def outputs(records: list[Record]) -> list[tuple[str, int, Any]]:
    return [(r.kind, r.tick, r.data) for r in records if r.kind in ("op", "checksum", "reply")]


def test_recorded_session_re_simulates_identically() -> None:
    recorder = MemoryRecorder()
    room = make_room(recorder)
    lead = room.join(Role.FACILITATOR, "Lead")
    team = room.join(Role.PARTICIPANT, "Resident")
    room.submit(lead.id, 1, "time_scale", {"scale": 3})
    room.submit(team.id, 2, "give", {"drug": "crystalloid", "dose": 30, "route": "iv"})
    ticks(room, 30 * 20)
    room.submit(team.id, 3, "order", {"test": "lactate"})
    ticks(room, 30 * 20)
    again = MemoryRecorder()
    fresh = Room("r1", CaseScenario(load_case("septic_shock_ed"), seed=11), seed=11,
                 config=RoomConfig(tick_hz=30), recorder=again)  # fmt: skip
    inputs = [r for r in recorder.records if r.kind in ("start", "tick", "join", "intent")]
    fresh.replay_inputs(inputs)
    assert len(outputs(recorder.records)) > 100
    assert outputs(again.records) == outputs(recorder.records)


def test_refusals_are_logged_for_the_facilitator_only() -> None:
    room = make_room()
    resident = room.join(Role.PARTICIPANT, "Resident").id
    room.tick()
    room.submit(resident, 1, "give", {"drug": "norepinephrine", "dose": 50, "route": "ivinf"})
    room.submit(resident, 2, "give", {"drug": "norepinephrine", "dose": "lots"})
    [bad_dose, bad_args] = ticks(room, 1)
    assert (bad_dose.ok, bad_dose.code, bad_args.code) == (False, "bad_dose", "bad_args")
    refusals = room.world.log_tail("refusals", View.FACILITATOR)
    assert [(e["code"], e["by"]) for e in refusals] == [
        ("bad_dose", "Resident"),
        ("bad_args", "Resident"),
    ]
    assert room.world.log_tail("refusals", View.PARTICIPANT) == []


def test_clinical_actions_wait_out_a_pause_but_the_facilitator_can_act() -> None:
    room = make_room()
    lead = room.join(Role.FACILITATOR, "Lead")
    team = room.join(Role.PARTICIPANT, "Resident")
    room.submit(lead.id, 1, "pause", {})
    ticks(room, 1)
    room.submit(team.id, 2, "examine", {"region": "chest"})
    room.submit(lead.id, 3, "reveal", {"region": "chest"})
    room.submit(lead.id, 4, "override", {"signal": "hr", "value": 150})
    examine, reveal, override = ticks(room, 1)
    assert (examine.ok, examine.code) == (False, "paused")
    assert reveal.ok and override.ok
