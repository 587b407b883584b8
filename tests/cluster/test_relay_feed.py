"""The spectator feed on its own (no Valkey): spectators served by a relay's copy of a room
hold exactly what spectators of the owner hold.

An owner's publisher makes random case and pose changes; its `FeedWriter` makes one
entry a tick, some of which are lost (the owner then restarts the chain with a
snapshot); a new owner may take over with a higher epoch; the relay reads the entries
in batches, restarts (from where it was, going back to a snapshot, or from the newest
snapshot) and serves spectators who join, drop, resume and skip frames. After every
frame a spectator applies, its mirror equals the owner's spectator view at that tick,
checksum and op head included, and no frame ever fails to apply.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hypothesis import event, given, settings
from hypothesis import strategies as st

from netcode.codec import checksum
from netcode.mirror import Mirror
from netcode.publisher import Publisher
from netcode.quantize import QuantizedPose
from netcode.spectator_feed import (
    FeedEntry,
    FeedWriter,
    Outgoing,
    RoomCopy,
    RoomMeta,
    Step,
    decode_entry,
)
from netcode.state import CaseState
from netcode.sync import Subscriber
from netcode.views import View
from tests.netcode.sync_helpers import SLOW_OK, decode, frame_kind
from tests.netcode.test_sync_publisher import change_world

META = RoomMeta("Grand round", 30, 3, 30.0)
SPECTATOR = View.SPECTATOR


@dataclass
class Spectator:
    sync: Subscriber = field(default_factory=lambda: Subscriber(SPECTATOR))
    mirror: Mirror = field(default_factory=Mirror)
    connected: bool = True


@dataclass
class Owner:
    world: CaseState
    publisher: Publisher
    writer: FeedWriter
    truth: dict[int, tuple[int, int]] = field(default_factory=dict)
    """tick -> (checksum of the spectator view, op head), as the owner published it."""
    queue: list[Outgoing] = field(default_factory=list)
    appended: Outgoing | None = None

    def tick(self, tick: int, poses: dict[int, QuantizedPose]) -> None:
        self.publisher.publish(tick, self.world.drain(), poses)
        state = self.publisher.view_state(SPECTATOR)
        self.truth[tick] = (checksum(state), self.publisher.op_head)

    def lost(self) -> None:
        """As `SpectatorFeed` does when an entry does not reach the stream."""
        held = self.appended
        self.writer.rebase(None if held is None else held.tick, 0 if held is None else held.op_head)

    def append_queued(self, data: st.DataObject, stream: list[bytes]) -> None:
        """The feed's companion: append what is queued; some appends fail."""
        for entry in self.queue:
            held = None if self.appended is None else self.appended.tick
            if entry.base != held and not entry.snapshot:
                self.lost()
            elif data.draw(st.integers(0, 9)) == 0:
                event("append failed")
                self.lost()
            else:
                stream.append(entry.payload)
                self.appended = entry
        self.queue.clear()


def new_owner(world: CaseState, epoch: int, checksum_every: int) -> Owner:
    publisher = Publisher(world, checksum_every=checksum_every)
    return Owner(world, publisher, FeedWriter(epoch, META, snapshot_every=5))


def start_position(stream: list[bytes], held: int | None) -> int:
    """Where a (re)starting relay begins reading: the newest snapshot at or before the entry
    it held, or else the newest snapshot of all; the stream's length when there is none."""
    last = len(stream) - 1 if held is None or held >= len(stream) else held
    for index in range(last, -1, -1):
        if decode_entry(stream[index]).snapshot:
            return index
    return len(stream)


@settings(max_examples=120, deadline=None, suppress_health_check=SLOW_OK)
@given(data=st.data())
def test_spectators_of_a_relay_hold_what_spectators_of_the_owner_hold(
    data: st.DataObject,
) -> None:
    world = CaseState()
    checksum_every = data.draw(st.sampled_from([1, 3]), label="checksum_every")
    epoch = 1
    owner = new_owner(world, epoch, checksum_every)
    poses: dict[int, QuantizedPose] = {}
    stream: list[bytes] = []
    copy = RoomCopy(history_ticks=data.draw(st.sampled_from([4, 256]), label="history"))
    read = 0
    spectators: list[Spectator] = []
    truth: dict[tuple[int, int], tuple[int, int]] = {}
    """(epoch, tick) -> what the owner of that epoch published."""
    for tick in range(data.draw(st.integers(5, 40), label="ticks")):
        for _ in range(data.draw(st.integers(0, 3))):
            change_world(data, world, poses)
        if tick and data.draw(st.integers(0, 15)) == 0:
            epoch += 1  # a new owner takes the room over with a higher epoch
            owner = new_owner(world, epoch, checksum_every)  # the old one's queue is lost
            event("new owner")
        owner.tick(tick, poses)
        truth[epoch, tick] = owner.truth[tick]
        entry = owner.writer.entry(owner.publisher, now=float(tick))
        if data.draw(st.integers(0, 9)) == 0:
            owner.writer.take_back()  # the queue was full
            event("entry taken back")
        else:
            owner.queue.append(entry)
        if data.draw(st.integers(0, 2)) == 0:
            owner.append_queued(data, stream)

        if data.draw(st.integers(0, 12)) == 0:  # the relay restarts
            held = read - 1 if read and data.draw(st.booleans()) else None
            copy = RoomCopy(history_ticks=copy._history_ticks)
            read = start_position(stream, held)
            event("relay restarted" + (" from its position" if held is not None else ""))
            for spectator in spectators:  # connections drop; they resume when back
                spectator.connected = False
        if data.draw(st.integers(0, 3)) == 0:
            continue  # the relay reads later: entries pile up
        while read < len(stream):
            step = copy.apply(decode_entry(stream[read]))
            read += 1
            assert step is not Step.WAITING  # every entry chains on, or rebuilds
            if step is Step.RESET:
                for spectator in spectators:
                    spectator.sync.resync()  # baselines from before mean nothing now
        if copy.publisher is None:
            continue
        if data.draw(st.integers(0, 3)) == 0 or not spectators:
            spectators.append(Spectator())
        for spectator in spectators:
            serve(data, copy, spectator, truth)


