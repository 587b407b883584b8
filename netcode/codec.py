"""The wire codec: one msgpack map per WebSocket message, decoded under strict limits.

Client messages are validated into small pydantic models, so every malformed input
becomes a `ProtocolError` with a code and a sentence instead of an exception deep in
the room. `HIDDEN` travels as msgpack extension type 1 with no data.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Mapping
from typing import Annotated, Any, Final, Literal

import msgpack
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from netcode.state import HIDDEN

PROTOCOL_VERSION: Final = 1
MAX_CLIENT_MESSAGE: Final = 64 * 1024
MAX_SERVER_MESSAGE: Final = 16 * 1024 * 1024
MAX_DEPTH: Final = 8
HIDDEN_EXT: Final = 1


class ProtocolError(Exception):
    """Bad input from a peer: `code` is stable and documented, `message` says what is wrong."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


def _default(obj: object) -> Any:
    if obj is HIDDEN:
        return msgpack.ExtType(HIDDEN_EXT, b"")
    raise TypeError(f"cannot encode {type(obj).__name__}")


def _ext_hook(code: int, data: bytes) -> object:
    if code == HIDDEN_EXT:
        return HIDDEN
    return msgpack.ExtType(code, data)


def encode(obj: Any) -> bytes:
    return msgpack.packb(obj, default=_default, use_bin_type=True)  # type: ignore[no-any-return]


def encode_single(obj: Any) -> bytes:
    """Like `encode`, with floats as float32: how clients send poses."""
    return msgpack.packb(  # type: ignore[no-any-return]
        obj, default=_default, use_bin_type=True, use_single_float=True
    )


def decode_server_message(data: bytes) -> Any:
    """Decode what a server sent (clients use this); the size limit is generous."""
    if len(data) > MAX_SERVER_MESSAGE:
        raise ProtocolError("too_large", f"server message of {len(data)} bytes")
    try:
        return msgpack.unpackb(
            data,
            ext_hook=_ext_hook,
            strict_map_key=False,
        )
    except Exception as exc:
        raise ProtocolError("bad_frame", f"server sent undecodable msgpack: {exc}") from exc


class _ClientExtension(Exception):
    """A client sent a msgpack extension type: clients have none to send."""


def _refuse_extension(code: int, data: bytes) -> object:
    raise _ClientExtension(code)


