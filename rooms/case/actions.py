"""The intents a case accepts: each one's arguments (a pydantic model) beside its
handler, and its `ActionSpec` (who may send it, whether it waits out a pause).

The room checks the sender's role, the arguments and the pause rule before a handler
runs, so a handler sees a validated model and refuses only what depends on the case's
state (an unknown drug id, a test already pending...).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Annotated, Final, Generic, TypeVar

from pydantic import Field, StringConstraints, model_validator

from netcode.state import CaseState
from netcode.views import Role
from rooms.actions import ActionArgs, ActionSpec
from rooms.case.model import Device, Signal
from rooms.case.run import CaseRun
from rooms.scenario import Actor

Id = Annotated[str, StringConstraints(min_length=1, max_length=64)]
"""An id from the case's catalog (drug, test, region...)."""
NOTE_MAX_CHARS: Final = 1000
TEAM: Final = frozenset({Role.PARTICIPANT})
FACILITATOR: Final = frozenset({Role.FACILITATOR})

Args = TypeVar("Args", bound=ActionArgs)
Handler = Callable[[CaseRun, CaseState, Actor, ActionArgs], None]


class _Bound(Generic[Args]):
    """A handler typed for its own model; the room has validated `args` as that model."""

    def __init__(
        self, model: type[Args], handler: Callable[[CaseRun, CaseState, Actor, Args], None]
    ) -> None:
        self.model = model
        self.handler = handler

    def __call__(self, run: CaseRun, world: CaseState, actor: Actor, args: ActionArgs) -> None:
        if not isinstance(args, self.model):
            raise TypeError(f"expected {self.model.__name__}, got {type(args).__name__}")
        self.handler(run, world, actor, args)


SPECS: dict[str, ActionSpec] = {}
HANDLERS: dict[str, Handler] = {}


def action(
    name: str, model: type[Args], roles: frozenset[Role], summary: str
) -> Callable[[Callable[[CaseRun, CaseState, Actor, Args], None]], _Bound[Args]]:
    """Declare an action: its arguments, who may send it and its handler. The team's
    clinical actions wait while the case is paused; the facilitator's controls do not."""

    def register(handler: Callable[[CaseRun, CaseState, Actor, Args], None]) -> _Bound[Args]:
        SPECS[name] = ActionSpec(
            roles=roles, args=model, while_paused=roles is not TEAM, summary=summary
        )
        bound = _Bound(model, handler)
        HANDLERS[name] = bound
        return bound

    return register


# -- the team ------------------------------------------------------------------------------


class Examine(ActionArgs):
    region: Id


@action("examine", Examine, TEAM, "Examine a region; its finding is revealed to everyone.")
def _examine(run: CaseRun, world: CaseState, actor: Actor, args: Examine) -> None:
    run.examine(world, actor, args.region)


class Order(ActionArgs):
    test: Id


@action("order", Order, TEAM, "Order a test; the result arrives after its turnaround.")
def _order(run: CaseRun, world: CaseState, actor: Actor, args: Order) -> None:
    run.order(world, actor, args.test)


class Give(ActionArgs):
    drug: Id
    dose: float = Field(ge=0, le=1e6)
    """In the drug's unit (per kg where the unit says /kg); 0 stops an infusion."""
    route: Annotated[str, StringConstraints(min_length=1, max_length=16)]


@action("give", Give, TEAM, "Give a drug, fluid or blood product (dose 0 stops an infusion).")
def _give(run: CaseRun, world: CaseState, actor: Actor, args: Give) -> None:
    run.give(world, actor, args.drug, args.dose, args.route)


class Stop(ActionArgs):
    item: Id
    """A running infusion or a sustained procedure."""


@action("stop", Stop, TEAM, "Stop a running infusion or procedure.")
def _stop(run: CaseRun, world: CaseState, actor: Actor, args: Stop) -> None:
    run.stop(world, actor, args.item)


class Perform(ActionArgs):
    procedure: Id


@action("perform", Perform, TEAM, "Perform a procedure (sustained ones last until stopped).")
def _perform(run: CaseRun, world: CaseState, actor: Actor, args: Perform) -> None:
    run.perform(world, actor, args.procedure)


class Oxygen(ActionArgs):
    device: Device


@action("oxygen", Oxygen, TEAM, "Start or change oxygen or an airway device.")
def _oxygen(run: CaseRun, world: CaseState, actor: Actor, args: Oxygen) -> None:
    run.oxygen(world, actor, args.device)


