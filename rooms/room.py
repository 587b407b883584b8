"""The room: the single authority for one session's state, with no I/O.

A typed-event state machine in wsproto's shape. The host feeds it input events
(joins, intents, poses, disconnects...) and calls `tick()`, which returns the output
events (replies, expiries, removals, the end) for the host to act on. Inputs are queued
and applied at the start of the next tick, so the world only changes inside `tick()`
and every frame built between two ticks describes one consistent state. Poses apply on
arrival: they touch only the pose table, which the publisher copies at each tick.

Every input is recorded, as its event, when it is received, and every output when it
is made, so a fresh room fed the recorded events in order (`feed`) makes the same
outputs: that is how a session is verified by re-simulation.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Annotated, Any, Final

from pydantic import Field

from netcode.leases import LeaseRefused, Leases
from netcode.poses import PoseTable
from netcode.publisher import Publisher
from netcode.quantize import PoseError, RawPose, as_raw_pose, pack_raw, unpack_raw
from netcode.state import CaseState
from netcode.views import ALL_VIEWS, VIEW_OF_ROLE, Role, View
from rooms.actions import (
    ANYONE_IN_THE_TEAM,
    ActionArgs,
    ActionSpec,
    IntentRefused,
    NoArgs,
    check_role,
    parse_args,
)
from rooms.allowance import TickAllowance
from rooms.events import (
    Disconnect,
    EndRequested,
    InputEvent,
    IntentDenied,
    IntentSubmitted,
    Join,
    Leave,
    MemberExpired,
    MemberRemoved,
    OutputEvent,
    PoseReceived,
    Reconnect,
    Replied,
    RoomEnded,
    SpeakingChanged,
    Start,
    Tick,
    input_from_record,
    to_record,
)
from rooms.records import NullRecorder, Record, Recorder
from rooms.scenario import Actor, Clock, Scenario

PARTS: Final = ("head", "left", "right")
MAX_QUEUED_INTENTS: Final = 4096
"""Intents waiting for the next tick, room-wide; lifecycle inputs are never refused."""
MAX_QUEUED_PER_MEMBER: Final = 64
MAX_CHAT_CHARS: Final = 500
"""Chat goes to every viewer: a line, not an essay (longer text belongs in a note)."""
CHAT_PER_MEMBER: Final = TickAllowance(burst=5, per_second=1, tick_hz=1)
CHAT_PER_ROOM: Final = TickAllowance(burst=10, per_second=4, tick_hz=1)
"""Room-wide, because every chat line is sent to every viewer."""
QUESTIONS_PER_MEMBER: Final = TickAllowance(burst=2, per_second=0.2, tick_hz=1)
REFUSALS_RECORDED_PER_MEMBER: Final = TickAllowance(burst=20, per_second=5, tick_hz=1)
"""Refused intents recorded (and logged to the facilitator); past it they are refused unrecorded."""
MAX_END_REASON: Final = 200


class RoomStatus(StrEnum):
    CREATED = "created"
    RUNNING = "running"
    PAUSED = "paused"
    ENDED = "ended"


class RoomUsageError(Exception):
    """The host called the room out of order (a bug in the caller, not bad input)."""


@dataclass(frozen=True, slots=True)
class RoomConfig:
    tick_hz: int = 30
    grace_seconds: float = 30.0
    lease_seconds: float = 5.0
    checksum_every: int = 30
    keyframe_seconds: float = 10.0

    @classmethod
    def of(cls, start: Start) -> RoomConfig:
        """The configuration a recorded room ran with."""
        c, default = start.config, cls()
        return cls(
            tick_hz=start.tick_hz,
            grace_seconds=float(c.get("grace_seconds", default.grace_seconds)),
            lease_seconds=float(c.get("lease_seconds", default.lease_seconds)),
            checksum_every=int(c.get("checksum_every", default.checksum_every)),
            keyframe_seconds=float(c.get("keyframe_seconds", default.keyframe_seconds)),
        )


def _allowance(template: TickAllowance, tick_hz: int) -> TickAllowance:
    return TickAllowance(template.burst, template.per_second, tick_hz)


@dataclass(slots=True)
class Member:
    id: int
    role: Role
    name: str
    chat: TickAllowance
    questions: TickAllowance
    refusals: TickAllowance
    avatar: int | None = None
    parts: dict[str, int] = field(default_factory=dict)
    pending_parts: dict[str, RawPose] = field(default_factory=dict)
    """Poses sent before the avatar exists (it appears at the next tick): applied then."""
    queued: int = 0
    """Intents of this member waiting for the next tick."""

    @property
    def view(self) -> View:
        return VIEW_OF_ROLE[self.role]

    def actor(self) -> Actor:
        return Actor(self.id, self.role, self.name, self.avatar)


# -- the room's own actions: arguments beside their handlers, declared once -----------------
NonBlank = Annotated[str, Field(min_length=1, pattern=r"\S")]


class ChatArgs(ActionArgs):
    text: Annotated[NonBlank, Field(max_length=MAX_CHAT_CHARS)]


class ObjectArgs(ActionArgs):
    obj: int = Field(ge=0, lt=2**31)


class PresentArgs(ActionArgs):
    member: int = Field(ge=0, lt=2**31)
    on: bool = True


class MemberArgs(ActionArgs):
    member: int = Field(ge=0, lt=2**31)


class RequestPresentArgs(ActionArgs):
    on: bool = True


class EndArgs(ActionArgs):
    reason: str = Field(default="ended by the facilitator", max_length=MAX_END_REASON)


RoomHandler = Callable[["Room", Member, Any], None]
"""(room, sender, its validated arguments) -> None, or `IntentRefused`."""
ROOM_ACTIONS: Final[dict[str, tuple[ActionSpec, RoomHandler]]] = {}


def room_action(name: str, spec: ActionSpec) -> Callable[[RoomHandler], RoomHandler]:
    def register(handler: RoomHandler) -> RoomHandler:
        ROOM_ACTIONS[name] = (spec, handler)
        return handler

    return register


FACILITATOR: Final = frozenset({Role.FACILITATOR})


class Room:
    def __init__(
        self,
        room_id: str,
        scenario: Scenario,
        *,
        seed: int,
        config: RoomConfig | None = None,
        recorder: Recorder | None = None,
        framer: Callable[[bytes], bytes] | None = None,
        title: str = "",
    ) -> None:
        self.id = room_id
        self.title = title or room_id
        self.scenario = scenario
        self.seed = seed
        self.config = config or RoomConfig()
        self.recorder: Recorder = recorder or NullRecorder()
        self.world = CaseState()
        self.poses = PoseTable()
        self.leases = Leases(round(self.config.lease_seconds * self.config.tick_hz))
        self.publisher = Publisher(
            self.world, checksum_every=self.config.checksum_every, framer=framer
        )
        self.members: dict[int, Member] = {}
        self.status = RoomStatus.CREATED
        self.tick_no = 0
        self.last_active_tick = 0
        self.end_reason = ""
        self._next_member = 1
        self._inbox: deque[InputEvent] = deque()
        self._queued_intents = 0
        self._outputs: list[OutputEvent] = []
        self._room_entity = 0
        self._keyframe_every = max(1, round(self.config.keyframe_seconds * self.config.tick_hz))
        self._keyframe_due = False
        self._published_poses: dict[int, tuple[int, int, int, int]] = {}
        self._disconnected: dict[int, int] = {}
        """Members whose connection dropped, and the tick it did: only they can expire."""
        self._room_chat = _allowance(CHAT_PER_ROOM, self.config.tick_hz)
        self._case_actions = dict(scenario.actions())
        clash = self._case_actions.keys() & ROOM_ACTIONS.keys()
        if clash:
            raise ValueError(f"the scenario redefines room actions: {sorted(clash)}")

    # -- lifecycle --------------------------------------------------------------
    @property
    def clock(self) -> Clock:
        return Clock(self.tick_no, self.config.tick_hz)

    def action_specs(self) -> dict[str, ActionSpec]:
        """Every action this room accepts: its own and its scenario's."""
        return {name: spec for name, (spec, _) in ROOM_ACTIONS.items()} | self._case_actions

    def start(self, versions: Mapping[str, str] | None = None) -> None:
        """Create the room's own entity and the case; publish tick 0."""
        if self.status is not RoomStatus.CREATED:
            raise RoomUsageError(f"start() on a room that is {self.status.value}")
        c = self.config
        self._received(
            Start(
                self.id,
                self.title,
                self.scenario.name,
                self.seed,
                c.tick_hz,
                {
                    "grace_seconds": c.grace_seconds,
                    "lease_seconds": c.lease_seconds,
                    "checksum_every": c.checksum_every,
                    "keyframe_seconds": c.keyframe_seconds,
                },
                dict(versions or {}),
            )
        )
        self._room_entity = self.world.create(
            "room",
            {
                "title": self.title,
                "status": RoomStatus.RUNNING.value,
                "scenario": self.scenario.name,
            },
        )
        self.scenario.start(self.world, self.clock)
        for obj in self.world.find("object"):
            home = self.world.get(obj, "home")
            if home is not None:
                self.poses.update(obj, as_raw_pose(home))
        self.status = RoomStatus.RUNNING
        self._publish()
        self._keyframe()

    def _require_started(self, call: str) -> None:
        if self.status is RoomStatus.CREATED:
            raise RoomUsageError(f"{call}() before start()")

    def fail(self, reason: str) -> None:
        """End at once after an unexpected error, recording why.

        The world may be half-changed, so nothing is published; the host tells the
        clients and seals the recording, which ends with this `ended` record.
        """
        if self.status is RoomStatus.ENDED:
            return
        self.status = RoomStatus.ENDED
        self.end_reason = reason
        self._record("ended", {"reason": reason, "failed": True})

    # -- inputs ---------------------------------------------------------------
    def join(self, role: Role, name: str) -> Member:
        """Admit a member now; its avatar appears in the next tick."""
        self._require_started("join")
        member = Member(
            self._next_member,
            Role(role),
            name[:64],
            chat=_allowance(CHAT_PER_MEMBER, self.config.tick_hz),
            questions=_allowance(QUESTIONS_PER_MEMBER, self.config.tick_hz),
            refusals=_allowance(REFUSALS_RECORDED_PER_MEMBER, self.config.tick_hz),
        )
        self._next_member += 1
        self.members[member.id] = member
        self._received(Join(member.id, member.role, member.name))
        return member

    def reconnect(self, member_id: int) -> bool:
        """A member is back within its grace period; False if its session is gone."""
        self._require_started("reconnect")
        if member_id not in self.members:
            return False
        self._disconnected.pop(member_id, None)
        self._received(Reconnect(member_id))
        return True

    def disconnect(self, member_id: int) -> None:
        """The connection dropped: keep the avatar (shown disconnected) for the grace period."""
        self._require_started("disconnect")
        if member_id not in self.members or member_id in self._disconnected:
            return
        self._disconnected[member_id] = self.tick_no
        self._received(Disconnect(member_id))

    def leave(self, member_id: int) -> None:
        """The member left on purpose (or was removed): no grace period."""
        self._require_started("leave")
        if member_id in self.members:
            self._received(Leave(member_id))

    def request_end(self, reason: str) -> None:
        """End the room at the next tick (idle timeout, shutdown, an admin's request)."""
        self._require_started("request_end")
        self._received(EndRequested(reason[:MAX_END_REASON]))

    def set_speaking(self, member_id: int, speaking: bool) -> None:
        """The media worker heard this member start or stop speaking."""
        self._require_started("set_speaking")
        if member_id in self.members:
            self._received(SpeakingChanged(member_id, bool(speaking)))

    def is_presenter(self, member_id: int) -> bool:
        member = self.members.get(member_id)
        return bool(member and member.avatar and self.world.get(member.avatar, "presenter"))

    def submit(self, member_id: int, reply_id: int, action: str, args: Mapping[str, Any]) -> None:
        """Queue an intent; its `Replied` comes out of the next `tick()`.

        An intent refused on arrival (unknown action, wrong role, bad arguments) is
        queued as a refusal, so its reply keeps its place among the sender's others.
        Raises `IntentRefused` only when the room cannot take it at all (queue full, or
        the sender keeps sending refused intents): that refusal is not recorded.
        """
        self._require_started("submit")
        if self.status is RoomStatus.ENDED:
            raise IntentRefused("room_ended", "the room has ended")
        member = self.members.get(member_id)
        if member is None:
            raise IntentRefused("unknown_member", "you are not a member of this room")
        if self._queued_intents >= MAX_QUEUED_INTENTS or member.queued >= MAX_QUEUED_PER_MEMBER:
            raise IntentRefused("room_busy", "the room has too many intents queued; try again")
        try:
            spec = self._spec(action)
            check_role(action, spec, member.role)
            parse_args(action, spec, args)
        except IntentRefused as refused:
            if not member.refusals.take(self.tick_no):
                raise IntentRefused(
                    "too_many_refusals", f"{refused.message} (and more refusals are not logged)"
                ) from None
            self._queue_intent(
                member,
                IntentDenied(member_id, reply_id, action, refused.code, refused.message),
            )
            return
        self._queue_intent(member, IntentSubmitted(member_id, reply_id, action, dict(args)))

    def _queue_intent(self, member: Member, event: IntentSubmitted | IntentDenied) -> None:
        member.queued += 1
        self._queued_intents += 1
        self._received(event)

    def _spec(self, action: str) -> ActionSpec:
        room_action_entry = ROOM_ACTIONS.get(action)
        if room_action_entry is not None:
            return room_action_entry[0]
        spec = self._case_actions.get(action)
        if spec is None:
            raise IntentRefused("unknown_action", f"this room has no action {action[:64]!r}")
        return spec

    def pose(
        self,
        member_id: int,
        parts: Mapping[str, Iterable[float]],
        objects: Mapping[int, Iterable[float]] | None = None,
    ) -> None:
        """Apply a member's tracked poses now; raises `IntentRefused` for bad ones."""
        self._require_started("pose")
        member = self.members.get(member_id)
        if member is None or member.role is Role.SPECTATOR:
            raise IntentRefused("forbidden", "only a joined participant or facilitator has poses")
        try:
            raw_parts = {p: as_raw_pose(list(v)) for p, v in parts.items() if p in PARTS}
            raw_objects = {int(o): as_raw_pose(list(v)) for o, v in (objects or {}).items()}
        except PoseError as exc:
            raise IntentRefused("bad_pose", str(exc)) from None
        for obj in raw_objects:
            if self.leases.holder(obj) != member_id:
                raise IntentRefused("not_holder", f"grab object {obj} before moving it")
        effective_parts, effective_objects = self._apply_pose(member, raw_parts, raw_objects)
        if effective_parts or effective_objects:
            self._received(
                PoseReceived(
                    member_id,
                    {p: pack_raw(r) for p, r in effective_parts.items()},
                    {o: pack_raw(r) for o, r in effective_objects.items()},
                ),
                queue=False,
            )

    def _apply_pose(
        self, member: Member, parts: Mapping[str, RawPose], objects: Mapping[int, RawPose]
    ) -> tuple[dict[str, RawPose], dict[int, RawPose]]:
        """Update the pose table; what changed it (sub-deadband jitter does not)."""
        if member.avatar is None:
            member.pending_parts.update(parts)
            effective_parts = dict(parts)
        else:
            effective_parts = {
                p: r for p, r in parts.items() if self.poses.update(member.parts[p], r)
            }
        for obj, raw in objects.items():
            self.leases.renew(obj, member.id, self.tick_no)
            self.poses.update(obj, raw)
        return effective_parts, dict(objects)

    def _received(self, event: InputEvent, *, queue: bool = True) -> None:
        self.recorder.record(to_record(event, self.tick_no))
        if queue:
            self._inbox.append(event)

    # -- the tick ---------------------------------------------------------------
    def tick(self) -> list[OutputEvent]:
        """Advance one tick: apply queued inputs, step the case, publish, record.

        Returns what the host must act on: replies to send, members to forget or
        disconnect, and `RoomEnded` when the room ended in this tick.
        """
        self._require_started("tick")
        if self.status is RoomStatus.ENDED:
            raise RoomUsageError("tick() on a room that has ended")
        self.tick_no += 1
        self._received(Tick(), queue=False)
        outputs = self._outputs = []
        while self._inbox:
            self._apply_input(self._inbox.popleft())
        for obj in self.leases.expire(self.tick_no):
            self._set_holder(obj, None)
        self._expire_grace()
        if self.status is RoomStatus.RUNNING:
            self.scenario.step(self.world, self.clock)
        if len(self._disconnected) < len(self.members):
            self.last_active_tick = self.tick_no
        self._publish()
        if self._keyframe_due or self.tick_no % self._keyframe_every == 0:
            self._keyframe()
        self._outputs = []
        return outputs

    def _publish(self) -> None:
        ops = self.world.drain()
        for op in ops:
            self._record("op", {"seq": op.seq, "op": list(op.canonical)})
            if op.canonical[0] == "set" and op.canonical[2] == "phase":
                self._keyframe_due = True
        previous = self._published_poses
        self.publisher.publish(self.tick_no, ops, self.poses.published)
        self._published_poses = dict(self.poses.published)
        changed = {e: list(p) for e, p in self.poses.published.items() if previous.get(e) != p}
        gone = [e for e in previous if e not in self.poses.published]
        if changed or gone:
            self._record("poses", {"p": changed, "g": gone})
        if self.publisher.checksums is not None:
            self._record("checksum", {"sums": [self.publisher.checksums[v] for v in ALL_VIEWS]})

    def _keyframe(self) -> None:
        self._keyframe_due = False
        self._record("keyframe", self.export())

    def _apply_input(self, event: InputEvent) -> None:
        if isinstance(event, EndRequested):
            self._end(event.reason)
            return
        if isinstance(event, IntentSubmitted | IntentDenied):
            self._queued_intents -= 1
        member = self.members.get(getattr(event, "member", 0))
        if member is None:
            return  # it left (or was removed) earlier in this tick
        match event:
            case Join():
                self._create_avatar(member)
            case Reconnect():
                if member.avatar is not None:
                    self.world.set(member.avatar, "connected", True)
            case Disconnect():
                for obj in self.leases.release_all(member.id):
                    self._set_holder(obj, None)
                if member.avatar is not None:
                    self.world.set(member.avatar, "connected", False)
            case Leave():
                self._remove(member)
            case SpeakingChanged():
                if member.avatar is not None:
                    self.world.set(member.avatar, "speaking", event.speaking)
            case IntentSubmitted():
                member.queued -= 1
                self._reply(member, event.reply_id, event.action, self._apply_intent(member, event))
            case IntentDenied():
                member.queued -= 1
                self._reply(
                    member, event.reply_id, event.action, IntentRefused(event.code, event.message)
                )

    def _apply_intent(self, member: Member, intent: IntentSubmitted) -> IntentRefused | None:
        try:
            if self.status is RoomStatus.ENDED:
                raise IntentRefused("room_ended", "the room has ended")
            spec = self._spec(intent.action)
            args = parse_args(intent.action, spec, intent.args)
            if self.status is RoomStatus.PAUSED and not spec.while_paused:
                raise IntentRefused("paused", "the case is paused; wait for the facilitator")
            room_entry = ROOM_ACTIONS.get(intent.action)
            if room_entry is not None:
                room_entry[1](self, member, args)
            else:
                self.scenario.handle(self.world, member.actor(), intent.action, args, self.clock)
        except IntentRefused as refusal:
            return refusal
        return None

    def _reply(
        self, member: Member, reply_id: int, action: str, refusal: IntentRefused | None
    ) -> None:
        if refusal is None:
            reply = Replied(member.id, reply_id, True)
        else:
            reply = Replied(member.id, reply_id, False, refusal.code, refusal.message)
            self.world.log(
                "refusals",
                {
                    "t": self.clock.seconds,
                    "by": member.name,
                    "member": member.id,
                    "action": action[:64],
                    "code": refusal.code,
                    "message": refusal.message,
                },
                View.FACILITATOR,
            )
        self._record(
            "reply",
            {
                "member": reply.member,
                "id": reply.reply_id,
                "ok": reply.ok,
                "code": reply.code,
                "msg": reply.message,
            },
        )
        self._outputs.append(reply)

    # -- the room's own actions ---------------------------------------------------
    @room_action(
        "chat", ActionSpec(ANYONE_IN_THE_TEAM, ChatArgs, summary="Say something to the room.")
    )
    def _chat(self, member: Member, args: ChatArgs) -> None:
        if not member.chat.take(self.tick_no) or not self._room_chat.take(self.tick_no):
            raise IntentRefused("rate_limited", "the chat is busy; wait a moment and try again")
        entry = {"t": self.clock.seconds, "from": member.name, "member": member.id}
        self.world.log("chat", {**entry, "text": args.text})

    @room_action(
        "ask",
        ActionSpec(
            frozenset({Role.SPECTATOR, Role.PARTICIPANT}),
            ChatArgs,
            summary="Ask the facilitator a question (only the facilitator sees it).",
        ),
    )
    def _ask(self, member: Member, args: ChatArgs) -> None:
        if not member.questions.take(self.tick_no):
            raise IntentRefused("rate_limited", "one question at a time; wait a moment")
        entry = {"t": self.clock.seconds, "from": member.name, "member": member.id}
        self.world.log("questions", {**entry, "text": args.text}, View.FACILITATOR)

    def _shared_object(self, obj: int) -> int:
        if not self.world.exists(obj) or self.world.kind(obj) != "object":
            raise IntentRefused("unknown_object", f"there is no shared object {obj}")
        return obj

    @room_action(
        "grab", ActionSpec(ANYONE_IN_THE_TEAM, ObjectArgs, summary="Take a shared object.")
    )
    def _grab(self, member: Member, args: ObjectArgs) -> None:
        obj = self._shared_object(args.obj)
        holder = self.leases.holder(obj)
        holder_name = self.members[holder].name if holder in self.members else "someone"
        try:
            self.leases.grab(obj, member.id, self.tick_no, holder_name)
        except LeaseRefused as refused:
            raise IntentRefused("lease_refused", refused.reason) from None
        self._set_holder(obj, member.avatar)

    @room_action(
        "release", ActionSpec(ANYONE_IN_THE_TEAM, ObjectArgs, summary="Put a held object down.")
    )
    def _release(self, member: Member, args: ObjectArgs) -> None:
        obj = self._shared_object(args.obj)
        if not self.leases.release(obj, member.id):
            raise IntentRefused("not_holder", f"you do not hold object {obj}")
        self._set_holder(obj, None)

    def _member_with_avatar(self, member_id: int) -> tuple[Member, int]:
        target = self.members.get(member_id)
        if target is None or target.avatar is None:
            raise IntentRefused("unknown_member", f"no member {member_id} with an avatar")
        return target, target.avatar

    @room_action(
        "request_present",
        ActionSpec(
            frozenset({Role.PARTICIPANT}),
            RequestPresentArgs,
            summary="Ask the facilitator to let you present (or withdraw the request).",
        ),
    )
    def _request_present(self, member: Member, args: RequestPresentArgs) -> None:
        _, avatar = self._member_with_avatar(member.id)
        self.world.set(avatar, "requests_present", args.on)

    @room_action(
        "present",
        ActionSpec(
            FACILITATOR, PresentArgs, summary="Let a member present (share voice and video)."
        ),
    )
    def _present(self, member: Member, args: PresentArgs) -> None:
        _, avatar = self._member_with_avatar(args.member)
        self.world.set(avatar, "presenter", args.on)
        self.world.set(avatar, "requests_present", False)

    @room_action(
        "remove", ActionSpec(FACILITATOR, MemberArgs, summary="Remove a member from the room.")
    )
    def _remove_member(self, member: Member, args: MemberArgs) -> None:
        target, _ = self._member_with_avatar(args.member)
        self.world.log(
            "events",
            {
                "t": self.clock.seconds,
                "kind": "room",
                "text": f"{target.name} was removed by {member.name}",
            },
        )
        self._remove(target)
        self._outputs.append(MemberRemoved(target.id, member.name))

    @room_action("pause", ActionSpec(FACILITATOR, summary="Pause the case."))
    def _pause(self, member: Member, args: NoArgs) -> None:
        if self.status is not RoomStatus.RUNNING:
            raise IntentRefused("bad_state", f"the room is {self.status.value}, not running")
        self._set_status(RoomStatus.PAUSED)

    @room_action("resume", ActionSpec(FACILITATOR, summary="Resume a paused case."))
    def _resume(self, member: Member, args: NoArgs) -> None:
        if self.status is not RoomStatus.PAUSED:
            raise IntentRefused("bad_state", f"the room is {self.status.value}, not paused")
        self._set_status(RoomStatus.RUNNING)

    @room_action("end", ActionSpec(FACILITATOR, EndArgs, summary="End the session."))
    def _end_by_facilitator(self, member: Member, args: EndArgs) -> None:
        self._end(args.reason)

    # -- state changes ---------------------------------------------------------------
    def _end(self, reason: str) -> None:
        """End the room and publish the case's debrief to the facilitator."""
        if self.status is RoomStatus.ENDED:
            return
        self.end_reason = reason
        self.world.set(self._room_entity, "debrief", self.scenario.debrief(), View.FACILITATOR)
        self._set_status(RoomStatus.ENDED)
        self._record("ended", {"reason": reason})
        self._outputs.append(RoomEnded(reason))

    def _set_status(self, status: RoomStatus) -> None:
        self.status = status
        self.world.set(self._room_entity, "status", status.value)
        self.world.log("events", {"t": self.clock.seconds, "kind": "room", "text": status.value})

    def _set_holder(self, obj: int, avatar: int | None) -> None:
        if self.world.exists(obj):
            self.world.set(obj, "holder", avatar)

    def _create_avatar(self, member: Member) -> None:
        if member.role is Role.SPECTATOR:
            return
        taken = {self.world.get(m.avatar, "seat") for m in self.members.values() if m.avatar}
        seat = next(s for s in range(len(taken) + 1) if s not in taken)
        member.avatar = self.world.create(
            "avatar",
            {
                "member": member.id,
                "name": member.name,
                "role": member.role.value,
                "seat": seat,
                "connected": member.id not in self._disconnected,
                "speaking": False,
                "presenter": False,
                "requests_present": False,
            },
        )
        for part in PARTS:
            member.parts[part] = self.world.create("part", {"avatar": member.avatar, "part": part})
        for part, raw in member.pending_parts.items():
            self.poses.update(member.parts[part], raw)
        member.pending_parts.clear()

    def _remove(self, member: Member) -> None:
        for obj in self.leases.release_all(member.id):
            self._set_holder(obj, None)
        for eid in [*member.parts.values(), member.avatar]:
            if eid is not None and self.world.exists(eid):
                self.world.delete(eid)
                self.poses.remove(eid)
        del self.members[member.id]
        self._disconnected.pop(member.id, None)

    def _expire_grace(self) -> None:
        limit = round(self.config.grace_seconds * self.config.tick_hz)
        due = sorted(m for m, since in self._disconnected.items() if self.tick_no - since >= limit)
        for member_id in due:
            self._record("expire", {"member": member_id})
            self._remove(self.members[member_id])
            self._outputs.append(MemberExpired(member_id))

    def _record(self, kind: str, data: dict[str, Any]) -> None:
        self.recorder.record(Record(kind, self.tick_no, data))

    # -- persistence and re-simulation ------------------------------------------
    def export(self) -> dict[str, Any]:
        """Full room state for keyframes: enough to `restore` this room exactly."""
        return {
            "status": self.status.value,
            "world": self.world.export(),
            "poses": {eid: list(p) for eid, p in self.poses.published.items()},
            "pose_reference": self.poses.export(),
            "leases": self.leases.export(),
            "members": [
                [
                    m.id,
                    m.role.value,
                    m.name,
                    m.id not in self._disconnected,
                    m.avatar,
                    m.parts,
                    self._disconnected.get(m.id),
                    [a.export() for a in (m.chat, m.questions, m.refusals)],
                    {part: pack_raw(raw) for part, raw in m.pending_parts.items()},
                ]
                for m in self.members.values()
            ],
            "room": {
                "tick": self.tick_no,
                "entity": self._room_entity,
                "next_member": self._next_member,
                "last_active_tick": self.last_active_tick,
                "end_reason": self.end_reason,
                "chat": self._room_chat.export(),
            },
            "scenario": self.scenario.snapshot(),
        }

    def restore(self, keyframe: Record) -> None:
        """Become, unstarted, the room a keyframe of a session like this one describes.

        Feeding the records recorded after the keyframe then brings it to where that
        session was (how a room moves to another node when its owner dies).
        """
        if self.status is not RoomStatus.CREATED:
            raise RoomUsageError(f"restore() on a room that is {self.status.value}")
        data = keyframe.data
        room = data["room"]
        self.world = CaseState.restore(data["world"])
        self.poses = PoseTable.restore(data["pose_reference"])
        self.leases.restore(data["leases"])
        self.scenario.restore(data["scenario"])
        self.tick_no = int(room["tick"])
        self._room_entity = int(room["entity"])
        self._next_member = int(room["next_member"])
        self.last_active_tick = int(room["last_active_tick"])
        self.end_reason = str(room["end_reason"])
        self._room_chat.restore(room["chat"])
        hz = self.config.tick_hz
        for entry in data["members"]:
            member_id, role, name, _, avatar, parts, since, allowances, pending = entry
            member = Member(
                int(member_id),
                Role(role),
                str(name),
                chat=_allowance(CHAT_PER_MEMBER, hz),
                questions=_allowance(QUESTIONS_PER_MEMBER, hz),
                refusals=_allowance(REFUSALS_RECORDED_PER_MEMBER, hz),
                avatar=avatar,
                parts={str(p): int(e) for p, e in parts.items()},
                pending_parts={str(p): unpack_raw(b) for p, b in pending.items()},
            )
            for allowance, state in zip(
                (member.chat, member.questions, member.refusals), allowances, strict=True
            ):
                allowance.restore(state)
            self.members[member.id] = member
            if since is not None:
                self._disconnected[member.id] = int(since)
        self._published_poses = dict(self.poses.published)
        self.publisher = Publisher(
            self.world,
            checksum_every=self.config.checksum_every,
            framer=self.publisher.framer,
        )
        self.publisher.publish(self.tick_no, [], self.poses.published)
        self.status = RoomStatus(data["status"])

    def feed(self, event: InputEvent) -> None:
        """Apply one recorded input as it was received live (re-simulation)."""
        match event:
            case Start():
                self.start(event.versions)
            case Tick():
                self.tick()
            case Join():
                joined = self.join(event.role, event.name)
                if joined.id != event.member:
                    raise RoomUsageError(f"join made member {joined.id}, not {event.member}")
            case Reconnect():
                self.reconnect(event.member)
            case Disconnect():
                self.disconnect(event.member)
            case Leave():
                self.leave(event.member)
            case SpeakingChanged():
                self.set_speaking(event.member, event.speaking)
            case EndRequested():
                self.request_end(event.reason)
            case IntentSubmitted():
                self.submit(event.member, event.reply_id, event.action, event.args)
            case IntentDenied():
                member = self.members.get(event.member)
                if member is not None:
                    member.refusals.take(self.tick_no)  # as it did live, when it was recorded
                    self._queue_intent(member, event)
            case PoseReceived():
                member = self.members.get(event.member)
                if member is not None:
                    self._received(event, queue=False)
                    self._apply_pose(
                        member,
                        {p: unpack_raw(b) for p, b in event.parts.items()},
                        {o: unpack_raw(b) for o, b in event.objects.items()},
                    )

    def replay_inputs(self, records: Iterable[Record]) -> None:
        """Drive this (fresh, unstarted) room with recorded inputs, making its outputs again."""
        for record in records:
            self.feed(input_from_record(record))
