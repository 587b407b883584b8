"""Which scenario a room runs: a case by id (shipped, or from the cases folder), or the
minimal GR-S room (`demo`, or `demo:N` for N shared objects).

Rooms are created from ids, never paths: a request cannot make the server read an
arbitrary file. The cases folder (`--cases-dir`, `GRANDROUNDS_CASES_DIR`, default
`DATA_DIR/cases`) is re-read when a file in it changes, so an edited or uploaded case
is what the next room runs; rooms already running keep the case they started with.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Final, Literal

from rooms.case import Case, CaseError, CaseProgram, CaseScenario, compile_case
from rooms.case.errors import Problem
from rooms.case.loader import shipped_case_files
from rooms.demo import DEFAULT_OBJECTS, MAX_OBJECTS, DemoScenario
from rooms.scenario import Scenario

MINIMAL: Final = "demo"
DEFAULT_CASE: Final = "septic_shock_ed"
CASE_SUFFIXES: Final = (".yaml", ".yml", ".json")
MAX_CASE_FILES: Final = 500
MAX_CASE_BYTES: Final = 256 * 1024
_DEMO: Final = re.compile(r"^demo(?::(\d{1,4}))?$")

Source = Literal["shipped", "folder"]


class UnknownCase(LookupError):
    pass


class CaseRejected(ValueError):
    """An uploaded case that cannot be saved (`problems` say why, with lines)."""

    def __init__(self, code: str, message: str, problems: list[Problem] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.problems = problems or []


@dataclass(frozen=True, slots=True)
class Loaded:
    case: Case
    program: CaseProgram
    source: Source
    file: str


@dataclass(frozen=True, slots=True)
class _FileState:
    stamp: tuple[int, int]
    """(mtime_ns, size): a changed file is parsed again."""
    loaded: Loaded | None
    error: CaseError | None


def demo_objects(name: str) -> int | None:
    """`demo` -> 20, `demo:200` -> 200; None if `name` is not the minimal room."""
    match = _DEMO.match(name)
    if match is None:
        return None
    objects = int(match.group(1) or DEFAULT_OBJECTS)
    if not 1 <= objects <= MAX_OBJECTS:
        raise UnknownCase(f"the demo room takes 1-{MAX_OBJECTS} objects, not {objects}")
    return objects


@cache
def _shipped() -> dict[str, Loaded]:
    out = {}
    for path in shipped_case_files():
        case, program = compile_case(path.read_text(encoding="utf-8"), path.name)
        out[case.id] = Loaded(case, program, "shipped", path.name)
    return out


class CaseLibrary:
    """The shipped cases and a folder of educators' cases.

    `refresh()` does the file I/O (call it off the event loop); `get`, `listing` and
    `make_scenario` only read what the last refresh found. Each refresh replaces the
    folder's table in one assignment, so readers on another thread see the old table
    or the new one, never half of each.
    """

    def __init__(self, folder: Path | None) -> None:
        self.folder = folder
        self._files: dict[Path, _FileState] = {}

    # -- reading the folder -----------------------------------------------------------
    def refresh(self) -> None:
        """Parse new and changed files in the folder; forget removed ones."""
        if self.folder is None or not self.folder.is_dir():
            self._files = {}
            return
        found: dict[Path, _FileState] = {}
        paths = sorted(
            p for p in self.folder.iterdir() if p.suffix in CASE_SUFFIXES and not p.is_symlink()
        )
        for path in paths[:MAX_CASE_FILES]:
            try:
                info = path.stat()
            except OSError:
                continue
            stamp = (info.st_mtime_ns, info.st_size)
            old = self._files.get(path)
            found[path] = old if old is not None and old.stamp == stamp else _read(path, stamp)
        self._files = found

    def _folder_cases(self) -> dict[str, Loaded]:
        out: dict[str, Loaded] = {}
        for state in self._files.values():
            if state.loaded is not None and state.loaded.case.id not in out:
                out[state.loaded.case.id] = state.loaded
        return out

    def cases(self) -> dict[str, Loaded]:
        """Every runnable case by id; a folder case never replaces a shipped one."""
        return {**self._folder_cases(), **_shipped()}

    def errors(self) -> list[CaseError]:
        """Folder files that are not valid cases (or repeat an id), as the last refresh saw."""
        out = [s.error for s in self._files.values() if s.error is not None]
        shipped, seen = _shipped(), set[str]()
        for state in self._files.values():
            if state.loaded is None:
                continue
            case_id = state.loaded.case.id
            if case_id in shipped or case_id in seen:
                why = "a shipped case" if case_id in shipped else "another file in the folder"
                out.append(
                    CaseError(
                        state.loaded.file, [Problem(("id",), f"{case_id!r} is already {why}")]
                    )
                )
            seen.add(case_id)
        return out

    def get(self, case_id: str) -> Loaded:
        found = self.cases().get(case_id)
        if found is None:
            raise UnknownCase(
                f"there is no case {case_id!r}; choose one of {', '.join(self.available())}"
            )
        return found

    def available(self) -> list[str]:
        return [MINIMAL, *sorted(self.cases())]

    def listing(self) -> list[dict[str, object]]:
        return [
            {
                "id": case_id,
                "title": loaded.case.title,
                "specialty": loaded.case.specialty,
                "duration_min": loaded.case.duration_min,
                "source": loaded.source,
                "stereo_video": loaded.case.media.stereo_video is not None,
            }
            for case_id, loaded in sorted(self.cases().items())
        ]

    def check(self, name: str) -> None:
        """Raise `UnknownCase` unless a room can run `name`."""
        if demo_objects(name) is None:
            self.get(name)

    def make_scenario(self, name: str, seed: int) -> Scenario:
        objects = demo_objects(name)
        if objects is not None:
            return DemoScenario(seed, objects)
        loaded = self.get(name)
        return CaseScenario(loaded.case, seed, loaded.program)

    # -- uploads ---------------------------------------------------------------------
    def save(self, text: str, kind: Literal["yaml", "json"] = "yaml") -> tuple[Loaded, bool]:
        """Validate `text` and write it into the folder as `<id>.yaml` (or `.json`),
        replacing the file that held that id before; (the case, whether it was new)."""
        if self.folder is None:
            raise CaseRejected("no_cases_folder", "this server has no folder for uploaded cases")
        if len(text.encode()) > MAX_CASE_BYTES:
            raise CaseRejected("too_large", f"a case file is limited to {MAX_CASE_BYTES} bytes")
        try:
            case, program = compile_case(text, f"upload.{kind}")
        except CaseError as exc:
            raise CaseRejected("invalid_case", str(exc), exc.problems) from None
        if case.id in _shipped():
            raise CaseRejected(
                "case_exists", f"{case.id!r} is a shipped case; give your case another id"
            )
        self.refresh()
        previous = next(
            (p for p, s in self._files.items() if s.loaded and s.loaded.case.id == case.id), None
        )
        path = previous or self.folder / f"{case.id}.{kind}"
        self.folder.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.upload")
        temporary.write_text(text, encoding="utf-8")
        os.replace(temporary, path)
        self.refresh()
        return Loaded(case, program, "folder", path.name), previous is None


def _read(path: Path, stamp: tuple[int, int]) -> _FileState:
    try:
        if stamp[1] > MAX_CASE_BYTES:
            raise CaseError(path.name, [Problem((), f"larger than {MAX_CASE_BYTES} bytes")])
        text = path.read_text(encoding="utf-8")
        case, program = compile_case(text, path.name)
    except CaseError as exc:
        return _FileState(stamp, None, exc)
    except (OSError, UnicodeDecodeError) as exc:
        return _FileState(stamp, None, CaseError(path.name, [Problem((), f"cannot read: {exc}")]))
    return _FileState(stamp, Loaded(case, program, "folder", path.name), None)


@cache
def _default_library() -> CaseLibrary:
    folder = os.environ.get("GRANDROUNDS_CASES_DIR")
    library = CaseLibrary(Path(folder) if folder else None)
    library.refresh()
    return library


def make_scenario(case: str, seed: int) -> Scenario:
    """A scenario by name for tools without a server (replay verification): shipped
    cases, the demo room, and the folder named by `GRANDROUNDS_CASES_DIR`."""
    return _default_library().make_scenario(case, seed)


def available_cases() -> list[str]:
    """Every scenario name `make_scenario` knows (the minimal room first)."""
    return _default_library().available()
