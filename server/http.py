"""HTTP on the server's one port: h11 parses requests, wsproto takes over on upgrade.

Each connection is read under timeouts and size limits; a WebSocket upgrade on `/ws`
hands the socket (and any bytes already read) to a client `Session`.
"""

from __future__ import annotations

import hmac
import json
import logging
import mimetypes
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, TypeVar
from urllib.parse import parse_qs, urlsplit

import h11
import trio
from pydantic import BaseModel, ValidationError
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection
from wsproto.events import Request as WsRequest

from server.client_session import Session
from server.client_socket import ClientSocket

if TYPE_CHECKING:
    from server.app import Server

log = logging.getLogger(__name__)
Body = TypeVar("Body", bound=BaseModel)
REQUEST_TIMEOUT_SECONDS: Final = 10.0
MAX_BODY: Final = 64 * 1024
MAX_HEADER: Final = 16 * 1024
_READ: Final = 16384
FILE_CHUNK: Final = 256 * 1024


@dataclass(slots=True)
class HttpRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes


@dataclass(slots=True)
class HttpResponse:
    status: int
    body: bytes
    content_type: str = "application/json"
    headers: list[tuple[str, str]] = field(default_factory=list)
    file: FileSlice | None = None
    """A body streamed from disk instead of `body` (large media files)."""


@dataclass(frozen=True, slots=True)
class FileSlice:
    path: Path
    start: int
    length: int


_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def file_response(path: Path, content_type: str, range_header: str | None) -> HttpResponse:
    """A file, whole or the byte range asked for (206), streamed in chunks when sent."""
    size = path.stat().st_size
    start, end = 0, size - 1
    status = 200
    headers = [("accept-ranges", "bytes")]
    if range_header:
        match = _RANGE.match(range_header.strip())
        if match is None or not (match.group(1) or match.group(2)):
            return error_response(416, "bad_range", "only one 'bytes=start-end' range is served")
        if match.group(1):
            start = int(match.group(1))
            end = min(end, int(match.group(2))) if match.group(2) else end
        else:
            start = max(0, size - int(match.group(2)))
        if start > end or start >= size:
            response = error_response(416, "bad_range", f"the file has {size} bytes")
            response.headers.append(("content-range", f"bytes */{size}"))
            return response
        status = 206
        headers.append(("content-range", f"bytes {start}-{end}/{size}"))
    return HttpResponse(status, b"", content_type, headers, FileSlice(path, start, end - start + 1))


def bearer(request: HttpRequest) -> str:
    """The credential of an `Authorization: Bearer ...` header ("" without one)."""
    return request.headers.get("authorization", "").removeprefix("Bearer ").strip()


def is_admin(request: HttpRequest, admin_key: str) -> bool:
    key = bearer(request) or request.headers.get("x-admin-key", "")
    return bool(key) and hmac.compare_digest(key, admin_key)


def parse_body(request: HttpRequest, model: type[Body]) -> Body | HttpResponse:
    """The JSON body validated as `model`, or the 400 response that says what is wrong."""
    try:
        return model.model_validate(json.loads(request.body or b"{}"))
    except json.JSONDecodeError as exc:
        return error_response(400, "bad_json", f"the body is not JSON: {exc.msg}")
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        return error_response(400, "bad_request", f"{where}: {first['msg']}")


def json_response(status: int, payload: Any) -> HttpResponse:
    return HttpResponse(status, json.dumps(payload).encode())


def error_response(status: int, code: str, message: str) -> HttpResponse:
    return json_response(status, {"error": code, "message": message})


async def _receive_event(conn: h11.Connection, stream: trio.SocketStream) -> Any:
    while True:
        event = conn.next_event()
        if event is not h11.NEED_DATA:
            return event
        with trio.fail_after(REQUEST_TIMEOUT_SECONDS):
            data = await stream.receive_some(_READ)
        conn.receive_data(data)


