"""Privacy lint: reject text that looks like it identifies a real person.

Cases must be synthetic. The lint looks at every string in the case (the patient
block above all) for the identifier kinds of the HIPAA Safe Harbor list that a case
author is likely to paste by accident, and names the field it found each in.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any, Final

from rooms.case.errors import FieldPath, Problem

_MONTHS: Final = (
    r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|"
    r"sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)"
)

PATTERNS: Final[tuple[tuple[str, re.Pattern[str]], ...]] = (
    (
        "a full date",
        re.compile(
            r"\b\d{1,2}[/.-]\d{1,2}[/.-]\d{2,4}\b|\b\d{4}-\d{1,2}-\d{1,2}\b"
            rf"|\b\d{{1,2}}(?:st|nd|rd|th)?\s+{_MONTHS}\.?,?\s+\d{{4}}\b"
            rf"|\b{_MONTHS}\.?\s+\d{{1,2}}(?:st|nd|rd|th)?,?\s+\d{{4}}\b",
            re.IGNORECASE,
        ),
    ),
    ("an e-mail address", re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")),
    (
        "a phone number",
        re.compile(r"(?:\+\d{1,3}[\s.-]?)?\(?\b\d{3}\)?[\s.-]\d{3}[\s.-]\d{4}\b|\+\d[\d\s-]{8,}\d"),
    ),
    (
        "a record number",
        re.compile(
            r"\b(?:mrn|nhs\s*(?:no|number)|medical\s+record|record\s+(?:no|number)|"
            r"hospital\s+(?:no|number)|patient\s+id|ssn)\b[\s.:#-]*\w*\d"
            r"|\b\d{3}-\d{2}-\d{4}\b|\b\d{7,}\b",
            re.IGNORECASE,
        ),
    ),
    (
        "a street address",
        re.compile(
            r"\b\d{1,5}\s+(?:[A-Z][\w'-]*\s+){1,3}"
            r"(?:Street|St|Road|Rd|Avenue|Ave|Lane|Ln|Boulevard|Blvd|Drive|Court|Close|Way|Place)\b"
        ),
    ),
    (
        "a postcode",
        re.compile(
            r"\b[A-Z]{1,2}\d[A-Z\d]?\s\d[A-Z]{2}\b|\b\d{5}-\d{4}\b"
            r"|(?i:\b(?:zip|postcode|post code)\b)[\s.:#-]*[A-Za-z\d]"
        ),
    ),
    (
        "an age over 89 not grouped as 90+",
        re.compile(r"\b(?:9\d|1[0-4]\d)\s*(?:-|\s)?(?:years?|yrs?|y)(?:[\s-]*old)?\b", re.I),
    ),
)

_AGE_NUMBER: Final = re.compile(r"\d+")


def _strings(data: Any, path: FieldPath) -> Iterator[tuple[FieldPath, str]]:
    if isinstance(data, str):
        yield path, data
    elif isinstance(data, dict):
        for key, value in data.items():
            yield from _strings(value, (*path, str(key)))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            yield from _strings(value, (*path, i))


def lint(data: Any) -> list[Problem]:
    """Problems for every identifier-like string in raw case data (before validation)."""
    problems: list[Problem] = []
    for path, text in _strings(data, ()):
        if path[:1] == ("notes",) and path[1:2] == ("guidelines",):
            continue  # citations carry publication years and are not about the patient
        for kind, pattern in PATTERNS:
            if path == ("patient", "age"):
                break  # checked below, with the grouping rule
            if pattern.search(text):
                problems.append(
                    Problem(path, f"looks like {kind}; cases must not contain identifiers")
                )
    age = data.get("patient", {}).get("age") if isinstance(data, dict) else None
    if (
        isinstance(age, int | str)
        and not str(age).strip().startswith("90+")
        and any(int(n) > 89 for n in _AGE_NUMBER.findall(str(age)))
    ):
        problems.append(
            Problem(("patient", "age"), "ages over 89 identify people; group them", '"90+"')
        )
    return problems
