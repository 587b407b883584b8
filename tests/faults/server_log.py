"""Reading a server process's log: which tracebacks came from a fault boundary, which did not.

A fault boundary (`server/boundary.py`) reports an unexpected exception as one log record
whose first line carries `BOUNDARY_MARK` and whose traceback follows it. Any other
traceback in the log (a logged exception, an exception Python printed while dying, an
"Exception ignored in" from a finaliser) is something that escaped every boundary.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from server.boundary import BOUNDARY_MARK

_RECORD_START = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} [A-Z]+ ")
_TRACEBACK_START = ("Traceback (most recent call last)", "Exception ignored in")
_CHAINED = (
    "During handling of the above exception",
    "The above exception was the direct cause",
)


@dataclass(frozen=True, slots=True)
class LogRecord:
    header: str
    """The record's first line (time, level, logger, message)."""
    lines: tuple[str, ...]
    """Every line after the first (a traceback, for records that carry one)."""

    @property
    def from_boundary(self) -> bool:
        return BOUNDARY_MARK in self.header

    def stray_tracebacks(self) -> list[str]:
        """Traceback starts that no boundary owns: all of them outside a boundary's record;
        inside one, any but the report's own (its first, those chained to it, and those
        nested in it when it is an exception group)."""
        stray: list[str] = []
        previous = self.header
        for index, line in enumerate(self.lines):
            stripped = line.strip()
            if any(m in stripped for m in _TRACEBACK_START):
                owned = self.from_boundary and (
                    index == 0
                    or any(m in previous for m in _CHAINED)
                    or stripped.startswith(("|", "+"))
                )
                if not owned:
                    stray.append(line)
            if stripped:
                previous = stripped
        return stray


def parse(text: str) -> list[LogRecord]:
    """Split a log into records; text before the first record line is a record of its own."""
    records: list[LogRecord] = []
    header: str | None = None
    lines: list[str] = []
    for line in text.splitlines():
        if _RECORD_START.match(line):
            if header is not None or lines:
                records.append(LogRecord(header or "", tuple(lines)))
            header, lines = line, []
        else:
            lines.append(line)
    if header is not None or lines:
        records.append(LogRecord(header or "", tuple(lines)))
    return records


class ServerLog:
    """The log file a server process writes its stdout and stderr to."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def text(self) -> str:
        return self.path.read_text(errors="replace") if self.path.exists() else ""

    def records(self) -> list[LogRecord]:
        return parse(self.text())

    def boundary_reports(self) -> list[LogRecord]:
        return [r for r in self.records() if r.from_boundary]

    def assert_clean(self) -> None:
        """No traceback in the log outside the boundaries' own reports."""
        stray = [(r.header, line) for r in self.records() for line in r.stray_tracebacks()]
        assert not stray, (
            f"tracebacks outside a fault boundary: {stray}\n--- log ---\n{self.text()}"
        )
