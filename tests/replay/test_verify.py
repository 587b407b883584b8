"""verify re-simulates the session: a tampered intent is caught and the divergence named."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from replay.reader import Session
from replay.verify import verify
from replay.writer import SessionWriter
from rooms.records import Record
from tests.replay.conftest import Recorded


def _rewrite(records: list[Record], data_dir: Path, session_id: str) -> Session:
    with SessionWriter(data_dir, session_id, fsync=False) as writer:
        for record in records:
            writer.write(record)
    return Session.open(data_dir, session_id)


def test_a_recorded_room_verifies_intact(recorded: Recorded) -> None:
    report = verify(Session.open(recorded.data_dir, recorded.session_id))
    assert report.intact, report.lines()
    assert report.resimulated and report.checksums > 30 and report.keyframes > 5


def test_a_tampered_intent_is_caught_by_resimulation(recorded: Recorded, tmp_path: Path) -> None:
    records = list(recorded.records)
    at = next(i for i, r in enumerate(records) if r.kind == "intent")
    args = dict(records[at].data["args"])
    if "text" in args:
        args["text"] = "tampered"
    else:
        args["obj"] = args["obj"] + 1
    records[at] = replace(records[at], data={**records[at].data, "args": args})
    session = _rewrite(records, tmp_path, "tampered")

    report = verify(session)

    assert not report.intact
    assert report.problems == []  # every frame and state checksum is sound...
    divergence = report.divergence  # ...but the inputs do not make the recorded outputs
    assert divergence is not None
    assert divergence.index > at
    assert divergence.tick == records[at].tick + 1
    assert divergence.expected == records[divergence.index]
    assert divergence.got is not None and divergence.got != divergence.expected
    text = divergence.describe()
    assert f"record {divergence.index}" in text and f"tick {divergence.tick}" in text


def test_a_tampered_output_fails_its_state_checksum(recorded: Recorded, tmp_path: Path) -> None:
    records = list(recorded.records)
    at = next(
        i
        for i, r in enumerate(records)
        if r.kind == "op" and r.data["op"][0] == "set" and r.tick > 30
    )
    op = list(records[at].data["op"])
    op[3] = "forged"
    records[at] = replace(records[at], data={**records[at].data, "op": op})
    report = verify(_rewrite(records, tmp_path, "forged"), resim=False)
    assert not report.intact
    assert any("checksum" in p or "keyframe" in p for p in report.problems), report.problems
