"""What an intent may ask of a room: each action's roles, arguments and pause rule.

Every action, whether the room's own (chat, grab, pause...) or a case's (give, order,
override...), is declared once as an `ActionSpec`: who may send it, the pydantic model
its arguments must fit, and whether it is accepted while the case is paused. The room
checks all three before anything reaches a handler, so a handler only ever sees a
validated model, and a bad argument is refused with `bad_args` naming the field.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from netcode.views import Role

ANYONE_IN_THE_TEAM = frozenset({Role.PARTICIPANT, Role.FACILITATOR})


class IntentRefused(Exception):
    """An intent the room or scenario will not apply; `code` is machine-readable."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class ActionArgs(BaseModel):
    """Base of every action's arguments: strict types, no unknown keys, finite numbers.

    Strict: a string where a number belongs is refused rather than converted (an int
    is still accepted for a float field).
    """

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, allow_inf_nan=False)


class NoArgs(ActionArgs):
    """For actions that take no arguments."""


@dataclass(frozen=True, slots=True)
class ActionSpec:
    roles: frozenset[Role]
    """Who may send it; anyone else is refused with `forbidden`."""
    args: type[ActionArgs] = NoArgs
    while_paused: bool = True
    """False: refused with `paused` while the room is paused (learners' clinical acts)."""
    summary: str = ""
    """One sentence for docs and clients."""


def parse_args(action: str, spec: ActionSpec, raw: Mapping[str, Any]) -> ActionArgs:
    """`raw` validated as the action's model, or `IntentRefused("bad_args")` naming the field."""
    try:
        return spec.args.model_validate(dict(raw))
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_input=False)[0]
        where = ".".join(str(part) for part in first["loc"]) or "args"
        raise IntentRefused("bad_args", f"{action}: {where}: {first['msg']}") from None


def check_role(action: str, spec: ActionSpec, role: Role) -> None:
    if role not in spec.roles:
        allowed = " or ".join(sorted(r.value for r in spec.roles)) or "nobody"
        raise IntentRefused("forbidden", f"only a {allowed} may {action.replace('_', ' ')}")
