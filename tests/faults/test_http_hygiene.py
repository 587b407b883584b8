"""HTTP hygiene against a real server process: every bad request is a 4xx JSON error
with a code (never a traceback, in the answer or in the log), HEAD is answered, the
upgrade is GET only, pages carry CSP and frame headers, files served are regular files
inside their folder, and no error names a server path."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from netcode.views import Role
from server import tokens
from tests.faults.harness import HonestRoom, honest_room, parse_http_answer
from tests.faults.raw_ws import raw_websocket

pytestmark = pytest.mark.slow

NESTED = b"[" * 30_000 + b"]" * 30_000


def request(
    method: str, path: str, headers: dict[str, str] | None = None, body: bytes = b""
) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: x", f"Content-Length: {len(body)}"]
    lines += ["Connection: close"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return "\r\n".join(lines).encode("latin-1") + b"\r\n\r\n" + body


async def answer(h: HonestRoom, raw: bytes) -> tuple[int, str, dict[str, str], bytes]:
    """Status, error code (or ""), headers and body of the answer to a raw request."""
    got = parse_http_answer(await h.server.raw(raw))
    is_json = got.headers.get("content-type") == "application/json" and got.body
    code = got.json().get("error", "") if is_json else ""
    assert b"Traceback" not in got.body and b'File "' not in got.body
    return got.status, code, got.headers, got.body


async def test_bad_requests_are_4xx_with_a_code_and_no_traceback(tmp_path: Path) -> None:
    async with honest_room(tmp_path) as h:
        admin = {"Authorization": f"Bearer {h.server.admin_key}"}
        session = (await h.server.http("GET", "/api/rooms/demo")).json()["session"]
        media = h.server.data_dir / "sessions" / session / "media"
        media.mkdir(exist_ok=True)
        (media / "voice.ogg").write_bytes(b"o" * 1000)
        cases = [
            # (request, status, code)
            (
                request("POST", "/api/rooms", {"Authorization": "Bearer \xe9\xff"}),
                401,
                "unauthorized",
            ),
            (request("GET", "/" + "a" * 300), 404, "not_found"),
            (request("GET", "/" + "a" * 3000), 414, "uri_too_long"),
            (request("GET", "/js/" + "\xe9" * 200), 400, "bad_request"),
            (
                request(
                    "GET",
                    f"/api/sessions/{session}/media/voice.ogg",
                    {**admin, "Range": "bytes=" + "9" * 5000 + "-"},
                ),
                416,
                "bad_range",
            ),
            (request("POST", "/api/rooms", admin, NESTED), 400, "bad_json"),
            (request("POST", "/api/rooms", admin, b"\xff\xfe{}"), 400, "bad_json"),
            (request("POST", "/api/rooms", admin, b'{"title": 1e999999}'), 400, "bad_request"),
            (b"GARBAGE\r\n\r\n", 400, "bad_request"),
            (request("GET", "/healthz", {"X-Big": "x" * 40_000}), 431, "bad_request"),
            (
                request("POST", "/api/rooms", {**admin, "Content-Length": "9" * 20}),
                400,
                "bad_request",
            ),
            (request("POST", "/api/rooms", admin, b"{" * 70_000), 413, "too_large"),
            (
                request("GET", "/healthz?" + "&".join(f"a{i}=1" for i in range(100))),
                400,
                "bad_request",
            ),
            (
                request("POST", "/ws", {"Upgrade": "websocket", "Connection": "Upgrade"}),
                405,
                "method_not_allowed",
            ),
            (request("GET", "/ws"), 426, "upgrade_required"),
            (request("HEAD", "/ws", {"Upgrade": "websocket"}), 405, ""),  # no body to HEAD
            (request("CONNECT", "/healthz"), 405, "method_not_allowed"),
            (request("PUT", "/api/rooms", admin), 405, "method_not_allowed"),
            (request("GET", "http://elsewhere/healthz"), 400, "bad_request"),
        ]
        for raw, status, code in cases:
            got = await answer(h, raw)
            assert (got[0], got[1]) == (status, code), (raw[:80], got[0], got[3][:200])
        status, _, headers, body = await answer(
            h,
            request(
                "GET", f"/api/sessions/{session}/media/voice.ogg", {**admin, "Range": "bytes=10-19"}
            ),
        )
        assert (
            status == 206 and body == b"o" * 10 and headers["content-range"] == "bytes 10-19/1000"
        )
        await h.check()


async def test_head_is_answered_like_get_without_a_body(tmp_path: Path) -> None:
    async with honest_room(tmp_path) as h:
        for path in ("/healthz", "/", "/js/app.js"):
            get = parse_http_answer(await h.server.raw(request("GET", path)))
            head = parse_http_answer(await h.server.raw(request("HEAD", path)))
            assert head.status == get.status == 200
            assert head.body == b""
            assert head.headers["content-length"] == str(len(get.body))
        await h.check()


async def test_pages_carry_csp_and_frame_headers(tmp_path: Path) -> None:
    async with honest_room(tmp_path) as h:
        for path in ("/", "/replay.html"):
            page = await h.server.http("GET", path)
            policy = page.headers["content-security-policy"]
            assert "frame-ancestors 'none'" in policy and "script-src 'self' 'sha256-" in policy
            assert page.headers["x-frame-options"] == "DENY"
            assert page.headers["x-content-type-options"] == "nosniff"
            assert page.headers["referrer-policy"] == "no-referrer"
        api = await h.server.http("GET", "/healthz")
        assert api.headers["x-frame-options"] == "DENY"
        session = (await h.server.http("GET", "/api/rooms/demo")).json()["session"]
        await h.check()
        debrief = await h.server.http("GET", f"/api/sessions/{session}/export/debrief", admin=True)
        assert debrief.status == 200
        assert debrief.headers["content-security-policy"].startswith("default-src 'none'")


async def test_recorded_media_is_served_only_as_regular_files_inside_its_folder(
    tmp_path: Path,
) -> None:
    async with honest_room(tmp_path) as h:
        session = (await h.server.http("GET", "/api/rooms/demo")).json()["session"]
        media = h.server.data_dir / "sessions" / session / "media"
        media.mkdir(exist_ok=True)
        secret = tmp_path / "secret.webm"
        secret.write_bytes(b"not yours")
        (media / "link.webm").symlink_to(secret)
        os.mkfifo(media / "pipe.webm")
        (media / "real.webm").write_bytes(b"mine")
        for name, status in (("link.webm", 404), ("pipe.webm", 404), ("real.webm", 200)):
            got = await h.server.http("GET", f"/api/sessions/{session}/media/{name}", admin=True)
            assert got.status == status, (name, got)
        await h.check()


async def test_errors_never_name_server_paths(tmp_path: Path) -> None:
    async with honest_room(tmp_path) as h:
        folder = str(h.server.data_dir.resolve())
        for method, path in (
            ("GET", "/api/sessions/nope"),
            ("POST", "/api/sessions/nope/tokens"),
            ("GET", "/api/sessions/nope/media/x.webm"),
            ("GET", "/api/sessions/nope/export/jsonl"),
        ):
            got = await h.server.http(method, path, {} if method == "POST" else None, admin=True)
            assert got.status == 404 and got.json()["message"], (path, got)
            assert folder not in got.body.decode() and str(tmp_path) not in got.body.decode()
        secrets = json.loads((h.server.data_dir / "secrets.json").read_text())
        token = tokens.issue_review(secrets["secret"], "nope", Role.SPECTATOR, "R", 600)
        async with raw_websocket(h.server.port) as ws:
            await ws.send_message({"t": "hello", "v": 1, "token": token})
            bye = await ws.receive("bye")
            assert bye["code"] == "unknown_session" and str(tmp_path) not in bye["msg"]
        await h.check()
