"""The HTTP API: rooms, tokens, health and metrics, with the admin key where it is needed."""

from __future__ import annotations

import json
from typing import Any

import trio

from clients.python import connect
from netcode.views import Role
from server.app import Server


async def http(
    server: Server,
    method: str,
    path: str,
    body: Any = None,
    admin: bool = False,
    headers: dict[str, str] | None = None,
) -> tuple[int, bytes]:
    """A plain HTTP/1.1 request over a real socket."""
    payload = b"" if body is None else json.dumps(body).encode()
    lines = [
        f"{method} {path} HTTP/1.1",
        "Host: test",
        "Connection: close",
        f"Content-Length: {len(payload)}",
        *(f"{name}: {value}" for name, value in (headers or {}).items()),
    ]
    if admin:
        lines.append(f"Authorization: Bearer {server.settings.admin_key}")
    stream = await trio.open_tcp_stream("127.0.0.1", server.port)
    async with stream:
        await stream.send_all(("\r\n".join(lines) + "\r\n\r\n").encode() + payload)
        data = b""
        with trio.fail_after(5):
            while chunk := await stream.receive_some(65536):
                data += chunk
    head, _, content = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), content


async def test_create_list_inspect_and_end_a_room(server: Server) -> None:
    status, body = await http(server, "POST", "/api/rooms", {"title": "Sepsis M&M"}, admin=True)
    assert status == 201
    room = json.loads(body)
    assert room["title"] == "Sepsis M&M" and room["status"] == "running"
    assert set(room["join"]) == {"facilitator", "participant", "spectator"}
    link = room["join"]["spectator"]["link"]
    assert f"room={room['id']}" in link and "token=" in link

    status, body = await http(server, "GET", "/api/rooms")
    assert status == 200 and room["id"] in {r["id"] for r in json.loads(body)["rooms"]}

    token = room["join"]["participant"]["token"]
    async with connect(room["join"]["participant"]["ws"], token) as client:
        await client.wait_for(lambda m: m.find("avatar"))
        status, body = await http(server, "GET", f"/api/rooms/{room['id']}")
        assert status == 200 and json.loads(body)["clients"]["participant"] == 1

        status, _ = await http(server, "DELETE", f"/api/rooms/{room['id']}", admin=True)
        assert status == 202
        await client.wait_closed()
        assert client.bye is not None and client.bye[0] == "room_ended"
    status, body = await http(server, "GET", f"/api/rooms/{room['id']}")
    assert json.loads(body)["status"] == "ended"


async def test_admin_calls_need_the_admin_key(server: Server) -> None:
    for method, path, body in (
        ("POST", "/api/rooms", {}),
        ("POST", "/api/rooms/demo/tokens", {"role": "participant"}),
        ("DELETE", "/api/rooms/demo", None),
    ):
        status, content = await http(server, method, path, body)
        assert status == 401 and json.loads(content)["error"] == "unauthorized"
    assert server.rooms["demo"].room.status.value == "running"


async def test_issue_a_token_for_a_role(server: Server) -> None:
    status, body = await http(
        server,
        "POST",
        "/api/rooms/demo/tokens",
        {"role": "facilitator", "name": "Dr Okafor"},
        admin=True,
    )
    assert status == 201
    entry = json.loads(body)
    async with connect(entry["ws"], entry["token"]) as client:
        assert client.welcome["role"] == "facilitator" and client.welcome["name"] == "Dr Okafor"


async def test_bad_requests_get_a_code_and_a_sentence(server: Server) -> None:
    cases = [
        ("POST", "/api/rooms", {"case": "no-such-case"}, 404, "unknown_case"),
        ("POST", "/api/rooms", {"seed": "abc"}, 400, "bad_request"),
        ("POST", "/api/rooms/demo/tokens", {"role": "janitor"}, 400, "bad_request"),
        ("GET", "/api/rooms/nowhere", None, 404, "unknown_room"),
        ("GET", "/no/such/page", None, 404, "not_found"),
    ]
    for method, path, body, expected, code in cases:
        status, content = await http(server, method, path, body, admin=True)
        error = json.loads(content)
        assert (status, error["error"]) == (expected, code), (path, error)
        assert error["message"]


async def test_health_and_metrics(server: Server) -> None:
    status, body = await http(server, "GET", "/healthz")
    assert status == 200 and json.loads(body)["ok"] is True
    async with connect(
        f"ws://127.0.0.1:{server.port}/ws", server.issue_token("demo", Role.SPECTATOR, "S")
    ) as client:
        await client.wait_for(lambda m: m.tick and m.tick > 5)
        status, body = await http(server, "GET", "/metrics")
    text = body.decode()
    assert status == 200
    for name in (
        'grandrounds_rooms{status="running"} 1.0',
        "grandrounds_tick_duration_seconds_count",
        "grandrounds_bytes_sent_total",
        "grandrounds_frames_sent_total",
        "grandrounds_sends_skipped_total",
        'grandrounds_clients{role="spectator"}',
    ):
        assert name in text, name
