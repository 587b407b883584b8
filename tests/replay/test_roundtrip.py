"""A recorded session reads back record for record, and `state_at` is the live state."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from netcode.views import ALL_VIEWS, View
from replay.format import data_equal
from replay.reader import Session
from tests.replay.conftest import Recorded


def test_reads_back_record_for_record(recorded: Recorded) -> None:
    session = Session.open(recorded.data_dir, recorded.session_id)
    got = list(session.records())
    assert len(got) == len(recorded.records)
    for want, have in zip(recorded.records, got, strict=True):
        assert (have.kind, have.tick) == (want.kind, want.tick)
        assert data_equal(have.data, want.data)
    assert session.problems == []
    assert session.sealed
    assert len(session.keyframe_ticks()) >= 5


def test_manifest_describes_the_session(recorded: Recorded) -> None:
    m = Session.open(recorded.data_dir, recorded.session_id).manifest
    assert m.status == "sealed"
    assert m.seed == 1 and m.tick_hz == 10 and m.case["name"] == "demo"
    assert len(m.participants) == 4 and m.end_tick == 201
    assert all(p["pseudonym"].startswith("p-") and "name" not in p for p in m.participants.values())
    assert m.records == len(recorded.records)


@settings(max_examples=40, deadline=None)
@given(tick=st.integers(min_value=0, max_value=201), view=st.sampled_from(ALL_VIEWS))
def test_state_at_equals_live_state(recorded: Recorded, tick: int, view: View) -> None:
    session = Session.open(recorded.data_dir, recorded.session_id)
    state = session.state_at(tick / 10, view)
    assert state.tick == tick
    if tick in recorded.live:
        assert state.case == recorded.live[tick][view]
        assert state.poses == recorded.poses[tick]


def test_records_from_a_tick_start_at_that_tick(recorded: Recorded) -> None:
    session = Session.open(recorded.data_dir, recorded.session_id)
    got = list(session.records(from_tick=55, to_tick=60))
    want = [r for r in recorded.records if 55 <= r.tick <= 60]
    assert [(r.kind, r.tick) for r in got] == [(r.kind, r.tick) for r in want]
    assert session.time_range() == (0.0, 20.1)
