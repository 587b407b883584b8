"""Fault boundaries: where an unexpected exception stops, is reported once, and goes no further.

Every connection (and every room) runs inside one. An exception that reaches a boundary
is a bug, not bad input: bad input is answered with a code long before. The boundary
logs it once, as one record whose first line names the place and a short error id and
whose traceback follows, and hands the id back so the peer can be told (`internal_error`
with the id) and an operator can find the record from what a user reports.
"""

from __future__ import annotations

import logging
import secrets
from typing import Final

log = logging.getLogger(__name__)
BOUNDARY_MARK: Final = "fault boundary:"
"""Starts every report, so a log reader can tell a boundary's traceback from an escape."""


def report_fault(where: str, exc: BaseException) -> str:
    """Log `exc` once with its traceback; the short error id that names the report."""
    error_id = secrets.token_hex(4)
    log.error(
        "%s %s failed with %s (error id %s)",
        BOUNDARY_MARK,
        where,
        type(exc).__name__,
        error_id,
        exc_info=exc,
    )
    return error_id
