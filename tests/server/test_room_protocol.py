"""Room behaviour a client developer relies on, through a real server over WebSockets:
early poses, moving a session to a new connection, how many people one link admits,
the pause rule, chat limits, seats and asking to present."""

from __future__ import annotations

import contextlib

import pytest
import trio

from clients.python import RoomClient, ServerRefused, connect, still_pose
from netcode.views import Role
from rooms.room import MAX_CHAT_CHARS
from server.app import Server
from server.tokens import DEFAULT_SEATS
from tests.conftest import ws_url


def head_of(mirror: object, member: int) -> int | None:
    avatars = [e for e, f in mirror.find("avatar").items() if f["member"] == member]  # type: ignore[attr-defined]
    parts = mirror.find("part").items()  # type: ignore[attr-defined]
    return next(
        (e for e, f in parts if avatars and f["avatar"] == avatars[0] and f["part"] == "head"), None
    )


async def test_a_pose_sent_right_after_welcome_is_taken(server: Server) -> None:
    url = ws_url(server)
    async with (
        connect(url, server.issue_token("demo", Role.SPECTATOR, "S")) as watcher,
        connect(url, server.issue_token("demo", Role.PARTICIPANT, "Early")) as early,
    ):
        await early.send_pose(head=still_pose(0.25, 1.5, 0.0))  # before its avatar exists
        head = await watcher.wait_for(lambda m: head_of(m, early.member))
        await watcher.wait_for(lambda m: m.poses.get(head, [None])[0] == 250)
        assert early.errors == []


async def test_resuming_while_the_old_connection_is_open_moves_the_session(
    server: Server,
) -> None:
    url = ws_url(server)
    token = server.issue_token("demo", Role.PARTICIPANT, "Ana")
    async with connect(url, token) as first:
        await first.wait_for(lambda m: m.find("avatar"))
        async with trio.open_nursery() as nursery:
            second = RoomClient(url, token, nursery)  # the same page, reloaded
            second.welcome = dict(first.welcome)
            second.follower.mirror.tick = first.mirror.tick
            second.follower.mirror.op = first.mirror.op
            await second.open(resume=True)
            assert second.welcome["resumed"] is True
            assert second.member == first.member
            await first.wait_closed()
            assert first.bye is not None and first.bye[0] == "session_moved"
            avatars = await second.wait_for(lambda m: m.find("avatar"))
            assert [f["name"] for f in avatars.values()] == ["Ana"]  # no second member
            await second.close()


async def test_a_link_admits_a_bounded_number_of_people_at_once(server: Server) -> None:
    url = ws_url(server)
    token = server.issue_token("demo", Role.PARTICIPANT, "Shared")
    seats = DEFAULT_SEATS[Role.PARTICIPANT]
    async with contextlib.AsyncExitStack() as stack:
        for _ in range(seats):
            await stack.enter_async_context(connect(url, token))
        with pytest.raises(ServerRefused) as refused:
            async with connect(url, token):
                pass
        assert refused.value.code == "token_in_use" and str(seats) in refused.value.message
    # A link issued for a lecture hall admits as many as it says.
    hall = server.issue_token("demo", Role.SPECTATOR, "Class", seats=3)
    async with connect(url, hall), connect(url, hall), connect(url, hall):
        with pytest.raises(ServerRefused) as refused:
            async with connect(url, hall):
                pass
        assert refused.value.code == "token_in_use"


async def test_learners_cannot_act_on_a_paused_case_but_may_still_talk(server: Server) -> None:
    url = ws_url(server)
    async with (
        connect(url, server.issue_token("demo", Role.FACILITATOR, "Lead")) as lead,
        connect(url, server.issue_token("demo", Role.PARTICIPANT, "Ana")) as ana,
    ):
        assert (await lead.intent("pause")).ok
        refused = await ana.intent("note", text="the plan")
        assert (refused.ok, refused.code) == (False, "paused")
        assert (await ana.intent("chat", text="shall we wait?")).ok
        assert (await lead.intent("resume")).ok
        assert (await ana.intent("note", text="the plan")).ok


async def test_chat_is_bounded_in_length_and_rate(server: Server) -> None:
    url = ws_url(server)
    async with connect(url, server.issue_token("demo", Role.PARTICIPANT, "Ana")) as ana:
        long = await ana.intent("chat", text="x" * (MAX_CHAT_CHARS + 1))
        assert (long.ok, long.code) == (False, "bad_args") and "text" in long.message
        codes = [(await ana.intent("chat", text=f"line {i}")).code for i in range(12)]
        assert codes[:5] == [""] * 5
        assert "rate_limited" in codes


async def test_avatars_take_separate_seats_and_ask_to_present(server: Server) -> None:
    url = ws_url(server)
    async with (
        connect(url, server.issue_token("demo", Role.FACILITATOR, "Lead")) as lead,
        connect(url, server.issue_token("demo", Role.PARTICIPANT, "Ana")) as ana,
        connect(url, server.issue_token("demo", Role.PARTICIPANT, "Ben")) as ben,
    ):
        avatars = await lead.wait_for(lambda m: len(m.find("avatar")) == 3 and m.find("avatar"))
        assert sorted(f["seat"] for f in avatars.values()) == [0, 1, 2]
        ana_avatar = next(e for e, f in avatars.items() if f["name"] == "Ana")
        assert (await ana.intent("request_present")).ok
        await lead.wait_for(lambda m: m.field(ana_avatar, "requests_present") is True)
        assert (await ben.intent("present", member=ana.member)).code == "forbidden"
        assert (await lead.intent("present", member=ana.member)).ok
        await lead.wait_for(
            lambda m: (
                m.field(ana_avatar, "presenter") is True
                and m.field(ana_avatar, "requests_present") is False
            )
        )
