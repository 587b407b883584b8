"""Every room is recorded as it runs; the recording verifies by re-simulation."""

from __future__ import annotations

import subprocess
import sys

import trio

from clients.python import connect, still_pose
from netcode.views import Role, View
from replay.reader import Session
from server.app import Server
from tests.conftest import ws_url


async def test_a_live_session_is_recorded_and_verifies(server: Server) -> None:
    host = server.rooms["demo"]
    assert host.writer is not None
    session_id = host.writer.session_id
    async with (
        connect(ws_url(server), server.issue_token("demo", Role.PARTICIPANT, "Ana")) as ana,
        connect(ws_url(server), server.issue_token("demo", Role.FACILITATOR, "F")) as fac,
    ):
        await ana.wait_for(lambda m: m.find("avatar"))
        for step in range(20):
            await ana.send_pose(head=still_pose(step * 0.01, 1.6, 0))
            await trio.sleep(1 / 30)
        assert (await ana.intent("chat", text="recorded words")).ok
        assert (await ana.intent("note", text="x" * 3000)).code == "bad_args"
        await fac.wait_for(
            lambda m: any(c["text"] == "recorded words" for c in m.logs.get("chat", []))
        )
        live_tick = fac.mirror.tick
        live_state = fac.mirror.view_state()
        assert (await fac.intent("end")).ok
        await fac.wait_closed()
    await host.wait_stopped()

    session = Session.open(server.settings.data_dir, session_id)
    assert session.sealed
    assert live_tick is not None
    replayed = session.state_at_tick(live_tick, View.FACILITATOR)
    assert replayed is not None
    verify = await trio.run_process(
        [
            sys.executable,
            "-m",
            "server.replay_cli",
            "verify",
            "--data-dir",
            str(server.settings.data_dir),
            session_id,
        ],
        capture_stdout=True,
        check=False,
        stderr=subprocess.STDOUT,
    )
    assert verify.returncode == 0, verify.stdout.decode()
    assert live_state["e"]
