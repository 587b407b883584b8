"""Every shipped case teaches what it claims: good care works, neglect and harm show."""

from __future__ import annotations

import pytest
import yaml

from rooms.case import Case, load_case, privacy, shipped_cases
from rooms.case.loader import shipped_case_files
from tests.case.harness import Run
from tests.case.scripts import GOOD, HARM, Step

CASES = {c.id: c for c in shipped_cases()}


def _end(case: Case) -> float:
    return case.duration_min * 60


def test_the_required_case_mix_ships() -> None:
    assert {"septic_shock_ed", "anaphylaxis", "paediatric_asthma", "inferior_stemi",
            "lap_chole_cvs"} <= set(CASES)  # fmt: skip
    assert any(c.media.stereo_video for c in CASES.values())
    assert any(c.roleplay and c.rubric.manual for c in CASES.values())
    assert set(GOOD) == set(CASES)


@pytest.mark.parametrize("case_id", sorted(CASES))
def test_case_notes_cite_guidelines_and_patient_is_not_identifiable(case_id: str) -> None:
    case = CASES[case_id]
    assert case.notes.guidelines
    assert all(len(g) > 20 for g in case.notes.guidelines)
    path = next(p for p in shipped_case_files() if p.stem == case_id)
    assert privacy.lint(yaml.safe_load(path.read_text())) == []


@pytest.mark.parametrize("case_id", sorted(CASES))
def test_good_team_reaches_good_outcome_with_high_score(case_id: str) -> None:
    run = Run.start(case_id).play(GOOD[case_id], _end(CASES[case_id]))
    debrief = run.scenario.debrief()
    assert debrief["outcome"]["good"], debrief["outcome"]
    assert debrief["score"]["percent"] >= 90
    assert debrief["score"]["passed"]
    assert debrief["missed"] == [] and debrief["late"] == [] and debrief["harmful"] == []
    assert run.one("patient")["status"] == "stable"
    assert all(t is not None for t in debrief["time_to_intervention"].values())


@pytest.mark.parametrize("case_id", sorted(CASES))
def test_team_that_does_nothing_deteriorates_along_expected_course(case_id: str) -> None:
    case = CASES[case_id]
    assert case.course, "each case documents its untreated course"
    debrief = Run.start(case_id).play([], _end(case)).scenario.debrief()
    assert not debrief["outcome"]["good"]
    assert debrief["outcome"]["text"] == case.outcome.bad
    assert debrief["score"]["earned"] == 0
    columns = debrief["vitals"]["columns"]
    rows = debrief["vitals"]["rows"]
    for point in case.course:
        value = next(r for r in reversed(rows) if r[0] <= point.at_s)[columns.index(point.signal)]
        if point.below is not None:
            assert value < point.below, (point, value)
        if point.above is not None:
            assert value > point.above, (point, value)


def _with_harm(case_id: str) -> tuple[list[Step], str]:
    harm, penalty = HARM[case_id]
    decision = harm[3].get("decision")
    script = [s for s in GOOD[case_id] if not (decision and s[3].get("decision") == decision)]
    return [*script, harm], penalty


@pytest.mark.parametrize("case_id", sorted(CASES))
def test_harmful_action_is_penalised_and_shows_in_debrief(case_id: str) -> None:
    case = CASES[case_id]
    good = Run.start(case_id).play(GOOD[case_id], _end(case)).scenario.debrief()
    script, penalty = _with_harm(case_id)
    debrief = Run.start(case_id).play(script, _end(case)).scenario.debrief()
    assert [h["id"] for h in debrief["harmful"]] == [penalty]
    assert debrief["harmful"][0]["points"] == -case.rubric.penalties[penalty].points
    assert any(e["kind"] == "harmful" and e["id"] == penalty for e in debrief["timeline"])
    assert debrief["score"]["earned"] <= good["score"]["earned"] - case.rubric.penalties[
        penalty
    ].points


def test_load_case_by_id_and_by_path_agree() -> None:
    path = next(p for p in shipped_case_files() if p.stem == "anaphylaxis")
    assert load_case("anaphylaxis") == load_case(path)
