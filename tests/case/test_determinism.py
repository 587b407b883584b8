"""Same case, seed and inputs give the same ops; a snapshot continues exactly.

Replay re-simulation and keyframes rely on both properties.
"""

from __future__ import annotations

import contextlib
from typing import Any

import msgpack
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from netcode.state import CaseState
from rooms.actions import IntentRefused
from rooms.case import Case, CaseScenario, shipped_cases
from rooms.case.program import SIGNALS
from rooms.scenario import Actor
from tests.case.harness import LEAD, TEAM, WATCHER, Run, compiled

CASES = {c.id: c for c in shipped_cases()}

Intent = tuple[Actor, str, dict[str, Any]]


def vocabulary(case: Case) -> list[Intent]:
    """Valid and invalid intents a team or facilitator could send in `case`."""
    out: list[Intent] = []
    for drug_id, drug in case.interventions.items():
        for route in drug.routes:
            for dose in (drug.dose.typical, drug.dose.max, drug.dose.max * 3):
                out.append((TEAM, "give", {"drug": drug_id, "dose": dose, "route": route}))
    out += [
        (TEAM, "give", {"drug": "unobtainium", "dose": 1, "route": "iv"}),
        (WATCHER, "give", {"drug": "crystalloid", "dose": 20, "route": "iv"}),
    ]
    out += [
        (TEAM, "give", {"drug": d, "dose": 0, "route": "ivinf"})
        for d, drug in case.interventions.items()
        if drug.infusion
    ]
    out += [(TEAM, "perform", {"procedure": p}) for p in case.procedures]
    out += [(TEAM, "stop", {"item": p}) for p in case.procedures]
    out += [(TEAM, "examine", {"region": r}) for r in case.exam]
    out += [(TEAM, "order", {"test": t}) for t in case.investigations]
    out += [(TEAM, "oxygen", {"device": d}) for d in ("nonrebreather", "none", "ett", "hat")]
    out += [(TEAM, "call_help", {"team": t}) for t in case.help]
    out += [
        (TEAM, "decide", {"decision": d, "option": o})
        for d, dp in case.decisions.items()
        for o in dp.options
    ]
    out += [(TEAM, "note", {"text": "reassessed"}), (TEAM, "inject", {"event": "x"})]
    out += [(LEAD, "time_scale", {"scale": s}) for s in (0.5, 2, 4)]
    out += [(LEAD, "inject", {"event": e}) for e in case.events]
    out += [
        (LEAD, "override", {"signal": "hr", "value": 150, "for_s": 20}),
        (LEAD, "override", {"signal": "map", "value": 40}),
        (LEAD, "override", {"signal": "map", "value": None}),
        (LEAD, "advance", {}),
        (LEAD, "hint", {"text": "think again"}),
    ]
    out += [(LEAD, "reveal", {"test": t}) for t in case.investigations]
    out += [(LEAD, "score", {"item": i, "points": 5}) for i in case.rubric.manual]
    return out


@st.composite
def sessions(draw: st.DrawFn) -> tuple[str, int, list[tuple[float, Intent]]]:
    case_id = draw(st.sampled_from(sorted(CASES)))
    seed = draw(st.integers(0, 2**32))
    intents = st.sampled_from(vocabulary(CASES[case_id]))
    steps = draw(st.lists(st.tuples(st.floats(0, 40), intents), max_size=14))
    return case_id, seed, steps


def drive(run: Run, steps: list[tuple[float, Intent]]) -> None:
    for gap, (actor, action, args) in steps:
        run.advance(gap)
        with contextlib.suppress(IntentRefused):
            run.act(actor, action, **args)


def canonical(run: Run) -> list[Any]:
    return [(op.seq, op.canonical) for op in run.ops]


FAST = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(sessions())
def test_same_seed_and_inputs_give_identical_ops(session: Any) -> None:
    case_id, seed, steps = session
    first, second = Run.start(case_id, seed), Run.start(case_id, seed)
    drive(first, steps)
    drive(second, steps)
    assert canonical(first) == canonical(second)
    assert first.scenario.debrief() == second.scenario.debrief()


@FAST
@given(sessions(), st.integers(0, 14))
def test_snapshot_restore_mid_case_continues_identically(session: Any, split: int) -> None:
    case_id, seed, steps = session
    original = Run.start(case_id, seed)
    drive(original, steps[:split])
    snapshot = msgpack.unpackb(msgpack.packb(original.scenario.snapshot()), strict_map_key=False)
    world = msgpack.unpackb(msgpack.packb(original.world.export()), strict_map_key=False)
    kase, program = compiled(case_id)
    fresh = CaseScenario(kase, 0, program)
    restored = Run(fresh, CaseState.restore(world), tick=original.tick)
    restored.scenario.restore(snapshot)
    assert restored.scenario.snapshot() == original.scenario.snapshot()
    mark = len(original.ops)
    drive(original, steps[split:])
    drive(restored, steps[split:])
    original.advance(5)
    restored.advance(5)
    assert canonical(restored) == canonical(original)[mark:]
    assert restored.scenario.debrief() == original.scenario.debrief()


def test_seed_changes_only_the_noise() -> None:
    a = Run.start("septic_shock_ed", seed=1)
    b = Run.start("septic_shock_ed", seed=2)
    a.advance(120)
    b.advance(120)
    assert canonical(a) != canonical(b)
    hr_a, hr_b = a.monitor()["hr"], b.monitor()["hr"]
    assert abs(hr_a - hr_b) <= 8


def test_published_vitals_are_rounded_plain_numbers() -> None:
    run = Run.start("anaphylaxis")
    run.advance(30)
    monitor = run.monitor()
    for signal in SIGNALS:
        assert type(monitor[signal]) is (float if signal == "temp" else int)
    assert monitor["temp"] == round(monitor["temp"], 1)
