"""A scripted septic-shock session, recorded by a real room and the project's writer.

Two participants and a facilitator act as a team would (a chat, fluids, a lactate, a
refused antibiotic dose, the right antibiotic, a decision, a note), a spectator asks a
private question, and the facilitator scores a manual item and ends the room. Tests
read its debrief, summary, exports and views.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from netcode.views import Role
from replay.writer import SessionWriter
from rooms.room import Room, RoomConfig
from server.scenarios import DEFAULT_CASE, make_scenario

HZ = 10
SCRIPT: list[tuple[float, str, str, dict[str, Any]]] = [
    (2.0, "Ana", "chat", {"text": "She is hypotensive: fluids first, please"}),
    (3.0, "Ana", "give", {"drug": "crystalloid", "dose": 20, "route": "iv"}),
    (4.0, "Ben", "order", {"test": "lactate"}),
    (5.0, "Ben", "order", {"test": "blood_cultures"}),
    (6.0, "Ben", "give", {"drug": "ceftriaxone", "dose": 40, "route": "iv"}),
    (7.0, "Sam", "ask", {"text": "Why not piperacillin?"}),
    (8.0, "Ana", "chat", {"text": "Penicillin allergy on the band: ceftriaxone 2 g"}),
    (9.0, "Ben", "give", {"drug": "ceftriaxone", "dose": 2, "route": "iv"}),
    (10.0, "Ana", "note", {"text": "Reassess MAP after the bolus"}),
    (
        11.0,
        "Dr Chair",
        "score",
        {"item": "communication", "points": 8, "comment": "Clear leader, closed loops"},
    ),
    (12.0, "Ana", "call_help", {"team": "icu"}),
    (12.5, "Ben", "decide", {"decision": "disposition", "option": "icu"}),
]
END_S = 14.0


@dataclass
class Scripted:
    data_dir: Path
    session_id: str
    path: Path


def record(data_dir: Path, session_id: str = "septic", key: bytes | None = None) -> Scripted:
    writer = SessionWriter(data_dir, session_id, fsync=False, signing_key=key)
    room = Room(
        "septic",
        make_scenario(DEFAULT_CASE, 7),
        seed=7,
        config=RoomConfig(tick_hz=HZ, keyframe_seconds=5),
        recorder=writer,
        title="Septic shock, scripted",
    )
    room.start({"server": "test", "case": DEFAULT_CASE})
    members = {
        "Dr Chair": room.join(Role.FACILITATOR, "Dr Chair").id,
        "Ana": room.join(Role.PARTICIPANT, "Ana").id,
        "Ben": room.join(Role.PARTICIPANT, "Ben").id,
        "Sam": room.join(Role.SPECTATOR, "Sam").id,
    }
    script = sorted(SCRIPT, key=lambda step: step[0])
    reply_id = 0
    for tick in range(1, int(END_S * HZ) + 1):
        while script and script[0][0] * HZ <= tick:
            _, who, action, args = script.pop(0)
            reply_id += 1
            room.submit(members[who], reply_id, action, args)
        room.tick()
    room.submit(members["Dr Chair"], reply_id + 1, "end", {"reason": "debrief time"})
    room.tick()
    writer.close()
    return Scripted(data_dir, session_id, writer.path)
