"""Drive a case the way a room does: intents at given times, one `step` per tick.

Intents pass the room's own checks (action name, the sender's role, the argument
model) before the case handles them, as in a room.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from netcode.state import CaseState, Op
from netcode.views import Role
from rooms.actions import IntentRefused, check_role, parse_args
from rooms.case import Case, CaseProgram, CaseScenario, load_compiled
from rooms.scenario import Actor, Clock

TEAM = Actor(1, Role.PARTICIPANT, "Resident")
LEAD = Actor(2, Role.FACILITATOR, "Facilitator")
WATCHER = Actor(3, Role.SPECTATOR, "Student")

Step = tuple[float, Actor, str, dict[str, Any]]
"""(at simulated second, who, action, args)"""


@cache
def compiled(case_id: str) -> tuple[Case, CaseProgram]:
    """Shipped cases parsed and compiled once per test session (cases are immutable)."""
    return load_compiled(case_id)


def case(case_id: str) -> Case:
    return compiled(case_id)[0]


@dataclass
class Run:
    scenario: CaseScenario
    world: CaseState
    hz: int = 10
    tick: int = 0
    ops: list[Op] = field(default_factory=list)
    refusals: list[IntentRefused] = field(default_factory=list)

    @classmethod
    def start(cls, case_id: str, seed: int = 7, hz: int = 10) -> Run:
        kase, program = compiled(case_id)
        run = cls(CaseScenario(kase, seed, program), CaseState(), hz)
        run.scenario.start(run.world, Clock(0, hz))
        run.ops += run.world.drain()
        return run

    def clock(self) -> Clock:
        return Clock(self.tick, self.hz)

    def act(self, actor: Actor, action: str, **args: Any) -> None:
        try:
            spec = self.scenario.actions().get(action)
            if spec is None:
                raise IntentRefused("unknown_action", f"no action {action!r}")
            check_role(action, spec, actor.role)
            parsed = parse_args(action, spec, args)
            self.scenario.handle(self.world, actor, action, parsed, self.clock())
        except IntentRefused as refusal:
            self.refusals.append(refusal)
            raise
        finally:
            self.ops += self.world.drain()

    def advance(self, seconds: float) -> None:
        for _ in range(round(seconds * self.hz)):
            self.tick += 1
            self.scenario.step(self.world, self.clock())
        self.ops += self.world.drain()

    def play(self, script: Sequence[Step], until_s: float) -> Run:
        """Apply the script at its times (room time, no time scaling) and run to `until_s`."""
        for at, actor, action, args in sorted(script, key=lambda s: s[0]):
            self.advance(at - self.tick / self.hz)
            self.act(actor, action, **args)
        self.advance(until_s - self.tick / self.hz)
        return self

    def monitor(self) -> dict[str, Any]:
        return self.world.fields(self.world.find("monitor")[0])

    def one(self, kind: str) -> dict[str, Any]:
        return self.world.fields(self.world.find(kind)[0])
