"""A shipped case running in a real room: vitals and ops reach each role's view."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trio

from clients.python import connect
from netcode.state import HIDDEN
from netcode.views import Role
from server.app import Server
from tests.conftest import running, settings_for


@pytest.fixture
async def case_server(tmp_path: Path) -> AsyncIterator[Server]:
    async with running(settings_for(tmp_path, media_workers=1), "septic_shock_ed") as instance:
        yield instance


async def test_a_case_room_runs_the_case_for_every_role(case_server: Server) -> None:
    server = case_server
    url = f"ws://127.0.0.1:{server.port}/ws"
    async with (
        connect(url, server.issue_token("demo", Role.FACILITATOR, "Dr F")) as facilitator,
        connect(url, server.issue_token("demo", Role.PARTICIPANT, "Ana")) as team,
        connect(url, server.issue_token("demo", Role.SPECTATOR, "Student")) as student,
    ):
        for client in (facilitator, team, student):
            await client.wait_for(lambda m: m.find("monitor") and m.find("case"))

        # The answer key and the director's view are the facilitator's alone.
        for kind in ("answer_key", "director"):
            [key_f] = facilitator.mirror.find(kind).values()
            [key_s] = student.mirror.find(kind).values()
            assert all(v is not HIDDEN for v in key_f.values())
            assert all(v is HIDDEN for v in key_s.values())

        # A clinical action by the team reaches everyone's case log.
        reply = await team.intent("give", drug="ceftriaxone", dose=2, route="iv")
        assert reply.ok, reply
        await student.wait_for(
            lambda m: any(e.get("drug") == "ceftriaxone" for e in m.logs.get("case", []))
        )
        bad = await team.intent("give", drug="ceftriaxone", dose=40, route="iv")
        assert not bad.ok and bad.code == "bad_dose" and "outside" in bad.message
        refused = await student.intent("give", drug="ceftriaxone", dose=2, route="iv")
        assert refused.code == "forbidden"

        # A facilitator override is visible on the spectator's monitor.
        monitor = next(iter(student.mirror.find("monitor")))
        reply = await facilitator.intent("override", signal="hr", value=150)
        assert reply.ok, reply
        await student.wait_for(lambda m: m.field(monitor, "hr") == 150)

        # Pausing freezes the case clock for everyone.
        case = next(iter(student.mirror.find("case")))
        assert (await facilitator.intent("pause")).ok
        await student.wait_for(lambda m: m.field(next(iter(m.find("room"))), "status") == "paused")
        frozen = student.mirror.field(case, "time_s")
        await trio.sleep(1.5)
        assert student.mirror.field(case, "time_s") == frozen
        assert (await facilitator.intent("resume")).ok
        await student.wait_for(lambda m: m.field(case, "time_s") != frozen, timeout=5)

        # Ending publishes the debrief to the facilitator only.
        assert (await facilitator.intent("end")).ok
        await facilitator.wait_closed()
        room = next(iter(facilitator.mirror.find("room")))
        assert facilitator.mirror.field(room, "status") == "ended"
        debrief = facilitator.mirror.field(room, "debrief")
        assert isinstance(debrief, dict) and debrief
        assert student.mirror.field(next(iter(student.mirror.find("room"))), "debrief") in (
            HIDDEN,
            None,
        )
