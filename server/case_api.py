"""The case endpoints of the HTTP API: list the cases, upload one (docs/cases.md,
"Running your own cases").

Reading and validating case files is blocking work (file I/O, YAML, pydantic), so it
runs in a worker thread, one change at a time, never on the event loop.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

import trio

from rooms.case.errors import Problem, dotted
from server.http import HttpRequest, HttpResponse, error_response, is_admin, json_response
from server.scenarios import MINIMAL, CaseRejected

if TYPE_CHECKING:
    from server.app import Server


def problem_json(problem: Problem) -> dict[str, Any]:
    return {
        "line": problem.line,
        "field": dotted(problem.path),
        "message": problem.message,
        "allowed": problem.allowed,
    }


class CaseApi:
    def __init__(self, server: Server) -> None:
        self.server = server
        self._lock = trio.Lock()
        """One folder change (refresh or upload) at a time."""

    async def refresh(self) -> None:
        """Re-read changed case files (before a room is created, so it runs the latest)."""
        async with self._lock:
            await trio.to_thread.run_sync(self.server.cases.refresh)

    async def route(self, request: HttpRequest) -> HttpResponse | None:
        if request.path != "/api/cases":
            return None
        if request.method == "GET":
            return await self._list(request)
        if request.method == "POST":
            return await self._upload(request)
        return error_response(405, "method_not_allowed", "use GET or POST on /api/cases")

    async def _list(self, request: HttpRequest) -> HttpResponse:
        await self.refresh()
        library = self.server.cases
        demo = {
            "id": MINIMAL,
            "title": "Minimal GR-S benchmark room ('demo:N' for N shared objects)",
            "specialty": "",
            "duration_min": None,
            "source": "builtin",
            "stereo_video": False,
        }
        body: dict[str, Any] = {"cases": [demo, *library.listing()]}
        if is_admin(request, self.server.settings.admin_key):
            body["errors"] = [
                {"file": e.file, "problems": [problem_json(p) for p in e.problems]}
                for e in library.errors()
            ]
        return json_response(200, body)

    async def _upload(self, request: HttpRequest) -> HttpResponse:
        if not is_admin(request, self.server.settings.admin_key):
            return error_response(401, "unauthorized", "uploading a case needs the admin key")
        try:
            text = request.body.decode("utf-8")
        except UnicodeDecodeError:
            return error_response(400, "bad_encoding", "a case file must be UTF-8 text")
        content_type = request.headers.get("content-type", "").split(";")[0].strip()
        kind: Literal["yaml", "json"] = "json" if content_type == "application/json" else "yaml"
        async with self._lock:
            try:
                loaded, new = await trio.to_thread.run_sync(self.server.cases.save, text, kind)
            except CaseRejected as rejected:
                status = {"invalid_case": 422, "case_exists": 409, "too_large": 413}.get(
                    rejected.code, 400
                )
                response = error_response(status, rejected.code, rejected.message)
                if rejected.problems:
                    response = json_response(
                        status,
                        {
                            "error": rejected.code,
                            "message": f"the case has {len(rejected.problems)} problem(s)",
                            "problems": [problem_json(p) for p in rejected.problems],
                        },
                    )
                return response
        listing = next(c for c in self.server.cases.listing() if c["id"] == loaded.case.id)
        return json_response(201 if new else 200, {"case": listing, "file": loaded.file})
