"""Problems found in a case file, reported the way an author can act on them."""

from __future__ import annotations

from dataclasses import dataclass

FieldPath = tuple[str | int, ...]
"""Keys and list indexes from the top of a case file down to one field."""


def dotted(path: FieldPath) -> str:
    """`("rubric", "critical", "abx", "points")` -> `rubric.critical.abx.points`."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out or "(top level)"


@dataclass(frozen=True, slots=True)
class Problem:
    path: FieldPath
    message: str
    allowed: str = ""
    line: int | None = None
    """Line in the file (set by the loader)."""
    expr_line: int | None = None
    """For an expression: the line within it (the loader adds the field's own line)."""

    def render(self, file: str) -> str:
        where = f"{file}:{self.line}" if self.line else file
        tail = f" (allowed: {self.allowed})" if self.allowed else ""
        return f"{where}: {dotted(self.path)}: {self.message}{tail}"


class CaseError(ValueError):
    """A case file that cannot be used; `str()` lists every problem, one per line."""

    def __init__(self, file: str, problems: list[Problem]) -> None:
        self.file = file
        self.problems = problems
        super().__init__("\n".join(p.render(file) for p in problems))
