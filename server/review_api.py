"""The HTTP side of review: recorded sessions, their exports, annotations, review tokens.

Listing sessions and issuing review tokens needs the admin key; everything about one
session also accepts a review token for that session (`Authorization: Bearer` or
`?token=`), which is what a review link carries. Every answer is scoped to the token's
view with the live room's rules (`replay.views`): the summary, the JSON-lines export
and the annotations hold what that view may see, and the exports made of
facilitator-only data (debrief, xAPI) are refused to other views with
`view_not_allowed`. The admin key reads as the facilitator.
"""

from __future__ import annotations

import json
import os
import re
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import trio
from pydantic import BaseModel, ConfigDict, Field

from netcode.views import VIEW_OF_ROLE, Role, View
from replay import debrief, export_jsonl, layout, xapi
from replay.annotations import MAX_SECONDS, MAX_TEXT, Annotations, Rating
from replay.errors import ReplayError
from replay.reader import Session
from replay.summary import as_json, summarize
from replay.views import may_export, view_manifest
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
    r"(?:/(tokens|timeline|annotations(?:/([0-9a-f]{1,32}))?|export/(jsonl|xapi|debrief)"
    r"|media/([A-Za-z0-9._-]{1,200})))?$"
)
TIMELINE_CACHE = 16
"""Timelines kept in memory (one per session and view); a sealed log never changes."""
_STATUS = {
    "unknown-session": 404,
    "bad-session-id": 404,
    "unknown-annotation": 404,
    "bad-annotation": 400,
    "too-many-annotations": 409,
}


class ReviewTokenRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    view: Role = Role.FACILITATOR
    name: str = Field(default="Reviewer", max_length=64)
    ttl_seconds: int | None = Field(default=None, gt=0, le=30 * 24 * 3600)


class AnnotationRequest(BaseModel):
    """A bookmark (no `end_s`), a comment (with `end_s`) or a rater's form (`rating`)."""

    model_config = ConfigDict(extra="forbid")
    start_s: float = Field(ge=0, le=MAX_SECONDS, allow_inf_nan=False)
    end_s: float | None = Field(default=None, ge=0, le=MAX_SECONDS, allow_inf_nan=False)
    text: str = Field(default="", max_length=MAX_TEXT)
    rating: Rating | None = None


@dataclass(frozen=True, slots=True)
class Reviewer:
    name: str
    role: Role
    """The view the reviewer reads with (the facilitator's for the admin key)."""

    @property
    def view(self) -> View:
        return VIEW_OF_ROLE[self.role]


