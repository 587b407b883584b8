"""The HTTP API: rooms, join tokens, health and metrics (docs/protocol.md, "HTTP API")."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import trio
from pydantic import BaseModel, ConfigDict, Field

from netcode.views import Role
from server import tokens
from server.case_api import CaseApi
from server.files import app_file
from server.http import (
    HttpRequest,
    HttpResponse,
    bearer,
    error_response,
    is_admin,
    json_response,
    parse_body,
)
from server.nodes import NodeInfo, NodeKind
from server.refusals import RoomRefused
from server.review_api import ReviewApi
from server.scenarios import DEFAULT_CASE, UnknownCase
from server.tokens import MAX_SEATS
from server.valkey import ValkeyUnavailable

if TYPE_CHECKING:
    from server.app import Server

_ROOM_PATH = re.compile(r"^/api/rooms/([A-Za-z0-9_-]{1,64})(/tokens)?$")


class CreateRoom(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: str = Field(default="", max_length=120)
    case: str = Field(default=DEFAULT_CASE, max_length=64)
    seed: int | None = Field(default=None, ge=0, lt=2**63)
    request_id: str | None = Field(default=None, min_length=1, max_length=64)
    """Makes creation idempotent in a cluster: the same id gives the same room."""


class IssueToken(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: Role
    name: str = Field(default="", max_length=64)
    ttl_seconds: int | None = Field(default=None, gt=0, le=30 * 24 * 3600)
    seats: int | None = Field(default=None, ge=1, le=MAX_SEATS)
    """How many people the link admits at once (default by role: docs/protocol.md)."""


class Api:
    def __init__(self, server: Server) -> None:
        self.server = server
        self.review = ReviewApi(server)
        self.cases = CaseApi(server)

    def _admin(self, request: HttpRequest) -> bool:
        return is_admin(request, self.server.settings.admin_key)

    def _facilitator_of(self, request: HttpRequest, room_id: str) -> bool:
        """A facilitator's own join token, for their own room (join links from the console)."""
        try:
            grant = tokens.verify(self.server.settings.secret, bearer(request))
        except tokens.TokenError:
            return False
        return grant.room == room_id and grant.role is Role.FACILITATOR

    async def route(self, request: HttpRequest) -> HttpResponse:
        path, method = request.path, request.method
        if path == "/healthz":
            live = sum(1 for h in self.server.rooms.values() if not h.ended)  # ended: kept, not run
            return json_response(200, {"ok": True, "rooms": live})
        if path == "/metrics":
            self.server.refresh_gauges()
            return HttpResponse(
                200, self.server.metrics.render(), "text/plain; version=0.0.4; charset=utf-8"
            )
        answer = await self.cases.route(request)
        if answer is not None:
            return answer
        if path == "/api/nodes" and method == "GET":
            return await self._nodes(request)
        if path == "/api/rooms":
            if method == "GET":
                return await self._list_rooms()
            if method == "POST":
                return await self._create_room(request)
            return error_response(405, "method_not_allowed", "use GET or POST on /api/rooms")
        if path.startswith("/api/sessions"):
            answer = await self.review.route(request)
            if answer is not None:
                return answer
        match = _ROOM_PATH.match(path)
        if match:
            return await self._room(request, match.group(1), tokens=bool(match.group(2)))
        if method == "GET" and not path.startswith("/api/"):
            found = await trio.to_thread.run_sync(app_file, path)
            if found is not None:
                headers = [("content-security-policy", found.policy)] if found.policy else []
                return HttpResponse(200, found.body, found.content_type, headers)
        return error_response(404, "not_found", "nothing at this path")

    async def _create_room(self, request: HttpRequest) -> HttpResponse:
        if not self._admin(request):
            return error_response(401, "unauthorized", "creating a room needs the admin key")
        body = parse_body(request, CreateRoom)
        if isinstance(body, HttpResponse):
            return body
        cluster = self.server.cluster
        await self.cases.refresh()  # a case file changed since: the new room runs the new one
        try:
            self.server.cases.check(body.case)  # checked here: another node may open it
            if cluster is None:
                host = await self.server.create_room(body.title, body.case, body.seed)
                info = host.info()
            else:
                entry = await cluster.create(body.title, body.case, body.seed, body.request_id)
                info = await cluster.room_info(entry.id) or cluster.entry_info(entry)
        except UnknownCase as exc:
            return error_response(404, "unknown_case", str(exc))
        except RoomRefused as refused:
            status = 409 if refused.code == "room_exists" else 503
            return error_response(status, refused.code, refused.message)
        except ValkeyUnavailable:
            return _directory_unavailable()
        return json_response(201, {**info, "join": self.server.join_bundle(info["id"])})

    async def _nodes(self, request: HttpRequest) -> HttpResponse:
        """The cluster's live nodes and relays with their load and rooms (admin)."""
        if not self._admin(request):
            return error_response(401, "unauthorized", "listing nodes needs the admin key")
        cluster = self.server.cluster
        if cluster is None:
            live = [h for h in self.server.rooms.values() if not h.stopped]
            me = NodeInfo(
                id="local",
                kind=NodeKind.NODE,
                url=self.server.settings.base_url(),
                rooms=sorted(h.room.id for h in live),
                clients=sum(len(h.links) for h in live),
            )
            return json_response(200, {"nodes": [me.model_dump(mode="json")], "relays": []})
        try:
            nodes = await cluster.registry.live(NodeKind.NODE)
            relays = await cluster.registry.live(NodeKind.RELAY)
        except ValkeyUnavailable:
            return _directory_unavailable()
        return json_response(
            200,
            {
                "nodes": [n.model_dump(mode="json") for n in nodes],
                "relays": [r.model_dump(mode="json") for r in relays],
            },
        )

    async def _list_rooms(self) -> HttpResponse:
        local = [h.info() for h in self.server.rooms.values()]
        cluster = self.server.cluster
        if cluster is None:
            return json_response(200, {"rooms": local})
        try:
            entries = await cluster.directory.all()
        except ValkeyUnavailable:
            return _directory_unavailable()
        here = {info["id"] for info in local}
        elsewhere = [cluster.entry_info(e) for e in entries if e.id not in here]
        return json_response(200, {"rooms": local + elsewhere})

    async def _room_info(self, room_id: str) -> dict[str, Any] | None:
        """A room's info, wherever in the cluster it lives; None if there is no such room."""
        if self.server.cluster is not None:
            return await self.server.cluster.room_info(room_id)
        host = self.server.rooms.get(room_id)
        return None if host is None else host.info()

    async def _room(self, request: HttpRequest, room_id: str, *, tokens: bool) -> HttpResponse:
        try:
            info = await self._room_info(room_id)
        except ValkeyUnavailable:
            return _directory_unavailable()
        if info is None:
            return error_response(404, "unknown_room", f"there is no room {room_id!r}")
        if tokens:
            if request.method != "POST":
                return error_response(405, "method_not_allowed", "POST to issue a token")
            if not (self._admin(request) or self._facilitator_of(request, room_id)):
                return error_response(
                    401,
                    "unauthorized",
                    "issuing tokens needs the admin key or this room's facilitator token",
                )
            body = parse_body(request, IssueToken)
            if isinstance(body, HttpResponse):
                return body
            return json_response(
                201,
                self.server.join_entry(
                    room_id, body.role, body.name, body.ttl_seconds, seats=body.seats
                ),
            )
        if request.method == "GET":
            return json_response(200, info)
        if request.method == "DELETE":
            if not self._admin(request):
                return error_response(401, "unauthorized", "ending a room needs the admin key")
            reason = "ended by an administrator"
            host = self.server.rooms.get(room_id)
            if host is not None and not host.stopped:
                host.request_end(reason)
            elif self.server.cluster is not None:
                try:
                    await self.server.cluster.end(room_id, reason)
                except ValkeyUnavailable:
                    return _directory_unavailable()
            return json_response(202, {"id": room_id, "status": "ending"})
        return error_response(405, "method_not_allowed", "use GET or DELETE on a room")


def _directory_unavailable() -> HttpResponse:
    return error_response(
        503, "directory_unavailable", "the cluster's directory (Valkey) is not answering; retry"
    )
