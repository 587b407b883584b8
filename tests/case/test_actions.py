"""Clinical intents and facilitator controls, as each role sees their effect."""

from __future__ import annotations

from typing import Any

import pytest

from netcode.state import HIDDEN
from netcode.views import Role, View
from rooms.actions import IntentRefused
from rooms.case.actions import ACTIONS, FACILITATOR_ACTIONS, TEAM_ACTIONS
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
    assert run.scenario.actions() == ACTIONS
    assert not {"pause", "resume", "end", "chat", "grab", "release", "ask"} & set(ACTIONS)


def test_each_action_declares_roles_arguments_and_the_pause_rule() -> None:
    for name, spec in ACTIONS.items():
        assert spec.summary, name
        if name in TEAM_ACTIONS:
            assert spec.roles == {Role.PARTICIPANT} and not spec.while_paused, name
        else:
            assert name in FACILITATOR_ACTIONS
            assert spec.roles == {Role.FACILITATOR} and spec.while_paused, name
    assert {
        "examine",
        "order",
        "give",
        "stop",
        "perform",
        "oxygen",
        "call_help",
        "decide",
        "note",
    } == TEAM_ACTIONS


def test_roles_are_enforced() -> None:
    run = Run.start("anaphylaxis")
    assert refused(run, WATCHER, "give", drug="epinephrine", dose=0.5, route="im") == "forbidden"
    assert refused(run, TEAM, "override", signal="hr", value=30) == "forbidden"
    assert refused(run, LEAD, "examine", region="chest") == "forbidden"


@pytest.mark.parametrize(
    ("action", "args"),
    [
        ("give", {"drug": "epinephrine", "dose": 1e9, "route": "im"}),
        ("give", {"drug": "epinephrine", "dose": float("nan"), "route": "im"}),
        ("give", {"drug": "x" * 65, "dose": 1, "route": "im"}),
        ("note", {"text": "x" * 1001}),
        ("order", {"test": "tryptase", "extra": 1}),
        ("oxygen", {"device": "hat"}),
        ("decide", {"decision": ["position"], "option": "x"}),
    ],
)
def test_arguments_outside_their_model_never_reach_the_case(
    action: str, args: dict[str, Any]
) -> None:
    run = Run.start("anaphylaxis")
    before = run.scenario.snapshot()
    assert refused(run, TEAM, action, **args) == "bad_args"
    assert run.scenario.snapshot() == before


def test_drug_orders_are_checked_against_the_case() -> None:
    run = Run.start("anaphylaxis")
    assert refused(run, TEAM, "give", drug="adrenalin", dose=0.5, route="im") == "unknown_drug"
    assert refused(run, TEAM, "give", drug="epinephrine", dose=5, route="im") == "bad_dose"
    assert refused(run, TEAM, "give", drug="epinephrine", dose=0.5, route="po") == "bad_route"
    assert refused(run, TEAM, "give", drug="epinephrine", dose="lots", route="im") == "bad_args"
    assert refused(run, TEAM, "give", drug="epinephrine", dose=True, route="im") == "bad_args"
    assert refused(run, TEAM, "order", test="mri_brain") == "unknown_test"
    assert refused(run, TEAM, "perform", procedure="appendicectomy") == "unknown_procedure"


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
    assert director["state"]["septic_shock"] == 0.55
    [key] = entities(run, View.FACILITATOR, "answer_key")
    assert key["decisions"] == {"disposition": ["icu"]}
    assert key["calibration"]["none"]["promises"]
    assert key["quantities"]["septic_shock"]["name"] == "Septic shock severity"
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
    assert result["text"] == "Lactate 4.9 mmol/L"  # 1 + 7 x severity when the sample was taken
    assert result["values"] == [
        {"id": "lactate", "name": "Lactate", "value": 4.9, "unit": "mmol/L", "text": "4.9"}
    ]
    assert entities(run, View.PARTICIPANT, "team")[0]["pending"] == []


def test_reveal_reaches_participants_and_spectators_at_once() -> None:
    run = Run.start("septic_shock_ed")
    run.act(LEAD, "reveal", test="chest_xray")
    for view in (View.SPECTATOR, View.PARTICIPANT):
        [result] = entities(run, view, "result")
        assert result["test"] == "chest_xray"
    run.act(LEAD, "reveal", region="skin")
    [finding] = entities(run, View.SPECTATOR, "patient")[0]["findings"]
    assert finding["id"] == "skin" and finding["name"] == "Skin"


def test_examination_reveals_findings_and_events_update_them() -> None:
    run = Run.start("septic_shock_ed")
    run.act(TEAM, "examine", region="skin")
    assert "capillary refill 3" in run.one("patient")["findings"][0]["text"]
    run.advance(481)  # no fluids by 8 minutes: the "drowsier" event
    assert "Mottled" in run.one("patient")["findings"][0]["text"]


