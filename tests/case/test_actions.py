"""Clinical intents and facilitator controls, as each role sees their effect."""

from __future__ import annotations

from typing import Any

import pytest

from netcode.state import HIDDEN
from netcode.views import View
from rooms.actions import IntentRefused
from rooms.case.actions import ALL_ACTIONS
from tests.case.harness import LEAD, TEAM, WATCHER, Run


def entities(run: Run, view: View, kind: str) -> list[dict[str, Any]]:
    state = run.world.view_state(view)["e"]
    return [fields for k, fields in state.values() if k == kind]


def log(run: Run, view: View, channel: str) -> list[Any]:
    return list(run.world.view_state(view)["l"].get(channel, []))


def refused(run: Run, actor: Any, action: str, **args: Any) -> str:
    with pytest.raises(IntentRefused) as caught:
        run.act(actor, action, **args)
    assert caught.value.message
    return caught.value.code


def test_scenario_handles_clinical_intents_but_not_room_ones() -> None:
    run = Run.start("anaphylaxis")
    assert set(run.scenario.actions()) == ALL_ACTIONS
    assert not {"pause", "resume", "end", "chat", "grab", "release", "ask"} & ALL_ACTIONS


def test_roles_are_enforced() -> None:
    run = Run.start("anaphylaxis")
    assert refused(run, WATCHER, "give", drug="epinephrine", dose=0.5, route="im") == "forbidden"
    assert refused(run, TEAM, "override", signal="hr", value=30) == "forbidden"
    assert refused(run, LEAD, "examine", region="chest") == "forbidden"


def test_drug_orders_are_checked_against_the_case() -> None:
    run = Run.start("anaphylaxis")
    assert refused(run, TEAM, "give", drug="adrenalin", dose=0.5, route="im") == "unknown_drug"
    assert refused(run, TEAM, "give", drug="epinephrine", dose=5, route="im") == "bad_dose"
    assert refused(run, TEAM, "give", drug="epinephrine", dose=0.5, route="po") == "bad_route"
    assert refused(run, TEAM, "give", drug="epinephrine", dose="lots", route="im") == "bad_args"
    assert refused(run, TEAM, "give", drug="epinephrine", dose=True, route="im") == "bad_args"
    assert refused(run, TEAM, "order", test="mri_brain") == "unknown_test"
    assert refused(run, TEAM, "oxygen", device="hat") == "bad_device"


def test_per_kg_doses_are_checked_per_kg() -> None:
    run = Run.start("paediatric_asthma")  # 20 kg child
    assert refused(run, TEAM, "give", drug="magnesium_sulfate", dose=800, route="iv") == "bad_dose"
    run.act(TEAM, "give", drug="magnesium_sulfate", dose=40, route="iv")
    assert "800 total" in log(run, View.SPECTATOR, "case")[-1]["text"]


def test_answer_key_score_and_upcoming_events_are_facilitator_only() -> None:
    run = Run.start("septic_shock_ed")
    for view in (View.SPECTATOR, View.PARTICIPANT):
        for kind in ("answer_key", "director"):
            [fields] = entities(run, view, kind)
            assert set(fields.values()) == {HIDDEN}
    [director] = entities(run, View.FACILITATOR, "director")
    assert director["upcoming"][0]["event"] == "drowsier"
    [key] = entities(run, View.FACILITATOR, "answer_key")
    assert key["decisions"] == {"disposition": ["icu"]}
    [monitor] = entities(run, View.SPECTATOR, "monitor")
    assert monitor["hr"] is not HIDDEN


def test_live_score_follows_actions() -> None:
    run = Run.start("anaphylaxis")
    run.act(TEAM, "give", drug="epinephrine", dose=0.5, route="im")
    run.advance(1)
    [director] = entities(run, View.FACILITATOR, "director")
    assert director["score"]["earned"] == 35


def test_orders_are_pending_for_the_team_then_results_reach_everyone() -> None:
    run = Run.start("septic_shock_ed")
    run.act(TEAM, "order", test="lactate")
    assert refused(run, TEAM, "order", test="lactate") == "already_ordered"
    [team] = entities(run, View.PARTICIPANT, "team")
    assert [o["test"] for o in team["pending"]] == ["lactate"]
    assert entities(run, View.SPECTATOR, "team")[0]["pending"] is HIDDEN
    run.advance(89)
    assert entities(run, View.SPECTATOR, "result") == []
    run.advance(2)
    [result] = entities(run, View.SPECTATOR, "result")
    assert result["text"] == "Lactate 4.8 mmol/L"
    assert entities(run, View.PARTICIPANT, "team")[0]["pending"] == []


def test_reveal_reaches_participants_and_spectators_at_once() -> None:
    run = Run.start("septic_shock_ed")
    run.act(LEAD, "reveal", test="chest_xray")
    for view in (View.SPECTATOR, View.PARTICIPANT):
        [result] = entities(run, view, "result")
        assert result["test"] == "chest_xray"
    run.act(LEAD, "reveal", region="skin")
    assert "skin" in entities(run, View.SPECTATOR, "patient")[0]["findings"]


def test_examination_reveals_findings_and_events_update_them() -> None:
    run = Run.start("septic_shock_ed")
    run.act(TEAM, "examine", region="skin")
    assert "capillary refill 3" in run.one("patient")["findings"]["skin"]
    run.advance(481)  # no fluids by 8 minutes: the "drowsier" event
    assert "Mottled" in run.one("patient")["findings"]["skin"]


