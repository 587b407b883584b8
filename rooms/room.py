"""The room: the single authority for one session's state, with no I/O.

Inputs (joins, intents, disconnects) are queued and applied at the start of the next
tick, so the world only changes inside `tick()` and every frame built between two
ticks describes one consistent state. Poses apply on arrival: they touch only the pose
table, which the publisher copies at each tick.

Every input is recorded when it is submitted and every output when it is made, so a
fresh room fed the recorded inputs in order (see `replay_inputs`) makes the same
outputs: that is how a session is verified by re-simulation.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final

from netcode.leases import LeaseRefused, Leases
from netcode.poses import PoseTable
from netcode.publisher import Publisher
from netcode.quantize import PoseError, RawPose, as_raw_pose, pack_raw, unpack_raw
from netcode.state import CaseState
from netcode.views import ALL_VIEWS, VIEW_OF_ROLE, Role, View
from rooms.actions import IntentRefused
from rooms.records import NullRecorder, Record, Recorder
from rooms.scenario import Actor, Clock, Scenario

PARTS: Final = ("head", "left", "right")
MAX_QUEUED_INPUTS: Final = 4096
ROOM_ACTIONS: Final = frozenset(
    {"chat", "ask", "grab", "release", "pause", "resume", "end", "present", "remove"}
)
_ACTION_ROLES: Final[dict[str, frozenset[Role]]] = {
    "chat": frozenset({Role.PARTICIPANT, Role.FACILITATOR}),
    "ask": frozenset({Role.SPECTATOR, Role.PARTICIPANT}),
    "grab": frozenset({Role.PARTICIPANT, Role.FACILITATOR}),
    "release": frozenset({Role.PARTICIPANT, Role.FACILITATOR}),
    "pause": frozenset({Role.FACILITATOR}),
    "resume": frozenset({Role.FACILITATOR}),
    "end": frozenset({Role.FACILITATOR}),
    "present": frozenset({Role.FACILITATOR}),
    "remove": frozenset({Role.FACILITATOR}),
}
MAX_TEXT: Final = 2000


class RoomStatus(StrEnum):
    CREATED = "created"
    RUNNING = "running"
    PAUSED = "paused"
    ENDED = "ended"


@dataclass(frozen=True, slots=True)
class RoomConfig:
    tick_hz: int = 30
    grace_seconds: float = 30.0
    lease_seconds: float = 5.0
    checksum_every: int = 30
    keyframe_seconds: float = 10.0


@dataclass(slots=True)
class Member:
    id: int
    role: Role
    name: str
    avatar: int | None = None
    parts: dict[str, int] = field(default_factory=dict)

    @property
    def view(self) -> View:
        return VIEW_OF_ROLE[self.role]

    def actor(self) -> Actor:
        return Actor(self.id, self.role, self.name, self.avatar)


@dataclass(frozen=True, slots=True)
class Reply:
    member: int
    id: int
    ok: bool
    code: str = ""
    message: str = ""


@dataclass(slots=True)
class TickResult:
    tick: int
    replies: list[Reply]
    removed: list[int]
    """Members whose grace period ran out this tick (their sessions cannot resume)."""
    ended: bool


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
        self._inbox: deque[tuple[str, int, Any]] = deque()
        self._room_entity = 0
        self._keyframe_every = max(1, round(self.config.keyframe_seconds * self.config.tick_hz))
        self._keyframe_due = False
        self._published_poses: dict[int, tuple[int, int, int, int]] = {}
        self._disconnected: dict[int, int] = {}
        """Members whose connection dropped, and the tick it did: only they can expire."""
        self.removed_by_facilitator: list[int] = []
        """Members the facilitator removed since the host last looked (it disconnects them)."""

    # -- lifecycle --------------------------------------------------------------
    @property
    def clock(self) -> Clock:
        return Clock(self.tick_no, self.config.tick_hz)

    def start(self, versions: Mapping[str, str] | None = None) -> None:
        """Create the room's own entity and the case; publish tick 0."""
        self._record(
            "start",
            {
                "room": self.id,
                "title": self.title,
                "scenario": self.scenario.name,
                "seed": self.seed,
                "tick_hz": self.config.tick_hz,
                "config": {
                    "grace_seconds": self.config.grace_seconds,
                    "lease_seconds": self.config.lease_seconds,
                    "checksum_every": self.config.checksum_every,
                    "keyframe_seconds": self.config.keyframe_seconds,
                },
                "versions": dict(versions or {}),
            },
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

    # -- inputs ---------------------------------------------------------------
    def join(self, role: Role, name: str) -> Member:
        """Admit a member now; its avatar appears in the next tick."""
        member = Member(self._next_member, Role(role), name[:64])
        self._next_member += 1
        self.members[member.id] = member
        self._submit("join", member.id, {"role": member.role.value, "name": member.name})
        return member

    def reconnect(self, member_id: int) -> bool:
        """A member is back within its grace period; False if its session is gone."""
        member = self.members.get(member_id)
        if member is None:
            return False
        self._disconnected.pop(member_id, None)
        self._submit("reconnect", member_id, {})
        return True

    def disconnect(self, member_id: int) -> None:
        """The connection dropped: keep the avatar (shown disconnected) for the grace period."""
        if member_id not in self.members or member_id in self._disconnected:
            return
        self._disconnected[member_id] = self.tick_no
        self._submit("disconnect", member_id, {})

    def leave(self, member_id: int) -> None:
        """The member left on purpose (or was removed): no grace period."""
        if member_id in self.members:
            self._submit("leave", member_id, {})

    def request_end(self, reason: str) -> None:
        """End the room at the next tick (idle timeout, shutdown, an admin's request)."""
        self._submit("end", 0, {"reason": reason[:200]})

    def set_speaking(self, member_id: int, speaking: bool) -> None:
        """The media worker heard this member start or stop speaking."""
        if member_id in self.members:
            self._submit("speaking", member_id, {"speaking": bool(speaking)})

    def is_presenter(self, member_id: int) -> bool:
        member = self.members.get(member_id)
        return bool(member and member.avatar and self.world.get(member.avatar, "presenter"))

    def submit(self, member_id: int, reply_id: int, action: str, args: Mapping[str, Any]) -> None:
        """Queue an intent; its `Reply` comes out of the next `tick()`."""
        self._submit("intent", member_id, {"id": reply_id, "do": action, "args": dict(args)})

    def _submit(self, kind: str, member_id: int, data: dict[str, Any]) -> None:
        if len(self._inbox) >= MAX_QUEUED_INPUTS:
            raise IntentRefused("room_busy", "the room has too many inputs queued; try again")
        self._record(kind, {"member": member_id, **data})
        self._inbox.append((kind, member_id, data))

    def pose(
        self,
        member_id: int,
        parts: Mapping[str, Iterable[float]],
        objects: Mapping[int, Iterable[float]] | None = None,
    ) -> None:
        """Apply a member's tracked poses now; raises `IntentRefused` for bad ones."""
        member = self.members.get(member_id)
        if member is None or member.role is Role.SPECTATOR or member.avatar is None:
            raise IntentRefused("forbidden", "only a joined participant or facilitator has poses")
        try:
            raw_parts = {p: as_raw_pose(list(v)) for p, v in parts.items() if p in member.parts}
            raw_objects = {int(o): as_raw_pose(list(v)) for o, v in (objects or {}).items()}
        except PoseError as exc:
            raise IntentRefused("bad_pose", str(exc)) from None
        for obj in raw_objects:
            if self.leases.holder(obj) != member_id:
                raise IntentRefused("not_holder", f"grab object {obj} before moving it")
        self._apply_pose(member_id, raw_parts, raw_objects, record=True)

    def _apply_pose(
        self,
        member_id: int,
        parts: Mapping[str, RawPose],
        objects: Mapping[int, RawPose],
        *,
        record: bool,
    ) -> None:
        member = self.members[member_id]
        effective_parts = {p: r for p, r in parts.items() if self.poses.update(member.parts[p], r)}
        effective_objects: dict[int, RawPose] = {}
        for obj, raw in objects.items():
            self.leases.renew(obj, member_id, self.tick_no)
            self.poses.update(obj, raw)
            effective_objects[obj] = raw
        if record and (effective_parts or effective_objects):
            self._record(
                "pose",
                {
                    "member": member_id,
                    "parts": {p: pack_raw(r) for p, r in effective_parts.items()},
                    "objects": {o: pack_raw(r) for o, r in effective_objects.items()},
                },
            )

    # -- the tick ---------------------------------------------------------------
    def tick(self) -> TickResult:
        """Advance one tick: apply queued inputs, step the case, publish, record."""
        self.tick_no += 1
        self._record("tick", {})
        replies: list[Reply] = []
        while self._inbox:
            kind, member_id, data = self._inbox.popleft()
            reply = self._apply_input(kind, member_id, data)
            if reply is not None:
                replies.append(reply)
                self._record(
                    "reply",
                    {
                        "member": reply.member,
                        "id": reply.id,
                        "ok": reply.ok,
                        "code": reply.code,
                        "msg": reply.message,
                    },
                )
        for obj in self.leases.expire(self.tick_no):
            self._set_holder(obj, None)
        removed = self._expire_grace()
        if self.status is RoomStatus.RUNNING:
            self.scenario.step(self.world, self.clock)
        if len(self._disconnected) < len(self.members):
            self.last_active_tick = self.tick_no
        self._publish()
        if self._keyframe_due or self.tick_no % self._keyframe_every == 0:
            self._keyframe()
        return TickResult(self.tick_no, replies, removed, self.status is RoomStatus.ENDED)

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

    def _apply_input(self, kind: str, member_id: int, data: dict[str, Any]) -> Reply | None:
        if kind == "end":
            self._end(data["reason"])
            return None
        member = self.members.get(member_id)
        if member is None:
            return None
        if kind == "join":
            self._create_avatar(member)
        elif kind == "reconnect":
            if member.avatar is not None:
                self.world.set(member.avatar, "connected", True)
        elif kind == "disconnect":
            for obj in self.leases.release_all(member_id):
                self._set_holder(obj, None)
            if member.avatar is not None:
                self.world.set(member.avatar, "connected", False)
        elif kind == "leave":
            self._remove(member)
        elif kind == "speaking":
            if member.avatar is not None:
                self.world.set(member.avatar, "speaking", data["speaking"])
        elif kind == "intent":
            return self._apply_intent(member, data["id"], data["do"], data["args"])
        return None

    def _apply_intent(self, member: Member, reply_id: int, action: str, args: Any) -> Reply:
        try:
            if self.status is RoomStatus.ENDED:
                raise IntentRefused("room_ended", "the room has ended")
            if action in ROOM_ACTIONS:
                if member.role not in _ACTION_ROLES[action]:
                    raise IntentRefused(
                        "forbidden", f"a {member.role.value} may not {action} in this room"
                    )
                self._room_action(member, action, args)
            elif action in self.scenario.actions():
                if member.role is Role.SPECTATOR:
                    raise IntentRefused(
                        "forbidden", "spectators watch; they cannot act on the case"
                    )
                self.scenario.handle(self.world, member.actor(), action, args, self.clock)
            else:
                raise IntentRefused("unknown_action", f"this room has no action {action!r}")
        except IntentRefused as refusal:
            return Reply(member.id, reply_id, False, refusal.code, refusal.message)
        return Reply(member.id, reply_id, True)

    def _room_action(self, member: Member, action: str, args: Mapping[str, Any]) -> None:
        if action in ("chat", "ask"):
            text = args.get("text")
            if not isinstance(text, str) or not text.strip():
                raise IntentRefused("bad_args", f"{action} needs a non-empty string 'text'")
            if len(text) > MAX_TEXT:
                raise IntentRefused(
                    "bad_args", f"{action} text is limited to {MAX_TEXT} characters"
                )
            entry = {
                "t": self.clock.seconds,
                "from": member.name,
                "member": member.id,
                "text": text,
            }
            if action == "chat":
                self.world.log("chat", entry)
            else:
                self.world.log("questions", entry, View.FACILITATOR)
        elif action in ("grab", "release"):
            obj = args.get("obj")
            if (
                not isinstance(obj, int)
                or not self.world.exists(obj)
                or self.world.kind(obj) != "object"
            ):
                raise IntentRefused("unknown_object", f"there is no shared object {obj!r}")
            if action == "grab":
                holder = self.leases.holder(obj)
                holder_name = self.members[holder].name if holder in self.members else "someone"
                try:
                    self.leases.grab(obj, member.id, self.tick_no, holder_name)
                except LeaseRefused as refused:
                    raise IntentRefused("lease_refused", refused.reason) from None
                self._set_holder(obj, member.avatar)
            elif self.leases.release(obj, member.id):
                self._set_holder(obj, None)
            else:
                raise IntentRefused("not_holder", f"you do not hold object {obj}")
        elif action in ("present", "remove"):
            target = self.members.get(args.get("member"))  # type: ignore[arg-type]
            if target is None or target.avatar is None:
                raise IntentRefused(
                    "unknown_member", f"no member {args.get('member')!r} with an avatar"
                )
            if action == "present":
                self.world.set(target.avatar, "presenter", bool(args.get("on", True)))
            else:
                self.world.log(
                    "events",
                    {
                        "t": self.clock.seconds,
                        "kind": "room",
                        "text": f"{target.name} was removed by {member.name}",
                    },
                )
                self._remove(target)
                self.removed_by_facilitator.append(target.id)
        elif action == "pause":
            if self.status is not RoomStatus.RUNNING:
                raise IntentRefused("bad_state", f"the room is {self.status.value}, not running")
            self._set_status(RoomStatus.PAUSED)
        elif action == "resume":
            if self.status is not RoomStatus.PAUSED:
                raise IntentRefused("bad_state", f"the room is {self.status.value}, not paused")
            self._set_status(RoomStatus.RUNNING)
        elif action == "end":
            self._end(str(args.get("reason", "ended by the facilitator"))[:200])

    def _end(self, reason: str) -> None:
        """End the room and publish the case's debrief to the facilitator."""
        if self.status is RoomStatus.ENDED:
            return
        self.end_reason = reason
        debrief = getattr(self.scenario, "debrief", None)
        if callable(debrief):
            self.world.set(self._room_entity, "debrief", debrief(), View.FACILITATOR)
        self._set_status(RoomStatus.ENDED)
        self._record("ended", {"reason": reason})

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
        member.avatar = self.world.create(
            "avatar",
            {
                "member": member.id,
                "name": member.name,
                "role": member.role.value,
                "connected": member.id not in self._disconnected,
                "speaking": False,
                "presenter": False,
            },
        )
        for part in PARTS:
            member.parts[part] = self.world.create("part", {"avatar": member.avatar, "part": part})

    def _remove(self, member: Member) -> None:
        for obj in self.leases.release_all(member.id):
            self._set_holder(obj, None)
        for eid in [*member.parts.values(), member.avatar]:
            if eid is not None and self.world.exists(eid):
                self.world.delete(eid)
                self.poses.remove(eid)
        del self.members[member.id]
        self._disconnected.pop(member.id, None)

    def _expire_grace(self) -> list[int]:
        limit = round(self.config.grace_seconds * self.config.tick_hz)
        due = sorted(m for m, since in self._disconnected.items() if self.tick_no - since >= limit)
        expired = [self.members[member_id] for member_id in due]
        for member in expired:
            self._record("expire", {"member": member.id})
            self._remove(member)
        return [m.id for m in expired]

    def _record(self, kind: str, data: dict[str, Any]) -> None:
        self.recorder.record(Record(kind, self.tick_no, data))

    # -- persistence and re-simulation ------------------------------------------
    def export(self) -> dict[str, Any]:
        """Full room state for keyframes: case state, poses, members, leases, scenario."""
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
                ]
                for m in self.members.values()
            ],
            "scenario": self.scenario.snapshot(),
        }

    def replay_inputs(self, records: Iterable[Record]) -> None:
        """Drive this (fresh, unstarted) room with recorded inputs, making its outputs again.

        Inputs are applied in recorded order; outputs go to this room's recorder, to be
        compared with the recorded ones.
        """
        for record in records:
            data = record.data
            if record.kind == "start":
                self.start(data.get("versions"))
            elif record.kind == "tick":
                self.tick()
            elif record.kind == "join":
                self.join(Role(data["role"]), data["name"])
            elif record.kind == "reconnect":
                self.reconnect(data["member"])
            elif record.kind == "disconnect":
                self.disconnect(data["member"])
            elif record.kind == "leave":
                self.leave(data["member"])
            elif record.kind == "intent":
                self.submit(data["member"], data["id"], data["do"], data["args"])
            elif record.kind == "pose":
                self._record("pose", data)
                self._apply_pose(
                    data["member"],
                    {p: unpack_raw(b) for p, b in data["parts"].items()},
                    {int(o): unpack_raw(b) for o, b in data["objects"].items()},
                    record=False,
                )
            elif record.kind == "end":
                self.request_end(data["reason"])
            elif record.kind == "speaking":
                self.set_speaking(data["member"], data["speaking"])
