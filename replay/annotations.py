"""Reviewers' overlay: bookmarks, comments and rater forms on time ranges, beside the log.

`annotations.jsonl` is append-only JSON lines: an annotation, or a deletion
(`{"deleted": id}`). The record itself is never rewritten. Appends are single
`write` calls on an O_APPEND file, so a CLI and the server may add concurrently;
a torn last line (a crash mid-append) is ignored on reading.

Every line is a pydantic model: times are finite seconds, texts are bounded, and a
line that does not validate (a torn line, or one written before these rules, such as
a start of `Infinity`) is skipped on reading, so one bad line never spoils the
overlay. The overlay is bounded: at most `MAX_ANNOTATIONS` live annotations and
`MAX_LINES` lines (deletions count) per session; past that an add is refused with
`too-many-annotations`.

Each annotation carries the view of the reviewer who made it; a reviewer reads the
annotations made at or below their own view (the live room's `sees` rule), so a
facilitator's comment on the answer key is not shown to a spectator-view link.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from pathlib import Path
from typing import Annotated, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from netcode.views import VIEW_OF_ROLE, Role, View, sees
from replay.errors import ReplayError
from replay.manifest import utc_iso
from replay.rating import SCALES

FILE: Final = "annotations.jsonl"
MAX_ANNOTATIONS: Final = 2000
MAX_LINES: Final = 5000
MAX_TEXT: Final = 2000
MAX_SECONDS: Final = 1e7
"""No session is longer than 115 days; a larger time is a mistake, not a moment."""

Kind = Literal["bookmark", "comment", "rating"]
Seconds = Annotated[float, Field(allow_inf_nan=False, ge=0, le=MAX_SECONDS)]
_FROZEN = ConfigDict(extra="forbid", frozen=True)


class Rating(BaseModel):
    """A rater's form on a behavioural scale (see `replay.rating`)."""

    model_config = _FROZEN
    scale: Literal["TEAM", "ANTS"]
    items: dict[str, int] = Field(max_length=32)
    """Item id -> score on the scale's item range (items left out were not observed)."""
    global_rating: int

    @model_validator(mode="after")
    def _on_the_scale(self) -> Rating:
        scale = SCALES[self.scale]
        known = {item for item, _ in scale.items}
        for item, score in self.items.items():
            if item not in known:
                raise ValueError(f"{item!r} is not an item of {scale.id}")
            if not scale.low <= score <= scale.high:
                raise ValueError(f"{item}: {score} is outside {scale.low}-{scale.high}")
        if not scale.global_low <= self.global_rating <= scale.global_high:
            raise ValueError(
                f"global_rating {self.global_rating} is outside "
                f"{scale.global_low}-{scale.global_high}"
            )
        return self


class Annotation(BaseModel):
    model_config = _FROZEN
    id: str = Field(min_length=1, max_length=32)
    kind: Kind
    """bookmark (a moment: end_s is None), comment or rating (a time range)"""
    start_s: Seconds
    end_s: Seconds | None
    text: str = Field(max_length=MAX_TEXT)
    author: str = Field(max_length=64)
    created_at: str = Field(max_length=40)
    view: Role = Role.FACILITATOR
    """The view of the reviewer who wrote it (lines from before views: facilitator)."""
    rating: Rating | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Annotation:
        if self.end_s is not None and self.end_s < self.start_s:
            raise ValueError(f"it cannot end ({self.end_s}s) before it starts ({self.start_s}s)")
        if (self.kind == "rating") != (self.rating is not None):
            raise ValueError("a rating annotation (and only one) carries a rating form")
        if self.kind != "bookmark" and self.end_s is None:
            raise ValueError(f"a {self.kind} covers a time range: it needs end_s")
        return self


class Deletion(BaseModel):
    model_config = _FROZEN
    deleted: str = Field(max_length=32)


class Annotations:
    def __init__(self, session_path: Path) -> None:
        self.path = session_path / FILE

    def bookmark(
        self, at_s: float, text: str, author: str = "", view: Role = Role.FACILITATOR
    ) -> Annotation:
        return self._add("bookmark", at_s, None, text, author, view)

    def comment(
        self,
        start_s: float,
        end_s: float,
        text: str,
        author: str = "",
        view: Role = Role.FACILITATOR,
    ) -> Annotation:
        return self._add("comment", start_s, end_s, text, author, view)

    def rate(
        self,
        start_s: float,
        end_s: float,
        rating: Rating,
        text: str = "",
        author: str = "",
        view: Role = Role.FACILITATOR,
    ) -> Annotation:
        return self._add("rating", start_s, end_s, text, author, view, rating)

    def delete(self, annotation_id: str, view: Role = Role.FACILITATOR) -> None:
        """Remove an annotation the `view` can see (the overlay keeps the history)."""
        if annotation_id not in {a.id for a in self.all(view)}:
            raise ReplayError("unknown-annotation", f"no annotation {annotation_id!r}")
        self._append(Deletion(deleted=annotation_id).model_dump_json())

    def all(self, view: Role | None = None) -> list[Annotation]:
        """Live annotations by start time; with `view`, those that view may see."""
        found: dict[str, Annotation] = {}
        for line in self._lines():
            if isinstance(line, Deletion):
                found.pop(line.deleted, None)
            else:
                found[line.id] = line
        shown = [a for a in found.values() if view is None or sees(_level(view), _level(a.view))]
        return sorted(shown, key=lambda a: (a.start_s, a.created_at))

    def _add(
        self,
        kind: Kind,
        start_s: float,
        end_s: float | None,
        text: str,
        author: str,
        view: Role,
        rating: Rating | None = None,
    ) -> Annotation:
        if kind != "rating" and not text.strip():
            raise ReplayError("bad-annotation", f"a {kind} needs some text")
        try:
            note = Annotation(
                id=uuid.uuid4().hex[:10],
                kind=kind,
                start_s=start_s,
                end_s=end_s,
                text=text,
                author=author[:64],
                created_at=utc_iso(time.time()),
                view=view,
                rating=rating,
            )
        except ValidationError as exc:
            raise ReplayError("bad-annotation", _first_error(exc)) from None
        lines = self._lines()
        if len(lines) >= MAX_LINES or len(self.all()) >= MAX_ANNOTATIONS:
            raise ReplayError(
                "too-many-annotations",
                f"this session holds as many annotations as it can ({MAX_ANNOTATIONS} at "
                f"most, {MAX_LINES} changes); delete some first",
            )
        self._append(note.model_dump_json())
        return note

    def _append(self, line: str) -> None:
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, (line + "\n").encode())
            os.fsync(fd)
        finally:
            os.close(fd)

    def _lines(self) -> list[Annotation | Deletion]:
        if not self.path.exists():
            return []
        out: list[Annotation | Deletion] = []
        with open(self.path, encoding="utf-8", errors="replace") as f:
            for number, line in enumerate(f):
                if number >= MAX_LINES + 100:
                    break  # written past the cap by hand: the rest is not read
                try:
                    obj = json.loads(line)
                    out.append(
                        Deletion.model_validate(obj)
                        if "deleted" in obj
                        else Annotation.model_validate(obj)
                    )
                except (ValueError, TypeError):
                    continue  # a torn or invalid line (ValidationError is a ValueError)
        return out


def _level(role: Role) -> View:
    return VIEW_OF_ROLE[role]


def _first_error(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "annotation"
    return f"{where}: {first['msg']}"
