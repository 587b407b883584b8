"""The authoring guide's worked example is a valid case that behaves as described."""

from __future__ import annotations

from pathlib import Path

import pytest

from rooms.case import CaseError, compile_case, load_case, shipped_cases
from rooms.case.driver import CaseDriver, calibrate
from rooms.case.guide import facilitator_guide

GUIDE = Path(__file__).parents[2] / "docs" / "cases.md"


def example() -> str:
    text = GUIDE.read_text().split("## Worked example: a minimal case")[1]
    return text.split("```yaml")[1].split("```")[0]


def test_worked_example_validates_and_keeps_its_calibrations() -> None:
    case, program = compile_case(example(), "pph_demo.yaml")
    for name in ("none", "good"):
        report = calibrate(case, program, name)
        assert report.kept, [v for v in report.verdicts if not v.kept]
    assert calibrate(case, program, "good").run.debrief["score"]["percent"] == 100
    arrest = calibrate(case, program, "none").run.debrief["timeline"]
    assert [e["t"] for e in arrest if e["id"] == "arrest"] == [pytest.approx(1500, abs=60)]


def test_worked_example_does_what_the_guide_says_of_each_treatment() -> None:
    case, program = compile_case(example(), "pph_demo.yaml")

    def loss_per_minute(team: list[tuple[float, str, dict[str, object]]], at_s: float) -> float:
        driver = CaseDriver(case, program)
        for when, action, args in team:
            driver.advance_to(when)
            driver.act("participant", action, args)
        driver.advance_to(at_s)
        before = driver.scenario.run.env.values["blood_loss"]
        driver.advance_to(at_s + 60)
        return driver.scenario.run.env.values["blood_loss"] - before

    massage = {"procedure": "uterine_massage"}
    txa = {"drug": "tranexamic_acid", "dose": 1, "route": "iv"}
    untreated = loss_per_minute([], 60)
    massaged = loss_per_minute([(1, "perform", massage)], 60)
    assert massaged == pytest.approx(untreated / 2)  # "halves the bleeding while performed"
    both = loss_per_minute([(1, "perform", massage), (2, "give", txa)], 600)
    assert both == pytest.approx(untreated * 0.35, rel=0.01)
    floor = loss_per_minute([(1, "perform", massage), (2, "give", txa), (3, "give", txa)], 600)
    assert floor == pytest.approx(untreated * 0.3, rel=0.01)  # "to 30 % at most"


def test_worked_example_error_message_is_the_one_documented() -> None:
    broken = example().replace('action: "give:oxytocin"', 'action: "give:oxytocine"')
    with pytest.raises(CaseError) as caught:
        compile_case(broken, "pph_demo.yaml")
    first = str(caught.value).split(" (allowed")[0]
    assert first in GUIDE.read_text()


@pytest.mark.parametrize("case_id", sorted(c.id for c in shipped_cases()))
def test_each_shipped_case_has_its_current_facilitator_guide(case_id: str) -> None:
    written = GUIDE.parent / "guides" / f"{case_id}.md"
    assert written.read_text() == facilitator_guide(load_case(case_id)), (
        f"regenerate it: grandrounds case guide {case_id} --out {written}"
    )
