"""Builds state frames: encode once per (view, baseline), share the bytes with every client.

Each tick the room hands over the ops it made and its pose table. The publisher keeps
a ring of recent pose tables (with the op head at that tick) and a ring of encoded
ops, and answers "what do I send a client of view V whose state is tick B?" with
bytes cached for the tick. A client whose baseline has fallen out of the rings gets a
full snapshot. Frame layout: docs/protocol.md, "State frames".

The state it describes comes from a `ViewSource`: the room's `CaseState` on the node
that owns the room, or, on a spectator relay, a mirror of the spectator view kept from
the room's spectator feed (`netcode.spectator_feed`), which hands over ops already
encoded (`publish_encoded`). Either way the frames are built here, the same way.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol

import msgpack

from netcode.codec import encode
from netcode.quantize import QuantizedPose
from netcode.state import Op
from netcode.view_checksums import ViewChecksums
from netcode.views import ALL_VIEWS, View

HISTORY_TICKS: Final = 256
OP_RING: Final = 8192


class ViewSource(Protocol):
    """The case state frames describe: entities and logs per view, and the op head."""

    @property
    def op_seq(self) -> int: ...

    def view_state(self, view: View) -> dict[str, Any]:
        """{"e": entities, "l": logs} as `view` sees them now."""
        ...


@dataclass(slots=True, frozen=True)
class _Baseline:
    poses: dict[int, QuantizedPose]
    op_head: int


class Publisher:
    """Per-room frame builder. `framer`, if given, wraps each payload once (e.g. in a
    WebSocket header), so what is cached is what goes on the wire. `views` are the views
    it serves (a spectator relay serves one)."""

    def __init__(
        self,
        world: ViewSource,
        *,
        checksum_every: int = 30,
        history_ticks: int = HISTORY_TICKS,
        op_ring: int = OP_RING,
        framer: Callable[[bytes], bytes] | None = None,
        views: tuple[View, ...] = ALL_VIEWS,
    ) -> None:
        self._world = world
        self.views = views
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
        self._view_checksums = ViewChecksums(views)
        self._cache: dict[Hashable, bytes] = {}
        self._pose_delta_cache: dict[int | None, bytes] = {}
        self.encodes = 0

    def publish(self, tick: int, ops: list[Op], poses: dict[int, QuantizedPose]) -> None:
        """Take the outcome of a room tick; frames asked for from now on describe it."""
        for op in ops:
            self._ops.append((op.seq, tuple(None if v is None else encode(v) for v in op.per_view)))
        if ops:
            self.op_head = ops[-1].seq
        self._view_checksums.note(ops)
        checksums = None
        self._advance(tick, poses)
        if self.checksum_every and tick % self.checksum_every == 0:
            checksums = self._view_checksums.compute(self._world, self._poses)
        self.checksums = checksums

    def publish_encoded(
        self,
        tick: int,
        op_head: int,
        ops: Sequence[tuple[int, bytes]],
        poses: dict[int, QuantizedPose],
        checksums: dict[View, int] | None,
    ) -> None:
        """Take a tick whose ops arrive encoded for one view (a relay's feed entry).

        `ops` are (seq, bytes) of the ops this publisher's single view sees, in order;
        every other number up to `op_head` was an op it does not see. `checksums` are
        the owner's, taken as they are (the relay's mirror has checked them).
        """
        if len(self.views) != 1:
            raise ValueError("encoded ops are for a publisher of one view")
        if op_head < self.op_head:
            raise ValueError(f"op head {op_head} is behind {self.op_head}")
        slot = self.views[0]
        visible = dict(ops)
        first = self.op_head + 1
        ring = self._ops.maxlen or 0
        if op_head - self.op_head > ring:  # more than the ring holds: keep its newest part
            self._ops.clear()
            first = op_head + 1 - ring
        for seq in range(first, op_head + 1):
            per_view: list[bytes | None] = [None] * len(ALL_VIEWS)
            per_view[slot] = visible.get(seq)
            self._ops.append((seq, tuple(per_view)))
        self.op_head = op_head
        self._advance(tick, poses)
        self.checksums = checksums

    def _advance(self, tick: int, poses: dict[int, QuantizedPose]) -> None:
        self.tick = tick
        self._poses = dict(poses)
        self._history[tick] = _Baseline(self._poses, self.op_head)
        self._history_order.append(tick)
        while len(self._history_order) > self._history_ticks:
            del self._history[self._history_order.popleft()]
        self._cache.clear()
        self._pose_delta_cache.clear()

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
        if baseline is not None and self.ops_available(baseline.op_head):
            return self._cached((view, base), lambda: self._delta(view, base, baseline))
        if last_op is not None and self.ops_available(last_op):
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

    def ops_available(self, since: int) -> bool:
        """Whether every op after op `since` is still in the ring."""
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
            assert base is not None
            delta = self.pose_delta(base)
            assert delta is not None
            changed, gone = delta
            if changed:
                parts += [packer.pack("p"), changed]
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
        return [encoded for _, encoded in self.encoded_ops(view, since)]

    # -- what the room's spectator feed reads -----------------------------------
    def encoded_ops(self, view: View, since: int) -> list[tuple[int, bytes]]:
        """(seq, bytes) of the ops after op `since` that `view` sees, as frames carry them."""
        if since >= self.op_head or not self._ops:
            return []
        start = since + 1 - self._ops[0][0]
        out: list[tuple[int, bytes]] = []
        for index in range(max(0, start), len(self._ops)):
            seq, per_view = self._ops[index]
            encoded = per_view[view]
            if encoded is not None:
                out.append((seq, encoded))
        return out

    def pose_delta(self, base: int) -> tuple[bytes, list[int]] | None:
        """Poses changed since tick `base` (an encoded map, b"" for none) and those gone;
        None when `base` is no longer in the history."""
        baseline = self._history.get(base)
        if baseline is None:
            return None
        return self._pose_bytes(base), [eid for eid in baseline.poses if eid not in self._poses]

    def op_head_at(self, tick: int) -> int | None:
        baseline = self._history.get(tick)
        return None if baseline is None else baseline.op_head

    def is_snapshot(self, view: View, frame: bytes) -> bool:
        """Whether `frame` (as returned by `frame`) is this tick's snapshot for `view`."""
        return self._cache.get((view, "snapshot")) is frame
