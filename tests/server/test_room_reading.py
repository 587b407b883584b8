"""A connection whose reading the room took over (`ClientSocket.read_now`, once per
tick): it reads what is there without waiting, and `wait_over` wakes its session's task
for every way the connection can end: the client's close, its going away, its silence,
a close asked for by the server, and a failure the room's reading met."""

from __future__ import annotations

import socket

import pytest
import trio

from server.client_socket import ClientSocket, Refusal
from tests.faults.raw_ws import client_frame
from tests.server.test_frame_guard import _open_server_connection

BINARY, PING, CLOSE = 0x2, 0x9, 0x8


def lent_socket(receive_timeout: float = 30.0) -> tuple[socket.socket, ClientSocket]:
    near, far = socket.socketpair()
    sock = ClientSocket(
        far, _open_server_connection(), queue_bytes=1 << 20, receive_timeout=receive_timeout
    )
    return near, sock


async def over_within(sock: ClientSocket, seconds: float = 1.0) -> None:
    with trio.fail_after(seconds):
        await sock.wait_over()


async def test_read_now_takes_what_is_there_and_never_waits() -> None:
    near, sock = lent_socket()
    with near:
        assert sock.read_now() == []
        near.sendall(client_frame(BINARY, b"one") + client_frame(BINARY, b"two"))
        assert sock.read_now() == [b"one", b"two"]
        half = client_frame(BINARY, b"three")
        near.sendall(half[:4])
        assert sock.read_now() == []  # the rest of the frame is not there yet
        near.sendall(half[4:])
        assert sock.read_now() == [b"three"]
        near.sendall(client_frame(PING, b"p"))
        assert sock.read_now() == []
        assert near.recv(100) == b"\x8a\x01p"  # the pong went out on the spot
        sock.abort("test over")


async def test_the_clients_close_and_its_going_away_end_the_wait() -> None:
    near, sock = lent_socket()
    with near:
        near.sendall(client_frame(BINARY, b"last") + client_frame(CLOSE, b"\x03\xe8"))
        assert sock.read_now() == [b"last"]
        await over_within(sock)
        assert sock.client_close_code == 1000
        assert sock.read_now() == []
        sock.abort("test over")

    near, sock = lent_socket()
    near.close()
    assert sock.read_now() == []
    await over_within(sock)
    sock.abort("test over")


async def test_a_close_asked_for_by_the_server_ends_the_wait() -> None:
    near, sock = lent_socket()
    with near:
        sock.close_soon("removed")
        await over_within(sock)
        near.sendall(client_frame(BINARY, b"late"))
        assert sock.read_now() == []  # nothing more is read once it is closing
        sock.abort("test over")


async def test_a_silent_client_ends_the_wait_and_the_next_read_refuses_it() -> None:
    near, sock = lent_socket(receive_timeout=0.05)
    with near:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(sock.watch_silence)
            await over_within(sock)
        with pytest.raises(Refusal) as refused:
            sock.read_now()
        assert refused.value.code == "timeout"
        sock.abort("test over")


async def test_a_failure_met_by_the_rooms_reading_ends_the_wait() -> None:
    near, sock = lent_socket()
    with near:
        near.sendall(client_frame(0x1, b"text"))
        with pytest.raises(Refusal) as refused:
            sock.read_now()
        assert refused.value.code == "bad_frame"
        sock.end_reading()  # what the session's reader does with it
        await over_within(sock)
        sock.abort("test over")
