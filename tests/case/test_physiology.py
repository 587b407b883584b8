"""The patient state model: kinetics, how effects combine, windows, amounts, procedures."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from rooms.case import CaseProgram, compile_case
from rooms.case.happenings import Happenings
from rooms.case.model import Kinetics
from rooms.case.physiology import STEP_S, Physiology, fraction
from rooms.case.program import VITALS
from tests.case.harness import compiled

BLEEDING_CASE = """
schema_version: 2
id: bleeding_lab
title: A bleeding model for tests
specialty: Test
setting: Test
duration_min: 30
summary: Blood loss that accumulates; treatments combine by rules.
notes: {guidelines: ["A synthetic model used by the test suite only"], objectives: [test]}
patient: {age: 30, sex: female, weight_kg: 70, history: Synthetic.}
complaint: Bleeding
exam: {abdomen: Soft.}
state:
  blood_loss:
    name: Cumulative blood loss
    unit: mL
    initial: 600
    min: 0
    rate: 100
    combine: {floor: 0.3}
  crystalloid_in:
    name: Crystalloid given
    unit: mL
    initial: 0
    min: 0
  tone:
    name: Uterine tone
    initial: 0.2
    min: 0
    max: 1
    combine: {saturation: 0.1}
vitals:
  baseline: {hr: 80, sbp: 120, dbp: 70, spo2: 98, rr: 14, temp: 36.8, etco2: 38}
  derive:
    hr: 80 + 0.03 * blood_loss
interventions:
  squeeze:
    name: Squeeze drug
    dose: {unit: mg, typical: 1, min: 0.1, max: 10}
    routes:
      iv: {onset_s: 0, peak_s: 1, duration_s: 86400}
    acts_on: {blood_loss: {factor: 0.5}}
  tone_drug:
    name: Tone drug
    dose: {unit: mg, typical: 1, min: 0.1, max: 10}
    routes:
      iv: {onset_s: 0, peak_s: 1, duration_s: 86400}
    acts_on: {tone: {rate: 0.1}}
  txa:
    name: Windowed drug
    dose: {unit: g, typical: 1, min: 0.5, max: 2}
    routes:
      iv: {onset_s: 0, peak_s: 1, duration_s: 86400}
    acts_on: {blood_loss: {factor: 0.8, window: 'since("birth") <= 3h'}}
  fluid:
    name: Fluid bolus
    kind: fluid
    dose: {unit: mL, typical: 500, min: 100, max: 1000}
    routes:
      iv: {onset_s: 0, peak_s: 600, duration_s: 1200}
    acts_on: {crystalloid_in: {amount: dose_total}}
procedures:
  massage:
    name: Bimanual uterine massage
    onset_s: 0
    peak_s: 10
    acts_on: {blood_loss: {factor: 0.5}}
investigations: {}
phases: [{id: one, title: One}]
events:
  birth: {at_s: 0, then: {narrate: Born.}}
rubric:
  critical:
    fluids: {action: "give:fluid", description: Fluids, points: 10}
