"""The room's events: frozen inputs it is fed, and the outputs its tick returns.

Like wsproto's events, these are the whole vocabulary between a room and whoever hosts
it. Every input is recorded as it is received, as a `Record` whose kind and data are
the event's own (`to_record` / `input_from_record`), so re-simulating a session means
feeding the recorded events back to a fresh room (`Room.feed`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from netcode.views import Role
from rooms.records import Record

# -- inputs ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Start:
    """Create the room's entities and the case; it carries what rebuilds the room."""

    kind: ClassVar[str] = "start"
    room: str
    title: str
    scenario: str
    seed: int
    tick_hz: int
    config: Mapping[str, float | int]
    """The rest of `RoomConfig`, by field name."""
    versions: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Join:
    """A new member; its id is the room's next, so replaying joins in order gives the same ids."""

    kind: ClassVar[str] = "join"
    member: int
    role: Role
    name: str


@dataclass(frozen=True, slots=True)
class Reconnect:
    kind: ClassVar[str] = "reconnect"
    member: int


@dataclass(frozen=True, slots=True)
class Disconnect:
    """The connection dropped: the avatar stays, shown disconnected, for the grace period."""

    kind: ClassVar[str] = "disconnect"
    member: int


@dataclass(frozen=True, slots=True)
class Leave:
    """The member left on purpose: no grace period."""

    kind: ClassVar[str] = "leave"
    member: int


@dataclass(frozen=True, slots=True)
class SpeakingChanged:
    kind: ClassVar[str] = "speaking"
    member: int
    speaking: bool


@dataclass(frozen=True, slots=True)
class EndRequested:
    """End at the next tick (idle timeout, shutdown, an admin); member 0 is the host."""

    kind: ClassVar[str] = "end"
    reason: str


@dataclass(frozen=True, slots=True)
class IntentSubmitted:
    """An intent whose action, sender's role and arguments were valid when it arrived.

    `args` is what the client sent; it fits the action's argument model, which the room
    parses again when it applies the intent (in the tick, and again on re-simulation).
    """

    kind: ClassVar[str] = "intent"
    member: int
    reply_id: int
    action: str
    args: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class IntentDenied:
    """An intent refused on arrival (unknown action, wrong role, bad arguments).

    Recorded without its arguments, so a client sending junk cannot fill the recording;
    the room applies it in the next tick: a reply and a line in the facilitator's log.
    """

    kind: ClassVar[str] = "refused"
    member: int
    reply_id: int
    action: str
    code: str
    message: str


@dataclass(frozen=True, slots=True)
class PoseReceived:
    """Tracked poses, already quantized: parts by name, held objects by entity id."""

    kind: ClassVar[str] = "pose"
    member: int
    parts: Mapping[str, bytes]
    objects: Mapping[int, bytes]


@dataclass(frozen=True, slots=True)
class Tick:
    kind: ClassVar[str] = "tick"


InputEvent = (
    Start
    | Join
    | Reconnect
    | Disconnect
    | Leave
    | SpeakingChanged
    | EndRequested
    | IntentSubmitted
    | IntentDenied
    | PoseReceived
    | Tick
)


def to_record(event: InputEvent, tick: int) -> Record:
    """The record of an input, in the layout docs/replay-format.md gives for its kind."""
    data: dict[str, Any]
    match event:
        case Start():
            data = {
                "room": event.room,
                "title": event.title,
                "scenario": event.scenario,
                "seed": event.seed,
                "tick_hz": event.tick_hz,
                "config": dict(event.config),
                "versions": dict(event.versions),
            }
        case Join():
            data = {"member": event.member, "role": event.role.value, "name": event.name}
        case Reconnect() | Disconnect() | Leave():
            data = {"member": event.member}
        case SpeakingChanged():
            data = {"member": event.member, "speaking": event.speaking}
        case EndRequested():
            data = {"member": 0, "reason": event.reason}
        case IntentSubmitted():
            data = {
                "member": event.member,
                "id": event.reply_id,
                "do": event.action,
                "args": dict(event.args),
            }
        case IntentDenied():
            data = {
                "member": event.member,
                "id": event.reply_id,
                "do": event.action,
                "code": event.code,
                "msg": event.message,
            }
        case PoseReceived():
            data = {
                "member": event.member,
                "parts": dict(event.parts),
                "objects": dict(event.objects),
            }
        case Tick():
            data = {}
    return Record(event.kind, tick, data)


INPUT_KINDS = frozenset(
    cls.kind
    for cls in (
        Start,
        Join,
        Reconnect,
        Disconnect,
        Leave,
        SpeakingChanged,
        EndRequested,
        IntentSubmitted,
        IntentDenied,
        PoseReceived,
        Tick,
    )
)
"""Record kinds that are inputs; every other kind is an output of the room."""


def input_from_record(record: Record) -> InputEvent:
    """The input event a record holds; `KeyError`/`ValueError`/`TypeError` if it is malformed."""
    d = record.data
    match record.kind:
        case "start":
            return Start(
                str(d.get("room", "replay")),
                str(d.get("title", "")),
                str(d["scenario"]),
                int(d["seed"]),
                int(d["tick_hz"]),
                {str(k): v for k, v in dict(d.get("config") or {}).items()},
                {str(k): str(v) for k, v in dict(d.get("versions") or {}).items()},
            )
        case "join":
            return Join(int(d["member"]), Role(d["role"]), str(d["name"]))
        case "reconnect":
            return Reconnect(int(d["member"]))
        case "disconnect":
            return Disconnect(int(d["member"]))
        case "leave":
            return Leave(int(d["member"]))
        case "speaking":
            return SpeakingChanged(int(d["member"]), bool(d["speaking"]))
        case "end":
            return EndRequested(str(d["reason"]))
        case "intent":
            return IntentSubmitted(int(d["member"]), int(d["id"]), str(d["do"]), dict(d["args"]))
        case "refused":
            return IntentDenied(
                int(d["member"]), int(d["id"]), str(d["do"]), str(d["code"]), str(d["msg"])
            )
        case "pose":
            return PoseReceived(
                int(d["member"]),
                {str(p): bytes(b) for p, b in dict(d["parts"]).items()},
                {int(o): bytes(b) for o, b in dict(d["objects"]).items()},
            )
        case "tick":
            return Tick()
    raise ValueError(f"{record.kind!r} is not an input record")


# -- outputs ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Replied:
    """The answer to one intent, for its sender."""

    member: int
    reply_id: int
    ok: bool
    code: str = ""
    message: str = ""


@dataclass(frozen=True, slots=True)
class MemberExpired:
    """A disconnected member's grace period ran out: its session cannot resume."""

    member: int


@dataclass(frozen=True, slots=True)
class MemberRemoved:
    """The facilitator removed a member: disconnect it, and it cannot resume."""

    member: int
    by: str


@dataclass(frozen=True, slots=True)
class RoomEnded:
    reason: str


OutputEvent = Replied | MemberExpired | MemberRemoved | RoomEnded
