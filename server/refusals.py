"""What the server answers when it cannot do what a caller asked (not a bug: a reason)."""

from __future__ import annotations


class RoomRefused(Exception):
    """A room that cannot be created now: `code` and `message` say why."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
