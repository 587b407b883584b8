"""The privacy lint names the field holding anything that looks like an identifier."""

from __future__ import annotations

import pytest

from rooms.case.privacy import lint

IDENTIFIERS = {
    "a full date": ["DOB 03/14/1961", "born 1961-03-14", "seen on 14 March 2021", "June 3, 1990"],
    "an e-mail address": ["contact j.doe@example.org"],
    "a phone number": ["call (555) 201-3344", "mobile +44 7700 900123"],
    "a record number": ["MRN 4471123", "NHS number 943 476 5919", "hospital no: A12345",
                        "SSN 123-45-6789"],
    "a street address": ["lives at 42 Elm Street", "12 Harbour View Rd"],
    "a postcode": ["near SW1A 1AA", "zip 90210", "area 02139-4307"],
    "an age over 89 not grouped as 90+": ["a 93-year-old woman", "aged 101 years"],
}  # fmt: skip


@pytest.mark.parametrize(
    ("kind", "text"), [(k, t) for k, texts in IDENTIFIERS.items() for t in texts]
)
@pytest.mark.parametrize("field", ["history", "social"])
def test_each_identifier_kind_is_rejected_with_field_named(
    kind: str, text: str, field: str
) -> None:
    problems = lint({"patient": {"age": "60", field: text}})
    assert f"looks like {kind}" in [p.message.split(";")[0] for p in problems]
    assert {p.path for p in problems} == {("patient", field)}


@pytest.mark.parametrize("age", [92, "95", "104 years"])
def test_ages_over_89_must_be_grouped(age: object) -> None:
    [problem] = lint({"patient": {"age": age}})
    assert problem.path == ("patient", "age")
    assert problem.allowed == '"90+"'


@pytest.mark.parametrize("age", [89, "90+", "6 years", "70-79", "18 months"])
def test_plausible_ages_pass(age: object) -> None:
    assert lint({"patient": {"age": age}}) == []


@pytest.mark.parametrize(
    "text",
    ["BP 90/50, GCS 14/15", "Adrenaline 1:1000 0.5 mg IM", "1.5 mm ST elevation in V4R",
     "WCC 19.6 x10^9/L", "2 g over 20 min", "pH 7.31, pCO2 5.9 kPa", "ECG at 10 minutes",
     "ST elevation in V4R 2mm", "T2 3cm lesion"],
)  # fmt: skip
def test_clinical_text_is_not_mistaken_for_identifiers(text: str) -> None:
    assert lint({"patient": {"history": text}}) == []


def test_guideline_citations_may_carry_years_and_other_fields_are_checked() -> None:
    data = {"notes": {"guidelines": ["Surviving Sepsis Campaign 2021-10-04 update"]},
            "roleplay": {"parent": {"brief": "email me at a@b.co"}}}  # fmt: skip
    [problem] = lint(data)
    assert problem.path == ("roleplay", "parent", "brief")
