"""Fault boundaries around connections: an unexpected exception ends that connection
alone, is logged once with its traceback and an error id, and the peer is told.

A bug cannot be had on demand, so these inject one: the real server runs in this
process with one method patched to raise. Everything else (sockets, rooms, clients)
is real."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
import trio

from clients.python import connect
from netcode.codec import Ping
from netcode.views import Role
from server import tokens
from server.api import Api
from server.app import Server
from server.boundary import BOUNDARY_MARK
from server.review import ReviewStream, SeekArgs
from server.room_host import RoomHost
from tests.conftest import ws_url
from tests.faults.raw_ws import raw_websocket
from tests.server.test_http_api import http


class InjectedFault(Exception):
    pass


@pytest.fixture
def reports(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """The log of the test, errors and up (the boundaries report at ERROR)."""
    with caplog.at_level(logging.ERROR):
        yield caplog


def boundary_reports(log: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in log.records if BOUNDARY_MARK in r.getMessage()]


def assert_reported_once(log: pytest.LogCaptureFixture, error_id: str) -> None:
    found = boundary_reports(log)
    assert len(found) == 1, [r.getMessage() for r in found]
    assert error_id in found[0].getMessage()
    assert found[0].exc_info is not None and found[0].exc_info[0] is InjectedFault


async def test_a_failing_http_request_is_a_500_with_an_error_id(
    server: Server, monkeypatch: pytest.MonkeyPatch, reports: pytest.LogCaptureFixture
) -> None:
    route = Api.route

    async def failing(self: Api, request: Any) -> Any:
        if request.path == "/api/cases":
            raise InjectedFault("a bug in a handler")
        return await route(self, request)

    monkeypatch.setattr(Api, "route", failing)
    async with connect(ws_url(server), server.issue_token("demo", Role.SPECTATOR)) as bystander:
        await bystander.wait_for(lambda m: m.tick is not None)
        status, body = await http(server, "GET", "/api/cases")
        answer = json.loads(body)
        assert status == 500 and answer["error"] == "internal_error" and answer["id"]
        assert "InjectedFault" not in body.decode() and "Traceback" not in body.decode()
        assert_reported_once(reports, answer["id"])
        status, _ = await http(server, "GET", "/healthz")
        assert status == 200
        tick = bystander.mirror.tick or 0
        await bystander.wait_for(lambda m: (m.tick or 0) > tick + 3)
        assert bystander.connected and bystander.resyncs == 0


async def test_a_failing_websocket_session_gets_bye_internal_error(
    server: Server, monkeypatch: pytest.MonkeyPatch, reports: pytest.LogCaptureFixture
) -> None:
    handle = RoomHost.handle

    def failing(self: RoomHost, link: Any, message: Any) -> None:
        if isinstance(message, Ping) and message.id == 666:
            raise InjectedFault("a bug in the room host")
        handle(self, link, message)

    monkeypatch.setattr(RoomHost, "handle", failing)
    async with connect(ws_url(server), server.issue_token("demo", Role.SPECTATOR)) as bystander:
        await bystander.wait_for(lambda m: m.tick is not None)
        async with raw_websocket(server.port) as ws:
            await ws.hello(server.issue_token("demo", Role.PARTICIPANT, "Unlucky"))
            await ws.send_message({"t": "ping", "id": 666})
            bye = await ws.receive("bye")
            assert bye["code"] == "internal_error" and "error id" in bye["msg"]
            await ws.until_closed()
            assert ws.close_code == 1011
        error_id = bye["msg"].rsplit(" ", 1)[-1].rstrip(")")
        assert_reported_once(reports, error_id)
        async with raw_websocket(server.port) as ws:  # the next client is served as usual
            await ws.hello(server.issue_token("demo", Role.PARTICIPANT, "Next"))
            await ws.send_message({"t": "ping", "id": 7})
            assert (await ws.receive("pong"))["id"] == 7
        tick = bystander.mirror.tick or 0
        await bystander.wait_for(lambda m: (m.tick or 0) > tick + 3)
        assert bystander.connected and bystander.resyncs == 0
        assert server.rooms["demo"].room.status.value == "running"


async def test_a_failing_review_gets_bye_internal_error(
    server: Server, monkeypatch: pytest.MonkeyPatch, reports: pytest.LogCaptureFixture
) -> None:
    serve = ReviewStream._serve

    async def failing(self: ReviewStream, request: Any) -> None:
        if isinstance(getattr(request, "args", None), SeekArgs):
            raise InjectedFault("a bug in review")
        await serve(self, request)

    monkeypatch.setattr(ReviewStream, "_serve", failing)
    host = server.rooms["demo"]
    assert host.writer is not None
    await trio.sleep(1)  # the live session's first records reach the disk
    token = tokens.issue_review(
        server.settings.secret, host.writer.session_id, Role.SPECTATOR, "R", 600
    )
    async with connect(ws_url(server), server.issue_token("demo", Role.SPECTATOR)) as bystander:
        await bystander.wait_for(lambda m: m.tick is not None)
        async with raw_websocket(server.port) as ws:
            assert (await ws.hello(token))["role"] == "reviewer"
            await ws.send_message({"t": "intent", "id": 1, "do": "seek", "args": {"seconds": 0}})
            bye = await ws.receive("bye")
            assert bye["code"] == "internal_error"
            await ws.until_closed()
            assert ws.close_code == 1011
        assert len(boundary_reports(reports)) == 1
        tick = bystander.mirror.tick or 0
        await bystander.wait_for(lambda m: (m.tick or 0) > tick + 3)
        assert bystander.connected and bystander.resyncs == 0
