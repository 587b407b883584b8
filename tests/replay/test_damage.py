"""Damage is never silent: a cut log loses only what follows the cut, and says where;
a flipped byte is located; repair seals a torn session so verify accepts it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from replay import format as fmt
from replay.errors import ReplayError
from replay.layout import segment_files
from replay.reader import Session
from replay.repair import repair
from replay.verify import verify
from tests.replay.conftest import Recorded, record_session


@pytest.fixture(scope="module")
def unsealed(tmp_path_factory: pytest.TempPathFactory) -> Recorded:
    """A session whose writer flushed but never closed: the last segment is raw."""
    return record_session(tmp_path_factory.mktemp("open"), seconds=12, close=False)


def _copy(rec: Recorded, to: Path) -> tuple[Path, Path]:
    target = to / "sessions" / rec.session_id
    shutil.rmtree(to, ignore_errors=True)
    shutil.copytree(rec.data_dir / "sessions" / rec.session_id, target)
    raw = [f for _, f, sealed in segment_files(target) if not sealed]
    assert len(raw) == 1 and len(segment_files(target)) > 2
    return target, raw[0]


def _frame_starts(buf: bytes) -> list[int]:
    return [f.offset for f in fmt.iter_frames(buf) if isinstance(f, fmt.Frame)]


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(cut=st.floats(min_value=0.0, max_value=1.0))
def test_a_cut_loses_only_what_follows_and_is_located(
    unsealed: Recorded, tmp_path: Path, cut: float
) -> None:
    target, raw = _copy(unsealed, tmp_path / "cut")
    buf = raw.read_bytes()
    offset = int(cut * len(buf))
    raw.write_bytes(buf[:offset])
    starts = _frame_starts(buf)
    lost_from = sum(1 for s in starts if s + 8 <= len(buf) and _ends(buf, s) <= offset)
    before = sum(len(_frame_starts_of(target, n)) for n in range(_raw_no(raw)))
    session = Session(target)
    got = list(session.records())
    assert len(got) == before + lost_from
    assert [(r.kind, r.tick) for r in got] == [
        (r.kind, r.tick) for r in unsealed.records[: len(got)]
    ]
    boundary = offset in starts or offset == len(buf) or offset == fmt.HEADER.size
    if boundary:
        assert session.problems == []
    else:
        (problem,) = session.problems
        assert problem.code == "torn-tail"
        assert problem.segment == _raw_no(raw)
        assert problem.offset == (starts[lost_from] if offset >= fmt.HEADER.size else 0)
        assert problem.record_index == len(got)


def _ends(buf: bytes, start: int) -> int:
    return start + 8 + int.from_bytes(buf[start : start + 4], "little")


def _raw_no(raw: Path) -> int:
    return int(raw.name[4:10])


def _frame_starts_of(target: Path, n: int) -> list[int]:
    session = Session(target)
    return [f.offset for seg, f in session.frames() if seg == n]


def test_a_flipped_byte_mid_log_is_located(unsealed: Recorded, tmp_path: Path) -> None:
    target, raw = _copy(unsealed, tmp_path / "flip")
    buf = bytearray(raw.read_bytes())
    starts = _frame_starts(bytes(buf))
    victim = starts[len(starts) // 2]
    buf[victim + 10] ^= 0x40
    raw.write_bytes(bytes(buf))
    session = Session(target)
    (problem,) = session.problems
    assert (problem.code, problem.segment, problem.offset) == (
        "corrupt-record",
        _raw_no(raw),
        victim,
    )
    with pytest.raises(ReplayError) as err:
        list(session.records())
    assert err.value.code == "corrupt-record"
    assert f"byte {victim}" in err.value.message
    report = verify(session, resim=False)
    assert not report.intact
    with pytest.raises(ReplayError) as refused:
        repair(target)
    assert refused.value.code == "corrupt-record"


def test_a_flipped_length_byte_is_corruption_not_a_torn_tail(
    unsealed: Recorded, tmp_path: Path
) -> None:
    target, raw = _copy(unsealed, tmp_path / "len")
    buf = bytearray(raw.read_bytes())
    victim = _frame_starts(bytes(buf))[3]
    buf[victim + 2] ^= 0x01
    raw.write_bytes(bytes(buf))
    (problem,) = Session(target).problems
    assert (problem.code, problem.offset) == ("corrupt-record", victim)


def test_a_damaged_sealed_segment_is_detected(recorded: Recorded, tmp_path: Path) -> None:
    target = tmp_path / "sessions" / recorded.session_id
    shutil.copytree(recorded.data_dir / "sessions" / recorded.session_id, target)
    _, sealed, _ = segment_files(target)[1]
    buf = bytearray(sealed.read_bytes())
    buf[len(buf) // 2] ^= 0xFF
    sealed.write_bytes(bytes(buf))
    with pytest.raises(ReplayError) as err:
        list(Session(target).records())
    assert err.value.code == "corrupt-segment"
    assert "segment 1" in err.value.message


def test_repair_cuts_a_torn_tail_and_verify_accepts(unsealed: Recorded, tmp_path: Path) -> None:
    target, raw = _copy(unsealed, tmp_path / "torn")
    buf = raw.read_bytes()
    raw.write_bytes(buf[: len(buf) - 5])
    before = verify(Session(target))
    assert not before.intact
    result = repair(target)
    assert result.cut_at is not None and result.cut_bytes > 0
    session = Session(target)
    assert session.sealed and session.problems == []
    assert session.manifest.status == "repaired"
    report = verify(session)
    assert report.intact, report.lines()
    assert report.records == len(unsealed.records) - 1
    assert repair(target).already_sealed


def test_a_missing_segment_is_reported(recorded: Recorded, tmp_path: Path) -> None:
    target = tmp_path / "sessions" / recorded.session_id
    shutil.copytree(recorded.data_dir / "sessions" / recorded.session_id, target)
    segment_files(target)[1][1].unlink()
    session = Session(target)
    assert [p.code for p in session.problems] == ["missing-records"]
    with pytest.raises(ReplayError) as err:
        list(session.records())
    assert err.value.code == "missing-records" and "segment 2" in err.value.message
    assert not verify(session, resim=False).intact
