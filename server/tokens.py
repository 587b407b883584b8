"""Join tokens: a room, a role, a display name and an expiry, signed with the server secret.

JWT (HS256, PyJWT) because it is a documented format any client can carry and the
library checks expiry and signature for us.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Final

import jwt

from netcode.views import Role

_ALGORITHM = "HS256"
DEFAULT_SEATS: Final = {Role.FACILITATOR: 2, Role.PARTICIPANT: 2, Role.SPECTATOR: 300}
"""People one join link admits at once: a person on two devices (a headset and a laptop);
a spectator link is shared with a class, up to a lecture hall. The issuer may ask for more."""
MAX_SEATS: Final = 5000


class TokenError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class Grant:
    room: str
    role: Role
    name: str
    expires: int
    token_id: str = ""
    """Tells one link's members from another's (to bound how many it admits at once)."""
    seats: int = 1


def issue(
    secret: str, room: str, role: Role, name: str, ttl_seconds: int, seats: int | None = None
) -> str:
    claims: dict[str, str | int] = {"room": room, "role": role.value, "name": name}
    if seats is not None:
        claims["seats"] = max(1, min(MAX_SEATS, seats))
    return _encode(secret, claims, ttl_seconds)


def _encode(secret: str, claims: dict[str, str | int], ttl_seconds: int) -> str:
    now = int(time.time())
    return jwt.encode(
        {**claims, "iat": now, "exp": now + ttl_seconds, "jti": secrets.token_urlsafe(9)},
        secret,
        algorithm=_ALGORITHM,
    )


def verify(secret: str, token: str) -> Grant:
    """The grant a token carries, or `TokenError` saying why it is not accepted."""
    claims = _decode(secret, token, "room")
    try:
        role = Role(str(claims.get("role")))
    except ValueError:
        raise TokenError("bad_token", "this join token names an unknown role") from None
    name = str(claims.get("name") or role.value)[:64]
    seats = claims.get("seats")
    if not isinstance(seats, int) or isinstance(seats, bool) or not 1 <= seats <= MAX_SEATS:
        seats = DEFAULT_SEATS[role]
    token_id = str(claims.get("jti") or token.rsplit(".", 1)[-1])
    return Grant(str(claims["room"]), role, name, int(str(claims["exp"])), token_id, seats)


@dataclass(frozen=True, slots=True)
class ReviewGrant:
    """Access to one recorded session, seen through one role's view."""

    session: str
    view: Role
    name: str
    expires: int


def issue_review(secret: str, session: str, view: Role, name: str, ttl_seconds: int) -> str:
    return _encode(secret, {"session": session, "view": view.value, "name": name}, ttl_seconds)


def verify_review(secret: str, token: str) -> ReviewGrant:
    """The session a reviewer token opens, or `TokenError`."""
    claims = _decode(secret, token, "session")
    try:
        view = Role(str(claims.get("view", Role.FACILITATOR.value)))
    except ValueError:
        raise TokenError("bad_token", "this review token names an unknown view") from None
    name = str(claims.get("name") or "Reviewer")[:64]
    return ReviewGrant(str(claims["session"]), view, name, int(str(claims["exp"])))


def is_review_token(token: str) -> bool:
    """Whether a token claims a recorded session (unverified: only routes the hello)."""
    try:
        return "session" in jwt.decode(token, options={"verify_signature": False})
    except jwt.InvalidTokenError:
        return False


def _decode(secret: str, token: str, subject: str) -> dict[str, object]:
    try:
        claims: dict[str, object] = jwt.decode(
            token, secret, algorithms=[_ALGORITHM], options={"require": ["exp", subject]}
        )
    except jwt.ExpiredSignatureError:
        raise TokenError("token_expired", "this link has expired; ask for a new one") from None
    except jwt.InvalidTokenError:
        raise TokenError("bad_token", "this token is not valid for this server") from None
    return claims
