"""A synthetic GR-S-like session (members, poses, vitals, events, keyframes).

Drives a real `CaseState` so ops and keyframes are genuine; used by the tests, the
bench and the MCAP evaluation until (and besides) recordings of a real `Room`.
"""

from __future__ import annotations

import random
import zlib
from collections.abc import Callable
from typing import Any

import msgpack

from netcode.state import CaseState
from netcode.views import ALL_VIEWS, View
from rooms.records import Record, Recorder

VITALS = ("hr", "sbp", "dbp", "spo2", "rr", "temp", "etco2")
ROLES = ("facilitator", "participant", "spectator")


def view_checksums(world: CaseState) -> list[int]:
    return [
        zlib.crc32(msgpack.packb(world.view_state(v), default=repr)) for v in ALL_VIEWS
    ]


class SyntheticSession:
    """Deterministic for a seed; `run()` records `seconds` of session into `recorder`."""

    def __init__(
        self,
        seed: int = 1,
        participants: int = 8,
        objects: int = 20,
        tick_hz: int = 30,
        keyframe_every_s: float = 10.0,
        checksum_every: int = 1,
    ) -> None:
        self.rng = random.Random(seed)
        self.seed = seed
        self.participants = participants
        self.objects = objects
        self.tick_hz = tick_hz
        self.keyframe_every = max(1, int(keyframe_every_s * tick_hz))
        self.checksum_every = checksum_every
        self.world = CaseState()
        self.poses: dict[int, list[int]] = {}
        self.avatars: dict[int, int] = {}

    def _ops(self, out: Recorder, tick: int) -> None:
        for op in self.world.drain():
            out.record(Record("op", tick, {"seq": op.seq, "op": list(op.canonical)}))

    def run(
        self,
        out: Recorder,
        seconds: float,
        on_tick: Callable[[int, CaseState, dict[int, list[int]]], None] | None = None,
    ) -> None:
        rng, world = self.rng, self.world
        out.record(Record("start", 0, {
            "room": "synthetic", "scenario": "synthetic-sepsis", "seed": self.seed,
            "tick_hz": self.tick_hz, "versions": {"server": "0.1.0", "format": 1},
        }))
        patient = world.create(
            "patient", {"name": "J. Doe", "dx": "sepsis", **{v: 80 for v in VITALS}},
            {"dx": View.FACILITATOR},
        )
        for i in range(self.objects):
            world.create("object", {"label": f"item{i}", "held": None})
        for m in range(self.participants):
            avatar = world.create("avatar", {"member": m})
            self.avatars[m] = avatar
            self.poses[avatar] = [0, 1600, 0, 0]
            out.record(Record("join", 0, {
                "member": m, "role": ROLES[min(m, 2)], "name": f"Dr {m}", "avatar": avatar,
            }))
        self._ops(out, 0)
        ticks = int(seconds * self.tick_hz)
        for tick in range(1, ticks + 1):
            out.record(Record("tick", tick, {}))
            changed: dict[int, list[int]] = {}
            for m, avatar in self.avatars.items():
                pose = self.poses[avatar]
                pose = [pose[0] + rng.randint(-20, 20), pose[1], pose[2] + rng.randint(-20, 20),
                        rng.getrandbits(32)]
                out.record(Record("pose", tick, {"member": m, "pose": pose}))
                self.poses[avatar] = pose
                changed[avatar] = pose
            if tick % self.tick_hz == 0:
                for v in VITALS:
                    world.set(patient, v, rng.randint(40, 160))
            if tick % (5 * self.tick_hz) == 0:
                m = rng.randrange(self.participants)
                action = rng.choice(["give_fluids", "order_lactate", "give_antibiotics"])
                ok = rng.random() < 0.9
                out.record(Record("intent", tick, {
                    "member": m, "action": action, "args": {"ml": 500}, "ok": ok,
                    "code": None if ok else "not-allowed",
                }))
                if ok:
                    world.log("events", {"t": tick, "who": m, "what": action})
                    obj = rng.randrange(2, 2 + self.objects)
                    world.set(obj, "held", m, View.PARTICIPANT)
            self._ops(out, tick)
            out.record(Record("poses", tick, {"poses": changed}))
            if tick % self.checksum_every == 0:
                out.record(Record("checksum", tick, {"crc": view_checksums(world)}))
            if tick % self.keyframe_every == 0:
                out.record(self.keyframe(tick))
            if on_tick is not None:
                on_tick(tick, world, self.poses)
        out.record(Record("end", ticks, {"reason": "finished", "debrief": self.debrief()}))

    def keyframe(self, tick: int) -> Record:
        return Record("keyframe", tick, {
            "case": self.world.export(), "poses": {k: list(v) for k, v in self.poses.items()},
            "scenario": {"rng": self.rng.getstate()[1][:4]}, "room": {"phase": "running"},
        })

    def debrief(self) -> dict[str, Any]:
        return {
            "score": {"total": 7, "max": 10, "items": [
                {"name": "antibiotics within 1h", "points": 4, "max": 5},
                {"name": "fluids 30 ml/kg", "points": 3, "max": 5},
            ]},
            "critical_actions": ["give_antibiotics", "give_fluids"],
        }
