"""A stand-in for the replay endpoints the browser viewer is written against (see the
contract at the top of clients/web/js/replay.js), built on the real `replay` reader.

It serves the web app's files, `GET /api/sessions`, `GET /api/sessions/{id}`,
`POST /api/sessions/{id}/annotations`, `GET /api/sessions/{id}/debrief`, and `/ws`
where `hello {room: "replay:<id>"}` is answered like a live room and the intents
`play {speed}`, `pause` and `seek {t}` drive snapshots of `Session.state_at`.
Runs trio in a thread; for tests only.
"""

from __future__ import annotations

import json
import re
import socket
import threading
from pathlib import Path
from typing import Any

import h11
import trio
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, BytesMessage, CloseConnection, Request

from netcode.codec import decode_client_frame, encode
from replay import debrief, layout
from replay.annotations import Annotations
from replay.reader import Session
from server.http import static_file

FRAME_HZ = 5
_SESSION = re.compile(r"^/api/sessions/([A-Za-z0-9._-]+)(/annotations|/debrief)?$")


def lanes_of(session: Session) -> tuple[list[dict[str, Any]], dict[str, list[list[float]]]]:
    """Timeline lanes (team actions, facilitator, decisions, case events) and vitals."""
    roles: dict[int, tuple[str, str]] = {}
    lanes: dict[str, list[dict[str, Any]]] = {"actions": [], "facilitator": [], "decision": [], "events": []}
    vitals: dict[str, list[list[float]]] = {}
    monitors: set[int] = set()
    for record in session.records():
        t, data = round(session.seconds(record.tick), 2), record.data
        if record.kind == "join":
            roles[data["member"]] = (str(data.get("role")), str(data.get("name", "")))
        elif record.kind == "intent" and data.get("do") not in ("ack",):
            role, name = roles.get(data["member"], ("?", "?"))
            action = str(data.get("do"))
            args = ", ".join(f"{k} {v}" for k, v in (data.get("args") or {}).items())
            lane = "decision" if action == "decide" else "facilitator" if role == "facilitator" else "actions"
            lanes[lane].append({"t": t, "text": f"{name}: {action} {args}".strip()})
        elif record.kind == "op":
            op = data["op"]
            if op[0] == "new" and op[2] == "monitor":
                monitors.add(op[1])
            elif op[0] == "set" and op[1] in monitors and isinstance(op[3], int | float):
                vitals.setdefault(op[2], []).append([t, float(op[3])])
            elif op[0] == "log" and op[1] in ("events", "case") and isinstance(op[2], dict):
                lanes["events"].append({"t": t, "text": str(op[2].get("text", op[2].get("kind", "")))})
    labels = {"actions": "Team actions", "facilitator": "Facilitator", "decision": "Decisions",
              "events": "Case events"}
    return [{"name": k, "label": labels[k], "items": v[-200:]} for k, v in lanes.items()], vitals


