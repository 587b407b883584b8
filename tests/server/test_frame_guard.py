"""The frame guard reads WebSocket frame headers in a byte stream cut anywhere, and refuses
a text frame or an oversized message at its header, before any of its payload."""

from __future__ import annotations

import socket
from dataclasses import dataclass

import pytest
import trio
from hypothesis import given, settings
from hypothesis import strategies as st
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, BytesMessage, Ping, Pong, Request

from server.client_socket import ClientSocket
from server.frame_guard import (
    BINARY,
    CONTINUATION,
    TEXT,
    FrameGuard,
    FrameRefused,
    whole_binary_frames,
)
from tests.faults.raw_ws import client_frame

LIMIT = 100
PING, PONG = 0x9, 0xA


@dataclass(frozen=True)
class Frame:
    opcode: int
    size: int
    fin: bool

    def encode(self) -> bytes:
        return client_frame(self.opcode, b"x" * self.size, fin=self.fin)


def messages(draw: st.DrawFn) -> list[Frame]:
    """A data message in one or more fragments, with control frames between them."""
    sizes = draw(st.lists(st.integers(0, 70), min_size=1, max_size=4))
    frames: list[Frame] = []
    for index, size in enumerate(sizes):
        opcode = BINARY if index == 0 else CONTINUATION
        frames.append(Frame(opcode, size, index == len(sizes) - 1))
        if draw(st.booleans()):
            frames.append(
                Frame(draw(st.sampled_from([PING, PONG])), draw(st.integers(0, 125)), True)
            )
    return frames


@st.composite
def streams(draw: st.DrawFn) -> tuple[list[Frame], list[int]]:
    frames = [f for _ in range(draw(st.integers(1, 5))) for f in messages(draw)]
    if draw(st.booleans()):
        frames.insert(draw(st.integers(0, len(frames))), Frame(TEXT, draw(st.integers(0, 5)), True))
    total = sum(len(f.encode()) for f in frames)
    cuts = sorted(draw(st.lists(st.integers(0, total), max_size=8)))
    return frames, cuts


def first_refusal(frames: list[Frame]) -> tuple[int, str] | None:
    """Where the stream should be refused (the end of the offending header) and why."""
    offset, message = 0, 0
    for frame in frames:
        header = len(frame.encode()) - frame.size
        if frame.opcode == TEXT:
            return offset + header, "bad_frame"
        if frame.opcode in (BINARY, CONTINUATION):
            message = frame.size if frame.opcode == BINARY else message + frame.size
            if message > LIMIT:
                return offset + header, "too_large"
        offset += header + frame.size
    return None


@settings(max_examples=300, deadline=None)
@given(streams())
def test_the_guard_refuses_exactly_at_the_offending_header(
    stream: tuple[list[Frame], list[int]],
) -> None:
    frames, cuts = stream
    data = b"".join(f.encode() for f in frames)
    expected = first_refusal(frames)
    guard = FrameGuard(LIMIT)
    fed = 0
    refused: tuple[int, str] | None = None
    for end in [*cuts, len(data)]:
        if end <= fed:
            continue
        try:
            guard.feed(data[fed:end])
        except FrameRefused as exc:
            refused = (end, exc.code)
            break
        fed = end
    if expected is None:
        assert refused is None
    else:
        assert refused is not None
        at, code = expected
        assert refused[1] == code
        assert fed < at <= refused[0]  # the chunk that completed the header was refused


def test_a_declared_length_is_refused_before_any_payload() -> None:
    guard = FrameGuard(65_536)
    header = client_frame(BINARY, b"", length=2**40)
    with pytest.raises(FrameRefused) as refused:
        guard.feed(header)
    assert refused.value.code == "too_large" and refused.value.close_code == 1009


def _open_server_connection() -> WSConnection:
    """The server's wsproto connection after a handshake, as the server holds it."""
    client = WSConnection(ConnectionType.CLIENT)
    server = WSConnection(ConnectionType.SERVER)
    server.receive_data(client.send(Request(host="test", target="/ws")))
    list(server.events())
    server.send(AcceptConnection())
    return server


def _wsproto_messages(data: bytes) -> list[bytes] | None:
    """What wsproto alone makes of `data`: its binary messages (pings and pongs aside),
    None if it objects."""
    server = _open_server_connection()
    server.receive_data(data)
    messages, parts = [], b""
    for event in server.events():
        if isinstance(event, Ping | Pong):
            continue
        if not isinstance(event, BytesMessage):
            return None
        parts += event.data
        if event.message_finished:
            messages.append(parts)
            parts = b""
    return messages if not parts else None


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.binary(max_size=300), max_size=4),
    st.binary(max_size=12),
    st.integers(0, 3),
)
def test_whole_binary_frames_reads_what_wsproto_reads_or_leaves_it_to_wsproto(
    payloads: list[bytes], noise: bytes, where: int
) -> None:
    frames = [client_frame(BINARY, p) for p in payloads]
    clean = b"".join(frames)
    assert whole_binary_frames(clean, 65_536) == payloads  # the common case is taken
    dirty = b"".join(frames[:where]) + noise + b"".join(frames[where:])
    split = whole_binary_frames(dirty, 65_536)
    if split is not None:  # anything it takes, wsproto reads the same way
        assert split == _wsproto_messages(dirty)


@settings(max_examples=200, deadline=None)
@given(streams())
def test_the_socket_reads_every_message_of_a_stream_cut_anywhere(
    stream: tuple[list[Frame], list[int]],
) -> None:
    """Whole frames between messages go the short way, the rest through the guard and
    wsproto; either way the messages come out whole and in order."""
    frames, cuts = stream
    if any(f.opcode == TEXT for f in frames):
        return  # refused; the test above covers refusals
    data = b"".join(f.encode() for f in frames)
    expected = _wsproto_messages(data)
    assert expected is not None

    async def read() -> list[bytes]:
        near, far = socket.socketpair()
        with near, far:
            sock = ClientSocket(
                far, _open_server_connection(), queue_bytes=1 << 20, receive_timeout=30
            )
            got: list[bytes] = []
            fed = 0
            for end in [*cuts, len(data)]:
                if end > fed:
                    got += sock._take(data[fed:end])
                    fed = end
            return got

    assert trio.run(read) == expected
