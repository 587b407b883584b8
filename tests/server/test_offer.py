"""A state frame offered to a client that reads slowly: the client gets exactly the frames
`offer` said it took, whole and in order; what the socket did not take of a frame is
finished by the writer task, and nothing more is offered until it is."""

from __future__ import annotations

import socket

import pytest
import trio

from server.client_socket import ClientSocket, binary_frame
from tests.server.test_frame_guard import _open_server_connection

SEND_BUFFER = 4096


def frames_in(stream: bytes) -> list[bytes]:
    """The payloads of a stream of unmasked binary frames; fails on a torn frame."""
    payloads = []
    while stream:
        assert stream[0] == 0x82, stream[:4]
        size, start = stream[1], 2
        if size == 126:
            size, start = int.from_bytes(stream[2:4], "big"), 4
        assert len(stream) >= start + size, "a torn frame"
        payloads.append(stream[start : start + size])
        stream = stream[start + size :]
    return payloads


@pytest.mark.parametrize("size", [100, 1500, 5000])
async def test_a_slow_reader_gets_every_frame_offer_took_whole_and_in_order(size: int) -> None:
    near, far = socket.socketpair()
    near.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SEND_BUFFER)
    sock = ClientSocket(
        far,
        _open_server_connection(),
        queue_bytes=1 << 20,
        receive_timeout=30,
        send_buffer=SEND_BUFFER,
    )
    taken, skipped = [], 0
    for number in range(200):
        payload = number.to_bytes(2, "big") * (size // 2)
        if sock.offer(binary_frame(payload)):
            taken.append(payload)
        else:
            skipped += 1
    assert skipped, "the socket never filled"
    assert taken, "the socket took nothing"

    received = b""
    near.setblocking(False)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(sock.run_writer)
        with trio.fail_after(5):
            while len(received) < sum(len(binary_frame(p)) for p in taken):
                await trio.lowlevel.wait_readable(near)
                received += near.recv(65536)
        sock.abort("test over")
    near.close()
    assert frames_in(received) == taken
