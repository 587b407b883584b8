"""HTTP on the server's one port: h11 parses requests, wsproto takes over on upgrade.

Each connection runs inside a fault boundary (`handle_connection`): an unexpected
exception is reported once and answered with a 500 carrying an error id, and goes no
further. Each request must arrive whole, headers and body, within
`request_timeout_seconds` of the server starting to wait for it, and each response
must leave within it (a file: each chunk), so a client that drips bytes holds its
connection for a bounded time. A request the server cannot take gets a 4xx JSON error
with a code and the connection closes; nothing a client sends produces a traceback.
A `GET /ws` upgrade hands the socket (and any bytes already read) to the service's
WebSocket session (a node's `Session`, or a spectator relay's).
"""

from __future__ import annotations

import contextlib
import hmac
import json
import logging
import os
import re
import socket
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Final, Protocol, TypeVar
from urllib.parse import parse_qs

import h11
import trio
from pydantic import BaseModel, ValidationError
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, RejectConnection
from wsproto.events import Request as WsRequest
from wsproto.utilities import RemoteProtocolError as WsRemoteProtocolError

from server.boundary import report_fault
from server.client_socket import ClientSocket
from server.files import OpenFile

if TYPE_CHECKING:
    from server.config import Settings
    from server.metrics import Metrics

log = logging.getLogger(__name__)
Body = TypeVar("Body", bound=BaseModel)
MAX_BODY: Final = 64 * 1024
MAX_HEADER: Final = 16 * 1024
MAX_PATH: Final = 2048
MAX_QUERY_FIELDS: Final = 32
METHODS: Final = (b"GET", b"HEAD", b"POST", b"DELETE")
PRE_HELLO_QUEUE_BYTES: Final = 64 * 1024
"""The send limit of a WebSocket until its hello is accepted (the full one after)."""
_READ: Final = 16384
FILE_CHUNK: Final = 256 * 1024
LINGER_SECONDS: Final = 2.0
SECURITY_HEADERS: Final = (
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"),
    ("referrer-policy", "no-referrer"),
)
"""On every response. Join and review links carry tokens: no referrer leaks them."""
DEFAULT_POLICY: Final = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)
"""The Content-Security-Policy of HTML other than the app's pages (the self-contained
debrief, with its inline style). Not on media: Chromium then refuses to seek in it."""


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
    file: OpenFile
    start: int
    length: int


_RANGE = re.compile(r"^bytes=(\d{0,18})-(\d{0,18})$")


def file_response(opened: OpenFile, content_type: str, range_header: str | None) -> HttpResponse:
    """An open file, whole or the byte range asked for (206), streamed in chunks when sent.
    The response owns the file from here on (it is closed once sent, or now if refused)."""
    size = opened.size
    start, end = 0, size - 1
    status = 200
    headers = [("accept-ranges", "bytes")]
    if range_header:
        match = _RANGE.match(range_header.strip())
        if match is None or not (match.group(1) or match.group(2)):
            opened.close()
            return error_response(416, "bad_range", "only one 'bytes=start-end' range is served")
        if match.group(1):
            start = int(match.group(1))
            end = min(end, int(match.group(2))) if match.group(2) else end
        else:
            start = max(0, size - int(match.group(2)))
        if start > end or start >= size:
            opened.close()
            response = error_response(416, "bad_range", f"the file has {size} bytes")
            response.headers.append(("content-range", f"bytes */{size}"))
            return response
        status = 206
        headers.append(("content-range", f"bytes {start}-{end}/{size}"))
    return HttpResponse(
        status, b"", content_type, headers, FileSlice(opened, start, end - start + 1)
    )


def bearer(request: HttpRequest) -> str:
    """The credential of an `Authorization: Bearer ...` header ("" without one)."""
    return request.headers.get("authorization", "").removeprefix("Bearer ").strip()


