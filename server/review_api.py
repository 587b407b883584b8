"""The HTTP side of review: recorded sessions, their exports, annotations, review tokens.

Listing sessions and issuing review tokens needs the admin key; everything about one
session also accepts a review token for that session (`Authorization: Bearer` or
`?token=`), which is what a review link carries.
"""

from __future__ import annotations

import dataclasses
import os
import re
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import trio
from pydantic import BaseModel, ConfigDict, Field

from netcode.views import Role
from replay import debrief, export_jsonl, layout, xapi
from replay.annotations import Annotations
from replay.errors import ReplayError
from replay.reader import Session
from server import tokens
from server.files import open_regular_file
from server.http import (
    HttpRequest,
    HttpResponse,
    bearer,
    error_response,
    file_response,
    is_admin,
    json_response,
    parse_body,
)

if TYPE_CHECKING:
    from server.app import Server

_SESSION_PATH = re.compile(
    r"^/api/sessions/([A-Za-z0-9._-]{1,128})"
    r"(?:/(tokens|annotations|export/(jsonl|xapi|debrief)|media/([A-Za-z0-9._-]{1,200})))?$"
)


class ReviewTokenRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    view: Role = Role.FACILITATOR
    name: str = Field(default="Reviewer", max_length=64)
    ttl_seconds: int | None = Field(default=None, gt=0, le=30 * 24 * 3600)


class AnnotationRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    start_s: float = Field(ge=0)
    end_s: float | None = Field(default=None, ge=0)
    text: str = Field(min_length=1, max_length=2000)


class ReviewApi:
    def __init__(self, server: Server) -> None:
        self.server = server

    def _is_admin(self, request: HttpRequest) -> bool:
        return is_admin(request, self.server.settings.admin_key)

    def _reviewer(self, request: HttpRequest, session_id: str) -> str | None:
        """The reviewer's name when the request may read `session_id`, else None."""
        if self._is_admin(request):
            return "administrator"
        token = request.query.get("token", [""])[0] or bearer(request)
        try:
            grant = tokens.verify_review(self.server.settings.secret, token)
        except tokens.TokenError:
            return None
        return grant.name if grant.session == session_id else None

    async def route(self, request: HttpRequest) -> HttpResponse | None:
        """Answer a /api/sessions request, or None for any other path."""
        data_dir = self.server.settings.data_dir
        if request.path == "/api/sessions":
            if not self._is_admin(request):
                return error_response(401, "unauthorized", "listing sessions needs the admin key")
            return json_response(
                200,
                {
                    "sessions": await trio.to_thread.run_sync(
                        lambda: [_summary(data_dir, sid) for sid in layout.list_sessions(data_dir)]
                    )
                },
            )
        match = _SESSION_PATH.match(request.path)
        if match is None:
            return None
        session_id, what, export, media = match.groups()
        if what == "tokens":
            return self._issue(request, session_id)
        reviewer = self._reviewer(request, session_id)
        if reviewer is None:
            return error_response(
                401, "unauthorized", "this needs the admin key or a review token for this session"
            )
        try:
            if what is None:
                return json_response(
                    200, await trio.to_thread.run_sync(_summary, data_dir, session_id)
                )
            if what == "annotations":
                return await self._annotations(request, session_id, reviewer)
            if media is not None:
                return await trio.to_thread.run_sync(
                    _media, data_dir, session_id, media, request.headers.get("range")
                )
            return await trio.to_thread.run_sync(_export, data_dir, session_id, export)
        except ReplayError as exc:
            status = 404 if exc.code in ("unknown-session", "bad-session-id") else 409
            return error_response(status, exc.code.replace("-", "_"), exc.message)

    def _issue(self, request: HttpRequest, session_id: str) -> HttpResponse:
        if request.method != "POST":
            return error_response(405, "method_not_allowed", "POST to issue a review token")
        if not self._is_admin(request):
            return error_response(401, "unauthorized", "issuing review tokens needs the admin key")
        try:
            layout.session_dir(self.server.settings.data_dir, session_id)
        except ReplayError as exc:
            return error_response(404, "unknown_session", exc.message)
        body = parse_body(request, ReviewTokenRequest)
        if isinstance(body, HttpResponse):
            return body
        token = tokens.issue_review(
            self.server.settings.secret,
            session_id,
            body.view,
            body.name,
            body.ttl_seconds or self.server.settings.token_ttl_seconds,
        )
        base = self.server.settings.base_url()
        return json_response(
            201,
            {
                "token": token,
                "view": body.view.value,
                "link": f"{base}/?{urlencode({'session': session_id, 'token': token})}",
                "ws": base.replace("http", "ws", 1) + "/ws",
            },
        )

    async def _annotations(
        self, request: HttpRequest, session_id: str, reviewer: str
    ) -> HttpResponse:
        path = layout.session_dir(self.server.settings.data_dir, session_id)
        notes = Annotations(path)
        if request.method == "GET":
            found = await trio.to_thread.run_sync(notes.all)
            return json_response(200, {"annotations": [dataclasses.asdict(a) for a in found]})
        if request.method != "POST":
            return error_response(405, "method_not_allowed", "GET or POST annotations")
        body = parse_body(request, AnnotationRequest)
        if isinstance(body, HttpResponse):
            return body
        if body.end_s is None:
            made = await trio.to_thread.run_sync(notes.bookmark, body.start_s, body.text, reviewer)
        else:
            made = await trio.to_thread.run_sync(
                notes.comment, body.start_s, body.end_s, body.text, reviewer
            )
        return json_response(201, dataclasses.asdict(made))


def _summary(data_dir: Any, session_id: str) -> dict[str, Any]:
    path = layout.session_dir(data_dir, session_id)
    manifest: dict[str, Any] = layout.read_json(path / "manifest.json")
    return {"id": session_id, **manifest}


MEDIA_TYPES = {".webm": "video/webm", ".ogg": "audio/ogg", ".json": "application/json"}


def _media(data_dir: Any, session_id: str, name: str, range_header: str | None) -> HttpResponse:
    """A recorded media track (remuxed WebM or Ogg) of the session, seekable by range."""
    kind = MEDIA_TYPES.get(os.path.splitext(name)[1])
    folder = layout.session_dir(data_dir, session_id) / "media"
    opened = open_regular_file(folder, name) if kind is not None else None
    if kind is None or opened is None:
        return error_response(404, "unknown_track", f"this session has no media file {name!r}")
    return file_response(opened, kind, range_header)


def _export(data_dir: Any, session_id: str, kind: str | None) -> HttpResponse:
    session = Session.open(data_dir, session_id)
    if kind == "jsonl":
        body = "".join(
            line if line.endswith("\n") else line + "\n" for line in export_jsonl.lines(session)
        )
        return HttpResponse(200, body.encode(), "application/x-ndjson")
    if kind == "xapi":
        return json_response(200, xapi.statements(session))
    notes = Annotations(session.path).all()
    html = debrief.render(session, [n for n in notes if n.kind == "bookmark"])
    return HttpResponse(200, html.encode(), "text/html; charset=utf-8")
