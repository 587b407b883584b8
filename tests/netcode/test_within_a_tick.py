"""What one member does is in the very next tick's frame for everyone (no clock needed)."""

from __future__ import annotations

from netcode.mirror import Mirror
from netcode.quantize import quantize
from netcode.views import ALL_VIEWS, Role
from tests.netcode.room_helpers import make_room
from tests.netcode.sync_helpers import decode


def test_a_pose_and_an_event_reach_every_view_in_the_next_tick() -> None:
    room = make_room()
    ana = room.join(Role.PARTICIPANT, "Ana")
    room.join(Role.PARTICIPANT, "Ben")
    room.tick()  # avatars exist from here on
    mirrors = {view: Mirror() for view in ALL_VIEWS}
    for view, mirror in mirrors.items():
        mirror.apply(decode(room.publisher.frame(view, None)))

    pose = (0.25, 1.6, -0.5, 0.0, 0.0, 0.0, 1.0)
    room.pose(ana.id, {"head": pose})
    room.submit(ana.id, 1, "chat", {"text": "Starting fluids"})
    base = room.tick_no
    room.tick()

    head = ana.parts["head"]
    for view, mirror in mirrors.items():
        mirror.apply(decode(room.publisher.frame(view, base)))
        assert mirror.tick == base + 1
        assert mirror.poses[head] == list(quantize(pose)), view
        assert mirror.logs["chat"][-1]["text"] == "Starting fluids", view
