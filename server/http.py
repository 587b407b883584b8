"""HTTP on the server's one port: h11 parses requests, wsproto takes over on upgrade.

Each connection is read under timeouts and size limits; a WebSocket upgrade on `/ws`
hands the socket (and any bytes already read) to a client `Session`.
"""

from __future__ import annotations

import json
import logging
import mimetypes
from dataclasses import dataclass, field
from importlib import resources
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import parse_qs, urlsplit

import h11
import trio
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection
from wsproto.events import Request as WsRequest

from server.client_session import Session
from server.client_socket import ClientSocket

if TYPE_CHECKING:
    from server.app import Server

log = logging.getLogger(__name__)
REQUEST_TIMEOUT_SECONDS: Final = 10.0
MAX_BODY: Final = 64 * 1024
MAX_HEADER: Final = 16 * 1024
_READ: Final = 16384


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
    headers = [
        ("content-type", response.content_type),
        ("content-length", str(len(response.body))),
        ("cache-control", "no-store"),
        *response.headers,
    ]
    data = conn.send(h11.Response(status_code=response.status, headers=headers))
    data = (data or b"") + (conn.send(h11.Data(data=response.body)) or b"")
    data += conn.send(h11.EndOfMessage()) or b""
    with trio.fail_after(REQUEST_TIMEOUT_SECONDS):
        await stream.send_all(data)


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
