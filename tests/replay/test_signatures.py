"""A record that cannot be forged or cut without notice (issue 11, part 2).

Sessions are written by the project's own writer with a signing key, then forged,
regenerated, cut and edited the ways an attacker (or an accident) would; `verify`
must name each outcome distinctly, `repair` must cut only a genuinely incomplete tail,
and `replay info` must fail on a damaged sealed segment.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import zstandard

from replay import format as fmt
from replay import layout, signing
from replay.errors import ReplayError
from replay.index import IndexFile
from replay.reader import Session, decompress
from replay.repair import repair
from replay.synthetic import Bots, make_room
from replay.verify import VerifyReport, verify
from replay.writer import SessionWriter
from server.replay_cli import main as cli

KEY = signing.derive_key("the server's secret")
OTHER = signing.derive_key("someone else's secret")


def write_session(
    data_dir: Path,
    session_id: str,
    key: bytes | None = KEY,
    *,
    seconds: float = 12,
    end: bool = True,
    close: bool = True,
) -> Path:
    writer = SessionWriter(data_dir, session_id, fsync=False, segment_bytes=30_000, signing_key=key)
    room = make_room(writer, tick_hz=10, keyframe_seconds=2, checksum_every=5)
    flushes = 0

    def flush(_room: object) -> None:
        nonlocal flushes
        flushes += 1
        if flushes % 5 == 0:
            writer.flush()

    Bots(room, participants=3).run(seconds, on_tick=flush, end=end)
    writer.flush()
    if close:
        writer.add_media_track(
            "mic-2", "audio", member=2, uri="media/mic-2.ogg", clock_offset_ms=812.0
        )
        writer.close()
    return writer.path


@pytest.fixture(scope="module")
def signed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_session(tmp_path_factory.mktemp("signed"), "signed")


def copy(path: Path, to: Path) -> Path:
    target = to / "sessions" / path.name
    shutil.copytree(path, target)
    return target


def checked(path: Path, key: bytes = KEY) -> VerifyReport:
    return verify(Session(path), key=key)


def codes(report: VerifyReport) -> list[str]:
    auth = report.authenticity
    found = [p.split(":")[0] for p in (auth.problems if auth else [])]
    return found + [p.split(":")[0] for p in report.problems if p.startswith("missing-end")]


def rewrite_sealed(path: Path, number: int, change: bytes) -> None:
    """Replace segment `number` with `change` (raw bytes), compressed as the writer does."""
    file = path / layout.segment_name(number, sealed=True)
    cctx = zstandard.ZstdCompressor(level=3, write_checksum=True, write_content_size=True)
    file.write_bytes(cctx.compress(change))


def sealed_raw(path: Path, number: int) -> bytes:
    raw, error = decompress(path / layout.segment_name(number, sealed=True))
    assert error is None
    return raw


def test_a_signed_session_verifies_and_names_its_proof(signed: Path) -> None:
    report = checked(signed)
    assert report.intact, report.lines()
    assert report.authenticity is not None and report.authenticity.proven_segments >= 3
    assert any(
        line.startswith("signature: ") and "carry this server's signature" in line
        for line in report.lines()
    )
    assert codes(checked(signed, OTHER)) == ["forged"]  # not this server's key


def test_a_session_regenerated_without_the_key_is_unsigned_or_forged(tmp_path: Path) -> None:
    unsigned = write_session(tmp_path / "a", "signed", key=None)
    assert codes(checked(unsigned)) == ["unsigned"]
    assert not checked(unsigned).intact
    other = write_session(tmp_path / "b", "signed", key=OTHER)
    assert codes(checked(other)) == ["forged"]
    # the same content made by the same code verifies by checksums and re-simulation alone
    assert verify(Session(unsigned)).intact


def _edit_a_record(buf: bytearray) -> None:
    """Move one recorded pose a little (a byte of its packed value) and fix the frame's
    checksum: a well-formed record, with sound CRCs, that the server never wrote."""
    frame = next(
        f for f in _frames(bytes(buf)) if f.record.kind == "pose" and f.record.data["parts"]
    )
    payload = bytearray(buf[frame.offset + 8 : frame.end])
    at = payload.find(b"\xc4", payload.find(b"\xa4head"))  # the head's packed pose (bin 8)
    payload[at + 4] ^= 0x01
    buf[frame.offset : frame.end] = fmt.encode_frame(bytes(payload))


def test_an_edited_record_with_fixed_checksums_is_forged(signed: Path, tmp_path: Path) -> None:
    target = copy(signed, tmp_path)
    number = IndexFile.load(target).segments[1].number
    raw = bytearray(sealed_raw(target, number))
    _edit_a_record(raw)
    rewrite_sealed(target, number, bytes(raw))
    session = Session(target)
    assert list(session.records())  # every CRC and the zstd checksum are sound...
    report = checked(target)
    assert "forged" in codes(report)  # ...but it is not what the server signed
    assert f"sealed segment {number} is not what the server signed" in "\n".join(report.lines())


def test_a_log_cut_at_a_record_boundary_is_truncated(signed: Path, tmp_path: Path) -> None:
    target = copy(signed, tmp_path)
    last = IndexFile.load(target).segments[-1].number
    raw = sealed_raw(target, last)
    starts = [f.offset for f in fmt.iter_frames(raw) if isinstance(f, fmt.Frame)]
    rewrite_sealed(target, last, raw[: starts[-3]])  # the end record and two more gone
    assert Session(target).problems == []  # nothing a reader would call damage
    report = checked(target)
    assert "truncated" in codes(report) and not report.intact
    text = "\n".join(report.lines())
    assert f"sealed segment {last} holds" in text and "ends at a record boundary" in text
    assert "the signed manifest counts" in text


def test_a_missing_last_segment_is_truncated(signed: Path, tmp_path: Path) -> None:
    target = copy(signed, tmp_path)
    last = IndexFile.load(target).segments[-1].number
    (target / layout.segment_name(last, sealed=True)).unlink()
    report = checked(target)
    assert codes(report)[0] == "truncated" and not report.intact
    assert f"sealed segment {last}" in "\n".join(report.lines())


def test_a_sealed_log_without_its_end_is_missing_end(tmp_path: Path) -> None:
    path = write_session(tmp_path, "no-end", end=False)
    report = checked(path)
    assert codes(report) == ["missing-end"], report.lines()
    assert report.authenticity is not None and report.authenticity.ok  # signed as it is


@pytest.mark.parametrize("edit", ["started_at", "clock_offset_ms", "records"])
def test_an_edited_manifest_is_manifest_edited(signed: Path, tmp_path: Path, edit: str) -> None:
    target = copy(signed, tmp_path)
    manifest = json.loads((target / "manifest.json").read_text())
    if edit == "started_at":
        manifest["started_at"] = "2020-01-01T00:00:00.000Z"
    elif edit == "clock_offset_ms":
        manifest["media_tracks"][0]["clock_offset_ms"] = 1812.0
    else:
        manifest["records"] -= 3
    (target / "manifest.json").write_text(json.dumps(manifest))
    report = checked(target)
    assert codes(report) == ["manifest-edited"], report.lines()


def test_an_edited_index_is_forged(signed: Path, tmp_path: Path) -> None:
    target = copy(signed, tmp_path)
    index = json.loads((target / "index.json").read_text())
    index["segments"][1]["keyframes"][0][1] += 8
    (target / "index.json").write_text(json.dumps(index))
    assert codes(checked(target)) == ["forged"]


# -- crashes, repair and what an unsealed session proves -----------------------------------
@pytest.fixture(scope="module")
def crashed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A signed session whose writer flushed but never closed (the server was killed)."""
    path = write_session(
        tmp_path_factory.mktemp("crashed"), "crashed", seconds=13, end=False, close=False
    )
    assert len(_frames(_raw(path).read_bytes())) > 20  # a second of records after a keyframe
    return path


