"""The minimal scenario: enough of a case to exercise the room, the netcode and load.

It is the GR-S workload of docs and bench: a monitor whose seven vitals drift every
second, an event every five seconds, twenty shared objects on a table, an answer key
only the facilitator sees and a team note only participants and the facilitator see.
`DemoScenario(seed, objects=200)` is the GR-L room shape (200 objects on the table);
its name, `demo:200`, is what a room records, so a replay re-creates the same room.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from typing import Any, Final

from pydantic import Field

from netcode.state import CaseState
from netcode.views import View
from rooms.actions import ANYONE_IN_THE_TEAM, ActionArgs, ActionSpec
from rooms.scenario import Actor, Clock

VITALS: Final = {
    "hr": (92, 40, 180),
    "sbp": (118, 60, 200),
    "dbp": (74, 30, 120),
    "spo2": (95, 70, 100),
    "rr": (18, 6, 40),
    "temp": (37.4, 35.0, 41.0),
    "etco2": (36, 15, 60),
}
EVENTS: Final = (
    "Nurse reports the patient looks more tired",
    "Family member arrives at the bedside",
    "Pager: lab results are ready",
    "Monitor alarm silenced",
    "Patient asks for water",
)


class NoteArgs(ActionArgs):
    text: str = Field(max_length=2000)


NOTE: Final = ActionSpec(
    ANYONE_IN_THE_TEAM, NoteArgs, while_paused=False, summary="Replace the team's shared note."
)


DEFAULT_OBJECTS: Final = 20
MAX_OBJECTS: Final = 1000


class DemoScenario:
    def __init__(self, seed: int, objects: int = DEFAULT_OBJECTS) -> None:
        if not 1 <= objects <= MAX_OBJECTS:
            raise ValueError(f"the demo room takes 1-{MAX_OBJECTS} objects, not {objects}")
        self.name = "demo" if objects == DEFAULT_OBJECTS else f"demo:{objects}"
        self._rng = random.Random(seed)
        self._objects = objects
        self._monitor = 0
        self._key = 0
        self._events_sent = 0

    def start(self, world: CaseState, clock: Clock) -> None:
        self._monitor = world.create("monitor", {name: v[0] for name, v in VITALS.items()})
        world.create(
            "patient",
            {
                "summary": "Synthetic adult, 60-69, shortness of breath for two days",
                "history": "Hypertension; no known drug allergies",
            },
        )
        self._key = world.create(
            "answer_key",
            {"diagnosis": "Community-acquired pneumonia", "score": 0},
            View.FACILITATOR,
        )
        world.create("team", {"note": ""}, View.PARTICIPANT)
        columns = max(5, math.ceil(math.sqrt(self._objects)))  # 20 objects: 5 x 4
        for i in range(self._objects):
            x, z = 0.2 * (i % columns) - 0.4, 0.2 * (i // columns) - 0.3
            world.create(
                "object",
                {"name": f"item {i + 1}", "holder": None, "home": [x, 0.9, z, 0.0, 0.0, 0.0, 1.0]},
            )

    def step(self, world: CaseState, clock: Clock) -> None:
        if clock.tick % clock.tick_hz == 0:
            for name, (_, low, high) in VITALS.items():
                current = world.get(self._monitor, name)
                if isinstance(current, float):
                    value: float = round(
                        min(high, max(low, current + self._rng.choice((-0.1, 0.1)))), 1
                    )
                else:
                    value = min(high, max(low, current + self._rng.choice((-1, 1))))
                world.set(self._monitor, name, value)
        if clock.tick % (5 * clock.tick_hz) == 0:
            text = EVENTS[self._events_sent % len(EVENTS)]
            self._events_sent += 1
            world.log("events", {"t": clock.seconds, "kind": "case", "text": text})
            world.set(self._key, "score", self._events_sent)

    def actions(self) -> Mapping[str, ActionSpec]:
        return {"note": NOTE}

    def handle(
        self, world: CaseState, actor: Actor, action: str, args: ActionArgs, clock: Clock
    ) -> None:
        assert isinstance(args, NoteArgs)
        team = world.find("team")[0]
        world.set(team, "note", args.text)

    def debrief(self) -> dict[str, Any]:
        return {"events": self._events_sent}

    def snapshot(self) -> dict[str, Any]:
        version, internal, gauss = self._rng.getstate()
        return {
            "rng": [version, list(internal), gauss],
            "monitor": self._monitor,
            "key": self._key,
            "events_sent": self._events_sent,
        }

    def restore(self, data: Mapping[str, Any]) -> None:
        version, internal, gauss = data["rng"]
        self._rng.setstate((version, tuple(internal), gauss))
        self._monitor = data["monitor"]
        self._key = data["key"]
        self._events_sent = data["events_sent"]
