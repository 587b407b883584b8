"""Reviewing a finished session through the server: API, exports, annotations, streaming."""

from __future__ import annotations

import json

import pytest
import trio

from clients.python import ServerRefused, connect, still_pose
from netcode.views import Role
from server import review_worker
from server.app import Server
from tests.conftest import ws_url
from tests.server.test_http_api import http


async def record_a_session(server: Server) -> tuple[str, dict[int, int], int]:
    """Run a short live session; returns its id, the live facilitator hr by tick, last tick."""
    host = server.rooms["demo"]
    assert host.writer is not None
    hr_by_tick: dict[int, int] = {}
    url = ws_url(server)
    async with (
        connect(url, server.issue_token("demo", Role.PARTICIPANT, "Ana")) as ana,
        connect(url, server.issue_token("demo", Role.FACILITATOR, "F")) as fac,
    ):
        await ana.wait_for(lambda m: m.find("avatar"))
        monitor = next(iter(await fac.wait_for(lambda m: m.find("monitor"))))
        for step in range(75):
            await ana.send_pose(head=still_pose(step * 0.01, 1.6, 0))
            await trio.sleep(1 / 30)
            if fac.mirror.tick is not None:
                hr_by_tick[fac.mirror.tick] = fac.mirror.field(monitor, "hr")
        assert (await ana.intent("chat", text="reviewed words")).ok
        assert (await fac.intent("end")).ok
        await fac.wait_closed()
        last = fac.mirror.tick
    await host.wait_stopped()
    assert last is not None
    return host.writer.session_id, hr_by_tick, last


async def test_review_api_exports_and_annotations(server: Server) -> None:
    session_id, _, _ = await record_a_session(server)
    status, body = await http(server, "GET", "/api/sessions")
    assert status == 401
    status, body = await http(server, "GET", "/api/sessions", admin=True)
    assert status == 200 and session_id in {s["id"] for s in json.loads(body)["sessions"]}

    status, body = await http(
        server,
        "POST",
        f"/api/sessions/{session_id}/tokens",
        {"view": "spectator", "name": "Prof R"},
        admin=True,
    )
    assert status == 201
    token = json.loads(body)["token"]
    status, body = await http(server, "GET", f"/api/sessions/{session_id}?token={token}")
    assert status == 200 and json.loads(body)["status"] == "sealed"

    status, body = await http(
        server,
        "POST",
        f"/api/sessions/{session_id}/annotations?token={token}",
        {"start_s": 1.0, "text": "Good closed-loop communication"},
    )
    assert status == 201 and json.loads(body)["author"] == "Prof R"
    status, body = await http(
        server, "GET", f"/api/sessions/{session_id}/annotations?token={token}"
    )
    assert [a["text"] for a in json.loads(body)["annotations"]] == [
        "Good closed-loop communication"
    ]

    status, body = await http(
        server, "GET", f"/api/sessions/{session_id}/export/jsonl?token={token}"
    )
    assert status == 200 and b"reviewed words" in body
    for export in ("xapi", "debrief"):  # made of what only the facilitator sees live
        status, body = await http(
            server, "GET", f"/api/sessions/{session_id}/export/{export}?token={token}"
        )
        assert status == 403 and json.loads(body)["error"] == "view_not_allowed"
    status, body = await http(
        server, "POST", f"/api/sessions/{session_id}/tokens", {"view": "facilitator"}, admin=True
    )
    chair = json.loads(body)["token"]
    status, body = await http(
        server, "GET", f"/api/sessions/{session_id}/export/xapi?token={chair}"
    )
    assert status == 200 and isinstance(json.loads(body), list)
    status, body = await http(
        server, "GET", f"/api/sessions/{session_id}/export/debrief?token={chair}"
    )
    assert status == 200 and b"<svg" in body and b"Good closed-loop communication" in body

    other = server.issue_token("demo", Role.SPECTATOR, "x")
    status, _ = await http(server, "GET", f"/api/sessions/{session_id}?token={other}")
    assert status == 401
    status, body = await http(server, "GET", "/api/sessions/no-such-session", admin=True)
    assert status == 404


