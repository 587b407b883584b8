"""The views' checksums, re-encoding only what changed since the last ones.

A view's checksum is the CRC-32 of the canonical msgpack encoding of its state
{e, l, p} (`codec.checksum`, docs/protocol.md "Checksums"). That encoding is a
concatenation, so it is assembled from pieces kept between checksum ticks: each
entity's canonical bytes per view, until an op touches the entity; each view's logs,
until a log op; the poses, encoded once for all views. Canonicalising every entity of
every view each time cost milliseconds per checksum tick in a room of 200 objects; the
result is the same number `checksum(view_state)` gives (the clients' mirrors compute it
that way and check it).
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Mapping
from typing import Any, Final, Protocol

import msgpack

from netcode.codec import canonical, encode
from netcode.quantize import QuantizedPose
from netcode.state import Op
from netcode.views import ALL_VIEWS, View

_STATE_HEAD: Final = msgpack.Packer().pack_map_header(3)
_KEYS: Final = tuple(encode(key) for key in ("e", "l", "p"))


class ViewStates(Protocol):
    def view_state(self, view: View) -> dict[str, Any]:
        """{"e": entities, "l": logs} as `view` sees them now."""
        ...


class ViewChecksums:
    """For a publisher serving `views`: their checksums, from pieces kept between calls."""

    def __init__(self, views: tuple[View, ...]) -> None:
        self.views = views
        self._entities: list[dict[int, bytes]] = [{} for _ in ALL_VIEWS]
        """Per view: each entity's canonical encoding as that view sees it."""
        self._logs: list[bytes | None] = [None for _ in ALL_VIEWS]
        self._touched: set[int] = set()

    def note(self, ops: Iterable[Op]) -> None:
        """Ops made since the last call: what they touch is encoded again."""
        for op in ops:
            if op.canonical[0] == "log":
                self._logs = [None for _ in ALL_VIEWS]
            else:  # new, set, del
                self._touched.add(op.canonical[1])

    def compute(self, world: ViewStates, poses: Mapping[int, QuantizedPose]) -> dict[View, int]:
        """The checksum of each view now (with `poses` as the state's "p")."""
        pose_bytes = encode(canonical({eid: list(p) for eid, p in poses.items()}))
        touched, self._touched = self._touched, set()
        sums: dict[View, int] = {}
        for view in self.views:
            state = world.view_state(view)
            entities: dict[int, Any] = state["e"]
            kept = self._entities[view]
            encoded: dict[int, bytes] = {}
            parts = [_STATE_HEAD, _KEYS[0], msgpack.Packer().pack_map_header(len(entities))]
            for eid in sorted(entities):
                piece = None if eid in touched else kept.get(eid)
                if piece is None:
                    piece = encode(canonical(entities[eid]))
                encoded[eid] = piece
                parts += (encode(eid), piece)
            self._entities[view] = encoded
            logs = self._logs[view]
            if logs is None:
                logs = self._logs[view] = encode(canonical(state["l"]))
            parts += (_KEYS[1], logs, _KEYS[2], pose_bytes)
            sums[view] = zlib.crc32(b"".join(parts))
        return sums