class ReplayStub:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = int(s.getsockname()[1])
        self.base = f"http://127.0.0.1:{self.port}"
        self._ready = threading.Event()
        self._cancel: trio.CancelScope | None = None
        self._token: trio.lowlevel.TrioToken | None = None
        self._thread = threading.Thread(target=lambda: trio.run(self._main), daemon=True)

    def __enter__(self) -> ReplayStub:
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._token is not None and self._cancel is not None:
            trio.from_thread.run_sync(self._cancel.cancel, trio_token=self._token)
        self._thread.join(5)

    async def _main(self) -> None:
        self._token = trio.lowlevel.current_trio_token()
        with trio.CancelScope() as scope:
            self._cancel = scope
            listeners = await trio.open_tcp_listeners(self.port, host="127.0.0.1")
            self._ready.set()
            await trio.serve_listeners(self._connection, listeners)

    def session_info(self, sid: str) -> dict[str, Any]:
        session = Session.open(self.data_dir, sid)
        lanes, vitals = lanes_of(session)
        m = session.manifest
        end = session.time_range()[1]
        notes = Annotations(layout.session_dir(self.data_dir, sid)).all()
        return {"id": sid, "title": m.case.get("title", sid), "case": m.case.get("name", ""),
                "started": m.started_at, "ended": m.ended_at, "duration_s": end,
                "tick_hz": session.tick_hz, "lanes": lanes, "vitals": vitals,
                "annotations": [_note(note) for note in notes]}

    def route(self, method: str, path: str, body: bytes) -> tuple[int, bytes, str]:
        if path == "/api/sessions":
            sessions = []
            for sid in layout.list_sessions(self.data_dir):
                m = Session.open(self.data_dir, sid).manifest
                sessions.append({"id": sid, "title": m.case.get("title", sid), "case": m.case.get("name", ""),
                                 "started": m.started_at, "ended": m.ended_at})
            return _json(200, {"sessions": sessions})
        match = _SESSION.match(path)
        if match and match.group(2) is None:
            return _json(200, self.session_info(match.group(1)))
        if match and match.group(2) == "/annotations" and method == "POST":
            data = json.loads(body or b"{}")
            notes = Annotations(layout.session_dir(self.data_dir, match.group(1)))
            if data.get("kind") == "comment":
                note = notes.comment(float(data["start_s"]), float(data["end_s"]), str(data["text"]), "Reviewer")
            else:
                note = notes.bookmark(float(data["start_s"]), str(data["text"]), "Reviewer")
            return _json(201, _note(note))
        if match and match.group(2) == "/debrief":
            sid = match.group(1)
            html = debrief.render(Session.open(self.data_dir, sid), Annotations(layout.session_dir(self.data_dir, sid)).all())
            return 200, html.encode(), "text/html; charset=utf-8"
        found = static_file(path) if method == "GET" else None
        if found is not None:
            return found.status, found.body, found.content_type
        return _json(404, {"error": "not_found", "message": f"nothing at {path}"})

    async def _connection(self, stream: trio.SocketStream) -> None:
        conn = h11.Connection(h11.SERVER)
        try:
            while True:
                event = conn.next_event()
                if event is h11.NEED_DATA:
                    conn.receive_data(await stream.receive_some(65536))
                    continue
                if not isinstance(event, h11.Request):
                    return
                headers = {k.decode().lower(): v.decode() for k, v in event.headers}
                if headers.get("upgrade", "").lower() == "websocket":
                    ws = WSConnection(ConnectionType.SERVER)
                    ws.initiate_upgrade_connection(list(event.headers), event.target)
                    list(ws.events())
                    await stream.send_all(ws.send(AcceptConnection()))
                    leftover, _ = conn.trailing_data
                    await ReplayStream(self, stream, ws, bytes(leftover)).run()
                    return
                body = b""
                while True:
                    part = conn.next_event()
                    if part is h11.NEED_DATA:
                        conn.receive_data(await stream.receive_some(65536))
                    elif isinstance(part, h11.Data):
                        body += part.data
                    else:
                        break
                status, payload, ctype = self.route(event.method.decode(), event.target.decode().split("?")[0], body)
                out = conn.send(h11.Response(status_code=status, headers=[
                    ("content-type", ctype), ("content-length", str(len(payload)))]))
                out += conn.send(h11.Data(data=payload)) + conn.send(h11.EndOfMessage())
                await stream.send_all(out)
                conn.start_next_cycle()
        except (h11.ProtocolError, trio.BrokenResourceError, trio.ClosedResourceError):
            return


class ReplayStream:
    """One viewer's WebSocket: snapshots of the session at the playback position."""

    def __init__(self, stub: ReplayStub, stream: trio.SocketStream, ws: WSConnection, leftover: bytes) -> None:
        self.stub, self.stream, self.ws = stub, stream, ws
        self.leftover = leftover
        self.session: Session | None = None
        self.position = 0.0
        self.speed = 1.0
        self.playing = False

    async def send(self, message: dict[str, Any]) -> None:
        await self.stream.send_all(self.ws.send(BytesMessage(data=encode(message))))

    async def snapshot(self) -> None:
        assert self.session is not None
        state = self.session.state_at(self.position)
        await self.send({"t": "s", "k": state.tick, "o": 0, "full": state.client_state(), "c": state.checksum()})

    async def run(self) -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._pace)
            if self.leftover:
                self.ws.receive_data(self.leftover)
            while True:
                for event in self.ws.events():
                    if isinstance(event, CloseConnection):
                        nursery.cancel_scope.cancel()
                        return
                    if isinstance(event, BytesMessage):
                        await self.handle(decode_client_frame(bytes(event.data)))
                data = await self.stream.receive_some(65536)
                if not data:
                    nursery.cancel_scope.cancel()
                    return
                self.ws.receive_data(data)

    async def handle(self, message: dict[str, Any]) -> None:
        if message["t"] == "hello":
            sid = str(message.get("room", "")).removeprefix("replay:")
            self.session = Session.open(self.stub.data_dir, sid)
            await self.send({"t": "welcome", "v": 1, "room": message.get("room"), "title": sid,
                             "role": "facilitator", "name": "Reviewer", "member": 0, "session": "",
                             "resumed": False, "tick_hz": self.session.tick_hz, "checksum_every": 0,
                             "grace_seconds": 0.0})
            await self.snapshot()
        elif message["t"] == "intent":
            action, args = message["do"], message.get("args") or {}
            if action == "seek":
                self.position = float(args.get("t", 0))
            elif action == "play":
                self.playing, self.speed = True, float(args.get("speed", 1))
            elif action == "pause":
                self.playing = False
            await self.send({"t": "reply", "id": message["id"], "ok": True})
            if action == "seek":
                await self.snapshot()

    async def _pace(self) -> None:
        while True:
            await trio.sleep(1 / FRAME_HZ)
            if self.playing and self.session is not None:
                end = self.session.time_range()[1]
                self.position = min(end, self.position + self.speed / FRAME_HZ)
                await self.snapshot()


def _note(note: Any) -> dict[str, Any]:
    return {"id": note.id, "kind": note.kind, "start_s": note.start_s, "end_s": note.end_s,
            "text": note.text, "author": note.author}


def _json(status: int, payload: Any) -> tuple[int, bytes, str]:
    return status, json.dumps(payload).encode(), "application/json"
