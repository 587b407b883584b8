"""CPU per operation on the server's per-client paths, each timed alone.

    python -m bench.server_paths [--repeat 20000]

The profile (bench/profile_grs.py) says where a loaded server spends its time; on a
shared machine its shares are noisy. These are the same operations, run in a loop and
timed with CPU time (the best of three), then multiplied by how often GR-S does each:
per tick, 8 participants send a pose each (30 Hz) and ack every 10 ticks, the 200
spectators ack every 5 s (`netcode.sync.ack_interval`), and the room sends every client
a frame. Everything is the server's own code (the frame reading, the codec,
the room, trio, the publisher, a non-blocking send) on the same objects the server
builds.
"""

from __future__ import annotations

import argparse
import socket
import time
from collections.abc import Callable
from typing import Final

import trio
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, BytesMessage, Request

from bench.motion import Participant, carried_object_pose
from netcode.codec import MAX_CLIENT_MESSAGE, encode, encode_single, parse_client_message
from netcode.sync import ack_interval
from netcode.views import Role, View
from rooms.demo import DemoScenario
from rooms.room import Room
from server.client_socket import binary_frame
from server.frame_guard import FrameGuard, whole_binary_frames

GRS_PARTICIPANTS: Final = 8
GRS_CLIENTS: Final = 208


def best_of_three(repeat: int, operation: Callable[[], object]) -> float:
    """CPU seconds per call of `operation`, the best of three runs of `repeat` calls."""
    best = float("inf")
    for _ in range(3):
        started = time.process_time()
        for _ in range(repeat):
            operation()
        best = min(best, (time.process_time() - started) / repeat)
    return best


def _server_websocket() -> tuple[WSConnection, WSConnection]:
    client = WSConnection(ConnectionType.CLIENT)
    server = WSConnection(ConnectionType.SERVER)
    server.receive_data(client.send(Request(host="bench", target="/ws")))
    list(server.events())
    client.receive_data(server.send(AcceptConnection()))
    list(client.events())
    return client, server


def _pose_message(motion: Participant, frame: int, carried: int) -> dict[str, object]:
    pose = motion.pose(frame)
    return {
        "t": "pose",
        "head": pose[0:7],
        "left": pose[7:14],
        "right": pose[14:21],
        "objects": {carried: carried_object_pose(pose)},
    }


