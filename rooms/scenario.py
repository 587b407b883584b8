"""The small interface through which a room hosts any case.

The room owns members, avatars, poses, leases, chat and pause/resume/end; everything
clinical belongs to the scenario. A scenario writes only through the `CaseState` it is
given, so every change it makes is a numbered op that reaches the right views and the
recording. It must be deterministic: same seed, same calls, same ops.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from netcode.state import CaseState
from netcode.views import Role
from rooms.actions import ActionArgs, ActionSpec


@dataclass(frozen=True, slots=True)
class Actor:
    """Who sent an intent: a member of the room, by stable id within the session."""

    member: int
    role: Role
    name: str
    avatar: int | None = None


@dataclass(frozen=True, slots=True)
class Clock:
    """Room time: ticks since the room started; `dt` is one tick in seconds."""

    tick: int
    tick_hz: int

    @property
    def dt(self) -> float:
        return 1.0 / self.tick_hz

    @property
    def seconds(self) -> float:
        return self.tick / self.tick_hz


class Scenario(Protocol):
    """What a room needs from a case. The room calls these from its tick, in order."""

    name: str
    """Short identifier recorded in the replay manifest (e.g. the case id)."""

    def start(self, world: CaseState, clock: Clock) -> None:
        """Create the case's entities (patient, monitor, answer key...)."""

    def step(self, world: CaseState, clock: Clock) -> None:
        """Advance one tick of room time (only while the room is running, not paused)."""

    def actions(self) -> Mapping[str, ActionSpec]:
        """The intents this scenario handles: who may send each, its arguments' model."""

    def handle(
        self, world: CaseState, actor: Actor, action: str, args: ActionArgs, clock: Clock
    ) -> None:
        """Apply one intent or raise `IntentRefused` for a refusal that depends on state.

        The room has already checked the action, the sender's role, the arguments
        against the action's model and the pause rule, and it logs every refusal.
        """

    def debrief(self) -> dict[str, Any]:
        """What the facilitator sees when the room ends (scores, outcome)."""

    def snapshot(self) -> dict[str, Any]:
        """Internal state (physiology, RNG, timers) as msgpack-able data, for keyframes."""

    def restore(self, data: Mapping[str, Any]) -> None:
        """Return to a state that `snapshot()` produced."""
