"""Signalling errors: a code a client can branch on and a sentence a human reads."""

from __future__ import annotations

from typing import Any

BAD_MESSAGE = "bad_message"
BAD_SDP = "bad_sdp"
FORBIDDEN = "forbidden_role"
UNKNOWN_TRACK = "unknown_track"
UNKNOWN_PC = "unknown_pc"
TOO_LARGE = "too_large"
LIMIT = "limit_reached"
WORKER_UNAVAILABLE = "worker_unavailable"
INTERNAL = "internal"


class SignalError(Exception):
    """Raised for bad signalling; it never changes any state already in place."""

    def __init__(self, code: str, message: str, pc: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.pc = pc

    def to_message(self) -> dict[str, Any]:
        out: dict[str, Any] = {"op": "error", "code": self.code, "message": self.message}
        if self.pc is not None:
            out["pc"] = self.pc
        return out