def is_admin(request: HttpRequest, admin_key: str) -> bool:
    key = bearer(request) or request.headers.get("x-admin-key", "")
    # Headers arrive as latin-1 text: compare their bytes (any byte, not only ASCII).
    return bool(key) and hmac.compare_digest(key.encode("latin-1"), admin_key.encode())


def parse_body(request: HttpRequest, model: type[Body]) -> Body | HttpResponse:
    """The JSON body validated as `model`, or the 400 response that says what is wrong."""
    try:
        return model.model_validate(json.loads(request.body or b"{}"))
    except json.JSONDecodeError as exc:
        return error_response(400, "bad_json", f"the body is not JSON: {exc.msg}")
    except UnicodeDecodeError:
        return error_response(400, "bad_json", "the body is not UTF-8 text")
    except RecursionError:
        return error_response(400, "bad_json", "the body nests too deeply")
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        return error_response(400, "bad_request", f"{where}: {first['msg']}")


def json_response(status: int, payload: Any) -> HttpResponse:
    return HttpResponse(status, json.dumps(payload).encode())


def error_response(status: int, code: str, message: str) -> HttpResponse:
    return json_response(status, {"error": code, "message": message})


class Router(Protocol):
    async def route(self, request: HttpRequest) -> HttpResponse: ...


class Service(Protocol):
    """What serves the port: a node (`server.app.Server`) or a spectator relay."""

    @property
    def settings(self) -> Settings: ...

    @property
    def metrics(self) -> Metrics: ...

    @property
    def api(self) -> Router: ...

    async def serve_websocket(self, sock: ClientSocket, peer: str) -> None:
        """Converse with one upgraded client until its connection ends."""
        ...


class _Refused(Exception):
    """A request answered with an error, after which the connection closes."""

    def __init__(self, response: HttpResponse) -> None:
        super().__init__(response.status)
        self.response = response


class _FileShrank(Exception):
    """A file got shorter while it was being sent: the response cannot be completed."""


async def handle_connection(server: Service, stream: trio.SocketStream, peer: str) -> None:
    """Serve one connection, inside its fault boundary, until it closes or upgrades."""
    connection = _Connection(server, stream, peer)
    try:
        await connection.serve()
    except _Refused as refused:
        await connection.send_last(refused.response)
    except h11.RemoteProtocolError as exc:
        await connection.send_last(error_response(exc.error_status_hint, "bad_request", str(exc)))
    except (trio.BrokenResourceError, trio.ClosedResourceError, trio.TooSlowError):
        pass  # the client went away, or stopped reading what it asked for
    except _FileShrank as exc:
        log.warning("%s: %s", peer, exc)
    except Exception as exc:
        server.metrics.connection_faults.inc()
        error_id = report_fault(f"HTTP connection from {peer}", exc)
        failed = json_response(
            500,
            {
                "error": "internal_error",
                "message": "the server failed on this request",
                "id": error_id,
            },
        )
        await connection.send_last(failed)
    finally:
        with trio.CancelScope(shield=True):
            await stream.aclose()


def _wants_websocket(request: HttpRequest) -> bool:
    return request.path == "/ws" or request.headers.get("upgrade", "").lower() == "websocket"


