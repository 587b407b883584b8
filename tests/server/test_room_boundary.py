"""A room's fault boundary: a bug in one room ends that room alone, recorded and sealed.

No input can make a shipped room fail on purpose (that is the point of the rest of the
suite), so a scenario with a deliberate bug stands in for "a defect we have not found":
its `note` raises when the text is "boom". Everything around it is real: the server,
its rooms, clients over WebSockets, the recording on disk.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
import trio

from clients.python import connect
from netcode.state import CaseState
from netcode.views import Role
from replay.reader import Session
from rooms.actions import ActionArgs
from rooms.demo import DemoScenario
from rooms.scenario import Actor, Clock, Scenario
from server.app import Server
from server.boundary import BOUNDARY_MARK
from server.refusals import RoomRefused
from server.room_host import RoomHost
from server.scenarios import CaseLibrary
from tests.conftest import running, settings_for, ws_url


class BuggyScenario(DemoScenario):
    def handle(
        self, world: CaseState, actor: Actor, action: str, args: ActionArgs, clock: Clock
    ) -> None:
        if getattr(args, "text", "") == "boom":
            raise RuntimeError("a defect in this case")
        super().handle(world, actor, action, args, clock)


def with_buggy_case(case: str, seed: int) -> Scenario:
    return BuggyScenario(seed) if case == "buggy" else DemoScenario(seed)


async def test_a_failing_room_ends_alone_with_its_recording_sealed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(
        CaseLibrary, "make_scenario", lambda self, case, seed: with_buggy_case(case, seed)
    )
    async with running(settings_for(tmp_path)) as instance:
        bad = await instance.create_room("bad", "buggy", room_id="bad")
        url = ws_url(instance)
        async with (
            connect(url, instance.issue_token("bad", Role.PARTICIPANT, "Ana")) as ana,
            connect(url, instance.issue_token("demo", Role.SPECTATOR, "Elsewhere")) as watcher,
        ):
            await ana.wait_for(lambda m: m.find("avatar"))
            with caplog.at_level(logging.ERROR):
                await ana.send({"t": "intent", "id": 1, "do": "note", "args": {"text": "boom"}})
                await ana.wait_closed()
            assert ana.bye is not None and ana.bye[0] == "internal_error"
            with trio.fail_after(10):
                await bad.wait_stopped()
            # The other room never noticed.
            ticks = watcher.mirror.tick
            await watcher.next_frame()
            await watcher.next_frame()
            assert watcher.connected and watcher.mirror.tick > ticks
            assert instance.rooms["demo"].room.status.value == "running"

        failures = [r for r in caplog.records if f"{BOUNDARY_MARK} room " in r.getMessage()]
        assert len(failures) == 1 and failures[0].exc_info is not None
        assert bad.writer is not None
        recorded = Session.open(instance.settings.data_dir, bad.writer.session_id)
        assert recorded.sealed
        last: Any = list(recorded.records())[-1]
        assert last.kind == "ended" and last.data["failed"] is True
        assert "internal error" in last.data["reason"]
        metrics = instance.metrics.render().decode()
        assert 'grandrounds_rooms_failed_total{reason="internal_error"} 1.0' in metrics
        # And the server still makes rooms.
        again = await instance.create_room("after", "demo", room_id="after")
        async with connect(url, instance.issue_token("after", Role.SPECTATOR, "S")) as s:
            await s.wait_for(lambda m: m.find("monitor"))
        assert not again.ended


async def test_rooms_refuse_a_second_room_with_the_same_id(server: Server) -> None:
    with pytest.raises(RoomRefused) as refused:
        await server.create_room("again", "demo", room_id="demo")
    assert refused.value.code == "room_exists"


async def test_a_failing_companion_ends_its_room_alone(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A room's companions (its cluster backlog, spectator feed, question desk) run inside
    the room's boundary too: one that raises ends that room, not the server."""

    async def broken_companion() -> None:
        await trio.sleep(0.5)
        raise RuntimeError("a defect in a companion")

    def give_the_bad_room_a_broken_companion(host: RoomHost) -> None:
        if host.room.id == "bad":
            host.companions.append(broken_companion)

    async with running(settings_for(tmp_path)) as instance:
        instance.on_room_created.append(give_the_bad_room_a_broken_companion)
        url = ws_url(instance)
        async with connect(url, instance.issue_token("demo", Role.SPECTATOR, "Other")) as watcher:
            with caplog.at_level(logging.ERROR):
                bad = await instance.create_room("bad", "demo", room_id="bad")
                with trio.fail_after(10):
                    await bad.wait_stopped()
            ticks = watcher.mirror.tick
            await watcher.next_frame()
            assert watcher.connected and watcher.mirror.tick > ticks
            assert instance.rooms["demo"].room.status.value == "running"
        failures = [r for r in caplog.records if f"{BOUNDARY_MARK} a companion" in r.getMessage()]
        assert len(failures) == 1
        assert bad.writer is not None
        recorded = Session.open(instance.settings.data_dir, bad.writer.session_id)
        last: Any = list(recorded.records())[-1]
        assert recorded.sealed and last.kind == "ended" and last.data["failed"] is True
