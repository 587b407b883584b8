"""The publisher's checksums, assembled from pieces kept between checksum ticks, are the
checksums every client computes from its whole view (docs/protocol.md, "Checksums")."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from netcode.codec import checksum
from netcode.state import CaseState
from netcode.view_checksums import ViewChecksums
from netcode.views import ALL_VIEWS, View

VALUES = st.one_of(
    st.none(),
    st.integers(-(2**40), 2**40),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=5),
    st.lists(st.floats(-10, 10), max_size=7),
    st.dictionaries(st.text(max_size=3), st.integers(-(2**40), 2**40), max_size=3),
)
FIELDS = st.sampled_from(["a", "b", "home", "ä"])
VIEWS = st.sampled_from(list(ALL_VIEWS))


@st.composite
def changes(draw: st.DrawFn) -> tuple[str, Any]:
    kind = draw(st.sampled_from(["create", "set", "set", "set", "delete", "log", "check"]))
    if kind == "create":
        return kind, (draw(st.dictionaries(FIELDS, VALUES, max_size=3)), draw(VIEWS))
    if kind == "set":
        return kind, (draw(st.integers(0, 20)), draw(FIELDS), draw(VALUES), draw(VIEWS))
    if kind == "delete":
        return kind, draw(st.integers(0, 20))
    if kind == "log":
        return kind, (draw(st.sampled_from(["events", "chat"])), draw(VALUES), draw(VIEWS))
    return kind, (
        draw(st.dictionaries(st.integers(1, 30), st.tuples(*[st.integers(-(2**31), 2**32)] * 4)))
    )


@settings(max_examples=200, deadline=None)
@given(st.lists(changes(), max_size=60))
def test_assembled_checksums_equal_the_whole_views_checksums(steps: list[tuple[str, Any]]) -> None:
    world = CaseState()
    sums = ViewChecksums(ALL_VIEWS)
    for kind, args in steps:
        eids = list(world.entity_ids())
        if kind == "create":
            world.create("thing", args[0], args[1])
        elif kind == "set" and eids:
            eid, name, value, vis = args
            world.set(eids[eid % len(eids)], name, value, vis if value is None else None)
        elif kind == "delete" and eids:
            world.delete(eids[args % len(eids)])
        elif kind == "log":
            world.log(*args)
        elif kind == "check":
            sums.note(world.drain())
            poses = dict(args)
            got = sums.compute(world, poses)
            for view in ALL_VIEWS:
                state = world.view_state(View(view))
                state["p"] = {eid: list(p) for eid, p in poses.items()}
                assert got[view] == checksum(state)