def _plain_data_problem(obj: Any, limit: int) -> str | None:
    """Why `obj` is not plain client data (too deep, a non-finite number), or None.

    Iterative, so a hostile nesting cannot exhaust the stack. A list of numbers (a pose
    is three) is passed whole when its sum is finite, which it is only if every number
    is; any other list is looked at item by item.
    """
    stack: list[tuple[Any, int]] = [(obj, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, float) and not math.isfinite(item):
            return "numbers must be finite (no NaN or infinity)"
        if isinstance(item, dict):
            if depth > limit:
                return f"message nests deeper than {limit} levels"
            stack.extend((k, depth + 1) for k in item)
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            if depth > limit:
                return f"message nests deeper than {limit} levels"
            if not _finite_numbers(item):
                stack.extend((v, depth + 1) for v in item)
    return None


def _finite_numbers(items: list[Any]) -> bool:
    """True when `items` are numbers with a finite sum (so each is finite); False also
    for finite numbers whose sum overflows, which the caller then checks one by one."""
    try:
        return math.isfinite(sum(items))
    except (TypeError, OverflowError):
        return False


def decode_client_frame(data: bytes) -> dict[str, Any]:
    """Bytes of one client message to a dict with a string `t`, or `ProtocolError`."""
    if len(data) > MAX_CLIENT_MESSAGE:
        raise ProtocolError(
            "too_large", f"message of {len(data)} bytes exceeds {MAX_CLIENT_MESSAGE} bytes"
        )
    try:
        obj = msgpack.unpackb(
            data,
            raw=False,
            strict_map_key=False,
            max_str_len=8 * 1024,
            max_bin_len=8 * 1024,
            max_array_len=1024,
            max_map_len=256,
            max_ext_len=0,
            ext_hook=_refuse_extension,
        )
    except _ClientExtension:
        raise ProtocolError("bad_message", "clients may not send msgpack extension types") from None
    except Exception as exc:
        raise ProtocolError("bad_frame", f"not a valid msgpack message ({exc})") from None
    if not isinstance(obj, dict):
        raise ProtocolError("bad_message", "a message must be a msgpack map")
    kind = obj.get("t")
    if not isinstance(kind, str):
        raise ProtocolError("bad_message", "a message needs a string field 't' naming its type")
    return obj


# -- client messages ----------------------------------------------------------
_STRICT = ConfigDict(extra="forbid", strict=True, frozen=True, allow_inf_nan=False)
"""Strict: a string where a number belongs is refused, not converted (ints pass as floats),
and so is a non-finite number."""
PoseValues = Annotated[list[float], Field(min_length=7, max_length=7)]


class Resume(BaseModel):
    model_config = _STRICT
    session: str = Field(max_length=64)
    tick: int = Field(ge=0)
    op: int = Field(ge=0)


class Hello(BaseModel):
    model_config = _STRICT
    t: Literal["hello"]
    v: int
    token: str = Field(max_length=4096)
    room: str | None = Field(default=None, max_length=64)
    resume: Resume | None = None


class Ack(BaseModel):
    model_config = _STRICT
    t: Literal["ack"]
    tick: int = Field(ge=0)


class PoseUpdate(BaseModel):
    model_config = _STRICT
    t: Literal["pose"]
    head: PoseValues | None = None
    left: PoseValues | None = None
    right: PoseValues | None = None
    objects: dict[int, PoseValues] = Field(default_factory=dict, max_length=8)


class Intent(BaseModel):
    model_config = _STRICT
    t: Literal["intent"]
    id: int = Field(ge=0, lt=2**53)
    do: str = Field(min_length=1, max_length=64)
    args: dict[str, Any] = Field(default_factory=dict, max_length=64)


class Prefs(BaseModel):
    """How much state the client wants: `rate` state frames a second (low bandwidth)."""

    model_config = _STRICT
    t: Literal["prefs"]
    rate: int = Field(ge=1, le=120)


class Resync(BaseModel):
    model_config = _STRICT
    t: Literal["resync"]
    reason: str = Field(default="", max_length=200)


class Ping(BaseModel):
    model_config = _STRICT
    t: Literal["ping"]
    id: int = Field(ge=0, lt=2**53)


class Rtc(BaseModel):
    """Media signalling, passed through to the media worker (see docs/protocol.md)."""

    model_config = ConfigDict(extra="allow", frozen=True)
    t: Literal["rtc"]
    op: str = Field(min_length=1, max_length=32)


ClientMessage = Hello | Ack | PoseUpdate | Intent | Prefs | Resync | Ping | Rtc
_MODELS: Final[dict[str, type[ClientMessage]]] = {
    "hello": Hello,
    "ack": Ack,
    "pose": PoseUpdate,
    "intent": Intent,
    "prefs": Prefs,
    "resync": Resync,
    "ping": Ping,
    "rtc": Rtc,
}
"""Each message type's model, looked up by `t` so that a message is validated by its own
model alone (the hot ones, poses and acks, at the price of one dict lookup)."""
CLIENT_MESSAGE_TYPES: Final = frozenset(_MODELS)
_FREE_FORM: Final = frozenset({"intent", "rtc"})
"""Types whose models take data of any shape (an intent's arguments, media signalling):
only for these does the codec walk the message for depth and finite numbers; the other
models' fields bound the depth and refuse non-finite numbers themselves."""


def parse_client_message(data: bytes) -> ClientMessage:
    """Decode and validate one client message."""
    obj = decode_client_frame(data)
    kind = obj["t"]
    model = _MODELS.get(kind)
    if model is None:
        raise ProtocolError("unknown_type", f"unknown message type {kind!r}")
    if kind in _FREE_FORM and (problem := _plain_data_problem(obj, MAX_DEPTH)) is not None:
        raise ProtocolError("bad_message", problem)
    try:
        return model.model_validate(obj)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "message"
        raise ProtocolError("bad_message", f"{kind} message: {where}: {first['msg']}") from None


# -- canonical form and checksums ----------------------------------------------
def canonical(obj: Any) -> Any:
    """The canonical form checksums are computed over (docs/protocol.md, "Checksums").

    Maps are ordered by key, integral floats become integers, so a client in any
    language that decodes and re-encodes the same state gets the same bytes.
    """
    if isinstance(obj, Mapping):
        return {k: canonical(obj[k]) for k in sorted(obj, key=_key_order)}
    if isinstance(obj, list | tuple):
        return [canonical(v) for v in obj]
    if isinstance(obj, float) and obj.is_integer() and abs(obj) < 2**63:
        return int(obj)
    return obj


def _key_order(key: Any) -> tuple[int, Any]:
    if isinstance(key, str):
        return (1, key.encode())
    return (0, key)


def checksum(view_state: Mapping[str, Any]) -> int:
    """CRC-32 of the canonical msgpack encoding of a view's state {e, l, p}."""
    return zlib.crc32(encode(canonical(view_state)))
