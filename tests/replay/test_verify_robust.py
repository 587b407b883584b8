"""Verify is a report about whatever a log holds: it never raises, NaN equals NaN, and
an input the fresh room raises on is a divergence with its record index."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from netcode.views import Role
from replay.format import data_equal
from replay.reader import Session
from replay.synthetic import Bots, make_room
from replay.verify import verify
from replay.writer import SessionWriter
from rooms.records import MemoryRecorder, Record


def _write(records: list[Record], data_dir: Path, session_id: str) -> Session:
    with SessionWriter(data_dir, session_id, fsync=False) as writer:
        for record in records:
            writer.write(record)
    return Session.open(data_dir, session_id)


def _short_session(seconds: float = 3.0) -> list[Record]:
    recorder = MemoryRecorder()
    room = make_room(recorder, tick_hz=10, keyframe_seconds=1, checksum_every=5)
    Bots(room, participants=2).run(seconds)
    return recorder.records


def test_nan_equals_nan_when_records_are_compared() -> None:
    nan = float("nan")
    assert data_equal({"a": [nan, 1]}, {"a": [nan, 1]})
    assert data_equal((1, nan), [1, nan])
    assert not data_equal({"a": nan}, {"a": 1.0})
    assert not data_equal({"a": object()}, {"a": 1})


def test_an_intent_with_a_nan_argument_verifies_intact(tmp_path: Path) -> None:
    recorder = MemoryRecorder()
    room = make_room(recorder, tick_hz=10, keyframe_seconds=1, checksum_every=5)
    room.start()
    chair = room.join(Role.FACILITATOR, "Chair").id
    room.tick()
    room.submit(chair, 1, "chat", {"text": "hello"})
    room.submit(chair, 2, "chat", {"text": float("nan")})  # refused
    room.submit(chair, 3, "grab", {"obj": float("nan")})  # refused
    room.submit(chair, 4, "end", {"reason": "done"})
    room.tick()
    replies = [r.data["ok"] for r in recorder.records if r.kind == "reply"]
    assert replies == [True, False, False, True]
    report = verify(_write(recorder.records, tmp_path, "nan"))
    assert report.intact, report.lines()


def _forge(records: list[Record], extra: Record, tick: int) -> tuple[list[Record], int]:
    """`records` with `extra` recorded just before tick `tick` begins; its index."""
    at = next(i for i, r in enumerate(records) if r.kind == "tick" and r.tick == tick)
    return [*records[:at], replace(extra, tick=tick - 1), *records[at:]], at


def test_a_poisoned_input_is_a_divergence_not_a_traceback(tmp_path: Path) -> None:
    records = _short_session()
    chair = next(r.data["member"] for r in records if r.kind == "join")
    present = Record(
        "intent", 0, {"member": chair, "id": 99, "do": "present", "args": {"member": [1]}}
    )
    forged, at = _forge(records, present, 12)
    report = verify(_write(forged, tmp_path, "poisoned"))
    assert not report.intact and report.problems == []
    text = "\n".join(report.lines())
    assert "Traceback" not in text and "before the divergence" in text
    if report.resim.error is not None:  # a room that raises on it
        assert report.resim.error.startswith(f"record {at + 1} ")
    else:  # a room that refuses it on arrival: it records a refusal, not this intent
        assert report.divergence is not None and report.divergence.index == at


def test_an_input_the_room_cannot_take_is_a_divergence_at_its_record(tmp_path: Path) -> None:
    records = _short_session()
    broken = Record("intent", 0, {"member": 1, "do": "chat"})  # no id, no args
    forged, at = _forge(records, broken, 12)
    report = verify(_write(forged, tmp_path, "broken"))
    assert not report.intact and report.resim.error is not None
    assert report.resim.error.startswith(f"record {at} (tick 11, t=1.100s): re-simulating intent")
    assert f"re-simulation: {at} of {len(forged)} records" in "\n".join(report.lines())


def test_the_summary_says_how_much_was_resimulated(tmp_path: Path) -> None:
    records = _short_session()
    report = verify(_write(records, tmp_path, "whole"))
    assert report.intact
    line = next(x for x in report.lines() if x.startswith("re-simulation:"))
    assert f"{len(records)} of {len(records)} records (100%)" in line
    assert "ticks 0-" in line and "every recorded record again" in line


values: st.SearchStrategy[Any] = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats()
    | st.text(max_size=20)
    | st.binary(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(max_size=8) | st.integers(0, 50), inner, max_size=4)
    ),
    max_leaves=12,
)


@pytest.fixture(scope="module")
def short_records() -> list[Record]:
    return _short_session()


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_verify_never_raises_on_recorded_content(
    short_records: list[Record], tmp_path_factory: pytest.TempPathFactory, data: st.DataObject
) -> None:
    records = list(short_records)
    for _ in range(data.draw(st.integers(1, 3))):
        at = data.draw(st.integers(0, len(records) - 1))
        victim = records[at]
        if data.draw(st.booleans()):
            mutated = dict(victim.data)
            key = data.draw(st.sampled_from([*mutated, "extra"]) if mutated else st.just("x"))
            mutated[key] = data.draw(values)
        else:
            mutated = data.draw(st.dictionaries(st.text(max_size=6), values, max_size=3))
        kind = data.draw(
            st.sampled_from(
                [victim.kind, "intent", "op", "keyframe", "poses", "checksum", "tick", "mystery"]
            )
        )
        records[at] = replace(victim, kind=kind, data=mutated)
    session = _write(records, tmp_path_factory.mktemp("fuzz"), "fuzzed")
    report = verify(session)
    assert all(isinstance(line, str) for line in report.lines())
    assert report.lines()[-1] in ("INTACT", "NOT INTACT")