async def test_a_replay_streams_the_same_states_at_the_same_ticks(server: Server) -> None:
    session_id, live_hr, last_tick = await record_a_session(server)
    _, body = await http(
        server, "POST", f"/api/sessions/{session_id}/tokens", {"view": "facilitator"}, admin=True
    )
    token = json.loads(body)["token"]
    async with connect(ws_url(server), token) as reviewer:
        assert reviewer.welcome["role"] == "reviewer"
        assert reviewer.welcome["review"]["last_tick"] >= last_tick
        seen: dict[int, int] = {}
        assert (await reviewer.intent("speed", x=4)).ok
        assert (await reviewer.intent("play")).ok
        with trio.fail_after(20):
            while reviewer.mirror.tick is None or reviewer.mirror.tick < last_tick:
                await reviewer.next_frame()
                monitor = next(iter(reviewer.mirror.find("monitor")), None)
                if monitor is not None and reviewer.mirror.tick is not None:
                    seen[reviewer.mirror.tick] = reviewer.mirror.field(monitor, "hr")
        common = set(seen) & set(live_hr)
        assert len(common) > 10
        assert all(seen[t] == live_hr[t] for t in common)
        assert reviewer.resyncs == 0

        # Seeking gives the state of that moment.
        assert (await reviewer.intent("seek", seconds=1.0)).ok
        await reviewer.wait_for(lambda m: m.tick == 30)
        if 30 in live_hr:
            assert (
                reviewer.mirror.field(next(iter(reviewer.mirror.find("monitor"))), "hr")
                == live_hr[30]
            )
        refused = await reviewer.intent("chat", text="can I change history?")
        assert not refused.ok and refused.code == "forbidden"
        assert not (await reviewer.intent("speed", x=1000)).ok


async def test_a_review_token_for_an_unknown_session_is_refused(server: Server) -> None:
    from server import tokens

    token = tokens.issue_review(server.settings.secret, "nope", Role.FACILITATOR, "x", 60)
    try:
        async with connect(ws_url(server), token):
            raise AssertionError("should not connect")
    except ServerRefused as refused:
        assert refused.code == "unknown_session"


async def test_recorded_media_is_served_whole_or_by_range(server: Server) -> None:
    session_id, _, _ = await record_a_session(server)
    media = server.rooms["demo"].writer.path / "media"  # type: ignore[union-attr]
    media.mkdir(exist_ok=True)
    content = bytes(range(256)) * 4096  # 1 MiB
    (media / "ana_pub_1-1.webm").write_bytes(content)
    _, body = await http(server, "POST", f"/api/sessions/{session_id}/tokens", {}, admin=True)
    token = json.loads(body)["token"]
    path = f"/api/sessions/{session_id}/media/ana_pub_1-1.webm?token={token}"

    status, body = await http(server, "GET", path)
    assert status == 200 and body == content
    status, body = await http(server, "GET", path, headers={"Range": "bytes=1000-1999"})
    assert status == 206 and body == content[1000:2000]
    status, body = await http(server, "GET", path, headers={"Range": "bytes=-10"})
    assert status == 206 and body == content[-10:]
    status, _ = await http(server, "GET", path, headers={"Range": "bytes=9999999-"})
    assert status == 416
    status, _ = await http(server, "GET", path.replace("ana_pub_1-1.webm", "missing.webm"))
    assert status == 404
    status, _ = await http(server, "GET", path.replace("ana_pub_1-1.webm", "..%2Fmanifest.json"))
    assert status == 404
    status, _ = await http(server, "GET", f"/api/sessions/{session_id}/media/ana_pub_1-1.webm")
    assert status == 401


async def test_review_streams_are_bounded(server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each review stream is a process: past the cap a new one is refused with a code."""
    monkeypatch.setattr(review_worker, "MAX_WORKERS", 1)
    session_id, _, _ = await record_a_session(server)
    _, body = await http(server, "POST", f"/api/sessions/{session_id}/tokens", {}, admin=True)
    token = json.loads(body)["token"]
    async with connect(ws_url(server), token) as first:
        assert (await first.intent("seek", seconds=1.0)).ok
        with pytest.raises(ServerRefused) as refused:
            async with connect(ws_url(server), token):
                pass
        assert refused.value.code == "too_many_reviewers"
    with trio.fail_after(10):
        while review_worker.ReviewWorker.running:
            await trio.sleep(0.05)  # the first stream's process is gone
    async with connect(ws_url(server), token) as again:
        assert (await again.intent("seek", seconds=1.0)).ok
