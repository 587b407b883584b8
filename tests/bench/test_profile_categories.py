"""The profile puts each sampled stack in the category a reader would."""

from __future__ import annotations

import inspect

from trio._core._io_epoll import EpollIOManager

from bench.profile_grs import IDLE, Profile, categorize, parse_frame
from replay.writer import SessionWriter
from server.client_socket import ClientSocket

ROOT = "run (trio/_core/_run.py:2532);unrolled_run (trio/_core/_run.py:2866)"
SESSION = (
    f"{ROOT};Session.run (server/client_session.py:85);"
    "Session._converse (server/client_session.py:113)"
)
TICK = (
    f"{ROOT};RoomHost.run (server/room_host.py:236);"
    "RoomHost._tick_forever (server/room_host.py:286)"
)


def stack(text: str) -> list[tuple[str, str, int]]:
    return [parse_frame(frame) for frame in text.split(";")]


def test_the_innermost_named_frame_decides() -> None:
    assert categorize(stack(
        f"{SESSION};ClientSocket.receive (server/client_socket.py:190);"
        "ClientSocket._take (server/client_socket.py:243);"
        "WSConnection.receive_data (wsproto/__init__.py:80)"
    )) == "read client messages"  # fmt: skip
    assert categorize(stack(
        f"{SESSION};ClientSocket.receive (server/client_socket.py:211);"
        "ClientSocket._read_available (server/client_socket.py:222)"
    )) == "read client messages"  # fmt: skip
    assert categorize(stack(
        f"{SESSION};Session._parse (server/client_session.py:150);"
        "parse_client_message (netcode/codec.py:200);"
        "TypeAdapter.validate_python (pydantic/type_adapter.py:400)"
    )) == "parse client messages"  # fmt: skip
    assert categorize(stack(
        f"{SESSION};Session._parse (server/client_session.py:183);"
        "decode_client_frame (netcode/codec.py:120);_plain_data_problem (netcode/codec.py:90)"
    )) == "parse client messages"  # fmt: skip
    assert categorize(stack(
        f"{TICK};RoomHost._fan_out (server/room_host.py:309);"
        "RoomHost._send_state (server/room_host.py:324);"
        "Publisher.frame (netcode/publisher.py:100)"
    )) == "encoding"  # fmt: skip
    assert categorize(stack(
        f"{TICK};Room.tick (rooms/room.py:300);Publisher.publish (netcode/publisher.py:70);"
        "checksum (netcode/codec.py:255);canonical (netcode/codec.py:236)"
    )) == "encoding"  # fmt: skip
    assert categorize(stack(
        f"{TICK};RoomHost._fan_out (server/room_host.py:309);"
        "ClientSocket.offer (server/client_socket.py:95)"
    )) == "fan-out sends"  # fmt: skip
    assert categorize(stack(
        f"{TICK};sleep_until (trio/_timeouts.py:91);CancelScope.__exit__ (trio/_core/_run.py:714)"
    )) == "scheduling (trio)"  # fmt: skip


def test_recording_and_metrics_own_everything_under_them() -> None:
    assert categorize(stack(
        f"{SESSION};Room.pose (rooms/room.py:240);Room._record (rooms/room.py:506);"
        "SessionWriter.write (replay/writer.py:130);encode (netcode/codec.py:47)"
    )) == "recording"  # fmt: skip
    assert categorize(stack(
        f"{TICK};RoomHost._fan_out (server/room_host.py:316);"
        "Counter.inc (prometheus_client/metrics.py:300)"
    )) == "metrics"  # fmt: skip


def test_waits_are_counted_apart_and_left_out_of_the_cpu_shares() -> None:
    epoll = inspect.getsource(EpollIOManager.get_events).splitlines()
    poll_line = inspect.getsourcelines(EpollIOManager.get_events)[1] + next(
        i for i, text in enumerate(epoll) if ".poll(" in text
    )
    fsync_line = inspect.getsourcelines(SessionWriter._append_run)[1] + next(
        i
        for i, text in enumerate(inspect.getsource(SessionWriter._append_run).splitlines())
        if "fsync(" in text
    )
    take_line = inspect.getsourcelines(ClientSocket.receive)[1] + next(
        i
        for i, text in enumerate(inspect.getsource(ClientSocket.receive).splitlines())
        if "self._take(" in text
    )
    profile = Profile.read(
        f"{ROOT};EpollIOManager.get_events (trio/_core/_io_epoll.py:{poll_line}) 30\n"
        f"Thread.run (threading.py:982);"
        f"SessionWriter._append_run (replay/writer.py:{fsync_line}) 5\n"
        f"{SESSION};ClientSocket.receive (server/client_socket.py:{take_line}) 10\n"
    )
    assert profile.by_category[IDLE] == 35
    assert profile.by_category["read client messages"] == 10
    assert profile.samples == 45
    assert sum(profile.self_time.values()) == 10
