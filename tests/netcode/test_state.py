"""CaseState: the op log's bookkeeping, log tails per view, export and restore."""

from __future__ import annotations

import copy
import pickle

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netcode.state import HIDDEN, LOG_TAIL, CaseState, StateError
from netcode.views import ALL_VIEWS, View
from tests.netcode.sync_helpers import SLOW_OK

VIEWS = st.sampled_from(ALL_VIEWS)
VALUES = (
    st.none()
    | st.integers(-100, 100)
    | st.text(max_size=4)
    | st.lists(st.integers(0, 3), max_size=2)
)


def random_changes(data: st.DataObject, world: CaseState, count: int) -> None:
    for _ in range(count):
        eids = list(world.entity_ids())
        choice = data.draw(st.sampled_from(["create", "set", "delete", "log"]))
        if choice == "create" or not eids:
            world.create(
                "k", data.draw(st.dictionaries(st.sampled_from("abc"), VALUES)), data.draw(VIEWS)
            )
        elif choice == "set":
            world.set(
                data.draw(st.sampled_from(eids)),
                data.draw(st.sampled_from("abcd")),
                data.draw(VALUES),
                data.draw(st.none() | VIEWS),
            )
        elif choice == "delete":
            world.delete(data.draw(st.sampled_from(eids)))
        else:
            world.log(
                data.draw(st.sampled_from(["chat", "q"])), data.draw(VALUES), data.draw(VIEWS)
            )


@settings(max_examples=60, deadline=None, suppress_health_check=SLOW_OK)
@given(st.data())
def test_export_and_restore_rebuild_every_view_and_continue_identically(
    data: st.DataObject,
) -> None:
    world = CaseState()
    random_changes(data, world, data.draw(st.integers(0, 80)))
    world.drain()
    restored = CaseState.restore(copy.deepcopy(world.export()))
    assert restored.op_seq == world.op_seq
    for view in ALL_VIEWS:
        assert restored.view_state(view) == world.view_state(view)
    for state in (world, restored):  # the same changes make the same ops on both
        eid = state.create("after", {"a": 1}, View.PARTICIPANT)
        state.set(eid, "a", 2, View.SPECTATOR)
        state.log("chat", "again")
        for other in list(state.entity_ids())[:2]:
            state.delete(other)
    assert [(op.seq, op.canonical, op.per_view) for op in restored.drain()] == [
        (op.seq, op.canonical, op.per_view) for op in world.drain()
    ]


def test_ops_are_numbered_and_a_set_to_the_same_value_makes_none() -> None:
    world = CaseState(first_op_seq=100)
    eid = world.create("k", {"a": 1})
    world.set(eid, "a", 1)
    world.set(eid, "a", 2)
    world.log("chat", "hi")
    world.delete(eid)
    ops = world.drain()
    assert [op.seq for op in ops] == [101, 102, 103, 104]
    assert [op.canonical[0] for op in ops] == ["new", "set", "log", "del"]
    assert world.drain() == []
    with pytest.raises(StateError):
        world.set(eid, "a", 3)
    with pytest.raises(StateError):
        world.delete(eid)


def test_each_view_keeps_the_last_fifty_entries_it_may_see() -> None:
    world = CaseState()
    for i in range(LOG_TAIL + 20):
        world.log("chat", i, View.FACILITATOR if i % 2 else View.SPECTATOR)
    assert world.log_tail("chat", View.FACILITATOR) == list(range(20, LOG_TAIL + 20))
    assert world.log_tail("chat", View.SPECTATOR) == list(range(LOG_TAIL + 20))[::2][-LOG_TAIL:]
    assert world.view_state(View.PARTICIPANT)["l"]["chat"][-1] == LOG_TAIL + 18


def test_hidden_is_one_value_that_survives_copies_and_pickles() -> None:
    assert copy.deepcopy(HIDDEN) is HIDDEN
    assert pickle.loads(pickle.dumps({"f": HIDDEN}))["f"] is HIDDEN
    assert type(HIDDEN)() is HIDDEN
    assert repr(HIDDEN) == "HIDDEN"