class ReviewApi:
    def __init__(self, server: Server) -> None:
        self.server = server
        self._timelines: OrderedDict[tuple[Any, ...], bytes] = OrderedDict()

    def _is_admin(self, request: HttpRequest) -> bool:
        return is_admin(request, self.server.settings.admin_key)

    def _reviewer(self, request: HttpRequest, session_id: str) -> Reviewer | None:
        """Who reads `session_id` and with which view; None when the request may not."""
        if self._is_admin(request):
            return Reviewer("administrator", Role.FACILITATOR)
        token = request.query.get("token", [""])[0] or bearer(request)
        try:
            grant = tokens.verify_review(self.server.settings.secret, token)
        except tokens.TokenError:
            return None
        return Reviewer(grant.name, grant.view) if grant.session == session_id else None

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
                        lambda: [
                            _summary(data_dir, sid, View.FACILITATOR)
                            for sid in layout.list_sessions(data_dir)
                        ]
                    )
                },
            )
        match = _SESSION_PATH.match(request.path)
        if match is None:
            return None
        session_id, what, annotation, export, media = match.groups()
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
                    200,
                    await trio.to_thread.run_sync(_summary, data_dir, session_id, reviewer.view),
                )
            if what.startswith("annotations"):
                return await self._annotations(request, session_id, reviewer, annotation)
            if what == "timeline":
                return await self._timeline(session_id, reviewer.view)
            if media is not None:
                return await trio.to_thread.run_sync(
                    _media, data_dir, session_id, media, request.headers.get("range")
                )
            if not may_export(reviewer.view, export):
                return error_response(
                    403,
                    "view_not_allowed",
                    f"the {export} export holds what only the facilitator sees; this review "
                    f"link has the {reviewer.role.value}'s view",
                )
            base = self.server.settings.base_url()
            return await trio.to_thread.run_sync(
                _export, data_dir, session_id, export, reviewer.view, base
            )
        except ReplayError as exc:
            return error_response(
                _STATUS.get(exc.code, 409), exc.code.replace("-", "_"), exc.message
            )

    async def _timeline(self, session_id: str, view: View) -> HttpResponse:
        """Who did what and when, what was said, the vitals: the viewer's lanes, as the
        view may see them. Computed once per (session, view, version of the log)."""
        data_dir = self.server.settings.data_dir
        path = layout.session_dir(data_dir, session_id)
        stamp = tuple(
            (f.name, f.stat().st_size, f.stat().st_mtime_ns)
            for f in sorted(path.iterdir())
            if f.name.startswith(("seg-", "manifest"))
        )
        key = (session_id, view, stamp)
        body = self._timelines.get(key)
        if body is None:
            body = await trio.to_thread.run_sync(_timeline_json, data_dir, session_id, view)
            self._timelines[key] = body
            while len(self._timelines) > TIMELINE_CACHE:
                self._timelines.popitem(last=False)
        self._timelines.move_to_end(key)
        return HttpResponse(200, body, "application/json")

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
        self, request: HttpRequest, session_id: str, reviewer: Reviewer, annotation: str | None
    ) -> HttpResponse:
        path = layout.session_dir(self.server.settings.data_dir, session_id)
        notes = Annotations(path)
        if annotation is not None:
            if request.method != "DELETE":
                return error_response(405, "method_not_allowed", "DELETE an annotation")
            await trio.to_thread.run_sync(notes.delete, annotation, reviewer.role)
            return json_response(200, {"deleted": annotation})
        if request.method == "GET":
            found = await trio.to_thread.run_sync(notes.all, reviewer.role)
            return json_response(200, {"annotations": [a.model_dump() for a in found]})
        if request.method != "POST":
            return error_response(405, "method_not_allowed", "GET or POST annotations")
        body = parse_body(request, AnnotationRequest)
        if isinstance(body, HttpResponse):
            return body
        if body.rating is not None:
            if body.end_s is None:
                return error_response(400, "bad_request", "end_s: a rating covers a time range")
            rating = body.rating
            made = await trio.to_thread.run_sync(
                lambda: notes.rate(
                    body.start_s,
                    body.end_s or 0.0,
                    rating,
                    body.text,
                    reviewer.name,
                    reviewer.role,
                )
            )
        elif body.end_s is None:
            made = await trio.to_thread.run_sync(
                notes.bookmark, body.start_s, body.text, reviewer.name, reviewer.role
            )
        else:
            end_s = body.end_s
            made = await trio.to_thread.run_sync(
                lambda: notes.comment(body.start_s, end_s, body.text, reviewer.name, reviewer.role)
            )
        return json_response(201, made.model_dump())


def _timeline_json(data_dir: Any, session_id: str, view: View) -> bytes:
    summary = summarize(Session.open(data_dir, session_id), view)
    return json.dumps(as_json(summary), allow_nan=False).encode()


def _summary(data_dir: Any, session_id: str, view: View) -> dict[str, Any]:
    path = layout.session_dir(data_dir, session_id)
    manifest: dict[str, Any] = layout.read_json(path / "manifest.json")
    return {"id": session_id, **view_manifest(manifest, view)}


MEDIA_TYPES = {".webm": "video/webm", ".ogg": "audio/ogg", ".json": "application/json"}


def _media(data_dir: Any, session_id: str, name: str, range_header: str | None) -> HttpResponse:
    """A recorded media track (remuxed WebM or Ogg) of the session, seekable by range.

    Every view may have every track: live, each role subscribes to every published one.
    """
    kind = MEDIA_TYPES.get(os.path.splitext(name)[1])
    folder = layout.session_dir(data_dir, session_id) / "media"
    opened = open_regular_file(folder, name) if kind is not None else None
    if kind is None or opened is None:
        return error_response(404, "unknown_track", f"this session has no media file {name!r}")
    return file_response(opened, kind, range_header)


def _export(
    data_dir: Any, session_id: str, kind: str | None, view: View, base: str
) -> HttpResponse:
    session = Session.open(data_dir, session_id)
    if kind == "jsonl":
        out: list[str] = []
        try:
            for line in export_jsonl.lines(session, view):
                out.append(line + "\n")
        except ReplayError as exc:  # the timeline up to the damage, then why it stops
            error = {"error": exc.code.replace("-", "_"), "message": exc.message}
            out.append(json.dumps(error) + "\n")
        return HttpResponse(200, "".join(out).encode(), "application/x-ndjson")
    if kind == "xapi":
        return json_response(200, xapi.statements(session, base))
    html = debrief.render(session, Annotations(session.path).all(view=Role.FACILITATOR))
    return HttpResponse(200, html.encode(), "text/html; charset=utf-8")
