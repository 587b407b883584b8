"""Random and mutated inputs for the black-box fuzz test, all drawn from one seeded RNG.

Each generator starts from something valid (an HTTP request the API serves, a WebSocket
handshake, a client message of each type) and mutates it: structurally (values of the
wrong type, extreme numbers, huge or deep containers, missing and unknown keys) or
byte by byte (flips, insertions, deletions, truncations). The same seed draws the same
inputs, so a failure can be replayed.
"""

from __future__ import annotations

import base64
import json
import math
import os
import random
import struct
from typing import Any

import msgpack

from rooms.case.actions import ACTIONS

SAFE_ACTIONS = sorted(
    (set(ACTIONS) | {"chat", "ask", "grab", "release", "request_present", "present", "pause"})
    | {"resume", "note", "play", "seek", "speed", "teleport", ""}
)
"""Every action there is, but those that would end the room or remove the honest
clients (`end`, `remove`): the fuzz must leave the room it is checked against."""

ODD_NUMBERS: list[Any] = [
    0, -1, 1, 2**31, -(2**31) - 1, 2**53, 2**63 - 1, -(2**63), 2**64 - 1,
    0.0, -0.0, 1e-320, 1.5, 1e308, -1e308, math.nan, math.inf, -math.inf,
]  # fmt: skip
ODD_TEXT = ["", "x", "é" * 3, "\x00", "a" * 300, "b" * 9000, "../../etc/passwd", "%s%n{}"]
ODD_BYTES = [b"", b"\x00" * 7, os.urandom(32), b"\xff" * 9000]


def odd_value(rng: random.Random, depth: int = 0) -> Any:
    """Something a field should not hold (or might, by chance)."""
    kind = rng.randrange(9 if depth < 6 else 6)
    if kind == 0:
        return rng.choice([None, True, False])
    if kind == 1:
        return rng.choice(ODD_NUMBERS)
    if kind == 2:
        return rng.choice(ODD_TEXT)
    if kind == 3:
        return rng.choice(ODD_BYTES)
    if kind == 4:
        return msgpack.ExtType(rng.choice([1, 5, 0, 127]), rng.choice([b"", b"abc"]))
    if kind == 5:
        return rng.uniform(-2000, 2000)
    if kind == 6:
        if rng.random() < 0.2:  # long, but flat: nesting stays small
            return [rng.choice(ODD_NUMBERS)] * rng.choice([1025, 5000])
        return [odd_value(rng, depth + 1) for _ in range(rng.choice([0, 1, 3]))]
    if kind == 7:
        if rng.random() < 0.2:
            return {f"k{i}": i for i in range(rng.choice([65, 257]))}
        return {
            rng.choice(["t", "id", "x", "", "head", "args", 1, -5]): odd_value(rng, depth + 1)
            for _ in range(rng.choice([0, 1, 3]))
        }
    nested: Any = 1
    for _ in range(rng.choice([9, 20, 60])):
        nested = [nested] if rng.random() < 0.5 else {"n": nested}
    return nested


def mutate_value(rng: random.Random, value: Any, depth: int = 0) -> Any:
    """`value` with one or more parts changed, removed or added."""
    if rng.random() < 0.25 or depth > 4:
        return odd_value(rng, depth)
    if isinstance(value, dict) and value:
        changed = dict(value)
        key = rng.choice(list(changed))
        action = rng.randrange(4)
        if action == 0:
            del changed[key]
        elif action == 1:
            changed[rng.choice(["extra", "as", "member", 0, "t", "id"])] = odd_value(rng, depth + 1)
        else:
            changed[key] = mutate_value(rng, changed[key], depth + 1)
        return changed
    if isinstance(value, list) and value:
        changed_list = list(value)
        index = rng.randrange(len(changed_list))
        action = rng.randrange(4)
        if action == 0:
            del changed_list[index]
        elif action == 1:
            changed_list.append(odd_value(rng, depth + 1))
        else:
            changed_list[index] = mutate_value(rng, changed_list[index], depth + 1)
        return changed_list
    return odd_value(rng, depth)


def mutate_bytes(rng: random.Random, data: bytes) -> bytes:
    """`data` with a few random byte-level edits."""
    out = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        action = rng.randrange(6)
        at = rng.randrange(len(out) + 1)
        if action == 0 and out:
            out[min(at, len(out) - 1)] ^= 1 << rng.randrange(8)
        elif action == 1:
            out[at:at] = os.urandom(rng.choice([1, 2, 8, 100]))
        elif action == 2:
            del out[at : at + rng.choice([1, 4, 30])]
        elif action == 3:
            out = out[:at]
        elif action == 4 and out:
            chunk = out[at : at + rng.randint(1, 64)]
            out[at:at] = chunk * rng.choice([2, 10, 200])
        else:
            out[at:at] = rng.choice([b"\r\n", b"\x00", b"\xff\xfe", b":", b" ", b"\r\n\r\n"])
    return bytes(out)


