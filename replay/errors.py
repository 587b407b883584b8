"""The one error type of the replay package: a machine-readable code and a sentence.

The CLI prints `code: message` and exits non-zero; callers can branch on `code`.
"""

from __future__ import annotations


class ReplayError(Exception):
    """A session that cannot be read, found, written or trusted as asked."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
