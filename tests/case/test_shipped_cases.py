"""Every shipped case keeps the promises its guide makes, for the scripted teams in
its `calibration`: a good team, a team that does nothing and a harmful one."""

from __future__ import annotations

import pytest
import yaml

from rooms.case import load_case, privacy, shipped_cases
from rooms.case.driver import calibrate
from rooms.case.loader import shipped_case_files
from tests.case.harness import compiled

CASES = {c.id: c for c in shipped_cases()}
TEAMS = ("good", "none", "harmful")


def test_the_required_case_mix_ships() -> None:
    assert {
        "septic_shock_ed",
        "anaphylaxis",
        "paediatric_asthma",
        "inferior_stemi",
        "lap_chole_cvs",
        "trauma_haemorrhage",
        "dka",
    } <= set(CASES)
    assert any(c.media.stereo_video for c in CASES.values())
    assert any(c.roleplay and c.rubric.manual for c in CASES.values())
    assert len({c.specialty for c in CASES.values()}) == len(CASES)


@pytest.mark.parametrize("case_id", sorted(CASES))
def test_case_notes_cite_guidelines_and_patient_is_not_identifiable(case_id: str) -> None:
    case = CASES[case_id]
    assert case.notes.guidelines
    assert all(len(g) > 20 for g in case.notes.guidelines)
    path = next(p for p in shipped_case_files() if p.stem == case_id)
    assert privacy.lint(yaml.safe_load(path.read_text())) == []


@pytest.mark.parametrize("case_id", sorted(CASES))
def test_every_case_calibrates_a_good_an_idle_and_a_harmful_team(case_id: str) -> None:
    case = CASES[case_id]
    assert set(TEAMS) <= set(case.calibration)
    good, none, harmful = (case.calibration[t] for t in TEAMS)
    assert good.outcome == "good" and good.score.passed and good.penalties == []
    assert none.team == [] and none.outcome == "bad" and none.promises
    assert harmful.penalties
    assert all(c.promises for c in (good, none, harmful))


@pytest.mark.parametrize(("case_id", "team"), [(c, t) for c in sorted(CASES) for t in TEAMS])
def test_the_scripted_team_gets_what_the_guide_promises(case_id: str, team: str) -> None:
    case, program = compiled(case_id)
    report = calibrate(case, program, team)
    broken = [f"{v.what}: {v.detail}" for v in report.verdicts if not v.kept]
    assert broken == [], f"{case_id} {team}"
    debrief = report.run.debrief
    if team == "good":
        assert debrief["missed"] == [] and debrief["late"] == [] and debrief["harmful"] == []
        assert all(t is not None for t in debrief["time_to_intervention"].values())
    if team == "none":
        assert debrief["score"]["earned"] == 0
        assert debrief["outcome"]["text"] == case.outcome.bad
    if team == "harmful":
        assert any(e["kind"] == "harmful" for e in debrief["timeline"])


def test_load_case_by_id_and_by_path_agree() -> None:
    path = next(p for p in shipped_case_files() if p.stem == "anaphylaxis")
    assert load_case("anaphylaxis") == load_case(path)
