"""A reviewer's play head: any mix of seeks and plays keeps a client mirror equal to the
live view at that tick, and a damaged span stops the play head before it, never raises."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from netcode.codec import decode_server_message
from netcode.mirror import Mirror
from netcode.views import ALL_VIEWS, View
from replay.layout import segment_files
from replay.playback import Playback
from replay.reader import Session
from tests.replay.conftest import Recorded


class PlayHead(RuleBasedStateMachine):
    """Seeks and advances in any order, as a reviewer's clicks and the play clock make."""

    recorded: Recorded
    view: View

    def __init__(self) -> None:
        super().__init__()
        session = Session.open(self.recorded.data_dir, self.recorded.session_id)
        self.playback = Playback(session, self.view)
        self.mirror = Mirror()
        self.base: int | None = None
        self._send()

    def _send(self) -> None:
        self.mirror.apply(decode_server_message(self.playback.frame(self.base)))
        self.base = self.playback.tick

    @rule(tick=st.integers(min_value=-5, max_value=230))
    def seek(self, tick: int) -> None:
        assert self.playback.seek(tick) is None
        self.base = None
        self._send()

    @rule(ticks=st.integers(min_value=0, max_value=40))
    def advance(self, ticks: int) -> None:
        assert self.playback.advance(ticks) is None
        self._send()

    @invariant()
    def mirror_is_the_live_view(self) -> None:
        tick = self.playback.tick
        assert self.mirror.tick == tick
        assert 0 <= tick <= 201
        live = self.recorded.live.get(tick)
        if live is not None:
            state = self.mirror.view_state()
            assert state["e"] == live[self.view]["e"]
            assert state["p"] == self.recorded.poses[tick]


@pytest.mark.parametrize("view", ALL_VIEWS)
def test_seek_and_play_in_any_order(recorded: Recorded, view: View) -> None:
    machine: Any = type(f"PlayHead{view.name}", (PlayHead,), {"recorded": recorded, "view": view})
    settings(
        max_examples=15,
        stateful_step_count=12,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    )(machine).TestCase().runTest()


def _damaged_copy(recorded: Recorded, to: Path, segment: int) -> tuple[Session, int]:
    """A copy whose sealed segment `segment` is corrupt; the tick it starts at."""
    target = to / "sessions" / recorded.session_id
    shutil.copytree(recorded.data_dir / "sessions" / recorded.session_id, target)
    first_tick = Session(target).tick_range()[0]
    starts = {n: info for n, info in ((s.number, s.info) for s in Session(target)._segments)}
    _, sealed, _ = segment_files(target)[segment]
    buf = bytearray(sealed.read_bytes())
    buf[len(buf) // 2] ^= 0xFF
    sealed.write_bytes(bytes(buf))
    assert first_tick == 0
    return Session(target), starts[segment].first_tick


def test_playing_into_damage_stops_before_it(recorded: Recorded, tmp_path: Path) -> None:
    session, damaged_from = _damaged_copy(recorded, tmp_path, 2)
    playback = Playback(session, View.FACILITATOR)
    damage = None
    for _ in range(100):
        damage = playback.advance(10)
        if damage is not None or playback.at_end:
            break
    assert damage is not None and damage.code == "corrupt-segment"
    assert damaged_from - 1 <= playback.tick < 201
    assert playback.tick == damage.tick
    assert playback.at_end
    # the state shown is the live state at the tick it stopped at
    state = decode_server_message(playback.frame(None))["full"]
    if playback.tick in recorded.live:
        assert state["e"] == recorded.live[playback.tick][View.FACILITATOR]["e"]


def test_seeking_into_damage_shows_the_timeline_up_to_it(
    recorded: Recorded, tmp_path: Path
) -> None:
    session, damaged_from = _damaged_copy(recorded, tmp_path, 2)
    playback = Playback(session, View.SPECTATOR)
    inside = damaged_from + 3
    damage = playback.seek(inside)
    assert damage is not None and damage.code == "corrupt-segment"
    assert playback.tick == damage.tick < inside
    # later, intact parts of the session (from their own keyframe) still play
    assert playback.seek(195) is None and playback.tick == 195
    assert playback.seek(5) is None and playback.tick == 5