async def handle_connection(server: Server, stream: trio.SocketStream) -> None:
    """Serve HTTP requests on one connection until it closes or upgrades."""
    conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEADER)
    try:
        while True:
            event = await _receive_event(conn, stream)
            if isinstance(event, h11.ConnectionClosed) or event is h11.PAUSED:
                return
            if not isinstance(event, h11.Request):
                return
            headers = {k.decode().lower(): v.decode("latin-1") for k, v in event.headers}
            target = event.target.decode("latin-1")
            if headers.get("upgrade", "").lower() == "websocket":
                await _upgrade(server, stream, conn, event)
                return
            body = bytearray()
            while True:
                part = await _receive_event(conn, stream)
                if isinstance(part, h11.Data):
                    body += part.data
                    if len(body) > MAX_BODY:
                        await _send(
                            stream,
                            conn,
                            error_response(
                                413, "too_large", f"request bodies are limited to {MAX_BODY} bytes"
                            ),
                        )
                        return
                elif isinstance(part, h11.EndOfMessage):
                    break
                else:
                    return
            url = urlsplit(target)
            request = HttpRequest(
                event.method.decode(), url.path, parse_qs(url.query), headers, bytes(body)
            )
            try:
                response = await server.api.route(request)
            except Exception:
                log.exception("error while serving %s %s", request.method, request.path)
                response = error_response(500, "internal", "the server failed on this request")
            await _send(stream, conn, response)
            if conn.our_state is h11.MUST_CLOSE:
                return
            conn.start_next_cycle()
    except (
        h11.RemoteProtocolError,
        trio.TooSlowError,
        trio.BrokenResourceError,
        trio.ClosedResourceError,
        h11.LocalProtocolError,
    ):
        return
    finally:
        with trio.CancelScope(shield=True):
            await stream.aclose()


async def _send(stream: trio.SocketStream, conn: h11.Connection, response: HttpResponse) -> None:
    length = response.file.length if response.file is not None else len(response.body)
    headers = [
        ("content-type", response.content_type),
        ("content-length", str(length)),
        ("cache-control", "no-store"),
        *response.headers,
    ]
    data = conn.send(h11.Response(status_code=response.status, headers=headers)) or b""
    if response.file is None:
        data += conn.send(h11.Data(data=response.body)) or b""
    else:
        with trio.fail_after(REQUEST_TIMEOUT_SECONDS):
            await stream.send_all(data)
        data = b""
        await _send_file(stream, conn, response.file)
    data += conn.send(h11.EndOfMessage()) or b""
    with trio.fail_after(REQUEST_TIMEOUT_SECONDS):
        await stream.send_all(data)


async def _send_file(stream: trio.SocketStream, conn: h11.Connection, part: FileSlice) -> None:
    """Stream a slice of a file; each chunk must leave within the request timeout."""
    async with await trio.open_file(part.path, "rb") as file:
        await file.seek(part.start)
        left = part.length
        while left > 0:
            chunk = await file.read(min(FILE_CHUNK, left))
            if not chunk:
                raise h11.LocalProtocolError("the file shrank while it was being sent")
            left -= len(chunk)
            with trio.fail_after(REQUEST_TIMEOUT_SECONDS):
                await stream.send_all(conn.send(h11.Data(data=chunk)) or b"")


async def _upgrade(
    server: Server, stream: trio.SocketStream, conn: h11.Connection, request: h11.Request
) -> None:
    if urlsplit(request.target.decode("latin-1")).path != "/ws":
        await _send(stream, conn, error_response(404, "not_found", "WebSockets live at /ws"))
        return
    ws = WSConnection(ConnectionType.SERVER)
    ws.initiate_upgrade_connection(list(request.headers), request.target)
    if not any(isinstance(e, WsRequest) for e in ws.events()):
        return
    with trio.fail_after(REQUEST_TIMEOUT_SECONDS):
        await stream.send_all(ws.send(AcceptConnection()))
    leftover, _ = conn.trailing_data
    sock = ClientSocket(
        stream,
        ws,
        queue_bytes=server.settings.send_queue_bytes,
        receive_timeout=server.settings.client_timeout_seconds,
        leftover=bytes(leftover),
        send_buffer=server.settings.socket_send_buffer,
    )
    await Session(server, sock).run()


def static_file(path: str) -> HttpResponse | None:
    """A file of the browser app (clients/web), served by the server itself."""
    relative = path.lstrip("/") or "index.html"
    if ".." in relative.split("/"):
        return None
    resource = resources.files("clients").joinpath("web", *relative.split("/"))
    if not resource.is_file():
        return None
    content_type = mimetypes.guess_type(relative)[0] or "application/octet-stream"
    if relative.endswith((".js", ".mjs")):
        content_type = "text/javascript"
    return HttpResponse(200, resource.read_bytes(), content_type)
