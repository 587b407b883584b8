"""`CaseScenario`: a loaded case as the `Scenario` a room hosts."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from netcode.state import CaseState
from rooms.actions import ActionArgs, ActionSpec
from rooms.case.actions import ACTIONS, HANDLERS
from rooms.case.debrief import debrief
from rooms.case.model import Case
from rooms.case.program import CaseProgram
from rooms.case.run import CaseRun
from rooms.scenario import Actor, Clock


class CaseScenario:
    """A case in play: `start`, `step`, the case's actions, persistence and `debrief()`."""

    def __init__(self, case: Case, seed: int, program: CaseProgram | None = None) -> None:
        self.case = case
        self.name = case.id
        self.seed = seed
        self.run = CaseRun(case, seed, program)

    def actions(self) -> Mapping[str, ActionSpec]:
        return ACTIONS

    def start(self, world: CaseState, clock: Clock) -> None:
        self.run.start(world)

    def step(self, world: CaseState, clock: Clock) -> None:
        self.run.advance(world, clock.dt)

    def handle(
        self, world: CaseState, actor: Actor, action: str, args: ActionArgs, clock: Clock
    ) -> None:
        HANDLERS[action](self.run, world, actor, args)

    def debrief(self) -> dict[str, Any]:
        """What happened, against the rubric: for the facilitator and the replay export."""
        return debrief(self.run)

    def snapshot(self) -> dict[str, Any]:
        return self.run.snapshot()

    def restore(self, data: Mapping[str, Any]) -> None:
        self.run.restore(data)
