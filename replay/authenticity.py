"""Is this the record this server wrote? Checking a session's signatures (replay.signing).

Each finding is a line `code: sentence`, one code per kind of tampering, so a report
tells them apart:

- `unsigned`: no signature at all (written without the server's key, or stripped).
- `forged`: signed with another key, or a sealed segment, the index or a segment's
  checkpoint does not match what the key signed (content regenerated or edited).
- `manifest-edited`: the manifest differs from what the server signed (a start time,
  a media clock offset, a count).
- `truncated`: the log is shorter than what was signed: a segment is missing, or a
  sealed segment ends early at a record boundary, or fewer records than the signed
  manifest counts.
- `damaged`: a sealed segment cannot even be decompressed (accidental damage; the
  reader reports where).

`missing-end` (a sealed log whose last record is not `ended`) is found by `verify`,
which reads the records. Notes (not problems) say what is proven of a session still
being written or repaired after a crash: the bytes up to the last checkpoint, and what
repair vouched for after it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from replay import layout, signing
from replay.errors import ReplayError
from replay.index import scan_segment
from replay.reader import decompress


@dataclass(slots=True)
class Authenticity:
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    proven_segments: int = 0
    signed_records: int | None = None
    """The record count the signed manifest gives (a sealed session holds exactly these)."""

    @property
    def ok(self) -> bool:
        return not self.problems

    def lines(self) -> list[str]:
        head = (
            f"signature: {self.proven_segments} sealed segments, the index and the manifest "
            "carry this server's signature"
            if self.ok
            else "signature: NOT this server's record as signed"
        )
        return [
            head,
            *(f"problem: {p}" for p in self.problems),
            *(f"note: {n}" for n in self.notes),
        ]


def check(path: Path, key: bytes) -> Authenticity:
    """Check the signatures of the session in `path` against `key` (see module doc)."""
    found = Authenticity()
    try:
        manifest: dict[str, Any] = layout.read_json(path / "manifest.json")
    except ReplayError as exc:
        found.problems.append(f"manifest-edited: {exc.message}")
        return found
    signature = manifest.get("signature")
    if not isinstance(signature, dict):
        found.problems.append(
            "unsigned: the manifest carries no signature, so nothing shows this server wrote "
            "the session"
        )
        return found
    if signature.get("key_id") != signing.key_id(key):
        found.problems.append(
            "forged: the session is signed with another key, not this server's secret"
        )
        return found
    manifest_ok = signing.manifest_mac_ok(key, manifest)
    if not manifest_ok:
        found.problems.append(
            "manifest-edited: the manifest is not the one the server signed (a start time, a "
            "media clock offset, a count or another field was changed)"
        )
    try:
        index = layout.read_json(path / "index.json")
    except ReplayError:
        index = {"segments": []}
    if signing.index_digest(index) != signature.get("index"):
        found.problems.append("forged: index.json is not the index the server signed")
    if (
        manifest_ok
        and manifest.get("status") in ("sealed", "repaired")
        and isinstance(manifest.get("records"), int)
    ):
        found.signed_records = int(manifest["records"])
    _segments(path, str(manifest.get("session_id", path.name)), key, index, found)
    if not found.problems:
        repair = manifest.get("repair")
        if isinstance(repair, dict) and repair.get("vouched_bytes"):
            found.notes.append(
                f"repair after a crash sealed {repair['vouched_bytes']} bytes written after the "
                "server's last checkpoint (complete records the server had not yet proven)"
            )
    return found


def _segments(
    path: Path, session_id: str, key: bytes, index: dict[str, Any], found: Authenticity
) -> None:
    entries = {}
    for entry in index.get("segments") or []:
        if isinstance(entry, dict) and isinstance(entry.get("number"), int):
            entries[entry["number"]] = entry
    files = {n: (file, sealed) for n, file, sealed in layout.segment_files(path)}
    previous = signing.NO_MAC
    for number in sorted(entries):
        entry = entries[number]
        file, sealed = files.pop(number, (None, False))
        first = entry.get("first_record")
        if file is None or not sealed:
            found.problems.append(
                f"truncated: sealed segment {number} (from record {first}) is missing"
            )
        else:
            _sealed(session_id, key, number, previous, file, entry, found)
        mac = entry.get("mac")
        previous = bytes.fromhex(mac) if isinstance(mac, str) and len(mac) == 64 else previous
    for number, (file, sealed) in sorted(files.items()):
        if sealed:
            found.problems.append(
                f"forged: sealed segment {number} is not in the signed index (added later)"
            )
        else:
            _being_written(session_id, key, number, previous, file, found)
            previous = signing.NO_MAC  # a later raw segment cannot chain to an unsealed one


def _sealed(
    session_id: str,
    key: bytes,
    number: int,
    previous: bytes,
    file: Path,
    entry: dict[str, Any],
    found: Authenticity,
) -> None:
    raw, error = decompress(file)
    mac = entry.get("mac")
    if not isinstance(mac, str):
        found.problems.append(f"unsigned: sealed segment {number} has no MAC in the index")
        return
    if signing.same_mac(
        signing.segment_mac(key, session_id, number, previous, raw),
        bytes.fromhex(mac) if len(mac) == 64 else b"",
    ):
        found.proven_segments += 1
        return
    signed_bytes = entry.get("raw_bytes")
    info, damage = scan_segment(number, raw, sealed=True)
    if error is not None:
        found.problems.append(f"damaged: sealed segment {number}: {error}")
    elif isinstance(signed_bytes, int) and len(raw) < signed_bytes and damage is None:
        found.problems.append(
            f"truncated: sealed segment {number} holds {len(raw)} of the {signed_bytes} bytes "
            f"signed; it ends at a record boundary after {info.records} of its "
            f"{entry.get('records')} records"
        )
    else:
        found.problems.append(
            f"forged: sealed segment {number} is not what the server signed (its bytes were "
            "changed or regenerated)"
        )


def _being_written(
    session_id: str, key: bytes, number: int, previous: bytes, file: Path, found: Authenticity
) -> None:
    """A raw segment (the session is recording, or its writer died): what is proven."""
    checkpoints = signing.read_checkpoints(signing.checkpoint_path(file))
    raw = file.read_bytes()
    if not checkpoints:
        found.notes.append(
            f"segment {number} is being written (or its writer died before its first flush): "
            f"none of its {len(raw)} bytes is proven yet"
        )
        return
    last = checkpoints[-1]
    if len(raw) < last.length:
        found.problems.append(
            f"truncated: segment {number} holds {len(raw)} bytes; the server had flushed and "
            f"signed {last.length}"
        )
        return
    mac = signing.segment_mac(key, session_id, number, previous, raw[: last.length])
    if not signing.same_mac(mac, last.mac):
        found.problems.append(
            f"forged: the first {last.length} bytes of segment {number} are not what the server "
            "flushed and signed"
        )
        return
    found.notes.append(
        f"segment {number} (being written): {last.length} bytes proven by the server's last "
        f"checkpoint; {len(raw) - last.length} bytes after it are not yet proven"
    )
