"""Roles and the views they see.

A view is an ordered level: each field carries the lowest view allowed to see it,
and a view sees every field at or below its own level. Encoding is per view, never
per client, so the three levels bound the encoding work of a tick.
"""

from enum import IntEnum, StrEnum


class View(IntEnum):
    SPECTATOR = 0
    PARTICIPANT = 1
    FACILITATOR = 2


class Role(StrEnum):
    FACILITATOR = "facilitator"
    PARTICIPANT = "participant"
    SPECTATOR = "spectator"


VIEW_OF_ROLE: dict[Role, View] = {
    Role.FACILITATOR: View.FACILITATOR,
    Role.PARTICIPANT: View.PARTICIPANT,
    Role.SPECTATOR: View.SPECTATOR,
}

ALL_VIEWS: tuple[View, ...] = (View.SPECTATOR, View.PARTICIPANT, View.FACILITATOR)


def sees(view: View, visibility: View) -> bool:
    """True when a client with `view` may see a field whose visibility is `visibility`."""
    return view >= visibility
