"""Facilitator controls over participants: make presenter, remove, pause and resume."""

from __future__ import annotations

from clients.python import connect
from netcode.views import Role
from server.app import Server
from tests.conftest import ws_url


async def test_the_facilitator_makes_a_presenter_and_removes_a_member(server: Server) -> None:
    url = ws_url(server)
    async with (
        connect(url, server.issue_token("demo", Role.FACILITATOR, "Dr F")) as fac,
        connect(url, server.issue_token("demo", Role.PARTICIPANT, "Ana")) as ana,
        connect(url, server.issue_token("demo", Role.SPECTATOR, "S")) as watcher,
    ):
        avatar = await watcher.wait_for(
            lambda m: next((e for e, f in m.find("avatar").items() if f["name"] == "Ana"), None)
        )
        assert (await fac.intent("present", member=ana.member)).ok
        await watcher.wait_for(lambda m: m.field(avatar, "presenter") is True)

        refused = await ana.intent("remove", member=fac.member)
        assert not refused.ok and refused.code == "forbidden"
        unknown = await fac.intent("remove", member=999)
        assert not unknown.ok and unknown.code == "unknown_member"

        assert (await fac.intent("remove", member=ana.member)).ok
        await ana.wait_closed()
        assert ana.bye is not None and ana.bye[0] == "removed"
        await watcher.wait_for(lambda m: avatar not in m.entities)
        # Removed for good: the old session cannot be resumed.
        await ana.open(resume=True)
        assert ana.welcome["resumed"] is False


async def test_pause_and_resume_are_the_facilitators(server: Server) -> None:
    url = ws_url(server)
    async with (
        connect(url, server.issue_token("demo", Role.FACILITATOR, "Dr F")) as fac,
        connect(url, server.issue_token("demo", Role.PARTICIPANT, "Ana")) as ana,
    ):
        room = await ana.wait_for(lambda m: next(iter(m.find("room")), None))
        assert (await ana.intent("pause")).code == "forbidden"
        assert (await fac.intent("pause")).ok
        await ana.wait_for(lambda m: m.field(room, "status") == "paused")
        assert (await fac.intent("pause")).code == "bad_state"
        assert (await fac.intent("resume")).ok
        await ana.wait_for(lambda m: m.field(room, "status") == "running")