def test_an_override_changes_the_vital_for_all_but_only_the_facilitator_knows() -> None:
    run = Run.start("anaphylaxis")
    learners_log = log(run, View.PARTICIPANT, "case")
    run.act(LEAD, "override", signal="spo2", value=72, for_s=10)
    for view in (View.SPECTATOR, View.PARTICIPANT, View.FACILITATOR):
        [monitor] = entities(run, view, "monitor")
        assert monitor["spo2"] == 72 and "spo2_low" in monitor["alarms"]
        assert monitor["overridden"] == (["spo2"] if view is View.FACILITATOR else HIDDEN)
    assert log(run, View.PARTICIPANT, "case") == learners_log
    assert not any(
        "override" in str(e)
        for v in (View.SPECTATOR, View.PARTICIPANT)
        for ch in run.world.view_state(v)["l"].values()
        for e in ch
    )
    [entry] = [e for e in log(run, View.FACILITATOR, "director") if e["kind"] == "override"]
    assert entry["signal"] == "spo2" and entry["value"] == 72
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
    assert refused(run, LEAD, "advance") == "last_phase"
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
    assert refused(run, LEAD, "score", item="explains_plan", points=11) == "too_many_points"
    assert refused(run, LEAD, "score", item="explains_plan", points=1.5) == "bad_args"
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
    statuses = {f["id"]: f["status"] for f in entities(run, View.SPECTATOR, "decision")}
    assert statuses["cvs_final"] == "waiting"
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
    assert decision["chosen"] == "not_met" and decision["status"] == "answered"


def test_a_decision_closes_when_its_phase_ends_unanswered() -> None:
    run = Run.start("lap_chole_cvs")
    run.advance(121)
    first_look = next(
        f for f in entities(run, View.SPECTATOR, "decision") if f["id"] == "cvs_first_look"
    )
    assert first_look["status"] == "open"
    run.advance(600)  # the bleed at 12 minutes moves the case to the bleeding phase
    first_look = next(
        f for f in entities(run, View.SPECTATOR, "decision") if f["id"] == "cvs_first_look"
    )
    assert first_look["status"] == "closed"
    assert refused(run, TEAM, "decide", decision="cvs_first_look", option="not_met") == "closed"


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
    assert refused(run, TEAM, "give", drug="norepinephrine", dose=0, route="ivinf") == (
        "not_running"
    )
    run.act(TEAM, "give", drug="norepinephrine", dose=0.1, route="ivinf")
    run.advance(1)
    assert [r["id"] for r in entities(run, View.PARTICIPANT, "team")[0]["running"]] == [
        "norepinephrine"
    ]
    run.act(TEAM, "give", drug="norepinephrine", dose=0, route="ivinf")
    assert "stopped" in log(run, View.SPECTATOR, "case")[-1]["text"]
    assert entities(run, View.PARTICIPANT, "team")[0]["running"] == []
    assert refused(run, TEAM, "give", drug="epinephrine", dose=0, route="im") == "bad_dose"


def test_an_infusion_whose_dose_range_excludes_zero_can_still_be_stopped() -> None:
    run = Run.start("paediatric_asthma")
    run.act(TEAM, "give", drug="salbutamol_infusion", dose=1, route="ivinf")
    assert refused(run, TEAM, "give", drug="salbutamol_infusion", dose=0.1, route="ivinf") == (
        "bad_dose"
    )
    run.act(TEAM, "give", drug="salbutamol_infusion", dose=0, route="ivinf")
    run.act(TEAM, "give", drug="salbutamol_infusion", dose=2, route="ivinf")
    run.act(TEAM, "stop", item="salbutamol_infusion")
    assert refused(run, TEAM, "stop", item="salbutamol_infusion") == "not_running"
    assert run.scenario.run.env.count("stop:salbutamol_infusion") == 2


def test_the_catalog_lists_what_the_team_can_choose_in_plain_words() -> None:
    run = Run.start("septic_shock_ed")
    assert entities(run, View.SPECTATOR, "catalog") == [
        dict.fromkeys(entities(run, View.PARTICIPANT, "catalog")[0], HIDDEN)
    ]
    [catalog] = entities(run, View.PARTICIPANT, "catalog")
    assert set(catalog) >= {"examine", "tests", "drugs", "oxygen", "procedures", "help"}
    assert {"id": "abdomen", "name": "Abdomen"} in catalog["examine"]
    lactate = next(t for t in catalog["tests"] if t["id"] == "lactate")
    assert lactate["name"] == "Venous lactate (point of care)" and lactate["kind"] == "bedside"
    noradrenaline = next(d for d in catalog["drugs"] if d["id"] == "norepinephrine")
    assert noradrenaline["unit"] == "mcg/kg/min" and noradrenaline["per_kg"]
    assert noradrenaline["infusion"] and noradrenaline["typical"] == 0.1
    assert noradrenaline["routes"] == [{"id": "ivinf", "name": "Intravenous infusion"}]
    assert {"id": "nasal_cannula", "name": "Nasal cannula"} in catalog["oxygen"]
    assert {"id": "icu", "name": "Critical care outreach registrar"} in catalog["help"]
    for group in catalog.values():
        for item in group:
            assert "_" not in item["name"] and not item["name"][:1].islower(), item


def test_oxygen_and_results_use_plain_names() -> None:
    run = Run.start("septic_shock_ed")
    run.act(TEAM, "oxygen", device="nasal_cannula")
    assert run.one("patient")["oxygen"] == "Nasal cannula"
    assert "nasal_cannula" not in log(run, View.SPECTATOR, "case")[-1]["text"]
    run.act(LEAD, "reveal", test="fbc")
    [result] = entities(run, View.SPECTATOR, "result")
    assert [v["name"] for v in result["values"]] == ["White cell count", "Haemoglobin", "Platelets"]
    assert "Wcc" not in result["text"] and "{" not in result["text"]


def test_a_test_ordered_again_updates_its_one_result() -> None:
    run = Run.start("septic_shock_ed")
    for _ in range(3):
        run.act(TEAM, "order", test="lactate")
        run.advance(95)
    [result] = entities(run, View.SPECTATOR, "result")
    assert result["text"].startswith("Lactate")
    assert run.scenario.run.env.count("order:lactate") == 3