class _Connection:
    def __init__(self, server: Service, stream: trio.SocketStream, peer: str) -> None:
        self.server = server
        self.stream = stream
        self.peer = peer
        self.h11 = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEADER)
        self.timeout = server.settings.request_timeout_seconds
        self.heard = False
        """Some bytes of the request being waited for have arrived."""
        self.head_request = False
        """The request being answered is a HEAD: its response has no body."""

    async def serve(self) -> None:
        while True:
            self.heard = self.head_request = False
            with trio.move_on_after(self.timeout) as waiting:
                received = await self._receive_request()
            if waiting.cancelled_caught:
                if self.heard:
                    raise _Refused(
                        error_response(
                            408,
                            "request_timeout",
                            f"a request must arrive whole within {self.timeout:g} s",
                        )
                    )
                return  # an idle connection between requests: close it quietly
            if received is None:
                return
            request, head = received
            if _wants_websocket(request):
                await self._upgrade(request, head)
                return
            asked = replace(request, method="GET") if request.method == "HEAD" else request
            response = await self.server.api.route(asked)
            await self._send(response)
            if self.h11.our_state is h11.MUST_CLOSE:
                return
            self.h11.start_next_cycle()

    async def _next_event(self) -> Any:
        while True:
            event = self.h11.next_event()
            if event is not h11.NEED_DATA:
                return event
            data = await self.stream.receive_some(_READ)
            self.heard = self.heard or bool(data)
            self.h11.receive_data(data)

    async def _receive_request(self) -> tuple[HttpRequest, h11.Request] | None:
        """The next request, whole; None when the client closed between requests."""
        head = await self._next_event()
        if not isinstance(head, h11.Request):
            return None  # ConnectionClosed
        self.head_request = head.method == b"HEAD"
        if head.method not in METHODS:  # CONNECT, a 2xx to which would switch protocols
            refusal = error_response(
                405, "method_not_allowed", "this server takes GET, POST, DELETE and HEAD"
            )
            refusal.headers.append(("allow", ", ".join(m.decode() for m in METHODS)))
            raise _Refused(refusal)
        target = head.target.decode("latin-1")
        if not target.startswith("/"):
            raise _Refused(error_response(400, "bad_request", "the target must be a path"))
        path, _, query_text = target.partition("?")
        if len(path) > MAX_PATH:
            raise _Refused(
                error_response(414, "uri_too_long", f"paths are limited to {MAX_PATH} characters")
            )
        try:
            query = parse_qs(query_text, max_num_fields=MAX_QUERY_FIELDS)
        except ValueError:
            raise _Refused(
                error_response(400, "bad_request", f"at most {MAX_QUERY_FIELDS} query fields")
            ) from None
        headers = {name.decode("ascii"): value.decode("latin-1") for name, value in head.headers}
        request = HttpRequest(head.method.decode("ascii"), path, query, headers, b"")
        if _wants_websocket(request):
            return request, head  # a handshake has no body
        declared = headers.get("content-length", "0")  # digits: h11 checked them
        if len(declared) > len(str(MAX_BODY)) or int(declared) > MAX_BODY:
            raise _Refused(self._too_large())
        body = bytearray()
        while True:
            part = await self._next_event()
            if isinstance(part, h11.Data):
                body += part.data
                if len(body) > MAX_BODY:
                    raise _Refused(self._too_large())
            elif isinstance(part, h11.EndOfMessage):
                request.body = bytes(body)
                return request, head
            else:
                return None  # ConnectionClosed mid-body

    @staticmethod
    def _too_large() -> HttpResponse:
        return error_response(413, "too_large", f"request bodies are limited to {MAX_BODY} bytes")

    async def _send(self, response: HttpResponse) -> None:
        """Send a response (headers only, for a HEAD request); its file is closed after."""
        head_only = self.head_request
        try:
            length = response.file.length if response.file is not None else len(response.body)
            headers = [
                ("content-type", response.content_type),
                ("content-length", str(length)),
                ("cache-control", "no-store"),
                *SECURITY_HEADERS,
                *response.headers,
            ]
            if response.content_type.startswith("text/html") and not any(
                name == "content-security-policy" for name, _ in response.headers
            ):
                headers.append(("content-security-policy", DEFAULT_POLICY))
            data = self.h11.send(h11.Response(status_code=response.status, headers=headers)) or b""
            if response.file is not None and not head_only:
                with trio.fail_after(self.timeout):
                    await self.stream.send_all(data)
                await self._send_file(response.file)
                data = b""
            elif not head_only:
                data += self.h11.send(h11.Data(data=response.body)) or b""
            data += self.h11.send(h11.EndOfMessage()) or b""
            with trio.fail_after(self.timeout):
                await self.stream.send_all(data)
        finally:
            if response.file is not None:
                response.file.file.close()

    async def _send_file(self, part: FileSlice) -> None:
        """Stream a slice of a file; each chunk must leave within the request timeout."""
        offset, left = part.start, part.length
        while left > 0:
            chunk = await trio.to_thread.run_sync(
                os.pread, part.file.fd, min(FILE_CHUNK, left), offset
            )
            if not chunk:
                raise _FileShrank("a file shrank while it was being sent")
            offset += len(chunk)
            left -= len(chunk)
            with trio.fail_after(self.timeout):
                await self.stream.send_all(self.h11.send(h11.Data(data=chunk)) or b"")

    async def send_last(self, response: HttpResponse) -> None:
        """Send an error response and mark the connection for closing, if the exchange
        still allows a response; the client may be gone already."""
        if self.h11.our_state not in (h11.IDLE, h11.SEND_RESPONSE):
            if response.file is not None:
                response.file.file.close()
            return
        response.headers.append(("connection", "close"))
        with contextlib.suppress(
            trio.BrokenResourceError, trio.ClosedResourceError, trio.TooSlowError
        ):
            await self._send(response)
            # Read what the client is still sending before closing: closing with unread
            # input resets the connection, and the client could lose the answer.
            with trio.move_on_after(LINGER_SECONDS):
                await self.stream.send_eof()
                while await self.stream.receive_some(_READ):
                    pass

    async def _upgrade(self, request: HttpRequest, head: h11.Request) -> None:
        if request.path != "/ws":
            raise _Refused(error_response(404, "not_found", "WebSockets live at /ws"))
        if request.method != "GET":
            refusal = error_response(405, "method_not_allowed", "a WebSocket upgrade is a GET")
            refusal.headers.append(("allow", "GET"))
            raise _Refused(refusal)
        if request.headers.get("upgrade", "").lower() != "websocket":
            refusal = error_response(
                426, "upgrade_required", "/ws is a WebSocket endpoint: upgrade to websocket"
            )
            refusal.headers.append(("upgrade", "websocket"))
            raise _Refused(refusal)
        ws = WSConnection(ConnectionType.SERVER)
        try:
            ws.initiate_upgrade_connection(list(head.headers), head.target)
            valid = any(isinstance(event, WsRequest) for event in ws.events())
        except WsRemoteProtocolError as exc:
            hint = exc.event_hint
            refusal = error_response(
                hint.status_code if isinstance(hint, RejectConnection) else 400,
                "bad_handshake",
                f"not a valid WebSocket handshake: {exc}",
            )
            if isinstance(hint, RejectConnection):
                refusal.headers += [(k.decode(), v.decode()) for k, v in hint.headers]
            raise _Refused(refusal) from None
        except UnicodeError:  # an undecodable Host or target
            valid = False
        if not valid:
            raise _Refused(error_response(400, "bad_handshake", "not a valid WebSocket handshake"))
        with trio.fail_after(self.timeout):
            await self.stream.send_all(ws.send(AcceptConnection()))
        leftover, _ = self.h11.trailing_data
        settings = self.server.settings
        # The client socket owns the descriptor from here: detached from trio's wrapper,
        # which is left holding none.
        raw = socket.socket(fileno=self.stream.socket.detach())
        client: ClientSocket | None = None
        try:
            client = ClientSocket(
                raw,
                ws,
                queue_bytes=min(PRE_HELLO_QUEUE_BYTES, settings.send_queue_bytes),
                receive_timeout=settings.client_timeout_seconds,
                leftover=bytes(leftover),
                send_buffer=settings.socket_send_buffer,
            )
            await self.server.serve_websocket(client, self.peer)
        finally:
            if client is not None:
                client.abort("connection ended")
            else:
                raw.close()
