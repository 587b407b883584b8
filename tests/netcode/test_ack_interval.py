"""How often the reference clients ack (docs/protocol.md, "Session flow").

Acks are informational, but they are what keeps a watching client's connection alive:
a spectator that acks too rarely would be dropped for silence, one that acks every few
ticks costs the server a wake-up each time for nothing.
"""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from netcode.sync import ACK_EVERY_TICKS, WATCHER_ACK_SECONDS, Follower, ack_interval
from netcode.views import Role
from server.config import Settings


def acked_ticks(role: Role, tick_hz: int, first_tick: int, ticks: int, every: int) -> list[int]:
    """The ticks a welcomed follower acks while it receives a frame every `every` ticks."""
    follower = Follower()
    follower.welcomed(resumed=False, ack_every=ack_interval(role.value, tick_hz))
    acked = []
    for tick in range(first_tick, first_tick + ticks, every):
        if (step := follower.seen(tick)).ack is not None:
            acked.append(step.ack)
    return acked


@given(tick_hz=st.integers(1, 120), first_tick=st.integers(600, 10_000), rate=st.integers(1, 120))
def test_a_spectator_acks_every_five_seconds_inside_the_server_timeout(
    tick_hz: int, first_tick: int, rate: int
) -> None:
    every = max(1, round(tick_hz / min(rate, tick_hz)))  # a `prefs` rate, as Subscriber sets it
    ticks = 60 * tick_hz
    acked = acked_ticks(Role.SPECTATOR, tick_hz, first_tick, ticks, every)
    assert acked and acked[0] == first_tick  # a running room: the first frame is acked
    gaps = [b - a for a, b in itertools.pairwise(acked)]
    interval = max(ACK_EVERY_TICKS, WATCHER_ACK_SECONDS * tick_hz)
    assert all(interval <= gap < interval + every for gap in gaps)
    longest = max(gaps, default=0) / tick_hz
    assert longest < Settings().client_timeout_seconds / 2


@given(
    role=st.sampled_from([Role.PARTICIPANT, Role.FACILITATOR]),
    tick_hz=st.integers(1, 120),
    first_tick=st.integers(600, 10_000),
)
def test_participants_and_facilitators_ack_every_ten_ticks(
    role: Role, tick_hz: int, first_tick: int
) -> None:
    acked = acked_ticks(role, tick_hz, first_tick, 100, 1)
    assert acked == list(range(first_tick, first_tick + 100, ACK_EVERY_TICKS))
