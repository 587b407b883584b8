"""Whatever a client sends, the case answers with a refusal or a change, never a crash."""

from __future__ import annotations

from typing import Any

import msgpack
from hypothesis import given, settings
from hypothesis import strategies as st

from netcode.views import ALL_VIEWS
from rooms.actions import IntentRefused
from rooms.case.actions import ACTIONS
from tests.case.harness import LEAD, TEAM, WATCHER, Run, compiled

values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=5,
)
names = st.sampled_from(["drug", "dose", "route", "region", "test", "device", "team",
                         "decision", "option", "text", "scale", "event", "signal", "value",
                         "for_s", "phase", "index", "item", "points", "procedure",
                         "comment"])  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from([TEAM, LEAD, WATCHER]),
    st.sampled_from([*sorted(ACTIONS), "fly"]),
    st.dictionaries(names, values, max_size=4),
)
def test_any_intent_is_applied_or_refused(actor: Any, action: str, args: Any) -> None:
    run = Run.start("paediatric_asthma")
    try:
        run.act(actor, action, **args)
    except IntentRefused as refusal:
        assert refusal.code and refusal.message
    run.advance(2)
    for op in run.world.drain():
        msgpack.packb(op.canonical)


def test_debrief_and_every_view_are_plain_data() -> None:
    case, _ = compiled("lap_chole_cvs")
    good = [(s.at_s, LEAD if s.by == "facilitator" else TEAM, s.do, s.args)
            for s in case.calibration["good"].team]  # fmt: skip
    run = Run.start("lap_chole_cvs").play(good, 1000)
    debrief = run.scenario.debrief()
    assert msgpack.unpackb(msgpack.packb(debrief), strict_map_key=False) == debrief
    for view in ALL_VIEWS:
        msgpack.packb(run.world.view_state(view), default=repr)
    for op in run.ops:
        msgpack.packb(op.canonical)
