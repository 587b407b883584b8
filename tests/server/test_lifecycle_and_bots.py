"""Rooms end when idle; the bots drive a real room and see what people would."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trio

from clients.python import connect
from clients.python.bots import report, run_bots
from netcode.views import Role
from server.app import Server
from tests.conftest import http_url, running, settings_for, ws_url


@pytest.fixture
async def idle_server(tmp_path: Path) -> AsyncIterator[Server]:
    settings = settings_for(tmp_path, idle_timeout_seconds=1.0)
    async with running(settings, "demo") as instance:
        yield instance


async def test_a_room_nobody_is_in_ends_after_the_idle_timeout(idle_server: Server) -> None:
    host = idle_server.rooms["demo"]
    async with connect(ws_url(idle_server), idle_server.issue_token("demo", Role.SPECTATOR, "S")):
        await trio.sleep(1.5)  # someone is connected: the room stays
        assert not host.ended
    with trio.fail_after(5):
        await host.wait_stopped()
    assert host.room.end_reason.startswith("idle timeout")
    assert host.writer is not None and host.writer.manifest.status == "sealed"


async def test_bots_run_participants_and_spectators_without_errors(server: Server) -> None:
    tally = await run_bots(
        http_url(server),
        server.settings.admin_key,
        "demo",
        participants=3,
        spectators=6,
        seconds=3.0,
        moving=2,
        full_every=2,
        resumes=1,
    )
    assert not tally.errors and tally.resyncs == 0
    assert len(tally.participant_bytes) == 3 and len(tally.spectator_bytes) == 6
    assert all(b > 0 for b in tally.spectator_bytes)
    assert tally.latency_ms, "full spectators saw the moving hands"
    assert len(tally.resume_ms) == 1
    lines = report(tally, 3.0)
    assert any(line.startswith("pose-to-spectator latency") for line in lines)
