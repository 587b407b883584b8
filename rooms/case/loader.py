"""Reading case files: YAML or JSON in, a validated `Case` (or a precise `CaseError`) out."""

from __future__ import annotations

import types
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic_core import ErrorDetails

from rooms.case import privacy, references
from rooms.case.errors import CaseError, FieldPath, Problem
from rooms.case.model import Case, Formulary, Intervention, TeamStep
from rooms.case.program import CaseProgram

CASES_PACKAGE = "rooms.cases"
FORMULARY = "formulary.yaml"


class _Lines:
    """Where each field of a YAML/JSON document is: for errors that name a line."""

    def __init__(self) -> None:
        self.lines: dict[FieldPath, int] = {}
        self.block: set[FieldPath] = set()
        """Block scalars (`|`, `>`): their text starts on the line after the key."""

    def walk(self, node: yaml.Node, path: FieldPath) -> None:
        self.lines[path] = node.start_mark.line + 1
        if isinstance(node, yaml.ScalarNode) and node.style in ("|", ">"):
            self.block.add(path)
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                self.walk(value, (*path, str(key.value)))
                self.lines[(*path, str(key.value))] = key.start_mark.line + 1  # the key's line
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                self.walk(item, (*path, i))

    def line(self, path: FieldPath, expr_line: int | None = None) -> int | None:
        """The file line of `path` (or of its nearest ancestor in the file); for an
        expression, of the line `expr_line` inside it."""
        for end in range(len(path), -1, -1):
            found = self.lines.get(path[:end])
            if found is not None:
                if expr_line is None or end < len(path):
                    return found
                return found + expr_line - 1 + (1 if path in self.block else 0)
        return None

    def place(self, problem: Problem) -> Problem:
        line = self.line(problem.path, problem.expr_line)
        return Problem(problem.path, problem.message, problem.allowed, line, problem.expr_line)


def _model_at(path: FieldPath) -> type[BaseModel] | None:
    """The model class that holds the field at `path` in a case (for "allowed" keys)."""
    annotation: Any = Case
    for part in path:
        while get_origin(annotation) in (Union, types.UnionType):
            models = [a for a in get_args(annotation) if isinstance(a, type)]
            models = [a for a in models if issubclass(a, BaseModel)] or models
            annotation = models[0] if models else None
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            field = annotation.model_fields.get(str(part))
            if field is None:
                return None
            annotation = field.annotation
        elif get_origin(annotation) in (dict, list):
            annotation = get_args(annotation)[-1]
        else:
            return None
    while get_origin(annotation) in (Union, types.UnionType):
        annotation = next((a for a in get_args(annotation) if isinstance(a, type)), None)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None


_TYPE_TAGS = frozenset({"str", "int", "float", "bool", "constrained-str", "list", "dict"})


def _problem(error: ErrorDetails, lines: _Lines) -> Problem:
    """One pydantic error as a `Problem` whose path is the path in the file."""
    loc = error["loc"]
    path: FieldPath = tuple(p for p in loc if p not in _TYPE_TAGS and not str(p).endswith("]"))
    kind = error["type"]
    ctx = error.get("ctx", {})
    allowed = ""
    message = error["msg"]
    if kind in ("literal_error", "enum"):
        message = "not an allowed key" if loc[-1:] == ("[key]",) else "not an allowed value"
        allowed = str(ctx.get("expected", ""))
    elif kind == "extra_forbidden":
        model = _model_at(path[:-1])
        message = "unknown field"
        allowed = ", ".join(model.model_fields) if model else ""
    elif kind == "missing":
        message = "required field is missing"
    elif kind == "string_pattern_mismatch":
        allowed = "lower_snake_case ids starting with a letter"
    elif kind == "value_error":
        message = message.removeprefix("Value error, ")
    return Problem(path, message, allowed, lines.line(path))


def _merged(problems: list[Problem]) -> list[Problem]:
    """One problem per path: a value that fits no member of a union fails once per member."""
    by_path: dict[FieldPath, Problem] = {}
    for p in problems:
        seen = by_path.get(p.path)
        if seen is None:
            by_path[p.path] = p
        elif p.message not in seen.message:
            options = p.message.removeprefix("Input should be ")
            by_path[p.path] = Problem(p.path, f"{seen.message} or {options}", seen.allowed, p.line)
    return list(by_path.values())