def _frames(buf: bytes) -> list[fmt.Frame]:
    return [f for f in fmt.iter_frames(buf) if isinstance(f, fmt.Frame)]


def _raw(path: Path) -> Path:
    (raw,) = [f for _, f, sealed in layout.segment_files(path) if not sealed]
    return raw


def test_an_unsealed_session_proves_up_to_its_last_flush(crashed: Path, tmp_path: Path) -> None:
    target = copy(crashed, tmp_path)
    report = checked(target)
    assert report.authenticity is not None and report.authenticity.ok
    assert any("proven by the server's last checkpoint" in n for n in report.authenticity.notes)
    assert not report.intact  # not sealed: run repair


def test_repair_cuts_a_torn_tail_and_signs_what_it_seals(crashed: Path, tmp_path: Path) -> None:
    target = copy(crashed, tmp_path)
    raw = _raw(target)
    with open(raw, "ab") as f:
        f.write(fmt.encode_frame(b"\x94\x00\xa4tick\x00\x80")[:9])  # half a frame: a crash
    result = repair(target, KEY)
    assert result.cut_bytes == 9 and result.signed
    report = checked(target)
    assert report.intact, report.lines()
    assert any("where repair cut it" in n for n in report.notes)  # the room never ended


def test_repair_never_cuts_a_complete_record_with_a_bad_checksum(
    crashed: Path, tmp_path: Path
) -> None:
    target = copy(crashed, tmp_path)
    raw = _raw(target)
    buf = bytearray(raw.read_bytes())
    last = _frames(bytes(buf))[-1]
    buf[last.end - 1] ^= 0x40  # a flipped byte in the last complete record
    raw.write_bytes(bytes(buf))
    with pytest.raises(ReplayError) as refused:
        repair(target, KEY)
    assert refused.value.code == "corrupt-record"
    assert raw.exists() and raw.read_bytes() == bytes(buf)  # nothing was cut


