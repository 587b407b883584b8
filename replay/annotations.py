"""Reviewers' overlay: bookmarks and comments on time ranges, beside the log.

`annotations.jsonl` is append-only JSON lines: an annotation, or a deletion
(`{"deleted": id}`). The record itself is never rewritten. Appends are single
`write` calls on an O_APPEND file, so a CLI and the server may add concurrently;
a torn last line (a crash mid-append) is ignored on reading.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from replay.errors import ReplayError
from replay.manifest import utc_iso

FILE = "annotations.jsonl"


@dataclass(frozen=True, slots=True)
class Annotation:
    id: str
    kind: str
    """bookmark (a moment: end_s is None) | comment (a time range)"""
    start_s: float
    end_s: float | None
    text: str
    author: str
    created_at: str


class Annotations:
    def __init__(self, session_path: Path) -> None:
        self.path = session_path / FILE

    def bookmark(self, at_s: float, text: str, author: str = "") -> Annotation:
        return self._add("bookmark", at_s, None, text, author)

    def comment(self, start_s: float, end_s: float, text: str, author: str = "") -> Annotation:
        if end_s < start_s:
            raise ReplayError("bad-range", f"a comment cannot end ({end_s}s) before it starts")
        return self._add("comment", start_s, end_s, text, author)

    def delete(self, annotation_id: str) -> None:
        if annotation_id not in {a.id for a in self.all()}:
            raise ReplayError("unknown-annotation", f"no annotation {annotation_id!r}")
        self._append({"deleted": annotation_id})

    def all(self) -> list[Annotation]:
        """Live annotations, by start time."""
        found: dict[str, Annotation] = {}
        for obj in self._lines():
            if "deleted" in obj:
                found.pop(str(obj["deleted"]), None)
            else:
                found[obj["id"]] = Annotation(**obj)
        return sorted(found.values(), key=lambda a: (a.start_s, a.created_at))

    def _add(
        self, kind: str, start_s: float, end_s: float | None, text: str, author: str
    ) -> Annotation:
        if start_s < 0 or not text.strip():
            raise ReplayError("bad-annotation", "an annotation needs a time >= 0 and some text")
        note = Annotation(uuid.uuid4().hex[:10], kind, float(start_s),
                          None if end_s is None else float(end_s), text, author,
                          utc_iso(time.time()))
        self._append(asdict(note))
        return note

    def _append(self, obj: dict[str, Any]) -> None:
        line = (json.dumps(obj, sort_keys=True) + "\n").encode()
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)

    def _lines(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        out = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                continue  # a torn last line
        return out
