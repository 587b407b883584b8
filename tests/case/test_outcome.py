"""The outcome is judged over the session, and stated honestly when it ended early."""

from __future__ import annotations

from rooms.case.driver import CaseDriver
from rooms.case.model import TeamStep
from tests.case.harness import compiled


def test_a_session_ended_after_two_minutes_is_not_judged_good() -> None:
    case, program = compiled("septic_shock_ed")
    driver = CaseDriver(case, program)
    report = driver.play([], 130)
    outcome = report.debrief["outcome"]
    assert outcome["judged"] is False and outcome["good"] is None and outcome["ended_early"]
    assert outcome["text"].startswith(
        "The session ended at 2:10 of a planned 30:00, too early to judge the outcome "
        "(judged from 15:00). So far: Lowest MAP "
    )
    assert outcome["measures"]["shock_s"]["name"] == "Time with MAP below 65"


def test_a_session_ended_after_the_judging_point_says_when_it_was_judged() -> None:
    case, program = compiled("septic_shock_ed")
    report = CaseDriver(case, program).play(list(case.calibration["good"].team), 1500)
    outcome = report.debrief["outcome"]
    assert outcome["judged"] and outcome["good"] and outcome["ended_early"]
    assert outcome["text"].endswith("(judged at 25:00 of a planned 30:00)")


def test_the_worst_of_the_session_counts_not_only_the_end() -> None:
    case, program = compiled("anaphylaxis")
    late = [
        TeamStep(at=540, do="give", drug="epinephrine", dose=0.5, route="im"),
        TeamStep(at=560, do="give", drug="epinephrine", dose=0.5, route="im"),
        TeamStep(at=600, do="give", drug="crystalloid", dose=12, route="iv"),
    ]
    driver = CaseDriver(case, program)
    report = driver.play(late, case.planned_s)
    outcome = report.debrief["outcome"]
    assert driver.scenario.run.env.values["anaphylaxis"] <= 0.2  # it ended well...
    assert outcome["measures"]["lowest_map"]["value"] < 45  # ...after a peri-arrest
    assert outcome["judged"] and outcome["good"] is False
    assert outcome["text"] == case.outcome.bad


def test_negative_scores_are_shown_as_they_are() -> None:
    case, program = compiled("anaphylaxis")
    harm = [TeamStep(at=40, do="give", drug="epinephrine", dose=0.5, route="iv")]
    score = CaseDriver(case, program).play(harm, case.planned_s).debrief["score"]
    assert score["earned"] < 0 and score["percent"] == round(
        100 * score["earned"] / score["max"], 1
    )
    assert score["percent"] < 0 and not score["passed"]
