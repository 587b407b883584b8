"""The authoring guide's worked example is a valid case that behaves as described."""

from __future__ import annotations

from pathlib import Path

import pytest

from netcode.state import CaseState
from rooms.case import CaseError, CaseScenario, parse_case
from rooms.scenario import Clock
from tests.case.harness import TEAM, Run

GUIDE = Path(__file__).parents[2] / "docs" / "cases.md"


def example() -> str:
    text = GUIDE.read_text().split("## Worked example: a minimal case")[1]
    return text.split("```yaml")[1].split("```")[0]


def test_worked_example_validates_and_runs() -> None:
    case = parse_case(example(), "hypoglycaemia_demo.yaml")
    run = Run(CaseScenario(case, seed=1), CaseState())
    run.scenario.start(run.world, Clock(0, run.hz))
    glucose = {"drug": "glucose_10", "dose": 150, "route": "iv"}
    run.play([(30, TEAM, "order", {"test": "glucose"}), (60, TEAM, "give", glucose)], 900)
    debrief = run.scenario.debrief()
    assert debrief["outcome"]["good"] and debrief["score"]["percent"] == 100


def test_worked_example_error_message_is_the_one_documented() -> None:
    broken = example().replace('"give:glucose_10"\n      description: IV', '"give:glucose10"\n'
                               "      description: IV")  # fmt: skip
    with pytest.raises(CaseError) as caught:
        parse_case(broken, "hypoglycaemia_demo.yaml")
    first = str(caught.value).split(" (allowed")[0]
    assert first in GUIDE.read_text()
