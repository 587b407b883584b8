"""The spectators' frame reader splits what our server writes, however the bytes arrive."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bench.ws_client import OPCODE_BINARY, FrameError, FrameReader
from server.client_socket import binary_frame

PAYLOADS = st.lists(
    st.one_of(st.binary(max_size=300), st.binary(min_size=60_000, max_size=70_000)),
    max_size=6,
)


@given(PAYLOADS, st.lists(st.integers(1, 5000), max_size=40))
def test_messages_come_out_whole_and_in_order_from_any_split(
    payloads: list[bytes], cuts: list[int]
) -> None:
    stream = b"".join(binary_frame(p) for p in payloads)
    reader = FrameReader()
    out: list[tuple[int, bytes]] = []
    position = 0
    for cut in cuts:
        out += reader.feed(stream[position : position + cut])
        position += cut
    out += reader.feed(stream[position:])
    assert out == [(OPCODE_BINARY, p) for p in payloads]


def test_a_masked_or_fragmented_frame_is_refused() -> None:
    with pytest.raises(FrameError):
        FrameReader().feed(bytes((0x82, 0x80 | 3)) + b"mask" + b"abc")
    with pytest.raises(FrameError):
        FrameReader().feed(bytes((0x02, 3)) + b"abc")