outcome: {good: Good., bad: Bad., good_if: "blood_loss < 1500"}
"""


def lab() -> tuple[Physiology, Happenings, CaseProgram]:
    case, program = compile_case(BLEEDING_CASE, "bleeding.yaml")
    env = Happenings()
    env.values["t"] = 0.0
    env.values["weight"] = case.patient.weight_kg
    return Physiology(program, env), env, program


def advance(physio: Physiology, env: Happenings, seconds: float) -> None:
    for _ in range(round(seconds / STEP_S)):
        physio.step()
        env.values["t"] = physio.t


@st.composite
def kinetics(draw: st.DrawFn) -> Kinetics:
    onset, peak, end = sorted(draw(st.lists(st.floats(0, 5000), min_size=3, max_size=3)))
    return Kinetics(onset_s=onset, peak_s=peak, duration_s=max(end, peak + 1))


@given(kinetics(), st.floats(0, 20000), st.booleans())
def test_effect_fraction_is_bounded_and_shaped(k: Kinetics, age: float, held: bool) -> None:
    f = fraction(k, age, held)
    assert 0 <= f <= 1
    if age < k.onset_s:
        assert f == 0
    if age == k.peak_s:
        assert f == 1
    if age >= k.duration_s:
        assert f == (1 if held else 0)


@given(kinetics(), st.floats(0, 20000), st.floats(0.01, 4), st.floats(0.01, 4))
def test_bigger_dose_never_wears_off_sooner(
    k: Kinetics, age: float, small: float, big: float
) -> None:
    small, big = sorted((small, big))
    assert fraction(k, age, False, big) >= fraction(k, age, False, small)


def test_state_accumulates_at_its_own_rate() -> None:
    physio, env, _ = lab()
    advance(physio, env, 60)
    assert math.isclose(env.values["blood_loss"], 700, abs_tol=0.01)
    assert physio.vitals[0] > 80  # heart rate derives from the loss


def test_factors_multiply_and_stop_at_the_floor_never_running_backwards() -> None:
    physio, env, _ = lab()
    physio.give("squeeze", "iv", 1.0, 1, 1)
    advance(physio, env, 10)
    before = env.values["blood_loss"]
    advance(physio, env, 60)
    assert math.isclose(env.values["blood_loss"] - before, 50, rel_tol=0.01)  # halved
    for _ in range(10):  # ten more doses: the product would be 1/2048, the floor holds at 0.3
        physio.give("squeeze", "iv", 1.0, 1, 1)
    advance(physio, env, 10)
    before = env.values["blood_loss"]
    advance(physio, env, 60)
    assert math.isclose(env.values["blood_loss"] - before, 30, rel_tol=0.01)


def test_a_sustained_procedure_halves_the_rate_while_performed() -> None:
    physio, env, _ = lab()
    physio.perform("massage")
    assert physio.running("massage")
    advance(physio, env, 20)
    before = env.values["blood_loss"]
    advance(physio, env, 600)  # still acting ten minutes on
    assert math.isclose(env.values["blood_loss"] - before, 500, rel_tol=0.01)
    assert physio.stop("massage") and not physio.running("massage")
    advance(physio, env, 20)
    before = env.values["blood_loss"]
    advance(physio, env, 60)
    assert math.isclose(env.values["blood_loss"] - before, 100, rel_tol=0.01)


def test_additive_rates_saturate() -> None:
    physio, env, _ = lab()
    for _ in range(12):
        physio.give("tone_drug", "iv", 4.0, 4, 4)  # 12 x 0.4 per minute, saturating at 0.1
    advance(physio, env, 1)
    start = env.values["tone"]
    advance(physio, env, 60)
    assert 0.099 < env.values["tone"] - start <= 0.1 + 1e-9


def test_a_windowed_effect_acts_only_when_given_inside_its_window() -> None:
    early, env_early, _ = lab()
    late, env_late, _ = lab()
    env_early.fire("birth")
    env_late.fire("birth")
    early.give("txa", "iv", 1.0, 1, 1)
    advance(late, env_late, 3 * 3600 + 60)
    late.give("txa", "iv", 1.0, 1, 1)
    advance(early, env_early, 10)
    advance(late, env_late, 10)
    a, b = env_early.values["blood_loss"], env_late.values["blood_loss"]
    advance(early, env_early, 60)
    advance(late, env_late, 60)
    assert math.isclose(env_early.values["blood_loss"] - a, 80, rel_tol=0.01)
    assert math.isclose(env_late.values["blood_loss"] - b, 100, rel_tol=0.01)


def test_amounts_are_delivered_between_onset_and_peak_and_add_up() -> None:
    physio, env, _ = lab()
    physio.give("fluid", "iv", 2.0, 1000, 1000)
    advance(physio, env, 300)
    assert math.isclose(env.values["crystalloid_in"], 500, rel_tol=0.01)
    physio.give("fluid", "iv", 1.0, 500, 500)
    advance(physio, env, 600)
    assert math.isclose(env.values["crystalloid_in"], 1500, rel_tol=1e-6)
    advance(physio, env, 3000)
    assert physio.active == []  # both bags finished: nothing left to track


def test_bigger_dose_bigger_effect_and_iv_acts_sooner_than_im() -> None:
    _, program = compiled("anaphylaxis")

    def patient() -> tuple[Physiology, Happenings]:
        env = Happenings()
        return Physiology(program, env), env

    (baseline, b_env), (im, im_env), (iv, iv_env), (double, d_env) = (patient() for _ in "abcd")
    im.give("epinephrine", "im", 1.0, 0.5, 0.5)
    double.give("epinephrine", "im", 2.0, 1, 1)
    iv.give("epinephrine", "iv", 0.2, 0.1, 0.1)
    sbp = VITALS.index("sbp")
    for p, e in ((baseline, b_env), (im, im_env), (iv, iv_env), (double, d_env)):
        advance(p, e, 60)
    assert iv.vitals[sbp] > im.vitals[sbp] + 5
    for p, e in ((baseline, b_env), (im, im_env), (double, d_env)):
        advance(p, e, 180)
    assert double.vitals[sbp] > im.vitals[sbp] > baseline.vitals[sbp]
    assert im_env.values["anaphylaxis"] < b_env.values["anaphylaxis"]


def test_infusion_is_replaced_by_new_rate_and_stopped_by_zero() -> None:
    _, program = compiled("septic_shock_ed")
    physio = Physiology(program, Happenings())
    physio.give("norepinephrine", "ivinf", 1.0, 0.1, 7)
    physio.give("norepinephrine", "ivinf", 2.0, 0.2, 14)
    assert [a.factor for a in physio.active] == [2.0]
    physio.give("norepinephrine", "ivinf", 0.0, 0, 0)
    assert physio.active == []


def test_oxygen_relieves_hypoxaemia() -> None:
    _, program = compiled("paediatric_asthma")
    air_env, mask_env = Happenings(), Happenings()
    air, mask = Physiology(program, air_env), Physiology(program, mask_env)
    mask.support("nonrebreather")
    assert mask_env.values["o2"] == 0.7
    advance(air, air_env, 120)
    advance(mask, mask_env, 120)
    spo2 = VITALS.index("spo2")
    assert mask.vitals[spo2] > air.vitals[spo2] + 5
