"""Desyncs are detected by the checksum (or a mismatched baseline) and healed by a snapshot."""

from __future__ import annotations

import pytest

from netcode.mirror import Desync, Mirror
from netcode.publisher import Publisher
from netcode.state import CaseState
from netcode.sync import Follower
from netcode.views import View
from tests.netcode.sync_helpers import assert_mirror_matches, decode


def setup_room(checksum_every: int) -> tuple[CaseState, Publisher, Mirror, int]:
    world = CaseState()
    publisher = Publisher(world, checksum_every=checksum_every)
    eid = world.create("monitor", {"hr": 92, "spo2": 95})
    publisher.publish(0, world.drain(), {eid: (0, 900, 0, 7)})
    mirror = Mirror()
    mirror.apply(decode(publisher.frame(View.PARTICIPANT, None)))
    return world, publisher, mirror, eid


@pytest.mark.parametrize("corrupt", ["field", "extra_entity", "log", "pose"])
def test_a_corrupted_mirror_fails_the_next_checksum_and_a_snapshot_repairs_it(
    corrupt: str,
) -> None:
    world, publisher, mirror, eid = setup_room(checksum_every=3)
    if corrupt == "field":
        mirror.entities[eid][1]["spo2"] = 88
    elif corrupt == "extra_entity":
        mirror.entities[999] = ["ghost", {}]
    elif corrupt == "log":
        mirror.logs["chat"] = ["phantom"]
    else:
        mirror.poses[eid] = [1, 2, 3, 4]
    for tick in (1, 2):  # deltas without a checksum apply silently
        world.set(eid, "hr", 92 + tick)
        publisher.publish(tick, world.drain(), {eid: (0, 900, 0, 7)})
        frame = decode(publisher.frame(View.PARTICIPANT, mirror.tick))
        assert "c" not in frame
        mirror.apply(frame)
    publisher.publish(3, world.drain(), {eid: (0, 900, 0, 7)})
    frame = decode(publisher.frame(View.PARTICIPANT, mirror.tick))
    assert "c" in frame
    with pytest.raises(Desync, match="checksum"):
        mirror.apply(frame)
    # the client sends resync: its next frame is a snapshot
    mirror.apply(decode(publisher.frame(View.PARTICIPANT, None)))
    assert_mirror_matches(mirror, publisher, View.PARTICIPANT)
    publisher.publish(4, world.drain(), {eid: (0, 900, 0, 7)})
    mirror.apply(decode(publisher.frame(View.PARTICIPANT, mirror.tick)))
    assert_mirror_matches(mirror, publisher, View.PARTICIPANT)


def test_a_delta_for_another_baseline_is_refused_without_touching_the_mirror() -> None:
    world, publisher, mirror, eid = setup_room(checksum_every=1)
    for tick in (1, 2):
        world.set(eid, "hr", 100 + tick)
        publisher.publish(tick, world.drain(), {})
    before = (mirror.tick, mirror.op, {k: [v[0], dict(v[1])] for k, v in mirror.entities.items()})
    with pytest.raises(Desync, match="tick"):
        mirror.apply(decode(publisher.frame(View.PARTICIPANT, 1)))  # mirror holds tick 0
    assert (mirror.tick, mirror.op, mirror.entities) == before
    with pytest.raises(Desync, match="op"):
        mirror.apply(decode(publisher.frame(View.PARTICIPANT, None, last_op=mirror.op + 1)))
    assert (mirror.tick, mirror.op, mirror.entities) == before


def test_an_op_on_an_entity_the_mirror_lacks_is_a_desync() -> None:
    world, publisher, mirror, eid = setup_room(checksum_every=0)
    del mirror.entities[eid]
    world.set(eid, "hr", 120)
    publisher.publish(1, world.drain(), {})
    with pytest.raises(Desync, match=str(eid)):
        mirror.apply(decode(publisher.frame(View.PARTICIPANT, 0)))


def test_checksummed_frames_agree_with_a_healthy_mirror_every_time() -> None:
    world, publisher, mirror, eid = setup_room(checksum_every=1)
    for tick in range(1, 40):
        world.set(eid, "hr", 60 + tick % 7)
        if tick % 5 == 0:
            world.log("events", {"t": tick})
        publisher.publish(tick, world.drain(), {eid: (tick // 3, 900, 0, 7)})
        frame = decode(publisher.frame(View.PARTICIPANT, mirror.tick))
        assert frame["c"] == publisher.checksums[View.PARTICIPANT]  # type: ignore[index]
        mirror.apply(frame)


@pytest.mark.parametrize("turn", [0, 1, 2])
def test_a_follower_sharing_the_checking_verifies_its_turns_and_catches_a_desync_there(
    turn: int,
) -> None:
    """With `checksum_share` 3, a follower verifies every third checksum, starting at its
    turn: a corrupted mirror is caught at the first checksum that is its to verify."""
    world, publisher, _, eid = setup_room(checksum_every=1)
    follower = Follower(checksum_share=3, checksum_turn=turn)
    follower.receive(decode(publisher.frame(View.PARTICIPANT, None)))
    follower.mirror.entities[eid][1]["spo2"] = 88  # silent local corruption
    caught_at = None
    for tick in range(1, 7):
        world.set(eid, "hr", 92 + tick)
        publisher.publish(tick, world.drain(), {eid: (0, 900, 0, 7)})
        frame = decode(publisher.frame(View.PARTICIPANT, follower.mirror.tick))
        assert "c" in frame
        step = follower.receive(frame)
        assert "c" in frame  # the caller's frame is left as it came
        if step.resync:
            caught_at = tick
            break
    # The snapshot's checksum is the first seen: turn 2 verified it (before the corruption).
    assert caught_at == {0: 2, 1: 1, 2: 3}[turn]
    assert follower.resyncs == 1
