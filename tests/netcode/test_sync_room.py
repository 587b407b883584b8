"""Issue 2's key property on a real Room: every client's mirror equals its view.

Clients join, move, act, drop, resume (inside and outside the history), have their
grace period run out, ask for a reduced rate, and have frames skipped; after every
delivered frame their mirror holds exactly what the server holds for their role. Both
ends are netcode's own: the server's `Subscriber` and the client's `Follower`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hypothesis import event, given, settings
from hypothesis import strategies as st

from netcode.sync import Follower, Subscriber
from netcode.views import VIEW_OF_ROLE, Role
from rooms.actions import IntentRefused
from rooms.room import Room, RoomConfig, RoomStatus
from tests.netcode.room_helpers import POSE, TICK_HZ, make_room
from tests.netcode.sync_helpers import SLOW_OK, assert_mirror_matches, decode, frame_kind

ROLES = st.sampled_from([Role.PARTICIPANT, Role.PARTICIPANT, Role.FACILITATOR, Role.SPECTATOR])


@dataclass
class Client:
    member: int
    role: Role
    sync: Subscriber
    follower: Follower = field(default_factory=Follower)
    connected: bool = True

    @classmethod
    def joining(cls, room: Room, role: Role, name: str) -> Client:
        client = cls(room.join(role, name).id, role, Subscriber(VIEW_OF_ROLE[role]))
        client.follower.welcomed(resumed=False)
        return client


def deliver(room: Room, client: Client) -> None:
    if not client.sync.due(room.tick_no):
        return
    frame = decode(client.sync.frame(room.publisher))
    event(f"frame kind: {frame_kind(frame)}")
    step = client.follower.receive(frame)
    assert step.applied and not step.resync  # never a Desync
    client.sync.delivered(room.tick_no)
    assert_mirror_matches(client.follower.mirror, room.publisher, client.sync.view)


def act(data: st.DataObject, room: Room, client: Client, reply_id: int) -> None:
    objects = room.world.find("object")
    action = data.draw(
        st.sampled_from(
            ["chat", "ask", "note", "grab", "release", "pause", "resume", "pose", "carry", "end"]
        )
    )
    if action == "end" and data.draw(st.integers(0, 9)) != 0:
        action = "chat"
    if action == "pose" or action == "carry":
        carried = {}
        if action == "carry":
            held = [o for o in objects if room.leases.holder(o) == client.member]
            if held:
                carried = {data.draw(st.sampled_from(held)): data.draw(POSE)}
        try:
            room.pose(client.member, {"head": data.draw(POSE), "right": data.draw(POSE)}, carried)
        except IntentRefused as refused:  # spectators
            assert refused.code == "forbidden"
            assert client.role is Role.SPECTATOR
        return
    args: dict[str, object] = {"text": data.draw(st.text(max_size=12))}
    if action in ("grab", "release"):
        args = {"obj": data.draw(st.sampled_from(objects))}
    try:
        room.submit(client.member, reply_id, action, args)
    except IntentRefused as refused:  # answered at once, not queued
        assert refused.code in ("too_many_refusals", "room_busy")


@settings(max_examples=50, deadline=None, suppress_health_check=SLOW_OK)
@given(st.data())
def test_room_clients_always_hold_their_view(data: st.DataObject) -> None:
    history = data.draw(st.sampled_from([None, 3]), label="history_ticks")
    config = RoomConfig(
        tick_hz=TICK_HZ,
        grace_seconds=data.draw(st.sampled_from([0.5, 30.0])),
        lease_seconds=1.0,
        checksum_every=data.draw(st.sampled_from([1, 4])),
        keyframe_seconds=2.0,
    )
    room = make_room(
        data.draw(st.integers(0, 3)),
        config=config,
        history_ticks=history,
        op_ring=None if history is None else 40,
    )
    clients: list[Client] = []
    reply_id = 0
    for _ in range(data.draw(st.integers(5, 35), label="ticks")):
        if room.status is RoomStatus.ENDED:
            break  # the host stops ticking an ended room
        for _ in range(data.draw(st.integers(0, 4))):
            reply_id += 1
            choice = data.draw(
                st.sampled_from(
                    ["join", "act", "act", "act", "drop", "back", "back", "leave", "rate"]
                )
            )
            if choice == "join" or not clients:
                client = Client.joining(room, data.draw(ROLES), f"m{len(clients)}")
                clients.append(client)
                deliver(room, client)  # welcome comes with the current state
                continue
            client = data.draw(st.sampled_from(clients))
            if choice == "act" and client.connected:
                act(data, room, client, reply_id)
            elif choice == "rate" and client.connected:
                client.sync.set_rate(data.draw(st.sampled_from([1, 3, TICK_HZ])), TICK_HZ)
            elif choice == "drop" and client.connected:
                room.disconnect(client.member)
                client.connected = False
            elif choice == "leave" and client.connected:
                room.leave(client.member)  # its avatar and parts go at the next tick
                client.connected = False
                client.member = -1
            elif choice == "back" and not client.connected and client.member != -1:
                client.connected = True
                point = client.follower.resume_point()
                if point is not None and room.reconnect(client.member):
                    client.sync = Subscriber.resuming(
                        client.sync.view, point["tick"], point["op"], client.sync.every
                    )
                    client.follower.welcomed(resumed=True)
                else:  # the grace period ran out: a new member, from a snapshot
                    client.member = room.join(client.role, "again").id
                    client.sync = Subscriber(client.sync.view)
                    client.follower.welcomed(resumed=False)
                    event("session expired")
                deliver(room, client)
        room.tick()
        for client in clients:
            if client.connected and data.draw(st.integers(0, 4)) != 0:
                deliver(room, client)
