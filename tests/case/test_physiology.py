"""The physiology model: dose kinetics and the direction of drug effects."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from rooms.case import load_case
from rooms.case.model import Kinetics
from rooms.case.physiology import STEP_S, ChangeCondition, Give, Physiology, Support, fraction


@st.composite
def kinetics(draw: st.DrawFn) -> Kinetics:
    onset, peak, end = sorted(draw(st.lists(st.floats(0, 5000), min_size=3, max_size=3)))
    return Kinetics(onset_s=onset, peak_s=peak, duration_s=max(end, peak + 1))


@given(kinetics(), st.floats(0, 20000), st.booleans())
def test_effect_fraction_is_bounded_and_shaped(k: Kinetics, age: float, infusion: bool) -> None:
    f = fraction(k, age, infusion)
    assert 0 <= f <= 1
    if age < k.onset_s:
        assert f == 0
    if age == k.peak_s:
        assert f == 1
    if age >= k.duration_s:
        assert f == (1 if infusion else 0)


@given(kinetics(), st.floats(0, 20000), st.floats(0.01, 4), st.floats(0.01, 4))
def test_bigger_dose_never_wears_off_sooner(
    k: Kinetics, age: float, small: float, big: float
) -> None:
    small, big = sorted((small, big))
    assert fraction(k, age, False, big) >= fraction(k, age, False, small)


def run(physio: Physiology, seconds: float) -> None:
    for _ in range(round(seconds / STEP_S)):
        physio.step()


def test_bigger_dose_bigger_effect_and_iv_acts_sooner_than_im() -> None:
    case = load_case("anaphylaxis")
    baseline = Physiology(case)
    im, iv, double = Physiology(case), Physiology(case), Physiology(case)
    for p in (baseline, im, iv, double):
        p.apply(ChangeCondition("anaphylaxis", progression_per_min=0))
    im.apply(Give("epinephrine", "im", 1.0))
    double.apply(Give("epinephrine", "im", 2.0))
    iv.apply(Give("epinephrine", "iv", 0.2))
    for p in (baseline, im, iv, double):
        run(p, 60)
    assert iv.values["sbp"] > im.values["sbp"] + 5
    for p in (baseline, im, double):
        run(p, 180)
    assert double.values["sbp"] > im.values["sbp"] > baseline.values["sbp"]
    assert im.severity["anaphylaxis"] < baseline.severity["anaphylaxis"]


def test_infusion_is_replaced_by_new_rate_and_stopped_by_zero() -> None:
    physio = Physiology(load_case("septic_shock_ed"))
    physio.apply(Give("norepinephrine", "ivinf", 1.0))
    physio.apply(Give("norepinephrine", "ivinf", 2.0))
    assert [d[2] for d in physio.doses] == [2.0]
    physio.apply(Give("norepinephrine", "ivinf", 0.0))
    assert physio.doses == []


def test_oxygen_relieves_hypoxaemia() -> None:
    case = load_case("paediatric_asthma")
    air, mask = Physiology(case), Physiology(case)
    mask.apply(Support("nonrebreather"))
    run(air, 120)
    run(mask, 120)
    assert mask.values["spo2"] > air.values["spo2"] + 5
