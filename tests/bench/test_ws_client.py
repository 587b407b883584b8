"""The spectators' frame reader splits what our server writes, however the bytes arrive."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bench.ws_client import OPCODE_BINARY, FrameError, FrameReader
from server.client_socket import binary_frame
from tests.netcode.sync_helpers import SLOW_OK

SIZES = st.one_of(st.integers(0, 300), st.integers(65_530, 70_000))
"""Small frames, and large ones around the 16-bit length boundary (126 / 127 headers)."""
PAYLOADS = st.lists(
    st.builds(
        lambda n, seed: bytes((seed + i) % 256 for i in range(n)), SIZES, st.integers(0, 255)
    ),
    max_size=6,
)


@settings(deadline=None, suppress_health_check=SLOW_OK)
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
