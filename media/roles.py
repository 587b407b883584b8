"""Who may do what with media, from the role the room server gives each member.

Participants publish audio; a presenter (granted by the facilitator) publishes
video and audio; the facilitator publishes audio and can mute anyone;
spectators only subscribe.
"""

from __future__ import annotations

ROLES = frozenset({"participant", "presenter", "facilitator", "spectator"})
_PUBLISH = {
    "participant": frozenset({"audio"}),
    "presenter": frozenset({"audio", "video"}),
    "facilitator": frozenset({"audio"}),
    "spectator": frozenset(),
}


def may_publish(role: str, kind: str) -> bool:
    return kind in _PUBLISH.get(role, frozenset())


def may_mute_others(role: str) -> bool:
    return role == "facilitator"
