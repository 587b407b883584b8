"""Which scenario a room runs: the demo room, or a case (once the case engine is wired)."""

from __future__ import annotations

from rooms.demo import DemoScenario
from rooms.scenario import Scenario


class UnknownCase(LookupError):
    pass


def make_scenario(case: str, seed: int) -> Scenario:
    if case == "demo":
        return DemoScenario(seed)
    raise UnknownCase(f"there is no case {case!r}; try 'demo'")


def available_cases() -> list[str]:
    return ["demo"]