def test_override_shows_as_override_and_ends() -> None:
    run = Run.start("anaphylaxis")
    run.act(LEAD, "override", signal="spo2", value=72, for_s=10)
    monitor = run.monitor()
    assert monitor["spo2"] == 72 and monitor["overridden"] == ["spo2"]
    assert "spo2_low" in monitor["alarms"]
    entry = log(run, View.SPECTATOR, "case")[-1]
    assert entry["override"] is True and "facilitator override" in entry["text"]
    run.advance(12)
    assert run.monitor()["overridden"] == [] and run.monitor()["spo2"] != 72


def test_time_scale_speeds_up_case_time() -> None:
    run = Run.start("septic_shock_ed")
    run.act(LEAD, "time_scale", scale=4)
    run.advance(10)
    assert run.one("case")["time_scale"] == 4
    assert run.one("case")["time_s"] == 40
    assert refused(run, LEAD, "time_scale", scale=100) == "bad_args"


def test_phases_advance_and_inject_fires_events() -> None:
    run = Run.start("anaphylaxis")
    run.act(LEAD, "advance")
    assert run.one("case")["phase"] == "treatment"
    run.act(LEAD, "advance", phase="observation")
    assert refused(run, LEAD, "advance") == "bad_args"
    run.act(LEAD, "inject", event="biphasic")
    assert "urticaria" in log(run, View.SPECTATOR, "case")[-1]["text"]
    assert log(run, View.FACILITATOR, "director")[-1]["how"] == "inject"


def test_hints_and_notes_reach_the_team_not_spectators() -> None:
    run = Run.start("anaphylaxis")
    run.act(LEAD, "hint", index=0)
    run.act(LEAD, "hint", text="Think about the route.")
    run.act(TEAM, "note", text="Adrenaline drawn up")
    assert [h["text"] for h in log(run, View.PARTICIPANT, "hints")][1] == "Think about the route."
    assert log(run, View.SPECTATOR, "hints") == [] and log(run, View.SPECTATOR, "notes") == []
    assert log(run, View.PARTICIPANT, "notes")[0]["text"] == "Adrenaline drawn up"


def test_manual_rubric_items_are_scored_by_the_facilitator() -> None:
    run = Run.start("paediatric_asthma")
    assert refused(run, LEAD, "score", item="explains_plan", points=11) == "bad_args"
    assert refused(run, LEAD, "score", item="charm", points=1) == "unknown_item"
    run.act(LEAD, "score", item="respects_wishes", points=5)
    [director] = entities(run, View.FACILITATOR, "director")
    marks = {m["id"]: m["points"] for m in director["score"]["manual"]}
    assert marks["respects_wishes"] == 5 and director["score"]["earned"] == 5


def test_role_play_script_reaches_only_the_voice_actor() -> None:
    run = Run.start("paediatric_asthma")
    assert entities(run, View.PARTICIPANT, "character")[0]["brief"] is HIDDEN
    run.advance(46)
    [line] = log(run, View.FACILITATOR, "script")
    assert line["name"] == "Parent" and "never been this bad" in line["line"]
    assert log(run, View.PARTICIPANT, "script") == []
    run.act(TEAM, "give", drug="prednisolone", dose=1, route="po")
    run.advance(1)
    assert "gelatin" in log(run, View.FACILITATOR, "script")[-1]["line"]


def test_decisions_open_by_phase_and_are_final() -> None:
    run = Run.start("lap_chole_cvs")
    assert run.one("case")["stereo_video"]["layout"] == "side-by-side"
    assert refused(run, TEAM, "decide", decision="cvs_final", option="timeout") == "not_yet"
    run.advance(121)
    run.act(TEAM, "decide", decision="cvs_first_look", option="not_met")
    code = refused(run, TEAM, "decide", decision="cvs_first_look", option="met")
    assert code == "already_decided"
    assert refused(run, TEAM, "decide", decision="cvs_first_look", option="maybe") == (
        "unknown_option"
    )
    decision = next(
        f for f in entities(run, View.SPECTATOR, "decision") if f["id"] == "cvs_first_look"
    )
    assert decision["chosen"] == "not_met"


def test_help_arrives_after_its_delay() -> None:
    run = Run.start("septic_shock_ed")
    run.act(TEAM, "call_help", team="icu")
    assert refused(run, TEAM, "call_help", team="icu") == "already_called"
    run.advance(301)
    assert run.one("case")["phase"] == "handover"


def test_untreated_minute_costs_few_ops() -> None:
    run = Run.start("septic_shock_ed", hz=30)
    before = len(run.ops)
    run.advance(60)
    assert len(run.ops) - before < 60 * 8


def test_stopping_an_infusion_does_not_count_as_starting_it() -> None:
    run = Run.start("septic_shock_ed")
    run.act(TEAM, "give", drug="norepinephrine", dose=0, route="ivinf")
    run.advance(1)
    [director] = entities(run, View.FACILITATOR, "director")
    vasopressor = next(c for c in director["score"]["critical"] if c["id"] == "vasopressor")
    assert vasopressor["status"] == "pending"
    assert "stopped" in log(run, View.SPECTATOR, "case")[-1]["text"]
    assert refused(run, TEAM, "give", drug="epinephrine", dose=0, route="im") == "bad_dose"
