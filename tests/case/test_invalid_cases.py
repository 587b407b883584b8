"""A broken case file is rejected with the file, line, field path and what is allowed."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from rooms.case import CaseError, load_case, parse_case
from rooms.case.loader import shipped_case_files

BASE: dict[str, Any] = yaml.safe_load(
    next(p for p in shipped_case_files() if p.stem == "anaphylaxis").read_text()
)


def broken(change: Callable[[dict[str, Any]], None]) -> CaseError:
    data = copy.deepcopy(BASE)
    change(data)
    with pytest.raises(CaseError) as caught:
        parse_case(yaml.safe_dump(data, sort_keys=False), "broken.yaml")
    return caught.value


def test_missing_field_is_named() -> None:
    error = broken(lambda d: d["patient"].pop("weight_kg"))
    assert "patient.weight_kg: required field is missing" in str(error)
    assert str(error).startswith("broken.yaml:")


def test_wrong_type_is_named() -> None:
    error = broken(lambda d: d["vitals"]["baseline"].update(hr="fast"))
    assert "vitals.baseline.hr" in str(error)
    assert "number" in str(error)


def test_unknown_reference_names_field_and_allowed_ids() -> None:
    error = broken(lambda d: d["rubric"]["critical"]["adrenaline_im"].update(
        action="give:adrenalin"))  # fmt: skip
    [problem] = error.problems
    assert problem.path == ("rubric", "critical", "adrenaline_im", "action")
    assert "unknown drug or fluid 'adrenalin'" in problem.message
    assert "epinephrine" in problem.allowed


def test_unknown_phase_in_event_is_rejected() -> None:
    error = broken(lambda d: d["events"]["treated"]["then"].update(phase="treatmnet"))
    assert "events.treated.then.phase: unknown phase 'treatmnet'" in str(error)
    assert "allowed: observation, recognition, treatment" in str(error)


def test_impossible_range_is_rejected() -> None:
    error = broken(lambda d: d["vitals"]["baseline"].update(sbp=60, dbp=80))
    assert "vitals.baseline: dbp must be lower than sbp" in str(error)
    error = broken(lambda d: d["vitals"]["baseline"].update(spo2=140))
    assert "vitals.baseline.spo2: Input should be less than or equal to 100" in str(error)


def test_identifier_in_patient_field_is_rejected() -> None:
    error = broken(lambda d: d["patient"].update(history="Seen on 12/03/2021 with hives."))
    assert "patient.history: looks like a full date" in str(error)


def test_unknown_field_lists_allowed_fields() -> None:
    error = broken(lambda d: d["patient"].update(wieght_kg=80))
    [problem] = error.problems
    assert problem.path == ("patient", "wieght_kg")
    assert problem.message == "unknown field"
    assert "weight_kg" in problem.allowed


def test_literal_lists_allowed_values() -> None:
    error = broken(lambda d: d["rubric"]["critical"]["adrenaline_im"].update(routes=["thigh"]))
    assert "rubric.critical.adrenaline_im.routes[0]" in str(error)
    assert "'im'" in error.problems[0].allowed


def test_error_points_at_the_line() -> None:
    text = yaml.safe_dump(BASE, sort_keys=False).replace("weight_kg: 80", "weight_kg: -3")
    line = text.splitlines().index("  weight_kg: -3") + 1
    with pytest.raises(CaseError) as caught:
        parse_case(text, "case.yaml")
    assert str(caught.value).startswith(f"case.yaml:{line}: patient.weight_kg:")


def test_yaml_syntax_error_reports_line() -> None:
    with pytest.raises(CaseError, match=r"^bad.yaml:3: .*not valid YAML"):
        parse_case("id: x\ntitle: y\nsummary: Reassess: is she better?\n", "bad.yaml")


def test_json_case_files_load(tmp_path: Path) -> None:
    path = tmp_path / "case.json"
    path.write_text(json.dumps(BASE))
    assert load_case(path).id == "anaphylaxis"


def test_every_problem_is_reported_at_once() -> None:
    def many(d: dict[str, Any]) -> None:
        d["patient"].pop("sex")
        d["vitals"]["baseline"]["rr"] = 500
        d["patient"]["social"] = "call 555-201-3344"

    paths = {p.path for p in broken(many).problems}
    assert {("patient", "sex"), ("vitals", "baseline", "rr"), ("patient", "social")} <= paths


def test_missing_file_is_a_case_error(tmp_path: Path) -> None:
    with pytest.raises(CaseError, match="cannot read file"):
        load_case(tmp_path / "nope.yaml")
