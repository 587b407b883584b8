"""Signalling errors: a code a client can branch on and a sentence a human reads."""

from __future__ import annotations

from typing import Any

from server.boundary import report_fault

BAD_MESSAGE = "bad_message"
BAD_SDP = "bad_sdp"
FORBIDDEN = "forbidden_role"
UNKNOWN_TRACK = "unknown_track"
UNKNOWN_PC = "unknown_pc"
TOO_LARGE = "too_large"
LIMIT = "limit_reached"
MEMBER_LIMIT = "member_limit"
ROOM_LIMIT = "room_limit"
WORKER_LIMIT = "worker_limit"
WORKER_UNAVAILABLE = "worker_unavailable"
INTERNAL = "internal"


class SignalError(Exception):
    """Raised for bad signalling; it never changes any state already in place."""

    def __init__(
        self, code: str, message: str, pc: str | None = None, error_id: str | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.pc = pc
        self.error_id = error_id

    def to_message(self) -> dict[str, Any]:
        out: dict[str, Any] = {"op": "error", "code": self.code, "message": self.message}
        if self.pc is not None:
            out["pc"] = self.pc
        if self.error_id is not None:
            out["error_id"] = self.error_id
        return out


def internal_error(where: str, exc: BaseException) -> SignalError:
    """A bug met while serving a request: logged once with its traceback under a short
    error id (the server's fault-boundary report); the client gets the id and a
    sentence, never the exception's text."""
    error_id = report_fault(where, exc)
    return SignalError(
        INTERNAL,
        f"the media server failed to handle this (error id {error_id}); the room carries on",
        error_id=error_id,
    )