def test_repair_never_cuts_what_the_server_proved(crashed: Path, tmp_path: Path) -> None:
    target = copy(crashed, tmp_path)
    raw = _raw(target)
    buf = bytearray(raw.read_bytes())
    victim = _frames(bytes(buf))[-1]
    length = int.from_bytes(buf[victim.offset : victim.offset + 4], "little")
    buf[victim.offset : victim.offset + 4] = (length + 100).to_bytes(4, "little")
    raw.write_bytes(bytes(buf))  # the last record now runs past the end: it looks torn
    with pytest.raises(ReplayError) as refused:
        repair(target, KEY)
    assert refused.value.code == "corrupt-record"
    assert "proven" in refused.value.message


def test_repair_refuses_to_sign_bytes_the_server_did_not_write(
    crashed: Path, tmp_path: Path
) -> None:
    target = copy(crashed, tmp_path)
    raw = _raw(target)
    buf = bytearray(raw.read_bytes())
    _edit_a_record(buf)
    raw.write_bytes(bytes(buf))
    with pytest.raises(ReplayError) as refused:
        repair(target, KEY)
    assert refused.value.code == "forged"


def test_info_fails_on_a_damaged_sealed_segment(signed: Path, tmp_path: Path) -> None:
    target = copy(signed, tmp_path)
    data_dir = tmp_path
    args = ["info", target.name, "--data-dir", str(data_dir)]
    assert cli(args) == 0
    file = target / layout.segment_name(1, sealed=True)
    buf = bytearray(file.read_bytes())
    buf[len(buf) // 2] ^= 0xFF
    file.write_bytes(bytes(buf))
    assert cli(args) == 1


def test_the_cli_verifies_with_the_servers_secret(
    signed: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = copy(signed, tmp_path)
    (tmp_path / "secrets.json").write_text(json.dumps({"secret": "the server's secret"}))
    assert cli(["verify", target.name, "--data-dir", str(tmp_path), "--no-resim"]) == 0
    assert "carry this server's signature" in capsys.readouterr().out
    (tmp_path / "secrets.json").write_text(json.dumps({"secret": "another secret"}))
    assert cli(["verify", target.name, "--data-dir", str(tmp_path), "--no-resim"]) == 1
    assert "forged" in capsys.readouterr().out
