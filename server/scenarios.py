"""Which scenario a room runs: a shipped case by id, or the minimal GR-S room.

Only shipped case ids are accepted over the API, never paths: a request must not be
able to make the server read an arbitrary file.
"""

from __future__ import annotations

from functools import cache
from typing import Final

from rooms.case import Case, CaseScenario, shipped_cases
from rooms.demo import DemoScenario
from rooms.scenario import Scenario

MINIMAL: Final = "demo"
DEFAULT_CASE: Final = "septic_shock_ed"


class UnknownCase(LookupError):
    pass


@cache
def _shipped() -> dict[str, Case]:
    return {case.id: case for case in shipped_cases()}


def make_scenario(case: str, seed: int) -> Scenario:
    if case == MINIMAL:
        return DemoScenario(seed)
    found = _shipped().get(case)
    if found is None:
        raise UnknownCase(
            f"there is no case {case!r}; choose one of {', '.join(available_cases())}"
        )
    return CaseScenario(found, seed)


def available_cases() -> list[str]:
    return [MINIMAL, *_shipped()]
