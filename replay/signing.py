"""The keyed signature that binds a session's segments, index and manifest together.

Construction (docs/replay-format.md, "Signatures"): HMAC-SHA256 from the standard
library's `hmac`, keyed with a key derived from the server's secret.

- Each segment's MAC is the HMAC of a context (format, session id, segment number,
  the previous segment's MAC) followed by the segment's raw bytes. The MACs therefore
  form a chain: a segment cannot be dropped, reordered, moved to another session or
  edited without breaking its own MAC or the next one's.
- While a segment is being written, the writer appends a checkpoint after every flush
  to `seg-NNNNNN.grs.mac`: the byte length flushed so far and the HMAC of that prefix
  (the same function, cut at that length). After a crash, the bytes up to the last
  checkpoint are proven; a tail after it is what a crash can leave.
- A sealed segment's MAC goes into `index.json`; the manifest's `signature` holds the
  key's id, the chain head (the last sealed segment's MAC), a SHA-256 of the index, and
  the HMAC of the whole manifest. So editing the manifest (a start time, a media clock
  offset), the index, or any sealed byte is seen, and so is cutting the log at a
  segment or frame boundary (the signed index says how long each segment was).

A session regenerated from edited inputs, with the project's own writer but without
this server's secret, carries another key's id or no signature at all.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

ALGORITHM: Final = "HMAC-SHA256"
MAC_BYTES: Final = 32
NO_MAC: Final = bytes(MAC_BYTES)
"""The 'previous MAC' of segment 0."""
CHECKPOINT = struct.Struct("<Q32sI")
"""u64 bytes flushed, 32-byte MAC of that prefix, u32 CRC-32 of the first 40 bytes."""
CHECKPOINT_SUFFIX: Final = ".mac"
_CONTEXT: Final = b"grandrounds-replay/1\x00"


def derive_key(secret: str) -> bytes:
    """The recording key: the server's secret, narrowed to this one use."""
    return hmac.new(secret.encode(), b"grandrounds replay signing key v1", hashlib.sha256).digest()


def key_id(key: bytes) -> str:
    """Names a key without revealing it (tells 'another key' from 'edited')."""
    return hmac.new(key, b"key id", hashlib.sha256).hexdigest()[:16]


class SegmentMac:
    """The running HMAC of one segment; `value()` is the MAC of what was fed so far."""

    def __init__(self, key: bytes, session_id: str, number: int, previous: bytes) -> None:
        context = _CONTEXT + session_id.encode() + b"\x00" + struct.pack("<I", number) + previous
        self._mac = hmac.new(key, context, hashlib.sha256)

    def update(self, data: bytes | memoryview) -> None:
        self._mac.update(data)

    def value(self) -> bytes:
        return self._mac.copy().digest()


def segment_mac(key: bytes, session_id: str, number: int, previous: bytes, raw: bytes) -> bytes:
    mac = SegmentMac(key, session_id, number, previous)
    mac.update(raw)
    return mac.value()


# -- checkpoints of the segment being written ------------------------------------------
def encode_checkpoint(length: int, mac: bytes) -> bytes:
    head = struct.pack("<Q32s", length, mac)
    return head + struct.pack("<I", zlib.crc32(head))


@dataclass(frozen=True, slots=True)
class Checkpoint:
    length: int
    """Bytes of the segment (header included) flushed and fsync'd when it was written."""
    mac: bytes


def read_checkpoints(path: Path) -> list[Checkpoint]:
    """The checkpoints of a raw segment, in order (a torn last entry is left out)."""
    try:
        data = path.read_bytes()
    except OSError:
        return []
    out = []
    for pos in range(0, len(data) - CHECKPOINT.size + 1, CHECKPOINT.size):
        length, mac, crc = CHECKPOINT.unpack_from(data, pos)
        if zlib.crc32(data[pos : pos + 40]) != crc:
            break
        out.append(Checkpoint(length, mac))
    return out


def checkpoint_path(segment: Path) -> Path:
    return segment.with_name(segment.name + CHECKPOINT_SUFFIX)


# -- the manifest's signature -----------------------------------------------------------
def canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()


def index_digest(index: dict[str, Any]) -> str:
    return hashlib.sha256(canonical(index)).hexdigest()


def sign_manifest(
    key: bytes, manifest: dict[str, Any], index: dict[str, Any], chain: bytes | None
) -> dict[str, Any]:
    """`manifest` with its `signature` (any previous one replaced)."""
    body = {k: v for k, v in manifest.items() if k != "signature"}
    signature: dict[str, Any] = {
        "alg": ALGORITHM,
        "key_id": key_id(key),
        "chain": None if chain is None else chain.hex(),
        "index": index_digest(index),
    }
    signature["mac"] = _manifest_mac(key, body, signature)
    return {**body, "signature": signature}


def manifest_mac_ok(key: bytes, manifest: dict[str, Any]) -> bool:
    signature = dict(manifest.get("signature") or {})
    claimed = signature.pop("mac", None)
    body = {k: v for k, v in manifest.items() if k != "signature"}
    try:
        expected = _manifest_mac(key, body, signature)
    except (TypeError, ValueError):
        return False
    return isinstance(claimed, str) and hmac.compare_digest(claimed, expected)


def _manifest_mac(key: bytes, body: dict[str, Any], signature: dict[str, Any]) -> str:
    unsigned = {k: v for k, v in signature.items() if k != "mac"}
    return hmac.new(
        key, canonical({"manifest": body, "signature": unsigned}), hashlib.sha256
    ).hexdigest()


def same_mac(a: bytes, b: bytes) -> bool:
    return hmac.compare_digest(a, b)