# -- client messages -------------------------------------------------------------------
def _pose(rng: random.Random) -> list[float]:
    angle = rng.uniform(0, math.tau)
    return [rng.uniform(-2, 2), 1.6, rng.uniform(-2, 2), 0, math.sin(angle), 0, math.cos(angle)]


def valid_message(rng: random.Random, token: str) -> dict[str, Any]:
    """A well-formed client message of a random type (the room may still refuse it)."""
    kind = rng.choice(["hello", "ack", "pose", "intent", "intent", "prefs", "resync", "ping"])
    kind = rng.choice([kind, "rtc"]) if rng.random() < 0.1 else kind
    if kind == "hello":
        message: dict[str, Any] = {"t": "hello", "v": 1, "token": token}
        if rng.random() < 0.3:
            message["resume"] = {"session": "abc", "tick": rng.randrange(100), "op": 0}
        return message
    if kind == "ack":
        return {"t": "ack", "tick": rng.randrange(10_000)}
    if kind == "pose":
        pose: dict[str, Any] = {"t": "pose", "head": _pose(rng)}
        if rng.random() < 0.5:
            pose["left"], pose["right"] = _pose(rng), _pose(rng)
        if rng.random() < 0.3:
            pose["objects"] = {rng.randrange(20): _pose(rng)}
        return pose
    if kind == "intent":
        args = {
            rng.choice(["text", "obj", "member", "on", "seconds", "x", "region", "test"]): (
                rng.choice(["hello", 6, 1, True, 3.5, "chest", "lactate"])
            )
            for _ in range(rng.randrange(3))
        }
        return {
            "t": "intent",
            "id": rng.randrange(2**53),
            "do": rng.choice(SAFE_ACTIONS),
            "args": args,
        }
    if kind == "prefs":
        return {"t": "prefs", "rate": rng.randint(1, 120)}
    if kind == "resync":
        return {"t": "resync", "reason": "fuzz"}
    if kind == "ping":
        return {"t": "ping", "id": rng.randrange(2**53)}
    return {"t": "rtc", "op": rng.choice(["publish", "subscribe", "answer", "candidate", "x"])}


def message_bytes(rng: random.Random, token: str) -> bytes:
    """A client message: valid, structurally mutated, or mutated byte by byte."""
    message = valid_message(rng, token)
    choice = rng.random()
    if choice < 0.2:
        return _pack(message)
    if choice < 0.8:
        return _pack(mutate_value(rng, message))
    return mutate_bytes(rng, _pack(message))


def _pack(value: Any) -> bytes:
    try:
        return msgpack.packb(value, use_bin_type=True)  # type: ignore[no-any-return]
    except (TypeError, ValueError, OverflowError):
        return msgpack.packb({"t": "ping", "id": 1})  # type: ignore[no-any-return]


# -- WebSocket frames ---------------------------------------------------------------------
def frame(opcode: int, payload: bytes, *, fin: bool = True, mask: bool = True,
          length: int | None = None, rsv: int = 0) -> bytes:  # fmt: skip
    size = len(payload) if length is None else length
    first = (0x80 if fin else 0) | (rsv << 4) | opcode
    mask_bit = 0x80 if mask else 0
    if size < 126:
        header = bytes((first, mask_bit | size))
    elif size < 65536:
        header = struct.pack("!BBH", first, mask_bit | 126, size)
    else:
        header = struct.pack("!BBQ", first, mask_bit | 127, min(size, 2**64 - 1))
    if not mask:
        return header + payload
    key = os.urandom(4)
    return header + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def odd_frames(rng: random.Random, token: str) -> bytes:
    """One or more WebSocket frames that bend the rules (or keep them)."""
    payload = message_bytes(rng, token)
    kind = rng.randrange(10)
    if kind == 0:
        return frame(rng.randrange(16), payload[:125], fin=rng.random() < 0.8)
    if kind == 1:
        return frame(0x2, payload, mask=False)
    if kind == 2:
        return frame(0x2, payload[:10], length=rng.choice([2**16, 2**31, 2**63 - 1]))
    if kind == 3:
        half = len(payload) // 2
        return frame(0x2, payload[:half], fin=False) + frame(0x0, payload[half:])
    if kind == 4:
        return frame(0x0, payload)
    if kind == 5:
        return frame(0x9, os.urandom(rng.choice([0, 5, 125]))) * rng.choice([1, 50])
    if kind == 6:
        code = rng.choice([1000, 1001, 999, 1005, 1006, 3000, 5000, 65535])
        return frame(0x8, struct.pack("!H", code) + rng.choice([b"", b"bye", b"\xff\xfe"]))
    if kind == 7:
        return frame(0x2, payload, rsv=rng.randint(1, 7))
    if kind == 8:
        return mutate_bytes(rng, frame(0x2, payload))
    return frame(0x1, payload)


