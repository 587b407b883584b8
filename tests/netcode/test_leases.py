"""Leases on shared objects: one holder, clear refusals, renewed by use, expired in ticks."""

from __future__ import annotations

import pytest

from netcode.leases import LeaseRefused, Leases
from netcode.views import Role
from rooms.actions import IntentRefused
from rooms.room import Room
from tests.netcode.room_helpers import intent, make_room, pose_values, replies_of

TIMEOUT = 10  # room_helpers.CONFIG: lease_seconds=1.0 at 10 Hz


def test_a_second_grab_is_refused_naming_the_holder_until_expiry() -> None:
    leases = Leases(timeout_ticks=5)
    leases.grab(1, member=10, tick=0, holder_name="nobody")
    with pytest.raises(LeaseRefused, match="held by Ana") as refused:
        leases.grab(1, member=20, tick=4, holder_name="Ana")
    assert "Ana" in refused.value.reason
    assert leases.holder(1) == 10
    leases.grab(1, member=10, tick=4)  # the holder may grab again (a renewal)
    assert leases.renew(1, member=20, tick=5) is False
    assert leases.expire(8) == []
    assert leases.expire(9) == [1]
    assert leases.holder(1) is None
    leases.grab(1, member=20, tick=9)
    assert leases.holder(1) == 20


def test_release_and_release_all_only_free_the_members_own() -> None:
    leases = Leases(timeout_ticks=5)
    for obj in (1, 2, 3):
        leases.grab(obj, member=obj % 2, tick=0)
    assert leases.release(1, member=0) is False
    assert leases.release_all(1) == [1, 3]
    assert [leases.holder(o) for o in (1, 2, 3)] == [None, 0, None]
    restored = Leases(5)
    restored.restore(leases.export())
    assert restored.export() == leases.export()


def two_members(room: Room) -> tuple[int, int, int]:
    ana = room.join(Role.PARTICIPANT, "Ana").id
    ben = room.join(Role.FACILITATOR, "Ben").id
    room.tick()
    return ana, ben, room.world.find("object")[0]


def test_two_members_grab_one_object_exactly_one_holds_it() -> None:
    room = make_room()
    ana, ben, obj = two_members(room)
    room.submit(ana, 1, "grab", {"obj": obj})
    room.submit(ben, 2, "grab", {"obj": obj})
    replies = replies_of(room.tick())
    assert replies[1].ok
    assert not replies[2].ok
    assert replies[2].code == "lease_refused"
    assert "Ana" in replies[2].message
    assert room.leases.holder(obj) == ana
    assert room.world.get(obj, "holder") == room.members[ana].avatar
    with pytest.raises(IntentRefused) as refused:
        room.pose(ben, {}, {obj: pose_values(0.5)})
    assert refused.value.code == "not_holder"


def test_moving_the_object_renews_the_lease_and_idling_expires_it() -> None:
    room = make_room()
    ana, ben, obj = two_members(room)
    assert intent(room, ana, 1, "grab", obj=obj).ok
    for step in range(6):  # 30 ticks of carrying, three lease timeouts
        room.pose(ana, {}, {obj: pose_values(0.01 * step)})
        for _ in range(5):
            room.tick()
        assert room.leases.holder(obj) == ana
    last_use = room.tick_no
    room.pose(ana, {}, {obj: pose_values(1.0)})
    while room.tick_no < last_use + TIMEOUT - 1:
        room.tick()
        assert room.leases.holder(obj) == ana
    room.tick()  # tick last_use + TIMEOUT: not renewed in time
    assert room.leases.holder(obj) is None
    assert room.world.get(obj, "holder") is None
    assert intent(room, ben, 2, "grab", obj=obj).ok
    assert room.world.get(obj, "holder") == room.members[ben].avatar


def test_a_disconnect_releases_every_lease_held() -> None:
    room = make_room()
    ana, ben, obj = two_members(room)
    other = room.world.find("object")[1]
    assert intent(room, ana, 1, "grab", obj=obj).ok
    assert intent(room, ana, 2, "grab", obj=other).ok
    room.disconnect(ana)
    room.tick()
    assert room.leases.holder(obj) is None and room.leases.holder(other) is None
    assert room.world.get(obj, "holder") is None
    assert room.world.get(room.members[ana].avatar, "connected") is False  # type: ignore[arg-type]
    assert intent(room, ben, 3, "grab", obj=obj).ok


def test_release_by_a_non_holder_is_refused_and_by_the_holder_frees_it() -> None:
    room = make_room()
    ana, ben, obj = two_members(room)
    assert intent(room, ana, 1, "grab", obj=obj).ok
    reply = intent(room, ben, 2, "release", obj=obj)
    assert (reply.ok, reply.code) == (False, "not_holder")
    assert intent(room, ana, 3, "release", obj=obj).ok
    assert room.world.get(obj, "holder") is None
    assert intent(room, ben, 4, "grab", obj=obj).ok


@pytest.mark.parametrize(
    ("obj", "code"),
    [
        (0, "unknown_object"),
        (10**6, "unknown_object"),
        ("1", "bad_args"),
        (None, "bad_args"),
        (2**40, "bad_args"),
    ],
)
def test_grabbing_something_that_is_not_a_shared_object_is_refused(obj: object, code: str) -> None:
    room = make_room()
    ana, _, _ = two_members(room)
    if obj == 0:
        obj = room.world.find("monitor")[0]
    reply = intent(room, ana, 1, "grab", obj=obj)
    assert (reply.ok, reply.code) == (False, code)