class CallHelp(ActionArgs):
    team: Id


@action("call_help", CallHelp, TEAM, "Call a team; it arrives after its delay.")
def _call_help(run: CaseRun, world: CaseState, actor: Actor, args: CallHelp) -> None:
    run.call_help(world, actor, args.team)


class Decide(ActionArgs):
    decision: Id
    option: Id


@action("decide", Decide, TEAM, "Answer an open decision (once).")
def _decide(run: CaseRun, world: CaseState, actor: Actor, args: Decide) -> None:
    run.decide(world, actor, args.decision, args.option)


class Note(ActionArgs):
    text: Annotated[str, StringConstraints(min_length=1, max_length=NOTE_MAX_CHARS)]


@action("note", Note, TEAM, "Write a note the team (and the facilitator) can read.")
def _note(run: CaseRun, world: CaseState, actor: Actor, args: Note) -> None:
    run.note(world, actor, args.text)


# -- the facilitator -------------------------------------------------------------------------


class TimeScale(ActionArgs):
    scale: float = Field(ge=0.25, le=10)


@action("time_scale", TimeScale, FACILITATOR, "Run case time faster or slower (0.25-10x).")
def _time_scale(run: CaseRun, world: CaseState, actor: Actor, args: TimeScale) -> None:
    run.set_scale(world, args.scale)


class Inject(ActionArgs):
    event: Id


@action("inject", Inject, FACILITATOR, "Make an event happen now.")
def _inject(run: CaseRun, world: CaseState, actor: Actor, args: Inject) -> None:
    run.inject(world, args.event)


class Override(ActionArgs):
    signal: Signal
    value: float | None = Field(default=None, ge=0, le=300)
    """None ends the override."""
    for_s: float | None = Field(default=None, ge=1, le=7200)


@action("override", Override, FACILITATOR, "Set a vital on the monitor (the record flags it).")
def _override(run: CaseRun, world: CaseState, actor: Actor, args: Override) -> None:
    run.override(world, actor, args.signal, args.value, args.for_s)


class Reveal(ActionArgs):
    test: Id | None = None
    region: Id | None = None

    @model_validator(mode="after")
    def _one(self) -> Reveal:
        if (self.test is None) == (self.region is None):
            raise ValueError("give either a test or a region")
        return self


@action("reveal", Reveal, FACILITATOR, "Reveal a test result or an exam finding now.")
def _reveal(run: CaseRun, world: CaseState, actor: Actor, args: Reveal) -> None:
    if args.region is not None:
        run.reveal_region(world, actor, args.region)
    elif args.test is not None:
        run.reveal_test(world, actor, args.test)


class Advance(ActionArgs):
    phase: Id | None = None
    """None: the next phase."""


@action("advance", Advance, FACILITATOR, "Move the case to a phase (default: the next).")
def _advance(run: CaseRun, world: CaseState, actor: Actor, args: Advance) -> None:
    run.advance_phase(world, args.phase)


class Hint(ActionArgs):
    text: Annotated[str, StringConstraints(min_length=1, max_length=500)] | None = None
    index: int | None = Field(default=None, ge=0, le=99)
    """A prepared hint of the case, by number."""

    @model_validator(mode="after")
    def _one(self) -> Hint:
        if (self.text is None) == (self.index is None):
            raise ValueError("give either a text or the index of a prepared hint")
        return self


@action("hint", Hint, FACILITATOR, "Send the team a hint (text, or a prepared one).")
def _hint(run: CaseRun, world: CaseState, actor: Actor, args: Hint) -> None:
    run.hint(world, actor, args.text, args.index)


class Score(ActionArgs):
    item: Id
    points: int = Field(ge=0, le=100)
    comment: Annotated[str, StringConstraints(max_length=500)] = ""


@action("score", Score, FACILITATOR, "Mark a manual rubric item.")
def _score(run: CaseRun, world: CaseState, actor: Actor, args: Score) -> None:
    run.score(world, args.item, args.points, args.comment)


ACTIONS: Final[Mapping[str, ActionSpec]] = SPECS
TEAM_ACTIONS: Final = frozenset(a for a, s in SPECS.items() if s.roles is TEAM)
FACILITATOR_ACTIONS: Final = frozenset(a for a, s in SPECS.items() if s.roles is FACILITATOR)