# -- HTTP --------------------------------------------------------------------------------
def http_request(rng: random.Random, admin_key: str, session: str) -> bytes:
    """An HTTP request to a real route, then mutated (never one that ends the demo room)."""
    admin = rng.random() < 0.5
    method, path, body = rng.choice(
        [
            ("GET", "/healthz", None),
            ("GET", "/metrics", None),
            ("GET", "/", None),
            ("GET", "/js/app.js", None),
            ("GET", "/api/rooms", None),
            ("GET", "/api/rooms/demo", None),
            ("GET", "/api/cases", None),
            ("POST", "/api/rooms/demo/tokens", {"role": "spectator", "name": "f"}),
            ("POST", "/api/rooms", {"title": "t", "case": "demo", "seed": 1}),
            ("GET", "/api/sessions", None),
            ("GET", f"/api/sessions/{session}", None),
            ("POST", f"/api/sessions/{session}/tokens", {"view": "spectator"}),
            ("GET", f"/api/sessions/{session}/annotations", None),
            ("POST", f"/api/sessions/{session}/annotations", {"start_s": 1, "text": "x"}),
            ("GET", f"/api/sessions/{session}/media/a.webm", None),
            ("GET", "/ws", None),
        ]
    )
    if path == "/api/rooms" and method == "POST":
        admin = False  # rooms made by the fuzz would tick for ten minutes: refused unauthorised
    headers = {"Host": "127.0.0.1", "Connection": rng.choice(["close", "keep-alive", "close"])}
    if admin:
        headers["Authorization"] = f"Bearer {admin_key}"
    if rng.random() < 0.3:
        headers["Range"] = rng.choice(["bytes=0-", "bytes=-5", "bytes=5-1", "bytes=" + "9" * 40])
    payload = b""
    if body is not None:
        mutated = mutate_value(rng, body) if rng.random() < 0.7 else body
        payload = json.dumps(mutated, default=repr).encode(errors="surrogatepass")
    choice = rng.random()
    if choice < 0.2:
        path = rng.choice(["/", "/api/"]) + rng.choice(
            ["..", "%00", "é", "a" * 400, "//x", "?a=1&"]
        )
    elif choice < 0.3:
        method = rng.choice(["PUT", "PATCH", "OPTIONS", "HEAD", "TRACE", "CONNECT", "G\x00T"])
    elif choice < 0.4:
        headers[rng.choice(["X-" + "a" * 50, "Authorization", "Content-Type", "Upgrade"])] = (
            rng.choice(["\xe9\xff", "Bearer " + "x" * 5000, "websocket", "", "a\tb"])
        )
    lines = [f"{method} {path} HTTP/1.1", *(f"{k}: {v}" for k, v in headers.items())]
    lines.append(f"Content-Length: {len(payload)}")
    raw = "\r\n".join(lines).encode("latin-1", errors="replace") + b"\r\n\r\n" + payload
    return mutate_bytes(rng, raw) if rng.random() < 0.3 else raw


def handshake(rng: random.Random) -> bytes:
    """A WebSocket upgrade request, valid or bent."""
    headers = {
        "Host": "127.0.0.1",
        "Upgrade": "websocket",
        "Connection": "Upgrade",
        "Sec-WebSocket-Key": base64.b64encode(os.urandom(16)).decode(),
        "Sec-WebSocket-Version": "13",
    }
    method, target = "GET", "/ws"
    for _ in range(rng.randint(0, 3)):
        action = rng.randrange(6)
        if action == 0 and headers:
            del headers[rng.choice(list(headers))]
        elif action == 1:
            headers[rng.choice([*headers, "Sec-WebSocket-Extensions"])] = rng.choice(
                ["", "8", "permessage-deflate", "\xe9", "x" * 3000, "a, b, c"]
            )
        elif action == 2:
            method = rng.choice(["POST", "HEAD", "PUT"])
        elif action == 3:
            target = rng.choice(["/ws?x=1", "/ws/", "/other", "/ws#f", "/ws?" + "a=1&" * 50])
        elif action == 4:
            headers["Sec-WebSocket-Protocol"] = rng.choice(["chat", "", "a,b"])
        else:
            headers["Host"] = rng.choice(["", "\xff\xfe", "a" * 300, "[::1", "xn--"])
    lines = [f"{method} {target} HTTP/1.1", *(f"{k}: {v}" for k, v in headers.items())]
    raw = "\r\n".join(lines).encode("latin-1", errors="replace") + b"\r\n\r\n"
    return mutate_bytes(rng, raw) if rng.random() < 0.2 else raw
