"""A room's spectator feed: the spectator view, one entry per tick, for relays (no I/O).

The room's owner appends one entry a tick to a capped stream; a relay reads the
stream, keeps a copy of the spectator view and serves spectators from it with the same
`Publisher` the owner uses, so a relay's frames are the owner's frames. An entry holds:

- always: the feed version `v`, the owner's fencing epoch `ep`, the tick `k`, the op
  head `o` and the owner's wall clock `w` (seconds, for the relay's lag);
- a delta against the previous entry's tick `b`: the spectator view's ops of the
  ticks since (`ops`, each `[seq, bytes]`: the op's msgpack exactly as the owner's
  publisher encoded it for spectators), poses changed `p` and poses gone `g`;
- the spectator view's checksum `c` on the ticks that carry one;
- now and then (`snapshot_every` ticks, and whenever the chain cannot be mended: the
  first entry of an owner, entries lost for longer than the publisher's history) the
  whole spectator view `full`
  with the room's `m` (title, tick rate, checksum period, grace period), so a relay can
  start or recover anywhere within the stream's cap. A periodic snapshot carries its
  delta too, so a relay that follows the stream never has to reload;
- on the last entry, `end`: the code and reason the room ended with.

`FeedWriter` makes entries on the owner, `decode_entry` reads them, and `RoomCopy` is
the relay's side: it applies entries to a `Mirror` of the spectator view (which checks
the owner's checksums) and feeds the publisher that frames are built from.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any, Final

import msgpack

from netcode.codec import ProtocolError, decode_server_message, encode
from netcode.mirror import Desync, Mirror
from netcode.publisher import HISTORY_TICKS, Publisher
from netcode.quantize import QuantizedPose
from netcode.views import View

FEED_VERSION: Final = 1
SPECTATOR: Final = View.SPECTATOR


class FeedError(ValueError):
    """An entry this relay cannot read (corrupt, or written by an unknown version)."""


@dataclass(frozen=True, slots=True)
class RoomMeta:
    """What a relay tells its spectators about the room in `welcome`."""

    title: str
    tick_hz: int
    checksum_every: int
    grace_seconds: float


@dataclass(frozen=True, slots=True)
class FeedEntry:
    epoch: int
    tick: int
    op_head: int
    wall: float
    base: int | None = None
    """The delta part is against this tick (None: the entry has no delta part)."""
    ops: tuple[tuple[int, bytes], ...] = ()
    poses: tuple[tuple[int, QuantizedPose], ...] = ()
    gone: tuple[int, ...] = ()
    checksum: int | None = None
    full: dict[str, Any] | None = None
    meta: RoomMeta | None = None
    end: tuple[str, str] | None = None

    @property
    def snapshot(self) -> bool:
        return self.full is not None


@dataclass(frozen=True, slots=True)
class Outgoing:
    """An entry the owner made, with what its appending needs to know."""

    payload: bytes
    tick: int
    op_head: int
    base: int | None
    """The tick its delta chains onto (None: it has no delta)."""
    snapshot: bool


class FeedWriter:
    """The owner's side: one entry per tick from the room's publisher.

    Each entry's delta chains onto the previous entry made. When one does not reach the
    stream the chain is mended rather than restarted: an entry that could not even be
    queued is taken back (the next chains onto the one before it), and after a failed
    append the next chains onto the last entry the stream holds (`rebase`), so a relay
    gets one larger delta. Only when that is older than the publisher's history is the
    next entry a snapshot without a delta, and relays rebuild from it.
    """

    def __init__(self, epoch: int, meta: RoomMeta, snapshot_every: int) -> None:
        self.epoch = epoch
        self.meta = meta
        self.snapshot_every = max(1, snapshot_every)
        self._last_tick: int | None = None
        self._last_op = 0
        self._since_snapshot = 0
        self._before: tuple[int | None, int, int] = (None, 0, 0)

    def take_back(self) -> None:
        """The entry just made was not sent: the next one chains onto the one before it."""
        self._last_tick, self._last_op, self._since_snapshot = self._before

    def rebase(self, tick: int | None, op_head: int) -> None:
        """The stream holds entries up to the one for `tick` (None: none of this owner's):
        the next entry chains onto it."""
        self._last_tick, self._last_op = tick, op_head

    def entry(self, publisher: Publisher, now: float) -> Outgoing:
        """This tick's entry."""
        self._before = (self._last_tick, self._last_op, self._since_snapshot)
        packer = msgpack.Packer(use_bin_type=True)
        parts = self._head(packer, publisher.tick, publisher.op_head, now)
        base = self._last_tick
        delta = None
        if base is not None and publisher.ops_available(self._last_op):
            delta = publisher.pose_delta(base)
        if delta is None:
            base = None
        else:
            changed, gone = delta
            ops = publisher.encoded_ops(SPECTATOR, self._last_op)
            parts += [packer.pack("b"), packer.pack(base)]
            if ops:
                parts += [
                    packer.pack("ops"),
                    packer.pack_array_header(len(ops))
                    + b"".join(packer.pack([seq, op]) for seq, op in ops),
                ]
            if changed:
                parts += [packer.pack("p"), changed]
            if gone:
                parts += [packer.pack("g"), packer.pack(gone)]
        if publisher.checksums is not None:
            parts += [packer.pack("c"), packer.pack(publisher.checksums[SPECTATOR])]
        self._since_snapshot += 1
        snapshot = base is None or self._since_snapshot >= self.snapshot_every
        if snapshot:
            self._since_snapshot = 0
            meta = self.meta
            parts += [
                packer.pack("full"),
                encode(publisher.view_state(SPECTATOR)),
                packer.pack("m"),
                packer.pack([meta.title, meta.tick_hz, meta.checksum_every, meta.grace_seconds]),
            ]
        self._last_tick = publisher.tick
        self._last_op = publisher.op_head
        return Outgoing(_map(packer, parts), publisher.tick, publisher.op_head, base, snapshot)

    def last_entry(self, publisher: Publisher, now: float, code: str, reason: str) -> bytes:
        """The entry that tells relays the room has ended (`code` as in the `bye`)."""
        packer = msgpack.Packer(use_bin_type=True)
        parts = self._head(packer, publisher.tick, publisher.op_head, now)
        parts += [packer.pack("end"), packer.pack([code, reason])]
        return _map(packer, parts)

    def _head(self, packer: msgpack.Packer, tick: int, op_head: int, now: float) -> list[bytes]:
        return [
            packer.pack("v"),
            packer.pack(FEED_VERSION),
            packer.pack("ep"),
            packer.pack(self.epoch),
            packer.pack("k"),
            packer.pack(tick),
            packer.pack("o"),
            packer.pack(op_head),
            packer.pack("w"),
            packer.pack(now),
        ]


def _map(packer: msgpack.Packer, parts: list[bytes]) -> bytes:
    """A msgpack map from alternating encoded keys and values (values may be pre-encoded)."""
    header: bytes = packer.pack_map_header(len(parts) // 2)
    return header + b"".join(parts)


def decode_entry(data: bytes) -> FeedEntry:
    """Read one entry; `FeedError` when it is not one this version can use."""
    try:
        raw = decode_server_message(data)
    except ProtocolError as exc:
        raise FeedError(f"undecodable feed entry: {exc.message}") from None
    if not isinstance(raw, dict) or raw.get("v") != FEED_VERSION:
        raise FeedError(f"not a version {FEED_VERSION} feed entry")
    try:
        meta = None
        if "m" in raw:
            title, tick_hz, checksum_every, grace = raw["m"]
            meta = RoomMeta(str(title), int(tick_hz), int(checksum_every), float(grace))
        end = raw.get("end")
        return FeedEntry(
            epoch=int(raw["ep"]),
            tick=int(raw["k"]),
            op_head=int(raw["o"]),
            wall=float(raw["w"]),
            base=None if raw.get("b") is None else int(raw["b"]),
            ops=tuple((int(seq), bytes(op)) for seq, op in raw.get("ops", ())),
            poses=tuple((int(e), _pose(p)) for e, p in raw.get("p", {}).items()),
            gone=tuple(int(e) for e in raw.get("g", ())),
            checksum=None if raw.get("c") is None else int(raw["c"]),
            full=raw.get("full"),
            meta=meta,
            end=None if end is None else (str(end[0]), str(end[1])),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise FeedError(f"malformed feed entry: {exc}") from None


def _pose(value: Any) -> QuantizedPose:
    x, y, z, q = value
    return (int(x), int(y), int(z), int(q))


class Step(Enum):
    """What applying one entry did to a relay's copy of the room."""

    CONTINUED = "continued"
    """The copy moved on by the entry's delta: spectators get deltas."""
    RESET = "reset"
    """The copy was rebuilt from the entry's snapshot (a start, a gap or a new owner):
    what spectators hold is no longer a baseline here."""
    WAITING = "waiting"
    """The entry did not fit and had no snapshot: no state until the next snapshot."""
    ENDED = "ended"


class _MirrorSource:
    """The publisher's view source on a relay: the mirror of the spectator view."""

    def __init__(self, mirror: Mirror) -> None:
        self._mirror = mirror

    @property
    def op_seq(self) -> int:
        return self._mirror.op

    def view_state(self, view: View) -> dict[str, Any]:
        return {"e": self._mirror.entities, "l": self._mirror.logs}


class RoomCopy:
    """A relay's copy of one room's spectator view, kept from the room's feed.

    `publisher` builds the frames spectators get (None while the copy has no state).
    A delta that chains onto what the copy holds moves it on (and its publisher keeps
    the history, so spectators get deltas against their baselines); a snapshot entry
    that does not chain on (the relay just started, entries were lost, a new owner's
    epoch) rebuilds it, and every spectator's baseline is void.
    """

    def __init__(
        self, framer: Callable[[bytes], bytes] | None = None, history_ticks: int = HISTORY_TICKS
    ) -> None:
        self._framer = framer
        self._history_ticks = history_ticks
        self.epoch: int | None = None
        self.meta: RoomMeta | None = None
        self.mirror: Mirror | None = None
        self.publisher: Publisher | None = None
        self.ended: tuple[str, str] | None = None
        self.last_wall = 0.0
        self._poses: dict[int, QuantizedPose] = {}

    @property
    def tick(self) -> int | None:
        return None if self.mirror is None else self.mirror.tick

    def apply(self, entry: FeedEntry) -> Step:
        self.last_wall = entry.wall
        if entry.meta is not None:
            self.meta = entry.meta
        if entry.end is not None:
            self.ended = entry.end
            return Step.ENDED
        mirror = self.mirror
        if (
            mirror is not None
            and entry.epoch == self.epoch
            and entry.base is not None
            and entry.base == mirror.tick
        ):
            try:
                self._continue(mirror, entry)
            except (Desync, ProtocolError, KeyError, TypeError, ValueError):
                # never serve a state the owner disowns, nor one an unreadable entry broke:
                # wait for the next snapshot, as a reset does
                self.mirror = self.publisher = None
            else:
                return Step.CONTINUED
        if entry.full is None:
            self.mirror = self.publisher = None
            return Step.WAITING
        return self._reset(entry)

    def _continue(self, mirror: Mirror, entry: FeedEntry) -> None:
        frame: dict[str, Any] = {
            "k": entry.tick,
            "o": entry.op_head,
            "b": entry.base,
            "ops": [decode_server_message(op) for _, op in entry.ops],
            "p": dict(entry.poses),
            "g": entry.gone,
        }
        if entry.checksum is not None:
            frame["c"] = entry.checksum
        mirror.apply(frame)
        poses = dict(self._poses)
        poses.update(entry.poses)
        for eid in entry.gone:
            poses.pop(eid, None)
        self._poses = poses
        assert self.publisher is not None
        self.publisher.publish_encoded(
            entry.tick, entry.op_head, entry.ops, poses, self._checksums(entry)
        )

    def _reset(self, entry: FeedEntry) -> Step:
        assert entry.full is not None
        mirror = Mirror()
        frame: dict[str, Any] = {"k": entry.tick, "o": entry.op_head, "full": entry.full}
        if entry.checksum is not None:
            frame["c"] = entry.checksum
        try:
            mirror.apply(frame)
        except (Desync, KeyError, TypeError, ValueError):
            self.mirror = self.publisher = None
            return Step.WAITING
        self._poses = {eid: _pose(p) for eid, p in mirror.poses.items()}
        publisher = Publisher(
            _MirrorSource(mirror),
            framer=self._framer,
            history_ticks=self._history_ticks,
            views=(SPECTATOR,),
        )
        publisher.publish_encoded(
            entry.tick, entry.op_head, (), self._poses, self._checksums(entry)
        )
        self.epoch = entry.epoch
        self.mirror = mirror
        self.publisher = publisher
        return Step.RESET

    @staticmethod
    def _checksums(entry: FeedEntry) -> dict[View, int] | None:
        return None if entry.checksum is None else {SPECTATOR: entry.checksum}