def _read_yaml(text: str, file: str) -> tuple[yaml.Node | None, Any]:
    """The document's node tree (for lines) and its data; `CaseError` if it is not YAML."""
    try:
        return yaml.compose(text, Loader=yaml.SafeLoader), yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise CaseError(file, [Problem((), f"not valid YAML/JSON: {problem}", line=line)]) from exc


def _parse(text: str, file: str) -> tuple[Any, _Lines]:
    node, data = _read_yaml(text, file)
    lines = _Lines()
    if node is not None:
        lines.walk(node, ())
    if not isinstance(data, dict):
        raise CaseError(file, [Problem((), "a case file must be a mapping of fields")])
    return data, lines


@cache
def formulary() -> dict[str, Intervention]:
    """The shared drugs and fluids every case may use (a case can override any of them)."""
    text = resources.files("rooms.case").joinpath(FORMULARY).read_text(encoding="utf-8")
    data, _ = _parse(text, FORMULARY)
    return dict(Formulary.model_validate(data).interventions)


def parse_case(text: str, file: str = "<case>") -> Case:
    """Validate case text; raise `CaseError` listing every problem found."""
    return compile_case(text, file)[0]


def compile_case(text: str, file: str = "<case>") -> tuple[Case, CaseProgram]:
    """Validate case text and compile its expressions; `CaseError` lists every problem."""
    data, lines = _parse(text, file)
    if data.get("schema_version") == 1:
        message = "a version 1 case; docs/cases.md, 'Moving a version 1 case', says what changed"
        raise CaseError(file, [lines.place(Problem(("schema_version",), message))])
    problems = [lines.place(p) for p in privacy.lint(data)]
    try:
        case = Case.model_validate(data)
    except ValidationError as exc:
        problems += _merged([_problem(e, lines) for e in exc.errors()])
        raise CaseError(file, problems) from exc
    declared = case.interventions
    case = case.model_copy(update={"interventions": {**formulary(), **declared}})
    problems += [lines.place(p) for p in references.check(case, declared)]
    program = CaseProgram(case)
    problems += [lines.place(p) for p in program.problems]
    if problems:
        raise CaseError(file, problems)
    return case, program


class _Team(BaseModel):
    model_config = ConfigDict(extra="forbid")
    team: list[TeamStep]


def parse_team(text: str, file: str = "<team>") -> list[TeamStep]:
    """A scripted team: a YAML/JSON list of timed steps (or `{team: [...]}`), each one's
    action, sender and arguments checked as a room would; `CaseError` with lines."""
    node, data = _read_yaml(text, file)
    lines = _Lines()
    wrapped = isinstance(data, list)
    if node is not None:
        lines.walk(node, ("team",) if wrapped else ())
    try:
        steps = _Team.model_validate({"team": data} if wrapped else data).team
    except ValidationError as exc:
        raise CaseError(file, _merged([_problem(e, lines) for e in exc.errors()])) from exc
    problems = [lines.place(p) for p in references.check_steps(("team",), steps)]
    if problems:
        raise CaseError(file, problems)
    return steps


def _shipped_dir() -> Path:
    return Path(str(resources.files(CASES_PACKAGE)))


def load_case(source: str | Path) -> Case:
    """Load a case from a file path, or a shipped case by its id (e.g. "septic_shock_ed")."""
    return load_compiled(source)[0]


def load_compiled(source: str | Path) -> tuple[Case, CaseProgram]:
    """`load_case`, with the compiled program a scenario runs."""
    path = Path(source)
    if not path.exists() and path.suffix == "" and len(path.parts) == 1:
        path = _shipped_dir() / f"{source}.yaml"
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CaseError(str(source), [Problem((), f"cannot read file: {exc.strerror}")]) from exc
    return compile_case(text, str(path))


def shipped_case_files() -> list[Path]:
    return sorted(_shipped_dir().glob("*.yaml"))


def shipped_cases() -> list[Case]:
    """Every case that ships with the project, by id."""
    return sorted((load_case(p) for p in shipped_case_files()), key=lambda c: c.id)
