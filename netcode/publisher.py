"""Builds state frames: encode once per (view, baseline), share the bytes with every client.

Each tick the room hands over the ops it made and its pose table. The publisher keeps
a ring of recent pose tables (with the op head at that tick) and a ring of encoded
ops, and answers "what do I send a client of view V whose state is tick B?" with
bytes cached for the tick. A client whose baseline has fallen out of the rings gets a
full snapshot. Frame layout: docs/protocol.md, "State frames".
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any, Final

import msgpack

from netcode.codec import checksum, encode
from netcode.quantize import QuantizedPose
from netcode.state import CaseState, Op
from netcode.views import ALL_VIEWS, View

HISTORY_TICKS: Final = 256
OP_RING: Final = 8192


@dataclass(slots=True, frozen=True)
class _Baseline:
    poses: dict[int, QuantizedPose]
    op_head: int


class Publisher:
    """Per-room frame builder. `framer`, if given, wraps each payload once (e.g. in a
    WebSocket header), so what is cached is what goes on the wire."""

    def __init__(
        self,
        world: CaseState,
        *,
        checksum_every: int = 30,
        history_ticks: int = HISTORY_TICKS,
        op_ring: int = OP_RING,
        framer: Callable[[bytes], bytes] | None = None,
    ) -> None:
        self._world = world
        self.checksum_every = checksum_every
        self._history: dict[int, _Baseline] = {}
        self._history_order: deque[int] = deque()
        self._history_ticks = history_ticks
        self._ops: deque[tuple[int, tuple[bytes | None, ...]]] = deque(maxlen=op_ring)
        self.framer = framer
        self.tick = -1
        self.op_head = world.op_seq
        self._poses: dict[int, QuantizedPose] = {}
        self.checksums: dict[View, int] | None = None
        self._cache: dict[Hashable, bytes] = {}
        self._pose_delta_cache: dict[int | None, bytes] = {}
        self.encodes = 0

    def publish(self, tick: int, ops: list[Op], poses: dict[int, QuantizedPose]) -> None:
        """Take the outcome of a room tick; frames asked for from now on describe it."""
        for op in ops:
            self._ops.append((op.seq, tuple(None if v is None else encode(v) for v in op.per_view)))
        if ops:
            self.op_head = ops[-1].seq
        self.tick = tick
        self._poses = dict(poses)
        self._history[tick] = _Baseline(self._poses, self.op_head)
        self._history_order.append(tick)
        while len(self._history_order) > self._history_ticks:
            del self._history[self._history_order.popleft()]
        self._cache.clear()
        self._pose_delta_cache.clear()
        self.checksums = None
        if self.checksum_every and tick % self.checksum_every == 0:
            self.checksums = {view: checksum(self.view_state(view)) for view in ALL_VIEWS}

    def view_state(self, view: View) -> dict[str, Any]:
        """What a client of `view` holds after this tick: {e, l, p} (checksummed form)."""
        state = self._world.view_state(view)
        state["p"] = {eid: list(p) for eid, p in self._poses.items()}
        return state

    # -- frames ---------------------------------------------------------------
    def frame(self, view: View, base: int | None, last_op: int | None = None) -> bytes:
        """The frame for a client of `view` holding tick `base` (None: it holds nothing).

        `last_op` is only given on resume, when the client's op head may not be the one
        recorded for its tick.
        """
        baseline = None if base is None else self._history.get(base)
        if baseline is not None and last_op is not None and last_op != baseline.op_head:
            baseline = None
        if baseline is not None and self._ops_available(baseline.op_head):
            return self._cached((view, base), lambda: self._delta(view, base, baseline))
        if last_op is not None and self._ops_available(last_op):
            return self._cached(
                (view, "resume", last_op), lambda: self._delta(view, None, None, last_op)
            )
        return self.snapshot(view)

    def snapshot(self, view: View) -> bytes:
        return self._cached((view, "snapshot"), lambda: self._snapshot(view))

    def _cached(self, key: Hashable, build: Callable[[], bytes]) -> bytes:
        frame = self._cache.get(key)
        if frame is None:
            frame = build()
            if self.framer is not None:
                frame = self.framer(frame)
            self._cache[key] = frame
            self.encodes += 1
        return frame

    def _ops_available(self, since: int) -> bool:
        if since == self.op_head:
            return True
        return bool(self._ops) and self._ops[0][0] <= since + 1 and since <= self.op_head

    def _snapshot(self, view: View) -> bytes:
        frame: dict[str, Any] = {
            "t": "s",
            "k": self.tick,
            "o": self.op_head,
            "full": self.view_state(view),
        }
        if self.checksums is not None:
            frame["c"] = self.checksums[view]
        return encode(frame)

    def _delta(
        self, view: View, base: int | None, baseline: _Baseline | None, since: int | None = None
    ) -> bytes:
        """A delta frame; without a pose baseline the poses go in full (`pf`)."""
        packer = msgpack.Packer(use_bin_type=True)
        op_since = baseline.op_head if baseline is not None else since
        assert op_since is not None
        op_bytes = self._ops_since(view, op_since)
        parts: list[bytes] = [
            packer.pack("t"),
            packer.pack("s"),
            packer.pack("k"),
            packer.pack(self.tick),
            packer.pack("o"),
            packer.pack(self.op_head),
        ]
        if base is not None:
            parts += [packer.pack("b"), packer.pack(base)]
        else:
            parts += [packer.pack("r"), packer.pack(op_since)]
        if op_bytes:
            parts += [
                packer.pack("ops"),
                packer.pack_array_header(len(op_bytes)) + b"".join(op_bytes),
            ]
        if baseline is None:
            parts += [
                packer.pack("pf"),
                packer.pack(True),
                packer.pack("p"),
                self._pose_bytes(None),
            ]
        else:
            changed = self._pose_bytes(base)
            if changed:
                parts += [packer.pack("p"), changed]
            gone = [eid for eid in baseline.poses if eid not in self._poses]
            if gone:
                parts += [packer.pack("g"), packer.pack(gone)]
        if self.checksums is not None:
            parts += [packer.pack("c"), packer.pack(self.checksums[view])]
        header: bytes = packer.pack_map_header(len(parts) // 2)
        return header + b"".join(parts)

    def _pose_bytes(self, base: int | None) -> bytes:
        """Poses changed since `base` (all of them for None), encoded once per tick."""
        cached = self._pose_delta_cache.get(base)
        if cached is None:
            if base is None:
                changed = self._poses
            else:
                old = self._history[base].poses
                changed = {e: p for e, p in self._poses.items() if old.get(e) != p}
            cached = encode({eid: list(p) for eid, p in changed.items()}) if changed else b""
            if base is None and not cached:
                cached = encode({})
            self._pose_delta_cache[base] = cached
        return cached

    def _ops_since(self, view: View, since: int) -> list[bytes]:
        if since >= self.op_head or not self._ops:
            return []
        start = since + 1 - self._ops[0][0]
        out: list[bytes] = []
        for index in range(max(0, start), len(self._ops)):
            encoded = self._ops[index][1][view]
            if encoded is not None:
                out.append(encoded)
        return out

    def op_head_at(self, tick: int) -> int | None:
        baseline = self._history.get(tick)
        return None if baseline is None else baseline.op_head
