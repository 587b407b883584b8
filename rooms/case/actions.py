"""The clinical intents a case accepts, who may send each, and argument checking.

Each check raises `IntentRefused` with a stable code and a sentence the sender can act
on, so a refused intent is as informative as an accepted one.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from typing import Any, Final

from pydantic import ConfigDict

from netcode.views import Role
from rooms.actions import ActionArgs, ActionSpec, IntentRefused

PARTICIPANT_ACTIONS: Final = frozenset(
    {"examine", "order", "give", "oxygen", "call_help", "decide", "note"}
)
FACILITATOR_ACTIONS: Final = frozenset(
    {"time_scale", "inject", "override", "reveal", "advance", "hint", "score"}
)
ALL_ACTIONS: Final = PARTICIPANT_ACTIONS | FACILITATOR_ACTIONS

NOTE_MAX_CHARS: Final = 1000


class UncheckedArgs(ActionArgs):
    """Arguments checked by the handlers themselves (until each action has its own model)."""

    model_config = ConfigDict(extra="allow")


SPECS: Final = {
    **{
        name: ActionSpec(frozenset({Role.PARTICIPANT}), UncheckedArgs, while_paused=False)
        for name in sorted(PARTICIPANT_ACTIONS)
    },
    **{
        name: ActionSpec(frozenset({Role.FACILITATOR}), UncheckedArgs)
        for name in sorted(FACILITATOR_ACTIONS)
    },
}


def text(args: Mapping[str, Any], name: str, max_chars: int = 200) -> str:
    value = args.get(name)
    if not isinstance(value, str) or not value.strip():
        raise IntentRefused("bad_args", f"{name!r} must be a non-empty string")
    if len(value) > max_chars:
        raise IntentRefused("bad_args", f"{name!r} is longer than {max_chars} characters")
    return value


def choice(args: Mapping[str, Any], name: str, allowed: Collection[str], code: str) -> str:
    value = text(args, name)
    if value not in allowed:
        options = ", ".join(sorted(allowed)) or "none in this case"
        raise IntentRefused(code, f"{value!r} is not a known {name} here (known: {options})")
    return value


def number(args: Mapping[str, Any], name: str, low: float, high: float) -> float:
    value = args.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise IntentRefused("bad_args", f"{name!r} must be a number")
    if not low <= value <= high:
        raise IntentRefused("bad_args", f"{name!r} must be between {low:g} and {high:g}")
    return float(value)
