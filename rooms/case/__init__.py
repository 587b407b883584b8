"""The case engine: case files, physiology, clinical actions, scoring and debrief.

Public API: `load_case(path_or_id)`, `shipped_cases()`, `CaseScenario(case, seed)`,
`CaseError`. Everything here is deterministic and free of I/O beyond reading files.
"""

from rooms.case.errors import CaseError
from rooms.case.loader import load_case, parse_case, shipped_cases
from rooms.case.model import Case
from rooms.case.scenario import CaseScenario

__all__ = ["Case", "CaseError", "CaseScenario", "load_case", "parse_case", "shipped_cases"]