def measure(repeat: int) -> dict[str, float]:
    """Microseconds per operation."""
    client, server = _server_websocket()
    room = Room("bench", DemoScenario(1), seed=1, framer=binary_frame)
    room.start()
    member = room.join(Role.PARTICIPANT, "p0")
    room.tick()
    carried = min(room.world.find("object"))
    room.submit(member.id, 1, "grab", {"obj": carried})
    room.tick()
    motion = Participant(0, GRS_PARTICIPANTS, active=True)
    pose_bytes = encode_single(_pose_message(motion, 0, carried))
    ack_bytes = encode({"t": "ack", "tick": 12345})
    pose_frame = client.send(BytesMessage(data=pose_bytes))
    ack_frame = client.send(BytesMessage(data=ack_bytes))

    guard = FrameGuard(MAX_CLIENT_MESSAGE)
    limit = MAX_CLIENT_MESSAGE

    def read(frame: bytes) -> Callable[[], object]:
        def once() -> object:  # as ClientSocket._take: whole frames the short way
            if guard.between_messages and (whole := whole_binary_frames(frame, limit)):
                return whole
            guard.feed(frame)
            server.receive_data(frame)
            return list(server.events())

        return once

    frames = [motion.pose(k) for k in range(1000)]
    counter = iter(range(10**9))

    def apply_pose() -> None:
        pose = frames[next(counter) % 1000]
        room.pose(
            member.id,
            {"head": pose[0:7], "left": pose[7:14], "right": pose[14:21]},
            {carried: carried_object_pose(pose)},
        )

    base = room.tick_no
    apply_pose()
    room.tick()

    def encode_delta() -> bytes:
        room.publisher._cache.clear()  # what a new tick does: the frame is built again
        room.publisher._pose_delta_cache.clear()
        return room.publisher.frame(View.SPECTATOR, base)

    shared = room.publisher.frame(View.SPECTATOR, base)
    sender, receiver = _tcp_pair()
    sender.setblocking(False)
    sent = iter(range(10**9))

    def fan_out_one() -> None:
        frame = room.publisher.frame(View.SPECTATOR, base)
        sender.send(frame)
        if next(sent) % 64 == 0:
            receiver.recv(1 << 20)

    micro = {
        "read a pose frame": best_of_three(repeat, read(pose_frame)),
        "read an ack frame": best_of_three(repeat, read(ack_frame)),
        "parse a pose (msgpack + pydantic)": best_of_three(
            repeat, lambda: parse_client_message(pose_bytes)
        ),
        "parse an ack (msgpack + pydantic)": best_of_three(
            repeat, lambda: parse_client_message(ack_bytes)
        ),
        "apply a pose (Room.pose, 3 parts + object)": best_of_three(repeat // 4, apply_pose),
        "trio: one wake-up to read (wait_readable, recv)": _trio_receive(repeat),
        "fan-out: one client's frame lookup and send": best_of_three(repeat, fan_out_one),
        "encode one delta frame (per view and baseline)": best_of_three(repeat // 4, encode_delta),
    }
    sender.close()
    receiver.close()
    assert len(shared) > 0
    return {name: seconds * 1e6 for name, seconds in micro.items()}


def _tcp_pair() -> tuple[socket.socket, socket.socket]:
    """Two ends of a loopback TCP connection, as a client's socket is."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        near = socket.create_connection(listener.getsockname())
        far, _ = listener.accept()
    for end in (near, far):
        end.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return near, far


def _trio_receive(repeat: int) -> float:
    """What `ClientSocket.receive` does for each wake-up (waiting for the socket through
    trio's epoll, one `recv`; the deadline is `watch_silence`'s, not the wait's), with
    the client's byte already sent: the least a wake-up costs."""

    async def loop() -> float:
        peer, mine = _tcp_pair()
        mine.setblocking(False)
        best = float("inf")
        for _ in range(3):
            elapsed = 0.0
            for _ in range(repeat):
                peer.send(b"x")  # the client's send, outside the timing
                started = time.process_time()
                await trio.lowlevel.wait_readable(mine)
                mine.recv(65536)
                elapsed += time.process_time() - started
            best = min(best, elapsed / repeat)
        peer.close()
        mine.close()
        return best

    return trio.run(loop)


def per_tick(micro: dict[str, float]) -> list[str]:
    """The GR-S cost of each operation per tick and per client per tick."""
    poses = GRS_PARTICIPANTS
    spectators = GRS_CLIENTS - GRS_PARTICIPANTS
    acks = poses / ack_interval(Role.PARTICIPANT, 30) + spectators / ack_interval(
        Role.SPECTATOR, 30
    )
    messages = poses + acks
    rows = [
        ("read client messages", poses * micro["read a pose frame"]
         + acks * micro["read an ack frame"]),
        ("parse client messages", poses * micro["parse a pose (msgpack + pydantic)"]
         + acks * micro["parse an ack (msgpack + pydantic)"]),
        ("apply poses", poses * micro["apply a pose (Room.pose, 3 parts + object)"]),
        ("trio per received message",
         messages * micro["trio: one wake-up to read (wait_readable, recv)"]),
        ("fan-out sends", GRS_CLIENTS * micro["fan-out: one client's frame lookup and send"]),
        ("encode (1 delta per tick)", micro["encode one delta frame (per view and baseline)"]),
    ]  # fmt: skip
    lines = [f"GR-S per tick ({poses} poses, {acks:.1f} acks, {GRS_CLIENTS} frames sent):"]
    for name, us in rows:
        lines.append(f"  {name:<34} {us:8.0f} us/tick {us / GRS_CLIENTS:8.2f} us/client/tick")
    total = sum(us for _, us in rows)
    lines.append(
        f"  {'total':<34} {total:8.0f} us/tick {total / GRS_CLIENTS:8.2f} us/client/tick "
        f"({total * 30 / 1e6:.3f} CPU-s/s at 30 Hz, without the room tick and scheduling "
        "of the wake-ups)"
    )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=20000)
    micro = measure(parser.parse_args().repeat)
    for name, us in micro.items():
        print(f"{name:<58} {us:8.2f} us")
    print("\n".join(per_tick(micro)))


if __name__ == "__main__":
    main()