def serve(
    data: st.DataObject,
    copy: RoomCopy,
    spectator: Spectator,
    truth: dict[tuple[int, int], tuple[int, int]],
) -> None:
    publisher = copy.publisher
    assert publisher is not None and copy.epoch is not None
    if spectator.connected and data.draw(st.integers(0, 7)) == 0:
        spectator.connected = False
    elif not spectator.connected and data.draw(st.booleans()):
        spectator.connected = True
        mirror = spectator.mirror
        if mirror.tick is not None:
            spectator.sync = Subscriber.resuming(SPECTATOR, mirror.tick, mirror.op)
    if not spectator.connected or data.draw(st.integers(0, 3)) == 0:
        return  # gone, or its socket was full: the baseline stays
    frame = decode(spectator.sync.frame(publisher))
    event(f"frame: {frame_kind(frame)}")
    spectator.mirror.apply(frame)  # never a Desync
    spectator.sync.delivered(publisher.tick)
    held = spectator.mirror
    assert held.tick == publisher.tick
    assert (checksum(held.view_state()), held.op) == truth[copy.epoch, publisher.tick]


def test_a_periodic_snapshot_carries_its_delta_and_gaps_are_mended_with_a_delta() -> None:
    world = CaseState()
    owner = new_owner(world, 1, checksum_every=1)
    thing = world.create("thing", {"a": 0, "secret": 1}, {"secret": View.FACILITATOR})
    entries: list[FeedEntry] = []

    def make(tick: int) -> Outgoing:
        world.set(thing, "a", tick)
        world.set(thing, "secret", tick)
        owner.tick(tick, {thing: (tick, 0, 0, 7)})
        return owner.writer.entry(owner.publisher, now=0.0)

    for tick in range(7):
        entries.append(decode_entry(make(tick).payload))
    assert [e.snapshot for e in entries] == [True, False, False, False, False, True, False]
    assert entries[0].base is None and entries[0].meta == META
    assert entries[5].base == 4 and entries[5].ops  # a periodic snapshot: delta and full
    assert all(len(e.ops) == 1 for e in entries[1:])  # the secret's ops are not for spectators

    make(7)
    owner.writer.take_back()  # tick 7's entry did not fit the queue
    lost = make(8)  # its append failed: the stream holds up to tick 6
    owner.writer.rebase(6, entries[6].op_head)
    mended = decode_entry(make(9).payload)
    assert lost.base == 6 and mended.base == 6 and not mended.snapshot
    assert len(mended.ops) == 3  # ticks 7, 8 and 9's spectator ops, in one delta

    copy = RoomCopy()
    assert copy.apply(entries[1]) is Step.WAITING  # a delta with nothing to chain to
    assert [copy.apply(e) for e in entries[2:]] == [
        Step.WAITING,
        Step.WAITING,
        Step.WAITING,
        Step.RESET,
        Step.CONTINUED,
    ]
    assert copy.apply(mended) is Step.CONTINUED
    owner.writer.rebase(None, 0)  # nothing of this owner's in the stream: start afresh
    fresh = decode_entry(make(10).payload)
    assert fresh.snapshot and fresh.base is None
    assert copy.apply(fresh) is Step.RESET
    end = decode_entry(owner.writer.last_entry(owner.publisher, 0.0, "room_ended", "done"))
    assert copy.apply(end) is Step.ENDED and copy.ended == ("room_ended", "done")


def test_a_copy_that_disagrees_with_the_owners_checksum_stops_serving() -> None:
    world = CaseState()
    owner = new_owner(world, 1, checksum_every=1)
    thing = world.create("thing", {"a": 0})
    owner.tick(0, {})
    copy = RoomCopy()
    assert copy.apply(decode_entry(owner.writer.entry(owner.publisher, now=0.0).payload)) is (
        Step.RESET
    )
    assert copy.mirror is not None
    copy.mirror.entities[thing][1]["b"] = "not the owner's"
    world.set(thing, "a", 1)
    owner.tick(1, {})
    assert copy.apply(decode_entry(owner.writer.entry(owner.publisher, now=0.0).payload)) is (
        Step.WAITING
    )
    assert copy.publisher is None  # nothing is served until the next snapshot
