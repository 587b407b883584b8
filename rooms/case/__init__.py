"""The case engine: case files, patient state, clinical actions, scoring and debrief.

Public API: `load_case(path_or_id)`, `load_compiled`, `parse_case`, `compile_case`,
`shipped_cases()`, `CaseScenario(case, seed)`, `CaseProgram`, `CaseError`. Everything
here is deterministic and free of I/O beyond reading files.
"""

from rooms.case.errors import CaseError
from rooms.case.loader import (
    compile_case,
    load_case,
    load_compiled,
    parse_case,
    shipped_cases,
)
from rooms.case.model import Case
from rooms.case.program import CaseProgram
from rooms.case.scenario import CaseScenario

__all__ = [
    "Case",
    "CaseError",
    "CaseProgram",
    "CaseScenario",
    "compile_case",
    "load_case",
    "load_compiled",
    "parse_case",
    "shipped_cases",
]
