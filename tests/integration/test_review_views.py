"""Every review surface is scoped to the token's view with the live room's rules (issue 11).

A septic-shock session holds data at each level: a chat (everyone), a team note
(participants and the facilitator), a spectator's private question, the facilitator's
score with its comment, a refused order, the answer key and the debrief (the
facilitator only). A review token of each view then
reads every surface: the stream, the timeline the viewer's lanes and transcript are
built from, the session summary, the JSON-lines export, the debrief and xAPI exports,
the media and the annotations. Nothing above the token's view may appear; everything
at or below must.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import trio

from clients.python import connect
from netcode.state import HIDDEN
from netcode.views import Role, View
from replay import annotations
from server.app import Server
from server.scenarios import DEFAULT_CASE
from tests.conftest import running, settings_for, ws_url
from tests.server.test_http_api import http

PUBLIC = "SENTINEL-PUBLIC"
TEAM = "SENTINEL-TEAM"
QUESTION = "SENTINEL-QUESTION"
SCORED = "SENTINEL-SCORED"
REFUSED = "SENTINEL-REFUSED"
LEVELS = {
    View.SPECTATOR: [PUBLIC],
    View.PARTICIPANT: [TEAM],
    View.FACILITATOR: [QUESTION, SCORED],
}


@pytest.fixture
async def case_server(tmp_path: Path) -> AsyncIterator[Server]:
    async with running(settings_for(tmp_path), demo_case=DEFAULT_CASE) as instance:
        yield instance


def strings_in(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in strings_in(k) + strings_in(v)]
    if isinstance(value, list | tuple):
        return [s for v in value for s in strings_in(v)]
    return []


def found(text: str, words: list[str]) -> list[str]:
    return [w for w in words if w in text]


async def record(server: Server) -> tuple[str, str]:
    """The session id and a string of the answer key (facilitator-only) to look for."""
    host = server.rooms["demo"]
    assert host.writer is not None
    url = ws_url(server)
    async with (
        connect(url, server.issue_token("demo", Role.FACILITATOR, "Dr Chair")) as chair,
        connect(url, server.issue_token("demo", Role.PARTICIPANT, "Ana")) as ana,
        connect(url, server.issue_token("demo", Role.SPECTATOR, "Sam")) as sam,
    ):
        await ana.wait_for(lambda m: m.find("avatar"))
        key = await chair.wait_for(lambda m: next(iter(m.find("answer_key").values()), None))
        secret = max((s for s in strings_in(key) if len(s) > 40), key=len)
        assert (await ana.intent("chat", text=f"{PUBLIC} chat")).ok
        assert (await ana.intent("note", text=f"{TEAM} note")).ok
        assert (await sam.intent("ask", text=f"{QUESTION} from Sam")).ok
        scored = await chair.intent("score", item="communication", points=5, comment=SCORED)
        assert scored.ok, scored
        refused = await ana.intent("give", drug=REFUSED, dose=1, route="iv")
        assert not refused.ok
        await trio.sleep(0.3)
        assert (await chair.intent("end")).ok
        await chair.wait_closed()
    await host.wait_stopped()
    return host.writer.session_id, secret[:60]


async def token_for(server: Server, session_id: str, view: View) -> str:
    status, body = await http(
        server,
        "POST",
        f"/api/sessions/{session_id}/tokens",
        {"view": view.name.lower(), "name": f"{view.name.title()} reviewer"},
        admin=True,
    )
    assert status == 201
    return str(json.loads(body)["token"])


def check(surface: str, text: str, view: View, answer_key: str) -> None:
    for level, words in LEVELS.items():
        words = [*words, answer_key, REFUSED] if level is View.FACILITATOR else words
        if level <= view:
            shown = LEVELS[level]
            assert found(text, shown) == shown, f"{surface} of {view.name} lacks {shown}"
        else:
            assert found(text, words) == [], f"{surface} of {view.name} leaks {words}"


async def stream_text(server: Server, token: str) -> str:
    async with connect(ws_url(server), token) as reviewer:
        end = reviewer.welcome["review"]["last_tick"] / reviewer.welcome["tick_hz"]
        assert (await reviewer.intent("seek", seconds=end)).ok
        await reviewer.wait_for(lambda m: m.tick is not None and m.tick >= end * 30 - 1)
        state = reviewer.mirror.view_state()
        assert reviewer.welcome["view"] in ("spectator", "participant", "facilitator")
        return "\n".join(s for s in strings_in(state) if s is not HIDDEN)


async def test_each_surface_is_scoped_to_the_view(case_server: Server) -> None:
    server = case_server
    session_id, answer_key = await record(server)
    media = server.rooms["demo"].writer.path / "media"  # type: ignore[union-attr]
    media.mkdir(exist_ok=True)
    (media / "ana_pub_1-1.ogg").write_bytes(b"OggS" + bytes(100))
    tokens = {view: await token_for(server, session_id, view) for view in View}

    posted: dict[View, str] = {}
    for view, token in tokens.items():
        text = f"ANNOTATION-{view.name}"
        status, _ = await http(
            server,
            "POST",
            f"/api/sessions/{session_id}/annotations?token={token}",
            {"start_s": 1.0, "text": text},
        )
        assert status == 201
        posted[view] = text

    for view, token in tokens.items():
        check("stream", await stream_text(server, token), view, answer_key)

        status, body = await http(
            server, "GET", f"/api/sessions/{session_id}/export/jsonl?token={token}"
        )
        assert status == 200
        lines = [json.loads(line) for line in body.decode().splitlines()]
        check("JSON lines", body.decode(), view, answer_key)
        kinds = {line["kind"] for line in lines}
        if view is View.FACILITATOR:
            assert {"intent", "reply", "keyframe", "join"} <= kinds
        else:
            assert kinds <= {"start", "op", "poses", "checksum", "ended", "gap"}, kinds
            checksums = [line["data"] for line in lines if line["kind"] == "checksum"]
            assert checksums and all(list(c) == ["sum"] for c in checksums)

        status, body = await http(
            server, "GET", f"/api/sessions/{session_id}/timeline?token={token}"
        )
        assert status == 200  # the viewer's lanes, transcript and vitals
        check("timeline", body.decode(), view, answer_key)
        timeline = json.loads(body)
        assert timeline["view"] == view.name.lower()
        refused = [a for a in timeline["actions"] if a["ok"] is False]
        assert bool(refused) == (view is View.FACILITATOR)

        status, body = await http(server, "GET", f"/api/sessions/{session_id}?token={token}")
        summary = json.loads(body)
        assert status == 200 and summary["status"] == "sealed"
        assert ("seed" in summary) == (view is View.FACILITATOR)
        assert ("participants" in summary) == (view is View.FACILITATOR)

        for export in ("debrief", "xapi"):
            status, body = await http(
                server, "GET", f"/api/sessions/{session_id}/export/{export}?token={token}"
            )
            if view is View.FACILITATOR:
                assert status == 200
            else:
                assert status == 403 and json.loads(body)["error"] == "view_not_allowed"

        status, body = await http(
            server, "GET", f"/api/sessions/{session_id}/media/ana_pub_1-1.ogg?token={token}"
        )
        assert status == 200 and body.startswith(b"OggS")  # live, every role hears every voice

        status, body = await http(
            server, "GET", f"/api/sessions/{session_id}/annotations?token={token}"
        )
        seen = {a["text"] for a in json.loads(body)["annotations"]}
        assert seen == {posted[v] for v in View if v <= view}, (view, seen)


async def test_annotations_are_finite_bounded_and_keep_the_export_readable(
    case_server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = case_server
    session_id, _ = await record(server)
    path = f"/api/sessions/{session_id}/annotations"
    for body, field in (
        ({"start_s": float("inf"), "text": "x"}, "start_s"),
        ({"start_s": 1, "end_s": float("nan"), "text": "x"}, "end_s"),
        ({"start_s": -1, "text": "x"}, "start_s"),
        ({"start_s": 1e12, "text": "x"}, "start_s"),
        ({"start_s": 1, "text": "x" * 2001}, "text"),
        (
            {
                "start_s": 1,
                "end_s": 5,
                "rating": {"scale": "TEAM", "items": {"morale": 9}, "global_rating": 5},
            },
            "rating",
        ),
    ):
        status, answer = await http(server, "POST", path, body, admin=True)  # json: Infinity
        assert status == 400, (body, answer)
        assert json.loads(answer)["message"].startswith(field), answer
    status, _ = await http(
        server,
        "POST",
        path,
        {
            "start_s": 1,
            "end_s": 3,
            "text": "ok",
            "rating": {"scale": "TEAM", "items": {"morale": 3}, "global_rating": 7},
        },
        admin=True,
    )
    assert status == 201

    # a line written before these rules (a start of Infinity) is skipped on reading
    notes = server.rooms["demo"].writer.path / "annotations.jsonl"  # type: ignore[union-attr]
    with open(notes, "a", encoding="utf-8") as f:
        f.write(
            '{"id": "old", "kind": "bookmark", "start_s": Infinity, "end_s": null, '
            '"text": "old", "author": "x", "created_at": "2026-01-01T00:00:00Z"}\n'
        )
    status, body = await http(server, "GET", path, admin=True)
    assert status == 200 and [a["text"] for a in json.loads(body)["annotations"]] == ["ok"]
    status, body = await http(
        server, "GET", f"/api/sessions/{session_id}/export/debrief", admin=True
    )
    assert status == 200 and b"<html" in body

    monkeypatch.setattr(annotations, "MAX_ANNOTATIONS", 3)
    for n in range(2):
        status, _ = await http(server, "POST", path, {"start_s": n, "text": f"n{n}"}, admin=True)
        assert status == 201
    status, body = await http(server, "POST", path, {"start_s": 9, "text": "one more"}, admin=True)
    assert status == 409 and json.loads(body)["error"] == "too_many_annotations"
