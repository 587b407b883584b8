"""Join tokens: a room, a role, a display name and an expiry, signed with the server secret.

JWT (HS256, PyJWT) because it is a documented format any client can carry and the
library checks expiry and signature for us.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import jwt

from netcode.views import Role

_ALGORITHM = "HS256"


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


def issue(secret: str, room: str, role: Role, name: str, ttl_seconds: int) -> str:
    now = int(time.time())
    claims = {"room": room, "role": role.value, "name": name, "iat": now, "exp": now + ttl_seconds}
    return jwt.encode(claims, secret, algorithm=_ALGORITHM)


def verify(secret: str, token: str) -> Grant:
    """The grant a token carries, or `TokenError` saying why it is not accepted."""
    try:
        claims = jwt.decode(
            token, secret, algorithms=[_ALGORITHM], options={"require": ["exp", "room", "role"]}
        )
    except jwt.ExpiredSignatureError:
        raise TokenError("token_expired", "this join link has expired; ask for a new one") from None
    except jwt.InvalidTokenError:
        raise TokenError("bad_token", "this join token is not valid for this server") from None
    try:
        role = Role(claims["role"])
    except ValueError:
        raise TokenError("bad_token", "this join token names an unknown role") from None
    name = str(claims.get("name") or role.value)[:64]
    return Grant(str(claims["room"]), role, name, int(claims["exp"]))
